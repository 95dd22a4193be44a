//! Business time: reference years, the Europe/Rome calendar date, and the one injectable clock.

use serde::{Deserialize, Serialize};

/// An anno di riferimento: the calendar year in which a rata may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefYear(u16);

impl RefYear {
    pub const fn new(year: u16) -> Self {
        RefYear(year)
    }

    pub const fn get(self) -> u16 {
        self.0
    }
}
