//! Business time: reference years, the Europe/Rome calendar date, and the one injectable clock.
//!
//! # Europe/Rome without a time-zone database
//!
//! Instants are stored in UTC; dates that carry legal meaning (the day a cession was
//! registered, the year a rata belongs to) are Italian calendar dates. Converting needs
//! the Europe/Rome offset, which this module computes from the EU summer-time rule
//! (Directive 2000/84/EC, the same rule applied since 1996):
//!
//! - CET, UTC+1, for most of the year;
//! - CEST, UTC+2, from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last
//!   Sunday of October (02:00 → 03:00 local in spring, 03:00 → 02:00 local in autumn).
//!
//! Why not `chrono-tz` or the system tzdb: the core crate stays free of I/O and of a large
//! generated dependency whose updates would change behaviour silently; the rule has been
//! stable since 1996 and every date the platform handles is after 2019. If the EU ever
//! changes or abolishes the clock change, that is a change to [`rome_offset`] here, with
//! tests, and nowhere else.
//!
//! Dates before [`EU_RULE_SINCE_YEAR`] are outside scope: Italy then followed other rules
//! (e.g. summer time ending in September), but the functions still apply the current rule
//! to them, proleptically, rather than panicking, so that no input can crash a caller.
//!
//! # The clock
//!
//! Code that needs "now" takes a [`Clock`], so that tests (and replays) can pin time with
//! [`FixedClock`]; production wires [`SystemClock`]. Nothing else in the workspace should
//! call `Utc::now()`.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// The first year for which [`rome_offset`] reproduces the official Italian time.
pub const EU_RULE_SINCE_YEAR: i32 = 1996;

const CET: FixedOffset = match FixedOffset::east_opt(3600) {
    Some(offset) => offset,
    None => panic!("UTC+1 is a valid offset"),
};

const CEST: FixedOffset = match FixedOffset::east_opt(2 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+2 is a valid offset"),
};

/// The Europe/Rome offset in force at `utc`: +02:00 from 01:00 UTC on the last Sunday of
/// March (inclusive) to 01:00 UTC on the last Sunday of October (exclusive), +01:00
/// otherwise. See the module documentation for the scope of the rule.
pub fn rome_offset(utc: DateTime<Utc>) -> FixedOffset {
    let year = utc.year();
    match (summer_time_switch(year, 3), summer_time_switch(year, 10)) {
        (Some(start), Some(end)) if start <= utc && utc < end => CEST,
        _ => CET,
    }
}

/// 01:00 UTC on the last Sunday of `month` (March or October, both 31 days long).
/// `None` only at the edges of chrono's representable range, where CET is as good an
/// answer as any.
fn summer_time_switch(year: i32, month: u32) -> Option<DateTime<Utc>> {
    let last_day = NaiveDate::from_ymd_opt(year, month, 31)?;
    let back_to_sunday = last_day.weekday().num_days_from_sunday();
    let sunday = last_day.checked_sub_signed(Duration::days(i64::from(back_to_sunday)))?;
    Some(sunday.and_hms_opt(1, 0, 0)?.and_utc())
}

/// The Italian wall-clock time at `utc`.
///
/// Saturates at `NaiveDateTime::MAX` in the last hours of chrono's range, instead of
/// panicking like chrono's own conversion would.
pub fn to_rome(utc: DateTime<Utc>) -> NaiveDateTime {
    let offset = Duration::seconds(i64::from(rome_offset(utc).local_minus_utc()));
    utc.naive_utc()
        .checked_add_signed(offset)
        .unwrap_or(NaiveDateTime::MAX)
}

/// The Italian calendar date at `utc`: the date that carries legal meaning.
pub fn rome_date(utc: DateTime<Utc>) -> NaiveDate {
    to_rome(utc).date()
}

