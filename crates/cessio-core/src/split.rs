//! F6 Ulteriore rateazione (art. 9 c.4 DL 176/2022; seed S4): the split of a rata's residual
//! into ten annual rate, and its annulment.
//!
//! - **R-SPLIT-ELIGIBLE**: [`check_eligible`], over the catalogue's `split_eligibility` rows
//!   (code, communication date, rata year).
//! - **R-SPLIT-CENTS**: [`split_ten`]: ten amounts summing exactly to the amount split, the
//!   remainder cents on the first.
//! - **R-SPLIT-NOCEDE**: [`is_split_code`], [`check_cedible`].
//! - **R-SPLIT-ANNUL**: [`check_annul`], a pure check over the states of the ten rate.
//!
//! The split codes are 7771 (Superbonus), 7772 (Sismabonus), 7773 (Barriere 75%), as data in
//! `catalogue/types.toml`. Seed S4 prints 7711 for Superbonus: that is the Superbonus *sconto*
//! code (Ris. 12/E/2022); SPEC F6 and Ris. 19/E/2023 give 7771, which is what the catalogue
//! holds (see the test `r_split_seed_004_misprint_7711_is_the_superbonus_sconto_code`).

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::catalogue::{Catalogue, CreditType};
use crate::law::{LawTable, it_date};
use crate::money::Cents;
use crate::time::RefYear;

/// How many rate a split produces.
pub const SPLIT_RATE: u32 = 10;

/// One of the ten rate of a split, as the recap shows it before confirming.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SplitRata {
    pub year: RefYear,
    pub amount: Cents,
    /// 31 December of `year`: each split rata is usable only in its year.
    pub last_day_of_use: NaiveDate,
    pub codice_tributo: String,
}

/// R-SPLIT-ELIGIBLE: may a rata of `credit_type` with codice tributo `code`, from an option
/// communication sent on `communicated_on`, of reference year `rata_year`, be split on `on`?
/// Only on the days the platform accepts splits (`[[split]]` of the law table). A rata of a
/// past year has expired and cannot be split, unless the law lets its residual be split
/// after its year (`[[split_expired_rata]]`: the 2022 Superbonus rata, in 2023); a split
/// rata cannot be split again.
pub fn check_eligible(
    credit_type: &CreditType,
    code: &str,
    communicated_on: NaiveDate,
    rata_year: RefYear,
    on: NaiveDate,
    law: &LawTable,
) -> Result<(), SplitError> {
    if law.split_on(on).is_none() {
        return Err(SplitError::NotAvailable {
            from: law.split_available_from(),
        });
    }
    if credit_type.split_code.as_deref() == Some(code) {
        return Err(SplitError::AlreadySplit {
            code: code.to_owned(),
        });
    }
    if !credit_type.split_eligible(code, communicated_on, rata_year) {
        return Err(SplitError::NotEligible {
            code: code.to_owned(),
            communicated_on,
            rata_year,
        });
    }
    if i32::from(rata_year.get()) < on.year()
        && law.split_of_expired_rata(rata_year.get(), on).is_none()
    {
        return Err(SplitError::Expired { rata_year });
    }
    Ok(())
}

/// R-SPLIT-CENTS: `amount` of a rata of `original_year` as ten annual rate, the first in the
/// following year, with the type's split code. The amounts sum exactly to `amount`; the
/// remainder cents go on the first rata. Amounts below ten cents give rate of zero after the
/// first: the ten rows are still returned, so that the recap always shows ten rate.
pub fn split_ten(
    amount: Cents,
    original_year: RefYear,
    credit_type: &CreditType,
) -> Result<Vec<SplitRata>, SplitError> {
    let Some(code) = credit_type.split_code.as_deref() else {
        return Err(SplitError::NoSplitCode {
            type_key: credit_type.key.clone(),
        });
    };
    if !amount.is_positive() {
        return Err(SplitError::NotPositive { amount });
    }
    let mut year = original_year;
    let mut rate = Vec::with_capacity(SPLIT_RATE as usize);
    for part in amount.split_even(SPLIT_RATE) {
        year = year.next();
        rate.push(SplitRata {
            year,
            amount: part,
            last_day_of_use: year.last_day(),
            codice_tributo: code.to_owned(),
        });
    }
    Ok(rate)
}

