//! F5, the debit side of an F24: the taxes, contributions and premiums the form pays, beside
//! the credits of this register it offsets.
//!
//! - **R-F24-BALANCE**: the credits offset may not exceed the debits the form pays; an F24's
//!   final balance is never negative (F24 instructions: «il saldo finale non può essere
//!   negativo»).
//! - **R-BAN-BANK-INPS**: from the day `catalogue/rules.toml` gives (1/1/2025, DL 39/2024
//!   art. 4-bis as converted by L. 67/2024), banks, financial intermediaries and insurers may
//!   not offset building credits acquired by an art. 121 option against INPS contributions
//!   and INAIL premiums. So their F24 must name its debits, and the building credits may
//!   cover only the debits of the other sections.
//!
//! R-BAN-100K's exception is not here: it concerns credits *towards* INPS and INAIL (art. 17
//! c.2 lett. e, f, g D.Lgs. 241/1997; seed S3), which this register does not hold, not the
//! payment of INPS or INAIL debts (see `f24`).

use serde::{Deserialize, Serialize};

use crate::chain::PartyClass;
use crate::law::{LawTable, it_date};
use crate::money::Cents;
use chrono::NaiveDate;

/// A section of the F24 form that carries debits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum F24Section {
    /// Sezione Erario: taxes by codice tributo (e.g. 1001 ritenute, 4001 IRPEF, 6099 IVA).
    Erario,
    /// Sezione INPS: contributions by causale contributo (e.g. DM10, CXX).
    Inps,
    /// Sezione Regioni: IRAP and regional surcharges by codice tributo (e.g. 3800, 3801).
    Regioni,
    /// Sezione IMU e altri tributi locali, by codice tributo (e.g. 3918, 3847).
    ImuLocali,
    /// Sezione altri enti previdenziali e assicurativi, INAIL: premiums by causale (e.g. P).
    Inail,
}

impl F24Section {
    pub const ALL: [F24Section; 5] = [
        F24Section::Erario,
        F24Section::Inps,
        F24Section::Regioni,
        F24Section::ImuLocali,
        F24Section::Inail,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            F24Section::Erario => "erario",
            F24Section::Inps => "inps",
            F24Section::Regioni => "regioni",
            F24Section::ImuLocali => "imu_locali",
            F24Section::Inail => "inail",
        }
    }

    pub fn parse(s: &str) -> Option<F24Section> {
        F24Section::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }

    /// The section's name on the form.
    pub const fn label(self) -> &'static str {
        match self {
            F24Section::Erario => "Erario",
            F24Section::Inps => "INPS",
            F24Section::Regioni => "Regioni",
            F24Section::ImuLocali => "IMU e altri tributi locali",
            F24Section::Inail => "INAIL",
        }
    }

    /// Contributions and premiums, which R-BAN-BANK-INPS keeps apart.
    pub const fn is_inps_inail(self) -> bool {
        matches!(self, F24Section::Inps | F24Section::Inail)
    }

    /// Whether `code` has the shape this section's codes have on the form: four letters or
    /// digits for a codice tributo (Erario, Regioni, IMU), two to four for an INPS causale,
    /// one letter for an INAIL causale. The shape only: the tables of codes are the
    /// Agency's, INPS's and INAIL's, and change by resolution.
    fn code_shape_ok(self, code: &str) -> bool {
        let alnum = code
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
        let len = code.chars().count();
        alnum
            && match self {
                F24Section::Erario | F24Section::Regioni | F24Section::ImuLocali => len == 4,
                F24Section::Inps => (2..=4).contains(&len),
                F24Section::Inail => len == 1 && code.chars().all(|c| c.is_ascii_uppercase()),
            }
    }

    fn code_hint(self) -> &'static str {
        match self {
            F24Section::Erario | F24Section::Regioni | F24Section::ImuLocali => {
                "il codice tributo ha quattro caratteri, lettere maiuscole o cifre (es. 1001)"
            }
            F24Section::Inps => {
                "la causale contributo INPS ha da due a quattro caratteri, lettere maiuscole o cifre (es. DM10)"
            }
            F24Section::Inail => "la causale INAIL è una lettera maiuscola (es. P)",
        }
    }
}

/// One debit line of an F24: what it pays, in which section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DebitLine {
    pub section: F24Section,
    /// Codice tributo (Erario, Regioni, IMU) or causale (INPS, INAIL), as on the form.
    pub code: String,
    pub amount: Cents,
}

