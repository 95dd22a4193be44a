//! R-CF: `CodiceFiscale::parse` and `PartitaIva::parse` on arbitrary text never panic, and
//! what they accept is normalised: parsing it again gives the same code.
#![no_main]

use cessio_core::cf::{CodiceFiscale, PartitaIva};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cf) = CodiceFiscale::parse(input) {
        let again = CodiceFiscale::parse(cf.as_str()).expect("a parsed code parses again");
        assert_eq!(again, cf);
        assert!(matches!(cf.as_str().len(), 11 | 16), "{cf:?}");
        let _ = cf.kind();
        let _ = cf.birth();
        let canonical = cf.canonical();
        assert!(
            CodiceFiscale::parse(canonical.as_str()).is_ok(),
            "{canonical:?}"
        );
        for v in cf.omocode_variants() {
            assert!(CodiceFiscale::parse(v.as_str()).is_ok(), "{v:?}");
        }
    }
    if let Ok(piva) = PartitaIva::parse(input) {
        assert_eq!(piva.as_str().len(), 11);
        assert_eq!(PartitaIva::parse(piva.as_str()).expect("again"), piva);
        assert!(CodiceFiscale::parse(piva.as_str()).is_ok(), "{piva:?}");
    }
});
