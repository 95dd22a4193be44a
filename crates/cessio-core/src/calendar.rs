//! Italian working days, for the rules that count them (R-WAIT5: a cession can be answered
//! only after 5 working days from its registration; R-SUSP: within 5 working days of its
//! registration).
//!
//! A working day is a Monday–Friday that is not a national holiday. Saturdays count as
//! non-working, as the rules say "weekends". Local holidays (a city's patron saint) are
//! deliberately ignored: the register is national and a deadline must not depend on where
//! the parties are.
//!
//! The national holidays are data, [`NATIONAL_HOLIDAYS`], each with the years in which it
//! is in force, so that a change in the law is one new row (as 4 October was, from 2026)
//! and past dates keep being computed as they were. The table is exact from 1977 (Law
//! 54/1977 reshaped the list); earlier years are out of scope and under-report holidays.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

/// How a holiday's date is found in a given year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolidayDate {
    /// The same day every year.
    Fixed { month: u32, day: u32 },
    /// Lunedì dell'Angelo: the day after [`easter_sunday`].
    EasterMonday,
}

/// One national holiday and the years it is in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holiday {
    pub name: &'static str,
    pub date: HolidayDate,
    /// First year in which the day is a holiday.
    pub from_year: i32,
    /// Last year in which the day is a holiday; `None` while still in force.
    pub until_year: Option<i32>,
}

impl Holiday {
    pub const fn in_force(&self, year: i32) -> bool {
        year >= self.from_year
            && match self.until_year {
                Some(until) => year <= until,
                None => true,
            }
    }

    /// The holiday's date in `year`, whether or not it is in force then.
    pub fn date_in(&self, year: i32) -> Option<NaiveDate> {
        match self.date {
            HolidayDate::Fixed { month, day } => NaiveDate::from_ymd_opt(year, month, day),
            HolidayDate::EasterMonday => easter_sunday_opt(year)?.succ_opt(),
        }
    }
}

const fn fixed(name: &'static str, month: u32, day: u32, from_year: i32) -> Holiday {
    Holiday {
        name,
        date: HolidayDate::Fixed { month, day },
        from_year,
        until_year: None,
    }
}

/// Italian national holidays (Law 260/1949 as amended). `from_year` is where the current
/// run of the holiday starts, or 1977 for those the 1977 reform kept.
pub const NATIONAL_HOLIDAYS: &[Holiday] = &[
    fixed("Capodanno", 1, 1, 1977),
    // Abolished by Law 54/1977, restored by DPR 792/1985.
    fixed("Epifania", 1, 6, 1986),
    Holiday {
        name: "Lunedì dell'Angelo",
        date: HolidayDate::EasterMonday,
        from_year: 1977,
        until_year: None,
    },
    fixed("Festa della Liberazione", 4, 25, 1977),
    fixed("Festa del Lavoro", 5, 1, 1977),
    // Moved to the first Sunday of June by Law 54/1977, restored by Law 336/2000.
    fixed("Festa della Repubblica", 6, 2, 2001),
    fixed("Ferragosto", 8, 15, 1977),
    // San Francesco d'Assisi: national holiday again from 2026 (Law 151/2025).
    fixed("San Francesco d'Assisi", 10, 4, 2026),
    fixed("Ognissanti", 11, 1, 1977),
    fixed("Immacolata Concezione", 12, 8, 1977),
    fixed("Natale", 12, 25, 1977),
    fixed("Santo Stefano", 12, 26, 1977),
];

/// Easter Sunday of `year` in the Gregorian calendar, by the anonymous (Meeus/Jones/
/// Butcher) algorithm. Meaningful from 1583; other years get the same arithmetic.
///
/// Panics only for years outside chrono's range (beyond ±262,000).
pub fn easter_sunday(year: i32) -> NaiveDate {
    easter_sunday_opt(year).unwrap_or_else(|| panic!("easter_sunday: year {year} out of range"))
}

