//! F9 Agency functions on time: the art. 122-bis suspension (R-SUSP) and seizures (R-SEIZE).
//!
//! - **R-SUSP**: a communication may be suspended (by the operator or an automatic risk rule,
//!   see `risk`) within 5 working days of its registration — counted with `calendar`, the day
//!   of registration excluded — for at most 30 days. The suspension covers the days
//!   `from..=until`; by `until` the operator releases it (it takes effect) or voids it
//!   ("non effettuata": amounts return as if it never happened). With no decision by then it
//!   takes effect: from the day after `until` [`outcome_on`] answers
//!   [`SuspensionEnd::Released`] and a late void is refused.
//! - **R-SEIZE**: a seizure blocks the rata for the holder while open; when it ends, the
//!   usage deadline moves later by its length, counted in days from the seizure day to the
//!   release day (a seizure from 1 to 31 March, released on 31 March, adds 30 days).

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::calendar::add_working_days;
use crate::law::{LawTable, it_date};

/// A suspension decided on `from`, lasting through `until` (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    pub from: NaiveDate,
    pub until: NaiveDate,
}

/// The code of R-SUSP's refusal of an answer while the communication is suspended.
pub const ANSWER_REFUSED: &str = "r_susp_suspended";

/// R-SUSP's refusal of an answer while the communication is suspended until `until`: the
/// one text the page, the API and the writer give.
pub fn answer_refused(until: NaiveDate) -> String {
    format!(
        "La comunicazione è sospesa per controlli (art. 122-bis DL 34/2020) fino al {}: potrà essere accettata o rifiutata solo dopo l'esito (R-SUSP)",
        it_date(until)
    )
}

/// How a suspension ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuspensionEnd {
    /// The communication takes effect.
    Released,
    /// "Non effettuata": the amounts return as if it never happened.
    Voided,
}

/// R-SUSP: the last day on which a communication registered on `registered_on` may be
/// suspended (5 working days after it).
pub fn suspension_deadline(
    registered_on: NaiveDate,
    law: &LawTable,
) -> Result<NaiveDate, SuspError> {
    let rule = law
        .suspension_on(registered_on)
        .ok_or(SuspError::NotInForce { registered_on })?;
    Ok(add_working_days(registered_on, rule.within_working_days))
}

/// R-SUSP: suspend on `today`, for `days` days, a communication registered on `registered_on`.
pub fn suspend(
    registered_on: NaiveDate,
    today: NaiveDate,
    days: u32,
    law: &LawTable,
) -> Result<Suspension, SuspError> {
    let rule = law
        .suspension_on(registered_on)
        .ok_or(SuspError::NotInForce { registered_on })?;
    if today < registered_on {
        return Err(SuspError::BeforeRegistration {
            registered_on,
            today,
        });
    }
    let deadline = add_working_days(registered_on, rule.within_working_days);
    if today > deadline {
        return Err(SuspError::TooLate {
            registered_on,
            deadline,
        });
    }
    if days == 0 || days > rule.max_days {
        return Err(SuspError::BadLength {
            days,
            max_days: rule.max_days,
        });
    }
    // The first day counts: 30 days from 1 March run through 30 March.
    let until = today
        .checked_add_days(Days::new(u64::from(days - 1)))
        .unwrap_or(NaiveDate::MAX);
    Ok(Suspension { from: today, until })
}

/// R-SUSP: the operator ends a suspension on `today` with `end`. A void after the last day of
/// the suspension is refused: the communication has already taken effect.
pub fn end_suspension(
    suspension: &Suspension,
    end: SuspensionEnd,
    today: NaiveDate,
) -> Result<SuspensionEnd, SuspError> {
    if today > suspension.until && end == SuspensionEnd::Voided {
        return Err(SuspError::Lapsed {
            until: suspension.until,
        });
    }
    Ok(end)
}

/// R-SUSP: the outcome without a decision: `None` while suspended, `Released` from the day
/// after the last day.
pub fn outcome_on(suspension: &Suspension, today: NaiveDate) -> Option<SuspensionEnd> {
    (today > suspension.until).then_some(SuspensionEnd::Released)
}

/// Whether the communication is suspended on `today` (nothing in it can be answered, used
/// or ceded).
pub fn is_suspended(suspension: &Suspension, today: NaiveDate) -> bool {
    (suspension.from..=suspension.until).contains(&today)
}