/// The rata a split is asked for: its code, its option communication's day and its year.
#[derive(Clone, Copy, Debug)]
pub struct RataToSplit<'a> {
    pub code: &'a str,
    pub communicated_on: NaiveDate,
    pub rata_year: RefYear,
}

/// F6 as a whole: eligibility, then `amount` up to the rata's `residual` (the whole or a part
/// of it), then the ten rate.
pub fn plan_split(
    credit_type: &CreditType,
    rata: RataToSplit<'_>,
    amount: Cents,
    residual: Cents,
    on: NaiveDate,
    law: &LawTable,
) -> Result<Vec<SplitRata>, SplitError> {
    let RataToSplit {
        code,
        communicated_on,
        rata_year,
    } = rata;
    check_eligible(credit_type, code, communicated_on, rata_year, on, law)?;
    if amount > residual {
        return Err(SplitError::OverResidual {
            requested: amount,
            residual,
        });
    }
    split_ten(amount, rata_year, credit_type)
}

/// R-SPLIT-NOCEDE: whether `code` is a split code of some type.
pub fn is_split_code(catalogue: &Catalogue, code: &str) -> bool {
    catalogue
        .types()
        .iter()
        .any(|t| t.split_code.as_deref() == Some(code))
}

/// R-SPLIT-NOCEDE: split rate can never be ceded, only used in F24 by the holder.
pub fn check_cedible(catalogue: &Catalogue, code: &str) -> Result<(), SplitError> {
    if is_split_code(catalogue, code) {
        return Err(SplitError::NoCede {
            code: code.to_owned(),
        });
    }
    Ok(())
}

/// The state of one split rata, as the ledger knows it, for R-SPLIT-ANNUL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitRataState {
    pub year: RefYear,
    /// Amount the split created.
    pub amount: Cents,
    /// Used in F24 (done).
    pub used: Cents,
    /// Reserved by an F24 in progress.
    pub reserved: Cents,
    /// Expired unused (its year has passed).
    pub expired: Cents,
}

/// The original rata an annulment restores: its code, year and deadline come back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Restored {
    pub codice_tributo: String,
    pub year: RefYear,
    pub amount: Cents,
    pub last_day_of_use: NaiveDate,
}

/// R-SPLIT-ANNUL: may the split of (`original_code`, `original_year`) be annulled on `on`?
/// Rejected whole if any part of any split rata was used, reserved or has expired (there
/// would not be enough split credit to absorb the reduction, Provv. 332687/2023). On success,
/// the original rata to restore, with the sum of the ten amounts.
pub fn check_annul(
    original_code: &str,
    original_year: RefYear,
    rate: &[SplitRataState],
    on: NaiveDate,
    law: &LawTable,
) -> Result<Restored, SplitError> {
    if law.split_annulment_on(on).is_none() {
        return Err(SplitError::AnnulNotAvailable { on });
    }
    for r in rate {
        for (taken, what) in [
            (r.used, "utilizzati in F24"),
            (r.reserved, "prenotati da un modello F24"),
            (r.expired, "scaduti"),
        ] {
            if taken.is_positive() {
                return Err(SplitError::AnnulRataTouched {
                    year: r.year,
                    amount: taken,
                    what,
                });
            }
        }
    }
    let amount = Cents::checked_sum(rate.iter().map(|r| r.amount)).unwrap_or(Cents::MAX);
    Ok(Restored {
        codice_tributo: original_code.to_owned(),
        year: original_year,
        amount,
        last_day_of_use: original_year.last_day(),
    })
}

