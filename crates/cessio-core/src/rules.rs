//! Rules of SPEC F2, F3 and F8 that are decided from values alone (R-OPT-STOP, with its
//! table of exceptions, is in `opt_stop`). The app layer asks
//! these functions and turns a refusal into an error naming the rule.

use chrono::{Datelike, NaiveDate};

use crate::calendar::add_working_days;
use crate::catalogue::CessionRegime;

/// R-1000: above this many matching operations the acceptance list needs filters.
pub const ACCEPTANCE_LIST_LIMIT: usize = 1_000;
/// rows shown by the movement list.
pub const MOVEMENTS_SHOWN_LIMIT: usize = 300;
/// R-50000: rows exported by the movement list.
pub const MOVEMENTS_EXPORT_LIMIT: usize = 50_000;

/// Credits from first communications sent on or after this date are tracciabili (SPEC §1).
pub const TRACCIABILE_FROM: NaiveDate = match NaiveDate::from_ymd_opt(2022, 5, 1) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// R-PARTIAL: may a holder cede less than the whole rata? Only for non-tracciabili credits
/// and credits under the art. 122 regime (rent, sanificazione, adeguamento, vacanze: SPEC
/// §5 "may be ceded also partially"); a tracciabile building rata moves whole. Decided by
/// the cession regime, not the family: Tax credit vacanze is not an art. 122 credit by
/// family but is ceded under its regime.
pub fn partial_cession_allowed(tracciabile: bool, regime: CessionRegime) -> bool {
    !tracciabile || regime == CessionRegime::Art122
}

/// R-WAIT5 applies to cessions after the first (not to the option communication) of
/// tracciabili credits.
pub fn wait5_applies(is_option_communication: bool, tracciabile: bool) -> bool {
    !is_option_communication && tracciabile
}

/// R-WAIT5: the first day on which the cessionario may answer: the fifth working day
/// after the day of registration (Europe/Rome dates).
pub fn wait5_earliest_answer(registered_on: NaiveDate) -> NaiveDate {
    add_working_days(registered_on, 5)
}

/// R-OPT-ANNUL: the last day on which the sender may annul or replace a communication,
/// the 5th of the month after sending.
pub fn opt_annul_deadline(sent_on: NaiveDate) -> NaiveDate {
    let (year, month) = if sent_on.month() == 12 {
        (sent_on.year() + 1, 1)
    } else {
        (sent_on.year(), sent_on.month() + 1)
    };
    NaiveDate::from_ymd_opt(year, month, 5).unwrap_or(sent_on)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn r_partial_only_non_tracciabili_and_art122_regime() {
        assert!(partial_cession_allowed(false, CessionRegime::Art121));
        assert!(!partial_cession_allowed(true, CessionRegime::Art121));
        assert!(partial_cession_allowed(true, CessionRegime::Art122));
        assert!(!partial_cession_allowed(true, CessionRegime::Once));
    }

    #[test]
    fn r_wait5_applies_to_later_cessions_of_tracciabili() {
        assert!(wait5_applies(false, true));
        assert!(!wait5_applies(true, true));
        assert!(!wait5_applies(false, false));
    }

    #[test]
    fn r_wait5_earliest_answer_skips_weekend_and_holidays() {
        // Friday 2024-03-01 → Mon 4, Tue 5, Wed 6, Thu 7, Fri 8.
        assert_eq!(wait5_earliest_answer(d(2024, 3, 1)), d(2024, 3, 8));
        // Thursday 2024-03-28 → Fri 29, (Easter Monday 1 Apr off) Tue 2, Wed 3, Thu 4, Fri 5.
        assert_eq!(wait5_earliest_answer(d(2024, 3, 28)), d(2024, 4, 5));
    }

    #[test]
    fn r_opt_annul_until_fifth_of_next_month() {
        assert_eq!(opt_annul_deadline(d(2023, 3, 16)), d(2023, 4, 5));
        assert_eq!(opt_annul_deadline(d(2022, 12, 31)), d(2023, 1, 5));
        assert_eq!(opt_annul_deadline(d(2024, 1, 31)), d(2024, 2, 5));
    }

    #[test]
    fn f8_tracciabile_boundary_matches_rata_module() {
        assert_eq!(TRACCIABILE_FROM, crate::rata::TRACCIABILE_FROM);
    }
}