/// The UTC instant at which `date` begins in Italy (00:00 Rome time): 23:00 UTC of the
/// previous day in winter, 22:00 UTC in summer.
///
/// Midnight always exists and is unique in Rome, because the clock changes at 02:00/03:00.
pub fn rome_start_of_day(date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    // `None` only at the lower edge of chrono's range, where subtracting the offset is
    // impossible: the earliest representable instant is the best answer.
    rome_local_to_utc(midnight).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The last instant (to the microsecond) of `date` in Italy: what "as of that day" includes.
pub fn rome_end_of_day(date: NaiveDate) -> DateTime<Utc> {
    let next = date.succ_opt().unwrap_or(date);
    rome_start_of_day(next) - chrono::Duration::microseconds(1)
}

/// The UTC instant at which Italian clocks show `local`.
///
/// - `None` for the hour that does not exist, skipped when clocks go forward (e.g.
///   02:30 on the last Sunday of March).
/// - For the hour that happens twice when clocks go back (02:00–02:59 on the last Sunday
///   of October) the **earlier** instant, still in summer time: a deadline expressed in
///   local time is then never extended by the repetition.
pub fn rome_local_to_utc(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    // Try summer time first, so that the earlier instant wins in the repeated hour. A
    // candidate is valid when the offset in force at that instant is the one assumed.
    [CEST, CET].into_iter().find_map(|offset| {
        let utc = local
            .checked_sub_signed(Duration::seconds(i64::from(offset.local_minus_utc())))?
            .and_utc();
        (rome_offset(utc) == offset).then_some(utc)
    })
}

/// The source of "now". Injected everywhere so that time is a test input.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// Today's Italian calendar date.
    fn today(&self) -> NaiveDate {
        rome_date(self.now())
    }
}

/// The real clock, for production.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same time, so a test can keep
/// a handle and move the clock under the code it gave the other handle to.
#[derive(Clone, Debug)]
pub struct FixedClock {
    // A mutex rather than an atomic of micros: keeps full nanosecond precision and the
    // whole chrono range, and contention is irrelevant in tests.
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl FixedClock {
    pub fn new(instant: DateTime<Utc>) -> Self {
        FixedClock {
            now: Arc::new(Mutex::new(instant)),
        }
    }

    /// A clock at the given Italian wall-clock time (for tests that think in local time).
    ///
    /// Panics if the date is invalid or the time falls in the hour skipped in spring; in
    /// the repeated autumn hour it picks the earlier instant, like [`rome_local_to_utc`].
    pub fn at_rome(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> Self {
        let local = NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|date| date.and_hms_opt(hour, minute, 0))
            .unwrap_or_else(|| {
                panic!(
                    "FixedClock::at_rome: invalid date/time {year}-{month}-{day} {hour}:{minute}"
                )
            });
        let instant = rome_local_to_utc(local).unwrap_or_else(|| {
            panic!("FixedClock::at_rome: {local} does not exist in Rome (clocks go forward)")
        });
        FixedClock::new(instant)
    }

    pub fn set(&self, instant: DateTime<Utc>) {
        *self.lock() = instant;
    }

    /// Moves the clock by `by` (backwards if negative).
    ///
    /// Panics if the result leaves chrono's range: a test bug, not a condition to handle.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now = now
            .checked_add_signed(by)
            .unwrap_or_else(|| panic!("FixedClock::advance: {} + {by} is out of range", *now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // The guarded value is a plain `Copy` instant, always consistent: a panic in
        // another holder cannot have left it half-written, so poisoning is ignored.
        self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }
}

/// An anno di riferimento: the calendar year in which a rata may be used.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct RefYear(u16);

impl RefYear {
    /// The earliest year [`RefYear::parse`] accepts.
    pub const FIRST_ACCEPTED: RefYear = RefYear(2000);
    /// The latest year [`RefYear::parse`] accepts.
    pub const LAST_ACCEPTED: RefYear = RefYear(2100);

    /// Unchecked: for values that are already known to be sensible (constants, stored
    /// data). Input from people goes through [`RefYear::parse`].
    pub const fn new(year: u16) -> Self {
        RefYear(year)
    }

    pub const fn get(self) -> u16 {
        self.0
    }

    /// Validates a year from user input, given as a number or as text (`2024`,
    /// `" 2024 "`): it must lie in 2000..=2100. The bounds are wide on purpose: they only
    /// catch typos (`224`, `20244`), the business rules decide which years are allowed.
    pub fn parse(input: impl YearInput) -> Result<RefYear, YearError> {
        let year = input.into_year_number()?;
        let first = i64::from(Self::FIRST_ACCEPTED.0);
        let last = i64::from(Self::LAST_ACCEPTED.0);
        if (first..=last).contains(&year) {
            u16::try_from(year)
                .map(RefYear)
                .map_err(|_| YearError::OutOfRange { year })
        } else {
            Err(YearError::OutOfRange { year })
        }
    }

    /// 1 January of the year.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(i32::from(self.0), 1, 1)
            .expect("every u16 year is within chrono's date range")
    }

    /// 31 December of the year.
    pub fn last_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(i32::from(self.0), 12, 31)
            .expect("every u16 year is within chrono's date range")
    }

