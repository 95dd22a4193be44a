//! Rata derivation for an option communication (SPEC F8) and the identifiers it hands out
//! (SPEC §7): the 17-digit protocol of a communication and the 30-character codice
//! identificativo univoco of each rata.
//!
//! From the catalogue (§8) and the communication alone this module decides how many rate a
//! credit has, their years, amounts (equal, remainder cents on the first) and codici tributo,
//! and whether the credit is tracciabile. It never assigns progressives: the store does, so
//! that they stay unique under concurrency; this module only formats and checks them.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalogue::{Catalogue, HolderRole, Origin};
use crate::money::Cents;
use crate::time::RefYear;

/// Credits from option communications sent on or after this day are tracciabili (art. 121
/// c.1-quater DL 34/2020, added by DL 13/2022).
pub const TRACCIABILE_FROM: NaiveDate = NaiveDate::from_ymd_opt(2022, 5, 1).expect("valid date");

// ---- identifiers ----------------------------------------------------------------------------

/// Why a protocol or codice univoco was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("{what}: lunghezza {found} invece di {expected} caratteri")]
    Length {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("{what}: sono ammesse solo cifre")]
    NotDigits { what: &'static str },
    #[error("{what}: data e ora di registrazione non valide")]
    BadTimestamp { what: &'static str },
    #[error("{what}: progressivo {field} {value} fuori dall'intervallo 1–{max}")]
    ProgressiveOutOfRange {
        what: &'static str,
        field: &'static str,
        value: u32,
        max: u32,
    },
    #[error("protocollo: anno {year} non rappresentabile (ammessi 2000–2099)")]
    YearOutOfRange { year: i32 },
}

impl IdentifierError {
    /// Stable machine-readable code.
    pub const fn code(&self) -> &'static str {
        match self {
            IdentifierError::Length { .. } => "identifier_bad_length",
            IdentifierError::NotDigits { .. } => "identifier_not_digits",
            IdentifierError::BadTimestamp { .. } => "identifier_bad_timestamp",
            IdentifierError::ProgressiveOutOfRange { .. } => "identifier_progressive_out_of_range",
            IdentifierError::YearOutOfRange { .. } => "identifier_year_out_of_range",
        }
    }
}

const PROTOCOL: &str = "protocollo";
const CODICE_UNIVOCO: &str = "codice univoco";

/// Protocol number of a communication: `YYMMDDHHMMSS` (Europe/Rome local time of
/// registration) followed by a 5-digit progressive, 17 digits in all, as on the real
/// platform. Textual order is registration order within 2000–2099.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Protocol {
    // `text` first: the derived order is the textual one.
    text: String,
    registered_at: NaiveDateTime,
    progressive: u32,
}

impl Protocol {
    pub const LEN: usize = 17;
    pub const MAX_PROGRESSIVE: u32 = 99_999;

    /// Builds the protocol of a communication registered at `rome_local` (already converted
    /// to Europe/Rome: core has no time-zone data). Seconds' fractions are dropped, as the
    /// format has none.
    pub fn new(rome_local: NaiveDateTime, progressive: u32) -> Result<Protocol, IdentifierError> {
        check_progressive(
            PROTOCOL,
            "comunicazione",
            progressive,
            Self::MAX_PROGRESSIVE,
        )?;
        let year = rome_local.year();
        if !(2000..=2099).contains(&year) {
            return Err(IdentifierError::YearOutOfRange { year });
        }
        let registered_at = rome_local.with_nanosecond(0).unwrap_or(rome_local);
        let text = format!("{}{progressive:05}", registered_at.format("%y%m%d%H%M%S"));
        Ok(Protocol {
            text,
            registered_at,
            progressive,
        })
    }

