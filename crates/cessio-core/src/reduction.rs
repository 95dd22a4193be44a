//! F7 Riduzione del credito (art. 25 DL 104/2023): the holder declares that an amount of a
//! rata has become unusable for a reason other than expiry. Accepted only whole: the date of
//! knowledge is not in the future and at most the law's number of days ago (30), and the
//! rata's residual covers the amount; then the amount leaves the holder's availability.
//!
//! SPEC gives F7 no rule id; refusals carry the id "F7".

use chrono::NaiveDate;

use crate::law::{LawTable, it_date};
use crate::money::Cents;

/// F7: may `amount` of a rata with `residual` available be declared unusable on `today`,
/// the holder having learned of the cause on `knowledge_on`? Whole or nothing: a refusal
/// reduces nothing.
pub fn check_reduction(
    amount: Cents,
    residual: Cents,
    knowledge_on: NaiveDate,
    today: NaiveDate,
    law: &LawTable,
) -> Result<(), ReductionError> {
    let Some(rule) = law.reduction_on(today) else {
        return Err(ReductionError::NotAvailable { on: today });
    };
    if knowledge_on > today {
        return Err(ReductionError::KnowledgeInFuture {
            knowledge_on,
            today,
        });
    }
    let days = (today - knowledge_on).num_days();
    if days > i64::from(rule.max_days_since_knowledge) {
        let deadline = knowledge_on
            .checked_add_days(chrono::Days::new(u64::from(rule.max_days_since_knowledge)))
            .unwrap_or(NaiveDate::MAX);
        return Err(ReductionError::TooLate {
            knowledge_on,
            deadline,
            max_days: rule.max_days_since_knowledge,
        });
    }
    if !amount.is_positive() {
        return Err(ReductionError::NotPositive { amount });
    }
    if amount > residual {
        return Err(ReductionError::OverResidual {
            requested: amount,
            residual,
        });
    }
    Ok(())
}

/// Why F7 refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReductionError {
    #[error(
        "La comunicazione di riduzione del credito non era prevista il {} (attiva dal 01/12/2023) (F7)",
        it_date(*on)
    )]
    NotAvailable { on: NaiveDate },
    #[error(
        "La data di conoscenza {} è successiva a oggi ({}): indicare la data in cui si è saputo che il credito non è utilizzabile (F7)",
        it_date(*knowledge_on), it_date(*today)
    )]
    KnowledgeInFuture {
        knowledge_on: NaiveDate,
        today: NaiveDate,
    },
    #[error(
        "La riduzione andava comunicata entro {max_days} giorni dalla conoscenza ({}), cioè entro il {} (F7)",
        it_date(*knowledge_on), it_date(*deadline)
    )]
    TooLate {
        knowledge_on: NaiveDate,
        deadline: NaiveDate,
        max_days: u32,
    },
    #[error("Importo da ridurre {amount} non valido: indicare un importo maggiore di zero (F7)")]
    NotPositive { amount: Cents },
    #[error(
        "Importo da ridurre {requested} superiore al residuo disponibile della rata ({residual}): indicare al massimo il residuo (F7)"
    )]
    OverResidual { requested: Cents, residual: Cents },
}

impl ReductionError {
    pub fn rule(&self) -> &'static str {
        "F7"
    }

    pub fn code(&self) -> &'static str {
        match self {
            ReductionError::NotAvailable { .. } => "f7_not_available",
            ReductionError::KnowledgeInFuture { .. } => "f7_knowledge_in_future",
            ReductionError::TooLate { .. } => "f7_too_late",
            ReductionError::NotPositive { .. } => "f7_not_positive",
            ReductionError::OverResidual { .. } => "f7_over_residual",
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::test_support::d;

    fn check(
        amount: i64,
        residual: i64,
        knowledge: NaiveDate,
        today: NaiveDate,
    ) -> Result<(), ReductionError> {
        check_reduction(
            Cents::new(amount),
            Cents::new(residual),
            knowledge,
            today,
            &LawTable::builtin().unwrap(),
        )
    }

    #[test]
    fn f7_reduction_accepted_up_to_30_days_after_knowledge() {
        assert!(check(100, 100, d(2024, 3, 1), d(2024, 3, 1)).is_ok());
        assert!(check(100, 100, d(2024, 3, 1), d(2024, 3, 31)).is_ok());
    }

    #[test]
    fn f7_reduction_refused_on_day_31() {
        let e = check(100, 100, d(2024, 3, 1), d(2024, 4, 1)).unwrap_err();
        assert_eq!(
            e,
            ReductionError::TooLate {
                knowledge_on: d(2024, 3, 1),
                deadline: d(2024, 3, 31),
                max_days: 30
            }
        );
        assert!(e.to_string().contains("entro il 31/03/2024"), "{e}");
    }

    #[test]
    fn f7_reduction_knowledge_date_not_in_the_future() {
        let e = check(100, 100, d(2024, 3, 2), d(2024, 3, 1)).unwrap_err();
        assert_eq!(e.code(), "f7_knowledge_in_future");
    }

    #[test]
    fn f7_reduction_whole_or_nothing_within_the_residual() {
        assert!(check(100, 100, d(2024, 3, 1), d(2024, 3, 2)).is_ok());
        let e = check(101, 100, d(2024, 3, 1), d(2024, 3, 2)).unwrap_err();
        assert_eq!(
            e,
            ReductionError::OverResidual {
                requested: Cents::new(101),
                residual: Cents::new(100)
            }
        );
        assert_eq!(
            check(0, 100, d(2024, 3, 1), d(2024, 3, 2))
                .unwrap_err()
                .code(),
            "f7_not_positive"
        );
    }

    #[test]
    fn f7_reduction_not_before_2023_12_01() {
        let e = check(1, 1, d(2023, 11, 20), d(2023, 11, 30)).unwrap_err();
        assert_eq!(e.code(), "f7_not_available");
        assert!(check(1, 1, d(2023, 11, 20), d(2023, 12, 1)).is_ok());
    }
}