/// An F24 may not hold more debit lines than the form's sections together (Erario 6, INPS 4,
/// Regioni 4, IMU e tributi locali 4, INAIL 3, with room for the telematic form's extra rows).
pub const MAX_DEBIT_LINES: usize = 100;

/// A debit line that is not a debit line: malformed input, not a rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DebitLineError {
    #[error("sezione {0}: {1}")]
    Code(&'static str, &'static str),
    #[error("importo {0} non valido, indicare un importo maggiore di zero")]
    NotPositive(Cents),
    #[error("al massimo {MAX_DEBIT_LINES} righe a debito")]
    TooMany,
}

/// The shape of one debit line; the code as written on the form (trimmed, upper case).
pub fn parse_debit(
    section: F24Section,
    code: &str,
    amount: Cents,
) -> Result<DebitLine, DebitLineError> {
    let code = code.trim().to_ascii_uppercase();
    if !section.code_shape_ok(&code) {
        return Err(DebitLineError::Code(section.label(), section.code_hint()));
    }
    if !amount.is_positive() {
        return Err(DebitLineError::NotPositive(amount));
    }
    Ok(DebitLine {
        section,
        code,
        amount,
    })
}

/// Why F5 refused an F24 for its debit side; each names its rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DebitError {
    #[error(
        "I crediti compensati ({credits}) superano i debiti del modello ({debits}): il saldo finale di un F24 non può essere negativo; ridurre i crediti o indicare tutti i debiti (R-F24-BALANCE)"
    )]
    NegativeBalance { credits: Cents, debits: Cents },
    #[error(
        "Dal {} banche, intermediari finanziari e imprese di assicurazione devono indicare i debiti che l'F24 paga: i crediti dei bonus edilizi non si compensano con contributi INPS e premi INAIL (R-BAN-BANK-INPS)",
        it_date(*from)
    )]
    DebitsRequired { from: NaiveDate },
    #[error(
        "I crediti dei bonus edilizi ({credits}) superano i debiti diversi da contributi INPS e premi INAIL ({other_debits}): dal {} banche, intermediari finanziari e imprese di assicurazione non possono compensarli con contributi e premi; pagare questi ultimi con altri mezzi (R-BAN-BANK-INPS)",
        it_date(*from)
    )]
    BankInpsInail {
        credits: Cents,
        other_debits: Cents,
        from: NaiveDate,
    },
}

impl DebitError {
    pub fn rule(&self) -> &'static str {
        match self {
            DebitError::NegativeBalance { .. } => "R-F24-BALANCE",
            DebitError::DebitsRequired { .. } | DebitError::BankInpsInail { .. } => {
                "R-BAN-BANK-INPS"
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            DebitError::NegativeBalance { .. } => "f24_negative_balance",
            DebitError::DebitsRequired { .. } => "f24_debits_required",
            DebitError::BankInpsInail { .. } => "r_ban_bank_inps",
        }
    }
}

/// The credits of an F24, as the debit rules see them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreditsOffset {
    pub total: Cents,
    /// Of `total`, building credits acquired by an art. 121 option.
    pub building: Cents,
}