    /// Parses a protocol as printed (surrounding spaces are ignored).
    pub fn parse(input: &str) -> Result<Protocol, IdentifierError> {
        let text = digits(PROTOCOL, input.trim(), Self::LEN)?;
        let field = |range: std::ops::Range<usize>| -> u32 {
            // Only ASCII digits reach here, at most 5 of them: the parse cannot fail.
            text[range].parse().unwrap_or(0)
        };
        let bad = IdentifierError::BadTimestamp { what: PROTOCOL };
        let date = NaiveDate::from_ymd_opt(2000 + field(0..2) as i32, field(2..4), field(4..6))
            .ok_or(bad.clone())?;
        let time = NaiveTime::from_hms_opt(field(6..8), field(8..10), field(10..12)).ok_or(bad)?;
        let progressive = field(12..17);
        check_progressive(
            PROTOCOL,
            "comunicazione",
            progressive,
            Self::MAX_PROGRESSIVE,
        )?;
        Ok(Protocol {
            text: text.to_owned(),
            registered_at: date.and_time(time),
            progressive,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Europe/Rome local time of registration, to the second.
    pub fn registered_at(&self) -> NaiveDateTime {
        self.registered_at
    }

    pub fn progressive(&self) -> u32 {
        self.progressive
    }
}

/// Codice identificativo univoco of a rata (SPEC §7): the communication's protocol (17), a
/// 7-digit progressive of the credit within it and a 6-digit progressive of the rata or
/// holding, 30 digits in all.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CodiceUnivoco {
    text: String,
    protocol: Protocol,
    credit_progressive: u32,
    rata_progressive: u32,
}

impl CodiceUnivoco {
    pub const LEN: usize = 30;
    pub const MAX_CREDIT_PROGRESSIVE: u32 = 9_999_999;
    pub const MAX_RATA_PROGRESSIVE: u32 = 999_999;

    pub fn new(
        protocol: &Protocol,
        credit_progressive: u32,
        rata_progressive: u32,
    ) -> Result<CodiceUnivoco, IdentifierError> {
        check_progressive(
            CODICE_UNIVOCO,
            "credito",
            credit_progressive,
            Self::MAX_CREDIT_PROGRESSIVE,
        )?;
        check_progressive(
            CODICE_UNIVOCO,
            "rata",
            rata_progressive,
            Self::MAX_RATA_PROGRESSIVE,
        )?;
        Ok(CodiceUnivoco {
            text: format!(
                "{}{credit_progressive:07}{rata_progressive:06}",
                protocol.as_str()
            ),
            protocol: protocol.clone(),
            credit_progressive,
            rata_progressive,
        })
    }

    /// Parses a codice univoco as printed (surrounding spaces are ignored).
    pub fn parse(input: &str) -> Result<CodiceUnivoco, IdentifierError> {
        let text = digits(CODICE_UNIVOCO, input.trim(), Self::LEN)?;
        let protocol = Protocol::parse(&text[..Protocol::LEN])?;
        // Only ASCII digits reach here, at most 7 of them: the parses cannot fail.
        let credit_progressive = text[17..24].parse().unwrap_or(0);
        let rata_progressive = text[24..30].parse().unwrap_or(0);
        CodiceUnivoco::new(&protocol, credit_progressive, rata_progressive)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn protocol(&self) -> &Protocol {
        &self.protocol
    }

    pub fn credit_progressive(&self) -> u32 {
        self.credit_progressive
    }

    pub fn rata_progressive(&self) -> u32 {
        self.rata_progressive
    }
}

fn check_progressive(
    what: &'static str,
    field: &'static str,
    value: u32,
    max: u32,
) -> Result<(), IdentifierError> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(IdentifierError::ProgressiveOutOfRange {
            what,
            field,
            value,
            max,
        })
    }
}

fn digits<'a>(what: &'static str, text: &'a str, len: usize) -> Result<&'a str, IdentifierError> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdentifierError::NotDigits { what });
    }
    if text.len() != len {
        return Err(IdentifierError::Length {
            what,
            expected: len,
            found: text.len(),
        });
    }
    Ok(text)
}

macro_rules! string_identifier {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = IdentifierError;

            fn from_str(s: &str) -> Result<Self, IdentifierError> {
                $ty::parse(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $ty::parse(&text).map_err(serde::de::Error::custom)
            }
        }

        string_schema!($ty);
    };
}

string_identifier!(Protocol);
string_identifier!(CodiceUnivoco);

// ---- derivation -----------------------------------------------------------------------------

