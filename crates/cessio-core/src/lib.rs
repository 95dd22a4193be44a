//! Cessio's pure domain: tax codes, money, business dates, the credit-type catalogue,
//! rata derivation and the double-entry ledger model.
//!
//! Architecture invariant: this crate does no I/O, no async and no SQL. Every rule of
//! SPEC.md that can be decided from values lives here as a plain function or type, so
//! that the store, the app layer and the tests all share one definition.

/// A text type's schema in the API document: a string, inlined where it is used (the
/// type's own checks say what it accepts; the fields that hold it describe it).
macro_rules! string_schema {
    ($ty:ident) => {
        impl schemars::JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string" })
            }
        }
    };
}

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