/// R-F24-BALANCE and R-BAN-BANK-INPS for an F24 of a party of `class` paid on `on`. An F24
/// that names no debits is checked only where the law needs them (R-BAN-BANK-INPS).
pub fn check_debits(
    credits: CreditsOffset,
    debits: &[DebitLine],
    class: PartyClass,
    on: NaiveDate,
    law: &LawTable,
) -> Result<(), DebitError> {
    let sum = |inps_inail: Option<bool>| {
        debits
            .iter()
            .filter(|d| inps_inail.is_none_or(|want| d.section.is_inps_inail() == want))
            .try_fold(Cents::ZERO, |acc, d| acc.checked_add(d.amount))
            .unwrap_or(Cents::MAX)
    };
    let ban = law
        .bank_inps_ban_on(on)
        .filter(|_| class.is_qualified() && credits.building.is_positive());
    if debits.is_empty() {
        return match ban {
            Some(rule) => Err(DebitError::DebitsRequired {
                from: rule.period.from,
            }),
            None => Ok(()),
        };
    }
    let all = sum(None);
    if credits.total > all {
        return Err(DebitError::NegativeBalance {
            credits: credits.total,
            debits: all,
        });
    }
    if let Some(rule) = ban {
        let other_debits = sum(Some(false));
        if credits.building > other_debits {
            return Err(DebitError::BankInpsInail {
                credits: credits.building,
                other_debits,
                from: rule.period.from,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::test_support::{d, law};

    fn debit(section: F24Section, code: &str, cents: i64) -> DebitLine {
        parse_debit(section, code, Cents::new(cents)).unwrap()
    }

    fn building(cents: i64) -> CreditsOffset {
        CreditsOffset {
            total: Cents::new(cents),
            building: Cents::new(cents),
        }
    }

    #[test]
    fn f5_debit_lines_have_the_shape_of_their_section() {
        assert_eq!(debit(F24Section::Erario, " 1001 ", 1).code, "1001");
        assert_eq!(debit(F24Section::Inps, "dm10", 1).code, "DM10");
        assert_eq!(debit(F24Section::Inail, "P", 1).code, "P");
        assert_eq!(debit(F24Section::ImuLocali, "3918", 1).code, "3918");
        for (section, code) in [
            (F24Section::Erario, "100"),
            (F24Section::Erario, "10011"),
            (F24Section::Inps, "D"),
            (F24Section::Inail, "1"),
            (F24Section::Regioni, "38 0"),
            (F24Section::Erario, "1-01"),
        ] {
            let e = parse_debit(section, code, Cents::new(1)).unwrap_err();
            assert!(matches!(e, DebitLineError::Code(..)), "{code}: {e}");
        }
        let e = parse_debit(F24Section::Erario, "1001", Cents::ZERO).unwrap_err();
        assert_eq!(e, DebitLineError::NotPositive(Cents::ZERO));
        assert_eq!(F24Section::parse("imu_locali"), Some(F24Section::ImuLocali));
        assert_eq!(F24Section::parse("tasse"), None);
    }

    #[test]
    fn r_f24_balance_credits_may_not_exceed_the_debits() {
        let law = law();
        let debits = [
            debit(F24Section::Erario, "1001", 60_000),
            debit(F24Section::Inps, "DM10", 40_000),
        ];
        let on = d(2024, 6, 17);
        // Exactly the debits: balance zero.
        check_debits(building(100_000), &debits, PartyClass::Company, on, &law).unwrap();
        let e =
            check_debits(building(100_001), &debits, PartyClass::Company, on, &law).unwrap_err();
        assert_eq!(
            (e.rule(), e.code()),
            ("R-F24-BALANCE", "f24_negative_balance")
        );
        // No debits named: nothing to compare with, outside R-BAN-BANK-INPS.
        check_debits(building(100_001), &[], PartyClass::Company, on, &law).unwrap();
    }

    #[test]
    fn r_ban_bank_inps_from_2025_banks_do_not_offset_building_credits_against_inps_inail() {
        let law = law();
        let debits = [
            debit(F24Section::Erario, "1001", 60_000),
            debit(F24Section::Inps, "DM10", 30_000),
            debit(F24Section::Inail, "P", 10_000),
        ];
        let (before, from) = (d(2024, 12, 31), d(2025, 1, 1));
        for class in [
            PartyClass::Bank,
            PartyClass::FinancialIntermediary,
            PartyClass::Insurer,
        ] {
            check_debits(building(100_000), &debits, class, before, &law).unwrap();
            check_debits(building(60_000), &debits, class, from, &law).unwrap();
            let e = check_debits(building(60_001), &debits, class, from, &law).unwrap_err();
            assert_eq!((e.rule(), e.code()), ("R-BAN-BANK-INPS", "r_ban_bank_inps"));
            assert!(e.to_string().contains("01/01/2025"), "{e}");
            let e = check_debits(building(1), &[], class, from, &law).unwrap_err();
            assert_eq!(e.code(), "f24_debits_required");
        }
        // Other parties keep offsetting against contributions and premiums.
        check_debits(building(100_000), &debits, PartyClass::Company, from, &law).unwrap();
        check_debits(building(1), &[], PartyClass::Person, from, &law).unwrap();
        // Credits other than building ones are not concerned.
        let rent = CreditsOffset {
            total: Cents::new(100_000),
            building: Cents::ZERO,
        };
        check_debits(rent, &debits, PartyClass::Bank, from, &law).unwrap();
        check_debits(rent, &[], PartyClass::Bank, from, &law).unwrap();
    }
}
