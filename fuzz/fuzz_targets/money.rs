//! Amounts: `Cents::parse_amount` on arbitrary text never panics, and an accepted amount
//! printed Italian style (`1.234,56`) or plainly (`1234.56`) parses back to itself.
#![no_main]

use cessio_core::money::Cents;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Cents::parse_amount(input);
    let positive = Cents::parse_positive_amount(input);
    if let Ok(c) = positive {
        assert!(c.is_positive());
        assert_eq!(parsed, Ok(c));
    }
    if let Ok(c) = parsed {
        let plain = c.to_decimal_string(',');
        assert_eq!(Cents::parse_amount(&plain), Ok(c), "{input:?} -> {plain:?}");
        let shown = c.to_string();
        assert_eq!(Cents::parse_amount(&shown), Ok(c), "{input:?} -> {shown:?}");
        let _ = c.ensure_positive_amount();
    }
});