fn easter_sunday_opt(year: i32) -> Option<NaiveDate> {
    // Euclidean division keeps the formula total for negative years; for positive ones it
    // is the textbook integer division.
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    // month is 3 or 4 and day 1..=31 by construction.
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// Whether `date` is an Italian national holiday (in force that year). Weekends are not
/// holidays as such: see [`is_working_day`].
pub fn is_holiday(date: NaiveDate) -> bool {
    let year = date.year();
    NATIONAL_HOLIDAYS
        .iter()
        .any(|h| h.in_force(year) && h.date_in(year) == Some(date))
}

/// Monday to Friday and not a national holiday.
pub fn is_working_day(date: NaiveDate) -> bool {
    !is_weekend(date) && !is_holiday(date)
}

/// The date that is `n` working days after `date`.
///
/// Counting starts the day after `date`, which itself never counts (it is the day of the
/// event, e.g. the registration): the result is the `n`-th working day strictly after
/// `date`, and therefore always a working day when `n > 0`. `n == 0` returns `date`
/// unchanged, working day or not.
///
/// Example: registered Thursday 2024-03-28; Friday 29 is day 1, Easter Monday 1 April is a
/// holiday, then 2, 3, 4, 5 April are days 2–5: the result is Friday 2024-04-05.
///
/// Consistent with [`working_days_between`]: `working_days_between(d,
/// add_working_days(d, n)) == n`. Whether a rule is satisfied *on* that day or only *after*
/// it is the rule's decision, not the calendar's.
///
/// Panics if the result would be beyond chrono's range.
pub fn add_working_days(date: NaiveDate, n: u32) -> NaiveDate {
    let mut day = date;
    let mut remaining = n;
    while remaining > 0 {
        day = day
            .succ_opt()
            .unwrap_or_else(|| panic!("add_working_days: {date} + {n} working days out of range"));
        if is_working_day(day) {
            remaining -= 1;
        }
    }
    day
}

/// The number of working days `d` with `from < d <= to`: `from` excluded, `to` included,
/// the same convention as [`add_working_days`]. Zero when `to <= from`.
pub fn working_days_between(from: NaiveDate, to: NaiveDate) -> u32 {
    if to <= from {
        return 0;
    }
    // Whole weeks are counted arithmetically (5 weekdays each, minus the holidays falling
    // on those weekdays), so that a long span does not cost a loop per day; the remaining
    // days, fewer than 7, are walked.
    let weeks = (to - from).num_days() / 7;
    let weeks_end = from + Duration::days(weeks * 7);
    let mut holidays_on_weekdays: Vec<NaiveDate> = (from.year()..=weeks_end.year())
        .flat_map(|year| {
            NATIONAL_HOLIDAYS
                .iter()
                .filter(move |h| h.in_force(year))
                .filter_map(move |h| h.date_in(year))
        })
        .filter(|&d| d > from && d <= weeks_end && !is_weekend(d))
        .collect();
    // Two rows can fall on the same day (Easter Monday on 25 April, as in 2011): still
    // one day off.
    holidays_on_weekdays.sort_unstable();
    holidays_on_weekdays.dedup();
    let whole_weeks = weeks * 5 - holidays_on_weekdays.len() as i64;
    let tail = weeks_end
        .iter_days()
        .skip(1)
        .take_while(|&d| d <= to)
        .filter(|&d| is_working_day(d))
        .count() as i64;
    u32::try_from(whole_weeks + tail).unwrap_or(u32::MAX)
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests build literal dates")]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// The obvious day-by-day count, as a reference for the optimised one.
    fn working_days_between_slow(from: NaiveDate, to: NaiveDate) -> u32 {
        from.iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| is_working_day(*d))
            .count() as u32
    }

    #[test]
    fn easter_sundays_2020_to_2030() {
        let known = [
            date(2020, 4, 12),
            date(2021, 4, 4),
            date(2022, 4, 17),
            date(2023, 4, 9),
            date(2024, 3, 31),
            date(2025, 4, 20),
            date(2026, 4, 5),
            date(2027, 3, 28),
            date(2028, 4, 16),
            date(2029, 4, 1),
            date(2030, 4, 21),
        ];
        for expected in known {
            assert_eq!(easter_sunday(expected.year()), expected);
            assert_eq!(expected.weekday(), Weekday::Sun);
        }
        // The extremes of the Gregorian cycle: earliest 22 March, latest 25 April.
        assert_eq!(easter_sunday(2285), date(2285, 3, 22));
        assert_eq!(easter_sunday(2038), date(2038, 4, 25));
    }

    #[test]
    fn easter_monday_is_a_holiday_but_good_friday_and_easter_sunday_are_not_working() {
        assert!(is_holiday(date(2024, 4, 1)));
        assert!(is_holiday(date(2025, 4, 21)));
        assert!(!is_working_day(date(2025, 4, 21)));
        // Good Friday is an ordinary working day in Italy.
        assert!(!is_holiday(date(2025, 4, 18)));
        assert!(is_working_day(date(2025, 4, 18)));
        // Easter Sunday is not in the table, it is a Sunday.
        assert!(!is_holiday(date(2025, 4, 20)));
        assert!(!is_working_day(date(2025, 4, 20)));
    }

    #[test]
    fn fixed_holidays_are_holidays() {
        for (m, d) in [
            (1, 1),
            (1, 6),
            (4, 25),
            (5, 1),
            (6, 2),
            (8, 15),
            (11, 1),
            (12, 8),
            (12, 25),
            (12, 26),
        ] {
            assert!(is_holiday(date(2025, m, d)), "2025-{m}-{d}");
        }
        assert!(!is_holiday(date(2025, 6, 3)));
        assert!(is_working_day(date(2025, 6, 3)));
        assert!(!is_working_day(date(2025, 6, 7)), "Saturday");
        assert!(!is_working_day(date(2025, 6, 8)), "Sunday");
    }

    #[test]
    fn san_francesco_is_a_holiday_only_from_2026() {
        assert_eq!(date(2024, 10, 4).weekday(), Weekday::Fri);
        assert!(!is_holiday(date(2024, 10, 4)));
        assert!(is_working_day(date(2024, 10, 4)));
        assert_eq!(date(2025, 10, 4).weekday(), Weekday::Sat);
        assert!(!is_holiday(date(2025, 10, 4)));
        assert!(is_holiday(date(2026, 10, 4)));
        assert_eq!(date(2027, 10, 4).weekday(), Weekday::Mon);
        assert!(is_holiday(date(2027, 10, 4)));
        assert!(!is_working_day(date(2027, 10, 4)));
    }

    #[test]
    fn holidays_follow_their_validity_years() {
        assert!(!is_holiday(date(1985, 1, 6)));
        assert!(is_holiday(date(1986, 1, 6)));
        assert!(!is_holiday(date(2000, 6, 2)));
        assert!(is_holiday(date(2001, 6, 2)));
    }

    #[test]
    fn holiday_table_is_well_formed() {
        for holiday in NATIONAL_HOLIDAYS {
            assert!(holiday.date_in(2024).is_some(), "{}", holiday.name);
            assert!(holiday.date_in(2025).is_some(), "{}", holiday.name);
            if let Some(until) = holiday.until_year {
                assert!(until >= holiday.from_year, "{}", holiday.name);
            }
        }
        let mut fixed_days: Vec<_> = NATIONAL_HOLIDAYS
            .iter()
            .filter_map(|h| match h.date {
                HolidayDate::Fixed { month, day } => Some((month, day)),
                HolidayDate::EasterMonday => None,
            })
            .collect();
        let total = fixed_days.len();
        fixed_days.sort_unstable();
        fixed_days.dedup();
        assert_eq!(fixed_days.len(), total, "a fixed day is listed twice");
    }

    #[test]
    fn r_wait5_counts_five_working_days_across_easter() {
        // Thu 28 Mar 2024 → Fri 29 (1), Easter Monday 1 Apr off, Tue 2 … Fri 5 (2–5).
        let registered = date(2024, 3, 28);
        assert_eq!(add_working_days(registered, 5), date(2024, 4, 5));
        assert_eq!(working_days_between(registered, date(2024, 4, 4)), 4);
        assert_eq!(working_days_between(registered, date(2024, 4, 5)), 5);
    }

    #[test]
    fn r_wait5_counts_five_working_days_across_easter_and_liberation_day() {
        // 2025: Easter Monday 21 Apr and Friday 25 Apr in the same week.
        // Thu 17 → Fri 18 (1), Tue 22 (2), Wed 23 (3), Thu 24 (4), Mon 28 (5).
        assert_eq!(add_working_days(date(2025, 4, 17), 5), date(2025, 4, 28));
    }

    #[test]
    fn r_wait5_counts_five_working_days_across_25_april_and_1_may() {
        // Wed 24 Apr 2024 → Thu 25 off, Fri 26 (1), Mon 29 (2), Tue 30 (3), Wed 1 May off,
        // Thu 2 (4), Fri 3 (5).
        let registered = date(2024, 4, 24);
        assert_eq!(add_working_days(registered, 5), date(2024, 5, 3));
        assert_eq!(working_days_between(registered, date(2024, 5, 3)), 5);
    }

    #[test]
    fn r_wait5_counts_five_working_days_across_christmas_and_new_year() {
        // Mon 23 Dec 2024 → Tue 24 (1), 25–26 off, Fri 27 (2), Mon 30 (3), Tue 31 (4),
        // 1 Jan off, Thu 2 Jan 2025 (5).
        let registered = date(2024, 12, 23);
        assert_eq!(add_working_days(registered, 5), date(2025, 1, 2));
        assert_eq!(working_days_between(registered, date(2025, 1, 2)), 5);
    }

    #[test]
    fn r_susp_window_skips_republic_day_and_the_weekend() {
        // Fri 30 May 2025 → weekend, Mon 2 Jun off, Tue 3 (1) … Fri 6 (4), Mon 9 (5).
        assert_eq!(add_working_days(date(2025, 5, 30), 5), date(2025, 6, 9));
    }

    #[test]
    fn r_wait5_counts_five_working_days_across_san_francesco_2027() {
        // Thu 30 Sep 2027 → Fri 1 Oct (1), Mon 4 off, Tue 5 (2) … Thu 7 (4), Fri 8 (5).
        assert_eq!(add_working_days(date(2027, 9, 30), 5), date(2027, 10, 8));
        // Before the law 4 October counts: Mon 30 Sep 2024 → Tue 1 (1) … Fri 4 (4), Mon 7 (5).
        assert_eq!(add_working_days(date(2024, 9, 30), 5), date(2024, 10, 7));
    }

    #[test]
    fn counting_starts_the_day_after() {
        // From a Saturday: Monday is day 1.
        assert_eq!(add_working_days(date(2025, 6, 7), 1), date(2025, 6, 9));
        // Zero days: the date itself, even when not a working day.
        assert_eq!(add_working_days(date(2025, 6, 7), 0), date(2025, 6, 7));
        assert_eq!(working_days_between(date(2025, 6, 9), date(2025, 6, 9)), 0);
        assert_eq!(working_days_between(date(2025, 6, 10), date(2025, 6, 9)), 0);
        assert_eq!(working_days_between(date(2025, 6, 9), date(2025, 6, 10)), 1);
    }

    #[test]
    fn working_days_in_whole_years() {
        // 2024: 262 weekdays; holidays on weekdays: 1 Jan, 1 Apr, 25 Apr, 1 May, 15 Aug,
        // 1 Nov, 25 Dec, 26 Dec (6 Jan Sat, 2 Jun Sun, 8 Dec Sun) → 254.
        assert_eq!(
            working_days_between(date(2023, 12, 31), date(2024, 12, 31)),
            254
        );
        // 2011: Easter Monday fell on 25 April, one day off not two.
        assert_eq!(
            working_days_between(date(2010, 12, 31), date(2011, 12, 31)),
            working_days_between_slow(date(2010, 12, 31), date(2011, 12, 31))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            // Keep failures in the test output instead of writing regression files into
            // the source tree.
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn add_and_between_agree(days in 0_i64..40_000, n in 0_u32..300) {
            let start = date(1990, 1, 1) + Duration::days(days);
            let end = add_working_days(start, n);
            prop_assert_eq!(working_days_between(start, end), n);
            if n > 0 {
                prop_assert!(is_working_day(end));
            }
        }

        #[test]
        fn between_matches_day_by_day_count(from in 0_i64..40_000, len in 0_i64..3_000) {
            let start = date(1990, 1, 1) + Duration::days(from);
            let end = start + Duration::days(len);
            prop_assert_eq!(
                working_days_between(start, end),
                working_days_between_slow(start, end)
            );
        }
    }
}