    /// The following year. Panics past year 65535, which no validated year approaches.
    pub const fn next(self) -> RefYear {
        match self.0.checked_add(1) {
            Some(year) => RefYear(year),
            None => panic!("RefYear::next overflow"),
        }
    }
}

impl fmt::Display for RefYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for RefYear {
    type Err = YearError;

    /// Same as [`RefYear::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RefYear::parse(s)
    }
}

/// Something [`RefYear::parse`] can read a year from: integers and text.
///
/// Sealed: the set of accepted inputs is part of this module's contract.
pub trait YearInput: sealed::Sealed {
    #[doc(hidden)]
    fn into_year_number(self) -> Result<i64, YearError>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for i32 {}
    impl Sealed for &str {}
    impl Sealed for &String {}
}

impl YearInput for u16 {
    fn into_year_number(self) -> Result<i64, YearError> {
        Ok(i64::from(self))
    }
}

impl YearInput for u32 {
    fn into_year_number(self) -> Result<i64, YearError> {
        Ok(i64::from(self))
    }
}

impl YearInput for i32 {
    fn into_year_number(self) -> Result<i64, YearError> {
        Ok(i64::from(self))
    }
}

impl YearInput for &str {
    fn into_year_number(self) -> Result<i64, YearError> {
        let text = self.trim();
        // Digits only: `i64::from_str` would also take `+2024`, which nobody means.
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(YearError::NotAYear {
                input: self.to_owned(),
            });
        }
        text.parse().map_err(|_| YearError::NotAYear {
            input: self.to_owned(),
        })
    }
}

impl YearInput for &String {
    fn into_year_number(self) -> Result<i64, YearError> {
        self.as_str().into_year_number()
    }
}

/// Why a year was refused, with an Italian message for the person who typed it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum YearError {
    #[error("«{input}» non è un anno: scrivere l'anno in cifre, ad esempio 2024.")]
    NotAYear { input: String },

    #[error(
        "Anno {year} non ammesso: indicare un anno compreso tra {first} e {last}, ad \
         esempio 2024.",
        first = RefYear::FIRST_ACCEPTED,
        last = RefYear::LAST_ACCEPTED
    )]
    OutOfRange { year: i64 },
}

impl YearError {
    /// A stable machine code: part of the public interface, never reworded.
    pub fn code(&self) -> &'static str {
        match self {
            YearError::NotAYear { .. } => "year_malformed",
            YearError::OutOfRange { .. } => "year_out_of_range",
        }
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests build literal dates and times")]
mod tests {
    use chrono::Weekday;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        date(y, m, d).and_hms_opt(h, min, 0).unwrap()
    }

    #[test]
    fn offset_switches_at_one_utc_on_last_sundays() {
        let table = [
            ("2024-03-31T00:59:59Z", CET),
            ("2024-03-31T01:00:00Z", CEST),
            ("2024-10-27T00:59:59Z", CEST),
            ("2024-10-27T01:00:00Z", CET),
            ("2025-03-30T00:59:59Z", CET),
            ("2025-03-30T01:00:00Z", CEST),
            ("2025-10-26T00:59:59Z", CEST),
            ("2025-10-26T01:00:00Z", CET),
            ("2026-03-29T00:59:59Z", CET),
            ("2026-03-29T01:00:00Z", CEST),
            ("2026-10-25T00:59:59Z", CEST),
            ("2026-10-25T01:00:00Z", CET),
            ("2024-01-15T12:00:00Z", CET),
            ("2024-07-15T12:00:00Z", CEST),
            ("2024-12-31T23:59:59Z", CET),
        ];
        for (instant, expected) in table {
            assert_eq!(rome_offset(utc(instant)), expected, "{instant}");
        }
        for d in [date(2024, 3, 31), date(2025, 3, 30), date(2026, 10, 25)] {
            assert_eq!(d.weekday(), Weekday::Sun);
        }
    }

