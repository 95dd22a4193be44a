//! Money as integer euro cents (SPEC §7). Never `f64`: every operation is checked.

use serde::{Deserialize, Serialize};

/// An amount in euro cents. Arithmetic is checked: an overflow is an error, never a wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cents(i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);
    pub const MAX: Cents = Cents(i64::MAX);

    pub const fn new(cents: i64) -> Self {
        Cents(cents)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    pub fn checked_sub(self, other: Cents) -> Option<Cents> {
        self.0.checked_sub(other.0).map(Cents)
    }

    pub fn checked_mul(self, factor: i64) -> Option<Cents> {
        self.0.checked_mul(factor).map(Cents)
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// Splits `self` into `parts` equal amounts with the remainder cents on the first
    /// (R-SPLIT-CENTS, and rata derivation in F8). The parts always sum to `self`.
    ///
    /// Panics if `parts` is zero or `self` is negative: both are programming errors.
    pub fn split_even(self, parts: u32) -> Vec<Cents> {
        assert!(parts > 0, "split_even into zero parts");
        assert!(self.0 >= 0, "split_even of a negative amount");
        let n = i64::from(parts);
        let base = self.0 / n;
        let remainder = self.0 % n;
        let mut out = vec![Cents(base); parts as usize];
        out[0] = Cents(base + remainder);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_split_cents_remainder_on_first_rata() {
        let rate = Cents(100_003).split_even(10);
        assert_eq!(rate[0], Cents(10_003));
        assert!(rate[1..].iter().all(|r| *r == Cents(10_000)));
        assert_eq!(rate.iter().map(|c| c.get()).sum::<i64>(), 100_003);
    }
}
