//! JSON request bodies: the app's input types (`OptionInput`, `CessionLine`,
//! `MovementFilter`, `IncomingFilter`) deserialised from arbitrary bytes never panic; what
//! parses survives a round trip, and the validation that needs no store (codici fiscali,
//! amounts, the catalogue, the derivation of the rate) never panics on it.
#![no_main]

use std::sync::LazyLock;

use cessio_app::{CessionLine, IncomingFilter, MovementFilter, OptionInput};
use cessio_core::catalogue::{Catalogue, HolderRole};
use cessio_core::cf::CodiceFiscale;
use cessio_core::rata::{OptionCommunication, Protocol, derive_rate_for_holder};
use libfuzzer_sys::fuzz_target;

static CATALOGUE: LazyLock<Catalogue> =
    LazyLock::new(|| Catalogue::builtin().expect("the built-in catalogue loads"));

fn round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_vec(value).expect("serialises");
    let back: T = serde_json::from_slice(&json).expect("what was read is read again");
    assert_eq!(&back, value);
}

fn option(input: &OptionInput) {
    round_trip(input);
    let _ = CodiceFiscale::parse(&input.beneficiary_cf);
    let _ = CodiceFiscale::parse(&input.holder_cf);
    let Ok(total) = input.total.ensure_positive_amount() else {
        return;
    };
    let Some(communicated_on) = input.communicated_on else {
        return;
    };
    let Some(t) = CATALOGUE.get(&input.type_key) else {
        return;
    };
    let _ = cessio_core::rules::opt_stop_applies(t.family, communicated_on);
    let _ = cessio_core::rules::opt_annul_deadline(communicated_on);
    let registered = chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .expect("a date");
    let protocol = Protocol::new(registered, 1).expect("a protocol");
    let comm = OptionCommunication {
        type_key: input.type_key.clone(),
        expense_year: input.expense_year,
        origin: input.origin,
        total,
        communicated_on,
    };
    if let Ok(derived) =
        derive_rate_for_holder(&CATALOGUE, &comm, HolderRole::Cessionario, &protocol, 1)
    {
        let sum = cessio_core::money::Cents::checked_sum(derived.rate.iter().map(|r| r.amount));
        assert_eq!(sum, Some(total), "R-SPLIT-CENTS: {comm:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = serde_json::from_slice::<OptionInput>(data) {
        option(&input);
    }
    if let Ok(lines) = serde_json::from_slice::<Vec<CessionLine>>(data) {
        for line in &lines {
            round_trip(line);
            let _ = CodiceFiscale::parse(&line.cessionario_cf);
            if let Some(a) = line.amount {
                let _ = a.ensure_positive_amount();
            }
        }
    }
    if let Ok(line) = serde_json::from_slice::<CessionLine>(data) {
        round_trip(&line);
    }
    if let Ok(filter) = serde_json::from_slice::<MovementFilter>(data) {
        round_trip(&filter);
        for cf in [&filter.cedente_cf, &filter.cessionario_cf]
            .into_iter()
            .flatten()
        {
            let _ = CodiceFiscale::parse(cf);
        }
    }
    if let Ok(filter) = serde_json::from_slice::<IncomingFilter>(data) {
        round_trip(&filter);
        if let Some(cf) = &filter.cedente_cf {
            let _ = CodiceFiscale::parse(cf);
        }
    }
});