/// What an option communication says about the credit (SPEC F8). Parties are not needed to
/// derive the rate, so they are not here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionCommunication {
    pub type_key: String,
    pub expense_year: u16,
    pub origin: Origin,
    pub total: Cents,
    pub communicated_on: NaiveDate,
}

/// The rate of a new credit, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DerivedCredit {
    pub tracciabile: bool,
    pub rate: Vec<DerivedRata>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DerivedRata {
    /// 1-based position within the credit; also the rata progressive of its codice univoco.
    pub index: u32,
    pub year: RefYear,
    pub amount: Cents,
    /// Code of the first holder's holding. It may change with the holder (rent: 6920 for the
    /// beneficiary, 6931 once ceded), so later holdings look it up again.
    pub codice_tributo: String,
    /// Every rata gets one, so that each has a stable id; users are shown it only for
    /// tracciabili credits (SPEC §7), the protocol otherwise.
    pub codice_univoco: CodiceUnivoco,
}

/// Why a communication cannot create a credit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RataError {
    #[error("tipo di credito sconosciuto: '{key}'")]
    UnknownType { key: String },
    #[error(
        "nessun codice tributo per il tipo '{key}' con comunicazione del {}, origine {origin}, titolare {holder}",
        .communicated_on.format("%d/%m/%Y")
    )]
    NoCode {
        key: String,
        communicated_on: NaiveDate,
        origin: Origin,
        holder: HolderRole,
    },
    #[error("il tipo '{key}' non prevede rate per spese dell'anno {expense_year}")]
    NoRateCount { key: String, expense_year: u16 },
    #[error("l'importo totale deve essere positivo (indicato {total})")]
    TotalNotPositive { total: Cents },
    #[error(
        "l'importo totale {total} è inferiore al numero di rate ({count}): ogni rata deve valere almeno 0,01 €"
    )]
    TotalBelowRateCount { total: Cents, count: u32 },
    #[error("l'importo totale {total} supera il massimo ammesso di {max}")]
    TotalTooLarge { total: Cents, max: Cents },
    #[error("anno di spesa {expense_year}: gli anni delle rate non sono rappresentabili")]
    YearOutOfRange { expense_year: u16 },
    #[error(transparent)]
    Identifier(#[from] IdentifierError),
}

impl RataError {
    /// Stable machine-readable code.
    pub const fn code(&self) -> &'static str {
        match self {
            RataError::UnknownType { .. } => "credit_type_unknown",
            RataError::NoCode { .. } => "codice_tributo_missing",
            RataError::NoRateCount { .. } => "rate_count_missing",
            RataError::TotalNotPositive { .. } => "total_not_positive",
            RataError::TotalBelowRateCount { .. } => "total_below_rate_count",
            RataError::TotalTooLarge { .. } => "total_too_large",
            RataError::YearOutOfRange { .. } => "expense_year_out_of_range",
            RataError::Identifier(e) => e.code(),
        }
    }
}

/// Derives the rate of the credit created by `comm` (SPEC F8), for the fornitore or first
/// cessionario who receives it: the usual case of building bonuses.
pub fn derive_rate(
    catalogue: &Catalogue,
    comm: &OptionCommunication,
    protocol: &Protocol,
    credit_progressive: u32,
) -> Result<DerivedCredit, RataError> {
    derive_rate_for_holder(
        catalogue,
        comm,
        HolderRole::Cessionario,
        protocol,
        credit_progressive,
    )
}

