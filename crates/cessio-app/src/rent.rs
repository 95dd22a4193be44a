//! R-RENT as a service: the rent credit of art. 28 DL 34/2020 computed month by month from
//! the figures a tenant (or its intermediary) gives, with the law's figures from
//! `catalogue/rules.toml`. It reads and writes nothing of the register.

use cessio_core::rent::{RentCredit, RentInput, compute};

use crate::{App, AppError, Principal};

/// The rent-credit law computed (a row of `catalogue/rules.toml`).
pub const RENT_LAW: &str = "art28_2020";

impl App {
    /// R-RENT: the credit per month (eligible with its amount, or the reason it is not)
    /// and the total. Any signed-in user may compute it.
    pub fn rent_credit(&self, _p: &Principal, input: &RentInput) -> Result<RentCredit, AppError> {
        let rule = self.law.rent(RENT_LAW).ok_or(AppError::NotFound {
            what: "Regola del credito sui canoni",
        })?;
        compute(input, rule).map_err(|e| AppError::Rule {
            rule: e.rule(),
            code: "r_rent",
            detail: e.to_string(),
        })
    }
}