/// Why F6 refused. Each variant names its rule ([`SplitError::rule`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error(
        "La ripartizione in dieci rate si comunica sulla piattaforma dal {} (Provv. 132123/2023): oggi non è disponibile (R-SPLIT-ELIGIBLE)",
        from.map_or_else(|| "-".to_string(), it_date)
    )]
    NotAvailable { from: Option<NaiveDate> },
    #[error(
        "La rata con codice tributo {code}, anno {rata_year}, da comunicazione del {} non può essere ripartita in dieci rate: ammesse Superbonus (6921, 7701, 7711) comunicate entro il 31/10/2022 dalla rata 2022, e Superbonus 7708/7718, Sismabonus e Barriere comunicate entro il 31/03/2023 dalla rata 2023 (R-SPLIT-ELIGIBLE)",
        it_date(*communicated_on)
    )]
    NotEligible {
        code: String,
        communicated_on: NaiveDate,
        rata_year: RefYear,
    },
    #[error(
        "La rata con codice tributo {code} deriva già da una ripartizione in dieci rate e non può essere ripartita di nuovo (R-SPLIT-ELIGIBLE)"
    )]
    AlreadySplit { code: String },
    #[error(
        "La rata dell'anno {rata_year} è scaduta il 31/12/{rata_year}: si possono ripartire solo rate dell'anno in corso o successive (R-SPLIT-ELIGIBLE)"
    )]
    Expired { rata_year: RefYear },
    #[error(
        "Il tipo di credito '{type_key}' non prevede la ripartizione in dieci rate (R-SPLIT-ELIGIBLE)"
    )]
    NoSplitCode { type_key: String },
    #[error(
        "Importo da ripartire {amount} non valido: indicare un importo maggiore di zero (R-SPLIT-CENTS)"
    )]
    NotPositive { amount: Cents },
    #[error(
        "Importo da ripartire {requested} superiore al residuo della rata ({residual}): indicare al massimo il residuo (R-SPLIT-ELIGIBLE)"
    )]
    OverResidual { requested: Cents, residual: Cents },
    #[error(
        "Le rate con codice tributo {code} derivano dalla ripartizione in dieci rate e non possono essere cedute: si utilizzano solo in F24 (R-SPLIT-NOCEDE)"
    )]
    NoCede { code: String },
    #[error("L'annullamento della ripartizione non era previsto il {} (R-SPLIT-ANNUL)", it_date(*on))]
    AnnulNotAvailable { on: NaiveDate },
    #[error(
        "Annullamento respinto per intero: della rata {year} risultano {amount} {what}; si può annullare solo una ripartizione le cui rate sono del tutto inutilizzate (R-SPLIT-ANNUL)"
    )]
    AnnulRataTouched {
        year: RefYear,
        amount: Cents,
        what: &'static str,
    },
}

impl SplitError {
    pub fn rule(&self) -> &'static str {
        match self {
            SplitError::NotAvailable { .. }
            | SplitError::NotEligible { .. }
            | SplitError::AlreadySplit { .. }
            | SplitError::Expired { .. }
            | SplitError::NoSplitCode { .. }
            | SplitError::OverResidual { .. } => "R-SPLIT-ELIGIBLE",
            SplitError::NotPositive { .. } => "R-SPLIT-CENTS",
            SplitError::NoCede { .. } => "R-SPLIT-NOCEDE",
            SplitError::AnnulNotAvailable { .. } | SplitError::AnnulRataTouched { .. } => {
                "R-SPLIT-ANNUL"
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SplitError::NotAvailable { .. } => "r_split_not_available",
            SplitError::NotEligible { .. } => "r_split_not_eligible",
            SplitError::AlreadySplit { .. } => "r_split_already_split",
            SplitError::Expired { .. } => "r_split_expired",
            SplitError::NoSplitCode { .. } => "r_split_no_split_code",
            SplitError::NotPositive { .. } => "r_split_not_positive",
            SplitError::OverResidual { .. } => "r_split_over_residual",
            SplitError::NoCede { .. } => "r_split_nocede",
            SplitError::AnnulNotAvailable { .. } => "r_split_annul_not_available",
            SplitError::AnnulRataTouched { .. } => "r_split_annul_rata_touched",
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::catalogue::{HolderRole, Origin};
    use crate::test_support::{d, law};

    fn cat() -> Catalogue {
        Catalogue::builtin().unwrap()
    }

    fn ty<'a>(cat: &'a Catalogue, key: &str) -> &'a CreditType {
        cat.get(key).unwrap()
    }

    fn amounts(rate: &[SplitRata]) -> Vec<i64> {
        rate.iter().map(|r| r.amount.get()).collect()
    }

    fn sum(rate: &[SplitRata]) -> Cents {
        Cents::checked_sum(rate.iter().map(|r| r.amount)).unwrap()
    }

