//! Cessio's pure domain: tax codes, money, business dates, the credit-type catalogue,
//! rata derivation and the double-entry ledger model.
//!
//! Architecture invariant: this crate does no I/O, no async and no SQL. Every rule of
//! SPEC.md that can be decided from values lives here as a plain function or type, so
//! that the store, the app layer and the tests all share one definition.

pub mod calendar;
pub mod catalogue;
pub mod cf;
pub mod chain;
pub mod csv;
pub mod debt;
pub mod f24;
pub mod f24_debits;
pub mod law;
pub mod ledger;
pub mod money;
pub mod opt_stop;
pub mod rata;
pub mod reduction;
pub mod rent;
pub mod risk;
pub mod rules;
pub mod split;
pub mod suspension;
pub mod time;

#[cfg(test)]
mod test_support;