/// A seizure of a holding: open while `released_on` is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seizure {
    pub seized_on: NaiveDate,
    pub released_on: Option<NaiveDate>,
}

impl Seizure {
    /// Length in days of an ended seizure; `None` while open.
    pub fn days(&self) -> Option<u32> {
        self.released_on
            .map(|end| u32::try_from((end - self.seized_on).num_days().max(0)).unwrap_or(u32::MAX))
    }
}

/// R-SEIZE: the days by which ended seizures extend the usage deadline (sum of their lengths).
pub fn seizure_days(seizures: &[Seizure]) -> u32 {
    seizures
        .iter()
        .filter_map(Seizure::days)
        .fold(0u32, u32::saturating_add)
}

/// R-SEIZE: the usage deadline `last_day` extended by the ended seizures.
pub fn extended_deadline(last_day: NaiveDate, seizures: &[Seizure]) -> NaiveDate {
    last_day
        .checked_add_days(Days::new(u64::from(seizure_days(seizures))))
        .unwrap_or(NaiveDate::MAX)
}

/// R-SEIZE: an open seizure blocks the holding on `on`.
pub fn check_not_seized(seizures: &[Seizure], on: NaiveDate) -> Result<(), SuspError> {
    match seizures
        .iter()
        .find(|s| s.released_on.is_none() && s.seized_on <= on)
    {
        Some(s) => Err(SuspError::Seized {
            seized_on: s.seized_on,
        }),
        None => Ok(()),
    }
}

/// Why R-SUSP or R-SEIZE refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SuspError {
    #[error(
        "La sospensione (art. 122-bis DL 34/2020) non si applica alle comunicazioni registrate il {} (R-SUSP)",
        it_date(*registered_on)
    )]
    NotInForce { registered_on: NaiveDate },
    #[error(
        "La comunicazione è registrata il {}: non può essere sospesa il {} (R-SUSP)",
        it_date(*registered_on), it_date(*today)
    )]
    BeforeRegistration {
        registered_on: NaiveDate,
        today: NaiveDate,
    },
    #[error(
        "La comunicazione registrata il {} poteva essere sospesa fino al {} (5 giorni lavorativi dalla registrazione) (R-SUSP)",
        it_date(*registered_on), it_date(*deadline)
    )]
    TooLate {
        registered_on: NaiveDate,
        deadline: NaiveDate,
    },
    #[error(
        "Durata della sospensione {days} giorni non ammessa: da 1 a {max_days} giorni (R-SUSP)"
    )]
    BadLength { days: u32, max_days: u32 },
    #[error(
        "La sospensione è terminata il {}: la comunicazione ha già avuto effetto e non può più essere annullata (R-SUSP)",
        it_date(*until)
    )]
    Lapsed { until: NaiveDate },
    #[error(
        "Credito sotto sequestro dal {}: non è utilizzabile né cedibile fino al dissequestro (R-SEIZE)",
        it_date(*seized_on)
    )]
    Seized { seized_on: NaiveDate },
}