    #[test]
    fn local_clock_jumps_at_two_and_three() {
        assert_eq!(
            to_rome(utc("2024-03-31T00:59:59Z")),
            local(2024, 3, 31, 1, 59) + Duration::seconds(59)
        );
        assert_eq!(
            to_rome(utc("2024-03-31T01:00:00Z")),
            local(2024, 3, 31, 3, 0)
        );
        assert_eq!(
            to_rome(utc("2024-10-27T00:59:00Z")),
            local(2024, 10, 27, 2, 59)
        );
        assert_eq!(
            to_rome(utc("2024-10-27T01:00:00Z")),
            local(2024, 10, 27, 2, 0)
        );
    }

    #[test]
    fn rome_date_turns_at_local_midnight() {
        assert_eq!(rome_date(utc("2024-12-31T22:59:59Z")), date(2024, 12, 31));
        assert_eq!(rome_date(utc("2024-12-31T23:00:00Z")), date(2025, 1, 1));
        assert_eq!(rome_date(utc("2024-07-31T21:59:59Z")), date(2024, 7, 31));
        assert_eq!(rome_date(utc("2024-07-31T22:00:00Z")), date(2024, 8, 1));
    }

    #[test]
    fn rome_start_of_day_in_winter_summer_and_on_switch_days() {
        assert_eq!(
            rome_start_of_day(date(2024, 1, 15)),
            utc("2024-01-14T23:00:00Z")
        );
        assert_eq!(
            rome_start_of_day(date(2024, 7, 1)),
            utc("2024-06-30T22:00:00Z")
        );
        assert_eq!(
            rome_start_of_day(date(2024, 3, 31)),
            utc("2024-03-30T23:00:00Z")
        );
        assert_eq!(
            rome_start_of_day(date(2024, 10, 27)),
            utc("2024-10-26T22:00:00Z")
        );
        assert_eq!(
            rome_start_of_day(date(2025, 1, 1)),
            utc("2024-12-31T23:00:00Z")
        );
    }

    #[test]
    fn rome_local_to_utc_handles_gap_and_overlap() {
        // Spring: 02:00–02:59 does not exist.
        assert_eq!(rome_local_to_utc(local(2024, 3, 31, 2, 30)), None);
        assert_eq!(
            rome_local_to_utc(local(2024, 3, 31, 1, 59)),
            Some(utc("2024-03-31T00:59:00Z"))
        );
        assert_eq!(
            rome_local_to_utc(local(2024, 3, 31, 3, 0)),
            Some(utc("2024-03-31T01:00:00Z"))
        );
        // Autumn: 02:00–02:59 happens twice; the earlier (summer-time) instant wins.
        assert_eq!(
            rome_local_to_utc(local(2024, 10, 27, 2, 30)),
            Some(utc("2024-10-27T00:30:00Z"))
        );
        assert_eq!(
            rome_local_to_utc(local(2024, 10, 27, 3, 0)),
            Some(utc("2024-10-27T02:00:00Z"))
        );
        assert_eq!(
            rome_local_to_utc(local(2024, 10, 27, 1, 59)),
            Some(utc("2024-10-26T23:59:00Z"))
        );
    }

    #[test]
    fn rome_local_to_utc_inverts_to_rome() {
        let mut t = utc("2024-01-01T00:00:00Z");
        while t < utc("2027-01-01T00:00:00Z") {
            let back = rome_local_to_utc(to_rome(t)).unwrap();
            // In the repeated hour the inverse is the earlier instant, one hour before.
            assert!(back == t || back == t - Duration::hours(1), "{t}");
            assert_eq!(to_rome(back), to_rome(t));
            t += Duration::minutes(30);
        }
    }

    #[test]
    fn dates_before_1996_use_the_same_rule_proleptically() {
        assert_eq!(rome_offset(utc("1990-10-28T00:59:59Z")), CEST);
        assert_eq!(rome_offset(utc("1990-10-28T01:00:00Z")), CET);
        // chrono's extreme dates do not panic.
        let _ = rome_offset(DateTime::<Utc>::MIN_UTC);
        let _ = rome_offset(DateTime::<Utc>::MAX_UTC);
        let _ = to_rome(DateTime::<Utc>::MAX_UTC);
        let _ = rome_start_of_day(NaiveDate::MIN);
    }