    #[test]
    fn r_split_cents_ten_rate_from_the_year_after_with_split_code_and_deadline() {
        let cat = cat();
        let rate = split_ten(
            Cents::new(1_000_000),
            RefYear::new(2023),
            ty(&cat, "superbonus"),
        )
        .unwrap();
        assert_eq!(rate.len(), 10);
        let years: Vec<u16> = rate.iter().map(|r| r.year.get()).collect();
        assert_eq!(years, (2024..=2033).collect::<Vec<u16>>());
        assert!(rate.iter().all(|r| r.codice_tributo == "7771"));
        assert!(rate.iter().all(|r| r.amount == Cents::new(100_000)));
        assert_eq!(rate[0].last_day_of_use, d(2024, 12, 31));
        assert_eq!(rate[9].last_day_of_use, d(2033, 12, 31));
    }

    #[test]
    fn r_split_cents_one_cent_goes_on_the_first_rata() {
        let cat = cat();
        let rate = split_ten(Cents::new(1), RefYear::new(2024), ty(&cat, "sismabonus")).unwrap();
        assert_eq!(amounts(&rate), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(sum(&rate), Cents::new(1));
        assert!(rate.iter().all(|r| r.codice_tributo == "7772"));
    }

    #[test]
    fn r_split_cents_ten_cents_one_each() {
        let cat = cat();
        let rate = split_ten(Cents::new(10), RefYear::new(2024), ty(&cat, "barriere_75")).unwrap();
        assert_eq!(amounts(&rate), [1; 10]);
        assert!(rate.iter().all(|r| r.codice_tributo == "7773"));
    }

    #[test]
    fn r_split_cents_odd_cents_remainder_on_the_first() {
        let cat = cat();
        let sb = ty(&cat, "superbonus");
        let rate = split_ten(Cents::new(100_003), RefYear::new(2024), sb).unwrap();
        assert_eq!(rate[0].amount, Cents::new(10_003));
        assert!(rate[1..].iter().all(|r| r.amount == Cents::new(10_000)));
        let rate = split_ten(Cents::new(19), RefYear::new(2024), sb).unwrap();
        assert_eq!(amounts(&rate), [10, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn r_split_cents_large_amount_sums_exactly() {
        let cat = cat();
        let amount = Cents::new(123_456_789_012_349);
        let rate = split_ten(amount, RefYear::new(2024), ty(&cat, "superbonus")).unwrap();
        assert_eq!(sum(&rate), amount);
        assert_eq!(rate[0].amount, Cents::new(12_345_678_901_243));
        assert_eq!(rate[1].amount, Cents::new(12_345_678_901_234));
        let max = split_ten(
            Cents::MAX_AMOUNT,
            RefYear::new(2024),
            ty(&cat, "superbonus"),
        )
        .unwrap();
        assert_eq!(sum(&max), Cents::MAX_AMOUNT);
    }

    #[test]
    fn r_split_cents_refuses_zero_and_negative() {
        let cat = cat();
        let sb = ty(&cat, "superbonus");
        for cents in [0, -1] {
            let e = split_ten(Cents::new(cents), RefYear::new(2024), sb).unwrap_err();
            assert_eq!(e.rule(), "R-SPLIT-CENTS");
        }
    }

    #[test]
    fn r_split_eligible_superbonus_until_2022_10_31_from_the_2022_rata() {
        let (cat, law) = (cat(), law());
        let sb = ty(&cat, "superbonus");
        for code in ["6921", "7701", "7711"] {
            // The 2022 rata expired on 31/12/2022, yet its residual may be split in 2023.
            assert!(
                check_eligible(
                    sb,
                    code,
                    d(2022, 10, 31),
                    RefYear::new(2022),
                    d(2023, 5, 2),
                    &law
                )
                .is_ok()
            );
            assert!(
                check_eligible(
                    sb,
                    code,
                    d(2022, 10, 31),
                    RefYear::new(2021),
                    d(2023, 5, 2),
                    &law
                )
                .is_err()
            );
        }
        assert!(
            check_eligible(
                sb,
                "7708",
                d(2023, 3, 31),
                RefYear::new(2023),
                d(2023, 5, 2),
                &law
            )
            .is_ok()
        );
        let e = check_eligible(
            sb,
            "7708",
            d(2023, 3, 31),
            RefYear::new(2022),
            d(2023, 5, 2),
            &law,
        )
        .unwrap_err();
        assert_eq!(
            (e.rule(), e.code()),
            ("R-SPLIT-ELIGIBLE", "r_split_not_eligible")
        );
        assert!(e.to_string().contains("31/03/2023"), "{e}");
    }

    #[test]
    fn r_split_eligible_only_from_2_may_2023() {
        // The function opened on the platform on 2/5/2023 (Provv. 132123/2023): a request
        // before then is refused naming the day, even for an eligible rata.
        let (cat, law) = (cat(), law());
        let sb = ty(&cat, "superbonus");
        let e = check_eligible(
            sb,
            "7701",
            d(2022, 3, 1),
            RefYear::new(2023),
            d(2023, 5, 1),
            &law,
        )
        .unwrap_err();
        assert_eq!(
            (e.rule(), e.code()),
            ("R-SPLIT-ELIGIBLE", "r_split_not_available")
        );
        assert!(e.to_string().contains("02/05/2023"), "{e}");
        let e = check_eligible(
            sb,
            "7701",
            d(2022, 3, 1),
            RefYear::new(2022),
            d(2022, 12, 1),
            &law,
        )
        .unwrap_err();
        assert_eq!(e.code(), "r_split_not_available");
        assert!(
            check_eligible(
                sb,
                "7701",
                d(2022, 3, 1),
                RefYear::new(2023),
                d(2023, 5, 2),
                &law
            )
            .is_ok()
        );
    }

    #[test]
    fn r_split_eligible_2022_residual_until_31_december_2023() {
        let (cat, law) = (cat(), law());
        let sb = ty(&cat, "superbonus");
        assert!(
            check_eligible(
                sb,
                "7701",
                d(2022, 3, 1),
                RefYear::new(2022),
                d(2023, 12, 31),
                &law
            )
            .is_ok()
        );
        let e = check_eligible(
            sb,
            "7701",
            d(2022, 3, 1),
            RefYear::new(2022),
            d(2024, 1, 1),
            &law,
        )
        .unwrap_err();
        assert_eq!(e.code(), "r_split_expired");
        assert!(law.expired_rata_still_splittable(2022, d(2023, 1, 1)));
        assert!(law.expired_rata_still_splittable(2022, d(2023, 12, 31)));
        assert!(!law.expired_rata_still_splittable(2022, d(2024, 1, 1)));
        assert!(!law.expired_rata_still_splittable(2023, d(2024, 1, 1)));
    }

    #[test]
    fn r_split_eligible_not_from_communications_of_2023_04_01() {
        let cat = cat();
        for (key, code) in [
            ("superbonus", "7709"),
            ("sismabonus", "7738"),
            ("barriere_75", "7740"),
        ] {
            let e = check_eligible(
                ty(&cat, key),
                code,
                d(2023, 4, 1),
                RefYear::new(2024),
                d(2024, 1, 2),
                &law(),
            )
            .unwrap_err();
            assert_eq!(e.code(), "r_split_not_eligible", "{key}");
        }
        let eco = ty(&cat, "ecobonus");
        let e = check_eligible(
            eco,
            "7702",
            d(2022, 3, 1),
            RefYear::new(2024),
            d(2024, 1, 2),
            &law(),
        )
        .unwrap_err();
        assert_eq!(e.code(), "r_split_not_eligible");
        assert_eq!(
            split_ten(Cents::new(10), RefYear::new(2024), eco)
                .unwrap_err()
                .code(),
            "r_split_no_split_code"
        );
    }

    #[test]
    fn r_split_eligible_refuses_past_years_and_split_rate() {
        let cat = cat();
        let sb = ty(&cat, "superbonus");
        let e = check_eligible(
            sb,
            "7701",
            d(2022, 3, 1),
            RefYear::new(2023),
            d(2024, 1, 2),
            &law(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            SplitError::Expired {
                rata_year: RefYear::new(2023)
            }
        );
        let e = check_eligible(
            sb,
            "7771",
            d(2022, 3, 1),
            RefYear::new(2025),
            d(2024, 1, 2),
            &law(),
        )
        .unwrap_err();
        assert_eq!(e.code(), "r_split_already_split");
    }

    #[test]
    fn r_split_eligible_amount_up_to_the_residual() {
        let cat = cat();
        let sb = ty(&cat, "superbonus");
        let plan = |amount| {
            plan_split(
                sb,
                RataToSplit {
                    code: "7701",
                    communicated_on: d(2022, 3, 1),
                    rata_year: RefYear::new(2024),
                },
                Cents::new(amount),
                Cents::new(5_000),
                d(2024, 3, 1),
                &law(),
            )
        };
        assert_eq!(sum(&plan(5_000).unwrap()), Cents::new(5_000));
        assert_eq!(sum(&plan(1_234).unwrap()), Cents::new(1_234));
        let e = plan(5_001).unwrap_err();
        assert_eq!(
            e,
            SplitError::OverResidual {
                requested: Cents::new(5_001),
                residual: Cents::new(5_000)
            }
        );
    }

    #[test]
    fn r_split_nocede_split_codes_are_never_cedible() {
        let cat = cat();
        for code in ["7771", "7772", "7773"] {
            assert!(is_split_code(&cat, code));
            let e = check_cedible(&cat, code).unwrap_err();
            assert_eq!(e.rule(), "R-SPLIT-NOCEDE");
        }
        assert!(check_cedible(&cat, "7701").is_ok());
        assert!(check_cedible(&cat, "7711").is_ok());
    }

    #[test]
    fn r_split_seed_004_misprint_7711_is_the_superbonus_sconto_code() {
        // Seed S4 says the Superbonus ten-rate code is 7711. It is not: 7711 is the Superbonus
        // code for credits from a sconto communicated 17/02/2022–31/10/2022 (Ris. 12/E/2022),
        // and the split code is 7771 (Ris. 19/E/2023; SPEC F6).
        let cat = cat();
        let sb = ty(&cat, "superbonus");
        assert_eq!(sb.split_code.as_deref(), Some("7771"));
        assert!(!is_split_code(&cat, "7711"));
        assert_eq!(
            sb.code_for(d(2022, 6, 1), Origin::Sconto, HolderRole::Cessionario),
            Some("7711")
        );
        let rate = split_ten(Cents::new(100), RefYear::new(2023), sb).unwrap();
        assert!(rate.iter().all(|r| r.codice_tributo == "7771"));
    }

    fn states(rate: &[SplitRata]) -> Vec<SplitRataState> {
        rate.iter()
            .map(|r| SplitRataState {
                year: r.year,
                amount: r.amount,
                used: Cents::ZERO,
                reserved: Cents::ZERO,
                expired: Cents::ZERO,
            })
            .collect()
    }

    #[test]
    fn r_split_annul_restores_the_original_rata_when_untouched() {
        let cat = cat();
        let rate = split_ten(
            Cents::new(100_003),
            RefYear::new(2024),
            ty(&cat, "superbonus"),
        )
        .unwrap();
        let law = LawTable::builtin().unwrap();
        let restored = check_annul(
            "7701",
            RefYear::new(2024),
            &states(&rate),
            d(2024, 6, 1),
            &law,
        )
        .unwrap();
        assert_eq!(
            restored,
            Restored {
                codice_tributo: "7701".into(),
                year: RefYear::new(2024),
                amount: Cents::new(100_003),
                last_day_of_use: d(2024, 12, 31),
            }
        );
    }

    #[test]
    fn r_split_annul_rejected_whole_if_any_rata_used_reserved_or_expired() {
        let cat = cat();
        let law = LawTable::builtin().unwrap();
        let rate = split_ten(
            Cents::new(100_000),
            RefYear::new(2023),
            ty(&cat, "superbonus"),
        )
        .unwrap();
        for field in 0..3 {
            let mut s = states(&rate);
            let touched = &mut s[9];
            match field {
                0 => touched.used = Cents::new(1),
                1 => touched.reserved = Cents::new(1),
                _ => touched.expired = Cents::new(1),
            }
            let e = check_annul("7701", RefYear::new(2023), &s, d(2024, 6, 1), &law).unwrap_err();
            assert_eq!(e.rule(), "R-SPLIT-ANNUL");
            assert!(e.to_string().contains("rata 2033"), "{e}");
            assert!(e.to_string().contains("0,01 €"), "{e}");
        }
        let e = check_annul(
            "7701",
            RefYear::new(2023),
            &states(&rate),
            d(2023, 9, 21),
            &law,
        )
        .unwrap_err();
        assert_eq!(e.code(), "r_split_annul_not_available");
    }
}