impl SuspError {
    pub fn rule(&self) -> &'static str {
        match self {
            SuspError::Seized { .. } => "R-SEIZE",
            _ => "R-SUSP",
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            SuspError::NotInForce { .. } => "r_susp_not_in_force",
            SuspError::BeforeRegistration { .. } => "r_susp_before_registration",
            SuspError::TooLate { .. } => "r_susp_too_late",
            SuspError::BadLength { .. } => "r_susp_bad_length",
            SuspError::Lapsed { .. } => "r_susp_lapsed",
            SuspError::Seized { .. } => "r_seize",
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::test_support::{d, law};

    #[test]
    fn r_susp_within_5_working_days_across_easter_monday_and_25_april() {
        // 2025: Thursday 17 April; Fri 18 (1), Easter Monday 21 off, Tue 22 (2), Wed 23 (3),
        // Thu 24 (4), Fri 25 April off, Mon 28 (5).
        let law = law();
        assert_eq!(
            suspension_deadline(d(2025, 4, 17), &law).unwrap(),
            d(2025, 4, 28)
        );
        assert!(suspend(d(2025, 4, 17), d(2025, 4, 28), 30, &law).is_ok());
        let e = suspend(d(2025, 4, 17), d(2025, 4, 29), 30, &law).unwrap_err();
        assert_eq!(
            e,
            SuspError::TooLate {
                registered_on: d(2025, 4, 17),
                deadline: d(2025, 4, 28)
            }
        );
        assert!(e.to_string().contains("fino al 28/04/2025"), "{e}");
    }

    #[test]
    fn r_susp_within_5_working_days_across_25_april_and_1_may() {
        // 2024: Wed 24 April; Thu 25 off, Fri 26 (1), Mon 29 (2), Tue 30 (3), Wed 1 May off,
        // Thu 2 (4), Fri 3 (5).
        assert_eq!(
            suspension_deadline(d(2024, 4, 24), &law()).unwrap(),
            d(2024, 5, 3)
        );
    }

    #[test]
    fn r_susp_on_the_day_of_registration_is_allowed() {
        let s = suspend(d(2024, 3, 1), d(2024, 3, 1), 1, &law()).unwrap();
        assert_eq!(
            s,
            Suspension {
                from: d(2024, 3, 1),
                until: d(2024, 3, 1)
            }
        );
        assert_eq!(
            suspend(d(2024, 3, 1), d(2024, 2, 29), 1, &law())
                .unwrap_err()
                .code(),
            "r_susp_before_registration"
        );
    }

    #[test]
    fn r_susp_at_most_30_days() {
        let law = law();
        let s = suspend(d(2024, 3, 1), d(2024, 3, 4), 30, &law).unwrap();
        assert_eq!(s.until, d(2024, 4, 2));
        assert!(is_suspended(&s, d(2024, 4, 2)));
        assert!(!is_suspended(&s, d(2024, 4, 3)));
        for days in [0, 31] {
            assert_eq!(
                suspend(d(2024, 3, 1), d(2024, 3, 4), days, &law).unwrap_err(),
                SuspError::BadLength { days, max_days: 30 }
            );
        }
    }

    #[test]
    fn r_susp_release_or_void_until_the_last_day_then_released() {
        let s = suspend(d(2024, 3, 1), d(2024, 3, 4), 30, &law()).unwrap();
        assert_eq!(
            end_suspension(&s, SuspensionEnd::Voided, d(2024, 4, 2)).unwrap(),
            SuspensionEnd::Voided
        );
        assert_eq!(
            end_suspension(&s, SuspensionEnd::Released, d(2024, 3, 10)).unwrap(),
            SuspensionEnd::Released
        );
        assert_eq!(outcome_on(&s, d(2024, 4, 2)), None);
        assert_eq!(outcome_on(&s, d(2024, 4, 3)), Some(SuspensionEnd::Released));
        let e = end_suspension(&s, SuspensionEnd::Voided, d(2024, 4, 3)).unwrap_err();
        assert_eq!(
            e,
            SuspError::Lapsed {
                until: d(2024, 4, 2)
            }
        );
    }

    #[test]
    fn r_susp_not_for_communications_before_art_122_bis() {
        assert_eq!(
            suspend(d(2021, 11, 11), d(2021, 11, 11), 10, &law())
                .unwrap_err()
                .code(),
            "r_susp_not_in_force"
        );
    }

    #[test]
    fn r_seize_blocks_while_open() {
        let open = [Seizure {
            seized_on: d(2024, 5, 10),
            released_on: None,
        }];
        assert!(check_not_seized(&open, d(2024, 5, 9)).is_ok());
        let e = check_not_seized(&open, d(2024, 5, 10)).unwrap_err();
        assert_eq!((e.rule(), e.code()), ("R-SEIZE", "r_seize"));
        assert_eq!(seizure_days(&open), 0);
    }

    #[test]
    fn r_seize_end_extends_the_deadline_by_its_length() {
        let ended = [
            Seizure {
                seized_on: d(2024, 3, 1),
                released_on: Some(d(2024, 3, 31)),
            },
            Seizure {
                seized_on: d(2024, 6, 1),
                released_on: Some(d(2024, 6, 11)),
            },
        ];
        assert_eq!(seizure_days(&ended), 40);
        assert!(check_not_seized(&ended, d(2024, 7, 1)).is_ok());
        assert_eq!(extended_deadline(d(2024, 12, 31), &ended), d(2025, 2, 9));
        assert_eq!(extended_deadline(d(2024, 12, 31), &[]), d(2024, 12, 31));
    }
}