    #[test]
    fn fixed_clock_set_and_advance_are_shared_by_clones() {
        let clock = FixedClock::new(utc("2024-12-31T22:30:00Z"));
        let handle = clock.clone();
        assert_eq!(clock.today(), date(2024, 12, 31));
        handle.advance(Duration::minutes(30));
        assert_eq!(clock.now(), utc("2024-12-31T23:00:00Z"));
        assert_eq!(clock.today(), date(2025, 1, 1));
        handle.set(utc("2025-06-01T10:00:00Z"));
        assert_eq!(clock.now(), utc("2025-06-01T10:00:00Z"));
        handle.advance(Duration::days(-1));
        assert_eq!(clock.today(), date(2025, 5, 31));
    }

    #[test]
    fn fixed_clock_at_rome_uses_local_time() {
        assert_eq!(
            FixedClock::at_rome(2024, 7, 1, 0, 0).now(),
            utc("2024-06-30T22:00:00Z")
        );
        assert_eq!(
            FixedClock::at_rome(2024, 1, 1, 0, 0).now(),
            utc("2023-12-31T23:00:00Z")
        );
        assert_eq!(
            FixedClock::at_rome(2024, 10, 27, 2, 30).now(),
            utc("2024-10-27T00:30:00Z")
        );
    }

    #[test]
    #[should_panic(expected = "does not exist")]
    fn fixed_clock_at_rome_refuses_the_skipped_hour() {
        let _ = FixedClock::at_rome(2024, 3, 31, 2, 30);
    }

    #[test]
    #[should_panic(expected = "invalid date")]
    fn fixed_clock_at_rome_refuses_invalid_dates() {
        let _ = FixedClock::at_rome(2024, 2, 30, 0, 0);
    }

    #[test]
    fn clocks_are_send_sync_and_object_safe() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SystemClock>();
        assert_send_sync::<FixedClock>();
        assert_send_sync::<Arc<dyn Clock>>();
        let clocks: Vec<Box<dyn Clock>> = vec![
            Box::new(SystemClock),
            Box::new(FixedClock::new(utc("2024-01-01T00:00:00Z"))),
        ];
        assert!(clocks[0].now() > utc("2024-01-01T00:00:00Z"));
        assert_eq!(clocks[1].today(), date(2024, 1, 1));
    }

    #[test]
    fn ref_year_parse_accepts_numbers_and_text() {
        assert_eq!(RefYear::parse(2024), Ok(RefYear::new(2024)));
        assert_eq!(RefYear::parse(2024_u32), Ok(RefYear::new(2024)));
        assert_eq!(RefYear::parse(2024_u16), Ok(RefYear::new(2024)));
        assert_eq!(RefYear::parse("2024"), Ok(RefYear::new(2024)));
        assert_eq!(RefYear::parse(" 2000 "), Ok(RefYear::new(2000)));
        assert_eq!(RefYear::parse(&"2100".to_owned()), Ok(RefYear::new(2100)));
        assert_eq!("2030".parse::<RefYear>(), Ok(RefYear::new(2030)));
    }

    #[test]
    fn ref_year_parse_rejects_with_italian_messages() {
        assert_eq!(
            RefYear::parse(1999),
            Err(YearError::OutOfRange { year: 1999 })
        );
        assert_eq!(
            RefYear::parse(2101_u32),
            Err(YearError::OutOfRange { year: 2101 })
        );
        assert_eq!(
            RefYear::parse(-2024),
            Err(YearError::OutOfRange { year: -2024 })
        );
        assert_eq!(
            RefYear::parse("20244"),
            Err(YearError::OutOfRange { year: 20244 })
        );
        for bad in [
            "",
            " ",
            "duemila",
            "+2024",
            "2024.0",
            "99999999999999999999999",
        ] {
            assert_eq!(
                RefYear::parse(bad),
                Err(YearError::NotAYear {
                    input: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
        let message = RefYear::parse(1999).unwrap_err().to_string();
        assert!(message.contains("tra 2000 e 2100"), "{message}");
        assert_eq!(RefYear::parse("x").unwrap_err().code(), "year_malformed");
        assert_eq!(RefYear::parse(1).unwrap_err().code(), "year_out_of_range");
    }

    #[test]
    fn ref_year_days_display_and_next() {
        let year = RefYear::new(2024);
        assert_eq!(year.first_day(), date(2024, 1, 1));
        assert_eq!(year.last_day(), date(2024, 12, 31));
        assert_eq!(year.to_string(), "2024");
        assert_eq!(year.next(), RefYear::new(2025));
        assert_eq!(RefYear::new(2024).get(), 2024);
    }
}
