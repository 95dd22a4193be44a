//! F8 bulk import: `parse_option_csv` on arbitrary bytes never panics; every row it
//! accepts holds valid values, and every refusal names a line of the file.
#![no_main]

use std::sync::LazyLock;

use cessio_core::catalogue::Catalogue;
use cessio_core::csv::parse_option_csv;
use libfuzzer_sys::fuzz_target;

static CATALOGUE: LazyLock<Catalogue> =
    LazyLock::new(|| Catalogue::builtin().expect("the built-in catalogue loads"));

fuzz_target!(|data: &[u8]| {
    let Ok(report) = parse_option_csv(data, &CATALOGUE) else {
        return;
    };
    let lines = data.iter().filter(|b| matches!(b, b'\n' | b'\r')).count() + 1;
    for row in &report.rows {
        assert!(row.total.is_positive(), "{row:?}");
        assert!(CATALOGUE.get(&row.type_key).is_some(), "{row:?}");
        assert!(row.line >= 1 && row.line <= lines, "{row:?}");
    }
    for e in &report.errors {
        assert!(e.line >= 1 && e.line <= lines, "{e:?}");
        assert!(!e.message.is_empty());
    }
});