/// As [`derive_rate`], for a first holder in the given role: COVID credits granted to their
/// beneficiary take `HolderRole::Beneficiario` (rent: code 6920, not 6931).
pub fn derive_rate_for_holder(
    catalogue: &Catalogue,
    comm: &OptionCommunication,
    holder: HolderRole,
    protocol: &Protocol,
    credit_progressive: u32,
) -> Result<DerivedCredit, RataError> {
    let credit_type = catalogue
        .get(&comm.type_key)
        .ok_or_else(|| RataError::UnknownType {
            key: comm.type_key.clone(),
        })?;
    let total = comm.total;
    if !total.is_positive() {
        return Err(RataError::TotalNotPositive { total });
    }
    // One limit for every single operation, defined with the money type, so that a credit
    // can always be ceded, reserved or used whole.
    if total > Cents::MAX_AMOUNT {
        return Err(RataError::TotalTooLarge {
            total,
            max: Cents::MAX_AMOUNT,
        });
    }
    let count =
        credit_type
            .rate_count(comm.expense_year)
            .ok_or_else(|| RataError::NoRateCount {
                key: comm.type_key.clone(),
                expense_year: comm.expense_year,
            })?;
    // Equal split with the remainder on the first rata would give a zero rata otherwise:
    // a rata that can never be used or ceded.
    if total.get() < i64::from(count) {
        return Err(RataError::TotalBelowRateCount { total, count });
    }
    let code = credit_type
        .code_for(comm.communicated_on, comm.origin, holder)
        .ok_or_else(|| RataError::NoCode {
            key: comm.type_key.clone(),
            communicated_on: comm.communicated_on,
            origin: comm.origin,
            holder,
        })?;
    let year_error = || RataError::YearOutOfRange {
        expense_year: comm.expense_year,
    };
    let first_year = credit_type
        .first_rata_year(comm.expense_year)
        .ok_or_else(year_error)?
        .get();
    // count ≤ MAX_RATE_COUNT (10), validated by the catalogue: the cast cannot truncate.
    let last_year = first_year
        .checked_add(count as u16 - 1)
        .ok_or_else(year_error)?;

    let mut rate = Vec::with_capacity(count as usize);
    for ((index, year), amount) in (1u32..)
        .zip(first_year..=last_year)
        .zip(total.split_even(count))
    {
        rate.push(DerivedRata {
            index,
            year: RefYear::new(year),
            amount,
            codice_tributo: code.to_owned(),
            codice_univoco: CodiceUnivoco::new(protocol, credit_progressive, index)?,
        });
    }
    Ok(DerivedCredit {
        tracciabile: comm.communicated_on >= TRACCIABILE_FROM,
        rate,
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn catalogue() -> Catalogue {
        Catalogue::builtin().unwrap()
    }

    fn protocol() -> Protocol {
        let at = date(2022, 6, 1).and_hms_opt(9, 30, 5).unwrap();
        Protocol::new(at, 42).unwrap()
    }

    fn comm(
        key: &str,
        expense_year: u16,
        origin: Origin,
        total: i64,
        on: NaiveDate,
    ) -> OptionCommunication {
        OptionCommunication {
            type_key: key.to_owned(),
            expense_year,
            origin,
            total: Cents::new(total),
            communicated_on: on,
        }
    }

    fn derive(c: &OptionCommunication) -> Result<DerivedCredit, RataError> {
        derive_rate(&catalogue(), c, &protocol(), 1)
    }

    fn years(credit: &DerivedCredit) -> Vec<u16> {
        credit.rate.iter().map(|r| r.year.get()).collect()
    }

    fn amounts(credit: &DerivedCredit) -> Vec<i64> {
        credit.rate.iter().map(|r| r.amount.get()).collect()
    }

    #[test]
    fn r_opt_rate_remainder_cents_on_first_rata() {
        let c = comm(
            "superbonus",
            2021,
            Origin::Cessione,
            100_003,
            date(2022, 3, 10),
        );
        let credit = derive(&c).unwrap();
        assert!(!credit.tracciabile);
        assert_eq!(years(&credit), [2022, 2023, 2024, 2025, 2026]);
        assert_eq!(amounts(&credit), [20_003, 20_000, 20_000, 20_000, 20_000]);
        assert!(credit.rate.iter().all(|r| r.codice_tributo == "7701"));
        assert_eq!(
            credit.rate.iter().map(|r| r.index).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn f8_tracciabile_from_2022_05_01() {
        let before = comm(
            "superbonus",
            2021,
            Origin::Cessione,
            100_000,
            date(2022, 4, 30),
        );
        let on = comm(
            "superbonus",
            2021,
            Origin::Cessione,
            100_000,
            date(2022, 5, 1),
        );
        assert!(!derive(&before).unwrap().tracciabile);
        assert!(derive(&on).unwrap().tracciabile);
    }

    #[test]
    fn f8_codici_univoci_are_distinct_30_digits_sharing_the_protocol() {
        let c = comm(
            "superbonus",
            2021,
            Origin::Cessione,
            100_003,
            date(2022, 6, 1),
        );
        let p = protocol();
        let credit = derive_rate(&catalogue(), &c, &p, 7).unwrap();
        assert!(credit.tracciabile);
        let codes: Vec<&str> = credit
            .rate
            .iter()
            .map(|r| r.codice_univoco.as_str())
            .collect();
        assert_eq!(codes[0], "220601093005000420000007000001");
        assert_eq!(codes[4], "220601093005000420000007000005");
        for (i, code) in codes.iter().enumerate() {
            assert_eq!(code.len(), CodiceUnivoco::LEN);
            assert!(code.starts_with(p.as_str()));
            assert!(codes[..i].iter().all(|prev| prev != code));
        }
    }

    #[test]
    fn f8_superbonus_2022_expense_has_four_rate_from_2023() {
        let c = comm(
            "superbonus",
            2022,
            Origin::Sconto,
            400_001,
            date(2023, 2, 10),
        );
        let credit = derive(&c).unwrap();
        assert_eq!(years(&credit), [2023, 2024, 2025, 2026]);
        assert_eq!(amounts(&credit), [100_001, 100_000, 100_000, 100_000]);
        assert!(credit.rate.iter().all(|r| r.codice_tributo == "7718"));
    }

    #[test]
    fn f8_ecobonus_has_ten_rate() {
        let c = comm(
            "ecobonus",
            2021,
            Origin::Sconto,
            1_000_009,
            date(2022, 3, 16),
        );
        let credit = derive(&c).unwrap();
        assert_eq!(years(&credit), (2022..=2031).collect::<Vec<u16>>());
        assert_eq!(credit.rate[0].amount, Cents::new(100_009));
        assert!(
            credit.rate[1..]
                .iter()
                .all(|r| r.amount == Cents::new(100_000))
        );
        assert!(credit.rate.iter().all(|r| r.codice_tributo == "7712"));
    }

    #[test]
    fn f8_covid_credit_has_one_rata_in_its_own_year() {
        let c = comm(
            "canoni_locazione",
            2020,
            Origin::Cessione,
            360_000,
            date(2020, 9, 1),
        );
        let cat = catalogue();
        let granted =
            derive_rate_for_holder(&cat, &c, HolderRole::Beneficiario, &protocol(), 1).unwrap();
        assert_eq!(years(&granted), [2020]);
        assert_eq!(amounts(&granted), [360_000]);
        assert_eq!(granted.rate[0].codice_tributo, "6920");
        let ceded = derive_rate(&cat, &c, &protocol(), 1).unwrap();
        assert_eq!(ceded.rate[0].codice_tributo, "6931");
    }

    #[test]
    fn f8_rejects_unknown_type() {
        let e = derive(&comm(
            "bonus_mobili",
            2021,
            Origin::Cessione,
            100,
            date(2022, 1, 1),
        ))
        .unwrap_err();
        assert_eq!(e.code(), "credit_type_unknown");
        assert_eq!(e.to_string(), "tipo di credito sconosciuto: 'bonus_mobili'");
    }

    #[test]
    fn f8_rejects_barriere_communicated_before_2022_02_17() {
        let e = derive(&comm(
            "barriere_75",
            2022,
            Origin::Cessione,
            500,
            date(2022, 2, 16),
        ))
        .unwrap_err();
        assert_eq!(e.code(), "codice_tributo_missing");
        assert_eq!(
            e.to_string(),
            "nessun codice tributo per il tipo 'barriere_75' con comunicazione del 16/02/2022, origine cessione, titolare cessionario"
        );
    }

    #[test]
    fn f8_rejects_expense_year_without_rate_count() {
        let e = derive(&comm(
            "superbonus",
            2019,
            Origin::Cessione,
            500,
            date(2021, 1, 1),
        ))
        .unwrap_err();
        assert_eq!(e.code(), "rate_count_missing");
        assert_eq!(
            e.to_string(),
            "il tipo 'superbonus' non prevede rate per spese dell'anno 2019"
        );
    }

    #[test]
    fn f8_rejects_total_not_positive() {
        for total in [0, -1] {
            let e = derive(&comm(
                "superbonus",
                2021,
                Origin::Cessione,
                total,
                date(2022, 1, 1),
            ))
            .unwrap_err();
            assert_eq!(e.code(), "total_not_positive");
        }
        let e = derive(&comm(
            "superbonus",
            2021,
            Origin::Cessione,
            -123_456,
            date(2022, 1, 1),
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "l'importo totale deve essere positivo (indicato -1.234,56 €)"
        );
    }

    #[test]
    fn f8_rejects_total_below_the_number_of_rate() {
        let e = derive(&comm(
            "superbonus",
            2021,
            Origin::Cessione,
            4,
            date(2022, 1, 1),
        ))
        .unwrap_err();
        assert_eq!(e.code(), "total_below_rate_count");
        assert_eq!(
            e.to_string(),
            "l'importo totale 0,04 € è inferiore al numero di rate (5): ogni rata deve valere almeno 0,01 €"
        );
        let ok = derive(&comm(
            "superbonus",
            2021,
            Origin::Cessione,
            5,
            date(2022, 1, 1),
        ))
        .unwrap();
        assert_eq!(amounts(&ok), [1, 1, 1, 1, 1]);
    }

    #[test]
    fn f8_rejects_total_above_the_limit() {
        let too_much = Cents::MAX_AMOUNT.get() + 1;
        let e = derive(&comm(
            "superbonus",
            2021,
            Origin::Cessione,
            too_much,
            date(2022, 1, 1),
        ))
        .unwrap_err();
        assert_eq!(e.code(), "total_too_large");
        assert_eq!(
            e.to_string(),
            "l'importo totale 10.000.000.000.000,01 € supera il massimo ammesso di 10.000.000.000.000,00 €"
        );
        let e = derive(&comm(
            "superbonus",
            2021,
            Origin::Cessione,
            i64::MAX,
            date(2022, 1, 1),
        ))
        .unwrap_err();
        assert_eq!(e.code(), "total_too_large");
    }

    #[test]
    fn f8_rejects_out_of_range_credit_progressive() {
        let c = comm("superbonus", 2021, Origin::Cessione, 100, date(2022, 1, 1));
        let e = derive_rate(&catalogue(), &c, &protocol(), 0).unwrap_err();
        assert_eq!(e.code(), "identifier_progressive_out_of_range");
        let e = derive_rate(&catalogue(), &c, &protocol(), 10_000_000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "codice univoco: progressivo credito 10000000 fuori dall'intervallo 1–9999999"
        );
    }

    #[test]
    fn protocol_formats_rome_local_time_and_progressive() {
        let at = date(2023, 12, 31)
            .and_hms_milli_opt(23, 59, 58, 999)
            .unwrap();
        let p = Protocol::new(at, 99_999).unwrap();
        assert_eq!(p.as_str(), "23123123595899999");
        assert_eq!(p.to_string(), p.as_str());
        assert_eq!(
            p.registered_at(),
            date(2023, 12, 31).and_hms_opt(23, 59, 58).unwrap()
        );
        assert_eq!(p.progressive(), 99_999);
    }

    #[test]
    fn protocol_parse_round_trips_and_orders_by_time() {
        let p = Protocol::parse(" 22060109300500042 ").unwrap();
        assert_eq!(p, protocol());
        assert_eq!("22060109300500042".parse::<Protocol>().unwrap(), p);
        let later = Protocol::parse("22060109300600001").unwrap();
        assert!(p < later);
    }

    #[test]
    fn protocol_rejects_bad_input() {
        let table = [
            ("2206010930050004", "identifier_bad_length"),
            ("220601093005000421", "identifier_bad_length"),
            ("2206010930050004A", "identifier_not_digits"),
            ("22023009300500042", "identifier_bad_timestamp"),
            ("22060124300500042", "identifier_bad_timestamp"),
            ("22060109300500000", "identifier_progressive_out_of_range"),
        ];
        for (input, code) in table {
            assert_eq!(Protocol::parse(input).unwrap_err().code(), code, "{input}");
        }
        let at = date(2022, 6, 1).and_hms_opt(9, 0, 0).unwrap();
        assert_eq!(
            Protocol::new(at, 0).unwrap_err().code(),
            "identifier_progressive_out_of_range"
        );
        assert_eq!(
            Protocol::new(at, 100_000).unwrap_err().code(),
            "identifier_progressive_out_of_range"
        );
        let old = date(1999, 12, 31).and_hms_opt(9, 0, 0).unwrap();
        assert_eq!(
            Protocol::new(old, 1).unwrap_err().code(),
            "identifier_year_out_of_range"
        );
    }

    #[test]
    fn codice_univoco_round_trips_through_text_and_serde() {
        let code = CodiceUnivoco::new(&protocol(), 1_234_567, 999_999).unwrap();
        assert_eq!(code.as_str(), "220601093005000421234567999999");
        let parsed = CodiceUnivoco::parse(code.as_str()).unwrap();
        assert_eq!(parsed, code);
        assert_eq!(parsed.protocol(), &protocol());
        assert_eq!(parsed.credit_progressive(), 1_234_567);
        assert_eq!(parsed.rata_progressive(), 999_999);

        let de = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(code.as_str());
        assert_eq!(CodiceUnivoco::deserialize(de).unwrap(), code);
        let bad = serde::de::value::StrDeserializer::<serde::de::value::Error>::new("123");
        assert!(CodiceUnivoco::deserialize(bad).is_err());
        let value = toml::Value::try_from(&code).unwrap();
        assert_eq!(value.as_str(), Some(code.as_str()));
        let value = toml::Value::try_from(protocol()).unwrap();
        assert_eq!(value.as_str(), Some("22060109300500042"));
    }

    #[test]
    fn codice_univoco_rejects_bad_input() {
        let table = [
            ("22060109300500042000000700000", "identifier_bad_length"),
            ("22060109300500042000000700000x", "identifier_not_digits"),
            (
                "220601093005000420000000000001",
                "identifier_progressive_out_of_range",
            ),
            (
                "220601093005000420000001000000",
                "identifier_progressive_out_of_range",
            ),
            ("220631093005000420000001000001", "identifier_bad_timestamp"),
        ];
        for (input, code) in table {
            assert_eq!(
                CodiceUnivoco::parse(input).unwrap_err().code(),
                code,
                "{input}"
            );
        }
        assert!(CodiceUnivoco::new(&protocol(), 1, 1_000_000).is_err());
    }

    proptest! {
        #[test]
        fn r_opt_rate_sum_equals_total_for_every_type(
            type_index in any::<prop::sample::Index>(),
            total in 1i64..=Cents::MAX_AMOUNT.get(),
        ) {
            let cat = catalogue();
            let credit_type = &cat.types()[type_index.index(cat.types().len())];
            // A communication the type accepts: its first code row and first expense year.
            let row = &credit_type.codes[0];
            let c = OptionCommunication {
                type_key: credit_type.key.clone(),
                expense_year: credit_type.rate_counts[0].from_expense_year,
                origin: row.origin.unwrap_or(Origin::Cessione),
                total: Cents::new(total),
                communicated_on: row.from,
            };
            let holder = row.holder.unwrap_or(HolderRole::Cessionario);
            let count = credit_type.rate_count(c.expense_year).unwrap();
            prop_assume!(total >= i64::from(count));
            let credit = derive_rate_for_holder(&cat, &c, holder, &protocol(), 1).unwrap();
            prop_assert_eq!(credit.rate.len(), count as usize);
            prop_assert_eq!(credit.rate.iter().map(|r| r.amount.get()).sum::<i64>(), total);
            prop_assert!(credit.rate[1..].iter().all(|r| r.amount == credit.rate.last().unwrap().amount));
            prop_assert!(credit.rate.iter().all(|r| r.amount.is_positive()));
            let first = credit.rate[0].year.get();
            prop_assert_eq!(first, c.expense_year + credit_type.first_rata_year_offset);
            prop_assert!(credit.rate.windows(2).all(|w| w[1].year.get() == w[0].year.get() + 1));
            prop_assert!(credit.rate.iter().all(|r| r.codice_tributo == row.code));
        }
    }
}
