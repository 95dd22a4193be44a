//! F1 as of a past day, kept per day (`party_summary_days`).
//!
//! F1 as of a past date used to sum the party's whole history, each movement joined to its
//! rata, its credit and its answer: 1.6 s (SQLite) and 4.8 s (PostgreSQL) for the largest
//! bank of the 0.1 national register. The writer now keeps, beside `party_summary`, one row
//! per summary key and Rome day on which that key changed, holding what the key summed at
//! the end of that day. F1 as of a day reads, for each of the party's keys, the last row on
//! or before it: an index seek per key, whatever the history.
//!
//! Only for the parties whose trade is buying credits: banks, financial intermediaries and
//! insurers ([`KEPT_KINDS`]). A person's or a company's history is a small share of a
//! bank's, and is still read whole (`summary_as_of_history_sql`; the time for the largest
//! company has not been measured), while their rows were four in five of the kept days of
//! the 0.1 national register: a
//! credit's rate are as many keys, each stepping on the day of each movement. A party's
//! kind never changes, so a party's kept days are complete from its first movement.
//!
//! Days are Rome calendar days written as `yyyymmdd`: a movement counts from the day it
//! was registered, its answer from the day it was given, as F1 as of the end of a day has
//! always counted them.
//! A batch adds its deltas to its day's row (created with the sum of the day before) and to
//! every later row, so a movement recorded with an earlier instant than rows already kept
//! (an import of old history) still lands right.
//!
//! `verify` recomputes the rows from the transfers ([`DaysRecompute`]) and compares them as
//! step functions: a row that repeats the sum of the row before it answers nothing F1 asks,
//! so its presence or absence is not a difference; any row that changes an answer is.

use std::collections::{BTreeMap, HashSet};

use cessio_core::ledger::PartyId;
use cessio_core::time::rome_date;
use chrono::{DateTime, Datelike, NaiveDate};

use crate::model::{PartyKind, SummaryKey};
use crate::verify::{MAX_PROBLEMS, Problem, VerifyReport};

/// The kinds of party whose F1 is kept per day.
pub const KEPT_KINDS: [PartyKind; 3] = [
    PartyKind::Bank,
    PartyKind::FinancialIntermediary,
    PartyKind::Insurer,
];

/// `kind IN (…)` of [`KEPT_KINDS`], for a `parties` row.
pub fn kept_kind_sql(column: &str) -> String {
    let kinds: Vec<String> = KEPT_KINDS
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    format!("{column} IN ({})", kinds.join(", "))
}

/// Whether `party`'s F1 is kept per day (`?1`/`$1`): one row if it is.
pub fn is_kept_sql(placeholder: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT 1 FROM parties WHERE id = {} AND {}",
        placeholder(1),
        kept_kind_sql("kind")
    )
}

/// The parties whose F1 is kept per day, for `verify` and the migration.
pub fn kept_parties_sql() -> String {
    format!("SELECT id FROM parties WHERE {}", kept_kind_sql("kind"))
}

/// One kept row: a summary key, a Rome day (`yyyymmdd`) and what the key summed at its end.
pub type DayRow = (SummaryKey, i32, i64);

/// The Rome calendar day of an instant in microseconds, as `yyyymmdd`.
pub fn rome_day(at_micros: i64) -> i32 {
    let at = DateTime::from_timestamp_micros(at_micros).unwrap_or_default();
    day_number(rome_date(at))
}

/// A date as `yyyymmdd`.
pub fn day_number(d: NaiveDate) -> i32 {
    d.year() * 10_000 + i32::try_from(d.month() * 100 + d.day()).unwrap_or(0)
}

/// The date a `yyyymmdd` number names ([`day_number`]'s inverse); `None` for no date.
pub fn day_of_number(n: i32) -> Option<NaiveDate> {
    let (month, day) = (n % 10_000 / 100, n % 100);
    NaiveDate::from_ymd_opt(
        n / 10_000,
        u32::try_from(month).ok()?,
        u32::try_from(day).ok()?,
    )
}

/// The state an answer leaves its movement in, as F1 counts it.
pub fn answer_state(accepted: bool, by_its_party: bool) -> &'static str {
    if accepted {
        "accepted"
    } else if by_its_party {
        "annulled"
    } else {
        "refused"
    }
}

/// F1's sums for a party as of the end of a Rome day, from the kept rows: for each key of
/// the party's summary (the writer never deletes one), the last row on or before the day.
/// `?1`/`$1` is the party, `?2`/`$2` the day.
pub fn summary_as_of_sql(placeholder: impl Fn(usize) -> String) -> String {
    let (p, d) = (placeholder(1), placeholder(2));
    format!(
        "SELECT * FROM (
           SELECT s.type_key, s.year, s.codice_tributo, s.received, s.kind, s.state,
                  (SELECT d.amount FROM party_summary_days d
                    WHERE d.party = s.party AND d.type_key = s.type_key AND d.year = s.year
                      AND d.codice_tributo = s.codice_tributo AND d.received = s.received
                      AND d.kind = s.kind AND d.state = s.state AND d.day <= {d}
                    ORDER BY d.day DESC LIMIT 1) AS amount
             FROM party_summary s
            WHERE s.party = {p}) k
          WHERE k.amount IS NOT NULL AND k.amount <> 0"
    )
}

/// F1's sums for a party whose days are not kept, as of an instant, from its history.
/// `?1`/`$1` is the party, `?2`/`$2` the instant (micros).
pub fn summary_as_of_history_sql(placeholder: impl Fn(usize) -> String) -> String {
    let (p, u) = (placeholder(1), placeholder(2));
    format!(
        "SELECT c.type_key, r.year, r.codice_tributo,
                CASE WHEN t.counterparty = {p} THEN 1 ELSE 0 END AS received,
                t.kind,
                CASE WHEN t.phase = 'posted' THEN 'accepted'
                     WHEN a.id IS NULL OR a.at > {u} THEN 'pending'
                     WHEN a.phase = 'post_pending' THEN 'accepted'
                     WHEN a.party = t.party THEN 'annulled'
                     ELSE 'refused' END AS state,
                CAST(SUM(t.amount) AS BIGINT)
           FROM transfers t
           JOIN rate r ON r.id = t.rata
           JOIN credits c ON c.id = r.credit
           LEFT JOIN transfers a ON a.pending_id = t.id
          WHERE (t.party = {p} OR t.counterparty = {p}) AND t.phase IN ('posted', 'pending') AND t.at <= {u}
          GROUP BY c.type_key, r.year, r.codice_tributo, received, t.kind, state"
    )
}

/// The last instant of a Rome day, in microseconds.
pub fn end_of_day_micros(d: NaiveDate) -> i64 {
    cessio_core::time::rome_end_of_day(d).timestamp_micros()
}

/// What the SQLite writer runs for one delta of a party whose days are kept: the delta
/// added to the key's rows from its day on, naming the days it changed. In the usual batch
/// the day's row exists and is the key's last, so that is all. Otherwise the day's row is
/// created with the sum before it plus the delta. `?1`..`?7` the key, `?8` the day, `?9`
/// the delta.
pub const DAY_ADD_SQL: &str = "UPDATE party_summary_days SET amount = amount + ?9
     WHERE party = ?1 AND type_key = ?2 AND year = ?3 AND codice_tributo = ?4
       AND received = ?5 AND kind = ?6 AND state = ?7 AND day >= ?8
     RETURNING day";
pub const DAY_INSERT_SQL: &str = "INSERT INTO party_summary_days (party, type_key, year, codice_tributo, received, kind, state, day, amount)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 + COALESCE((SELECT d.amount FROM party_summary_days d
         WHERE d.party = ?1 AND d.type_key = ?2 AND d.year = ?3 AND d.codice_tributo = ?4
           AND d.received = ?5 AND d.kind = ?6 AND d.state = ?7 AND d.day < ?8
         ORDER BY d.day DESC LIMIT 1), 0))";

/// The transfers as `verify` recomputes the kept days from them: each movement with its
/// rata's keys and its answer, if any.
pub const HISTORY_SQL: &str =
    "SELECT t.party, t.counterparty, c.type_key, r.year, r.codice_tributo, t.kind, t.phase, t.at,
        t.amount, a.at, a.phase, a.party
   FROM transfers t
   JOIN rate r ON r.id = t.rata
   JOIN credits c ON c.id = r.credit
   LEFT JOIN transfers a ON a.pending_id = t.id
  WHERE t.phase IN ('posted', 'pending')";

/// The kept rows in key and day order.
pub const STORED_SQL: &str =
    "SELECT party, type_key, year, codice_tributo, received, kind, state, day, amount
   FROM party_summary_days
  ORDER BY party, type_key, year, codice_tributo, received, kind, state, day";

/// One party's kept rows in key and day order, `p` its placeholder: `verify` compares a
/// party at a time, so that it holds one party's days, not the register's.
pub fn stored_of_party_sql(p: &str) -> String {
    format!(
        "SELECT party, type_key, year, codice_tributo, received, kind, state, day, amount
   FROM party_summary_days WHERE party = {p}
  ORDER BY type_key, year, codice_tributo, received, kind, state, day"
    )
}

/// One party's movements, either side, as [`HISTORY_SQL`] reads them.
pub fn history_of_party_sql(p: &str) -> String {
    format!("{HISTORY_SQL} AND (t.party = {p} OR t.counterparty = {p})")
}

/// Every party with a kept row, found by one index seek per party (a loose index scan)
/// rather than a walk over every row. `verify` checks these besides the kept kinds, so
/// that a row added for a party whose days are not kept is found.
pub const STORED_PARTIES_SQL: &str = "WITH RECURSIVE p(x) AS (
    SELECT MIN(party) FROM party_summary_days
    UNION ALL
    SELECT (SELECT MIN(party) FROM party_summary_days WHERE party > p.x) FROM p WHERE p.x IS NOT NULL
  ) SELECT x FROM p WHERE x IS NOT NULL";

/// The parties `verify` compares, in order, each with whether its days are kept: the kept
/// kinds' and any other that has rows.
pub fn parties_to_check(
    kept: impl IntoIterator<Item = PartyId>,
    stored: impl IntoIterator<Item = PartyId>,
) -> Vec<(PartyId, bool)> {
    let mut all: BTreeMap<PartyId, bool> = kept.into_iter().map(|p| (p, true)).collect();
    for p in stored {
        all.entry(p).or_insert(false);
    }
    all.into_iter().collect()
}

/// One row of [`HISTORY_SQL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryMovement {
    pub party: Option<PartyId>,
    pub counterparty: Option<PartyId>,
    pub type_key: String,
    pub year: i64,
    pub codice_tributo: String,
    pub kind: String,
    pub posted: bool,
    pub at_micros: i64,
    pub amount: i64,
    /// The answer's instant, whether it accepted, and whether the movement's own party gave
    /// it (an annulment).
    pub answer: Option<(i64, bool, bool)>,
}

/// The kept days recomputed from the history, one movement at a time.
#[derive(Debug, Default)]
pub struct DaysRecompute {
    kept: HashSet<PartyId>,
    deltas: BTreeMap<(SummaryKey, i32), i64>,
}

impl DaysRecompute {
    /// For the parties whose days are kept ([`kept_parties_sql`]).
    pub fn new(kept: impl IntoIterator<Item = PartyId>) -> Self {
        DaysRecompute {
            kept: kept.into_iter().collect(),
            deltas: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, m: &HistoryMovement) {
        let registered = if m.posted { "accepted" } else { "pending" };
        self.sides(m, registered, rome_day(m.at_micros), 1);
        if let Some((at, accepted, by_its_party)) = m.answer {
            let day = rome_day(at);
            self.sides(m, "pending", day, -1);
            self.sides(m, answer_state(accepted, by_its_party), day, 1);
        }
    }

    fn sides(&mut self, m: &HistoryMovement, state: &str, day: i32, sign: i64) {
        let amount = m.amount.saturating_mul(sign);
        let mut add = |party: PartyId, received: i64| {
            if !self.kept.contains(&party) {
                return;
            }
            let key = (
                party,
                m.type_key.clone(),
                m.year,
                m.codice_tributo.clone(),
                received,
                m.kind.clone(),
                state.to_owned(),
            );
            *self.deltas.entry((key, day)).or_default() += amount;
        };
        if let Some(p) = m.party
            && m.counterparty != Some(p)
        {
            add(p, 0);
        }
        if let Some(c) = m.counterparty {
            add(c, 1);
        }
    }

    /// The rows the writer keeps, as steps: each key's sum at the end of each day it
    /// changed on.
    pub fn finish(self) -> Vec<DayRow> {
        let mut rows = Vec::with_capacity(self.deltas.len());
        let mut current: Option<(SummaryKey, i64)> = None;
        for ((key, day), delta) in self.deltas {
            let sum = match &current {
                Some((k, sum)) if *k == key => sum + delta,
                _ => delta,
            };
            rows.push((key.clone(), day, sum));
            current = Some((key, sum));
        }
        steps(rows)
    }
}

/// Rows in key and day order with the rows that repeat the sum before them (zero before a
/// key's first row) left out: what F1 can tell apart.
pub fn steps(rows: impl IntoIterator<Item = DayRow>) -> Vec<DayRow> {
    let mut out: Vec<DayRow> = Vec::new();
    let mut last: Option<(SummaryKey, i64)> = None;
    for (key, day, amount) in rows {
        let before = match &last {
            Some((k, sum)) if *k == key => *sum,
            _ => 0,
        };
        if amount != before {
            out.push((key.clone(), day, amount));
        }
        last = Some((key, amount));
    }
    out
}

/// Reports the first differences between the kept days (in key and day order) and the
/// ones recomputed from the history, as steps.
pub fn check(
    report: &mut VerifyReport,
    stored: impl IntoIterator<Item = DayRow>,
    recomputed: Vec<DayRow>,
) {
    let stored = steps(stored);
    let mut expected: BTreeMap<(SummaryKey, i32), i64> = recomputed
        .into_iter()
        .map(|(k, d, a)| ((k, d), a))
        .collect();
    let mut found: Vec<((SummaryKey, i32), i64, Option<i64>)> = Vec::new();
    for (key, day, amount) in stored {
        let want = expected.remove(&(key.clone(), day));
        if want != Some(amount) {
            found.push(((key, day), amount, want));
        }
    }
    found.extend(expected.into_iter().map(|(k, want)| (k, 0, Some(want))));
    found.sort();
    for ((key, day), stored, want) in found {
        if report.problems.len() >= MAX_PROBLEMS {
            break;
        }
        let (party, type_key, year, code, received, kind, state) = key;
        let want = want.map_or_else(|| "no change that day".to_owned(), |w| w.to_string());
        report.problems.push(Problem::Summary {
            party,
            reason: format!(
                "as of {day}, {type_key} {year} {code} {} {kind} {state}: stored {stored}, history {want}",
                if received == 1 { "received" } else { "sent" }
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn a_day_number_names_its_date_and_back() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).expect("a leap day");
        assert_eq!(day_number(d), 20_240_229);
        assert_eq!(day_of_number(20_240_229), Some(d));
        assert_eq!(day_of_number(0), None);
        assert_eq!(day_of_number(20_230_229), None, "no such day");
    }

    fn movement(at: i64, amount: i64, answer: Option<(i64, bool, bool)>) -> HistoryMovement {
        HistoryMovement {
            party: Some(1),
            counterparty: Some(2),
            type_key: "superbonus".into(),
            year: 2024,
            codice_tributo: "7701".into(),
            kind: "cession".into(),
            posted: false,
            at_micros: at,
            amount,
            answer,
        }
    }

    fn key(party: PartyId, received: i64, state: &str) -> SummaryKey {
        (
            party,
            "superbonus".into(),
            2024,
            "7701".into(),
            received,
            "cession".into(),
            state.into(),
        )
    }

    fn micros(day: u32, hour: u32) -> i64 {
        Utc.with_ymd_and_hms(2024, 3, day, hour, 0, 0)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn the_rome_day_is_the_one_that_counts() {
        // 23:00 UTC is midnight in Rome in winter, and 22:00 UTC in summer.
        assert_eq!(rome_day(micros(1, 22)), 20_240_301);
        assert_eq!(rome_day(micros(1, 23)), 20_240_302);
        let summer = Utc.with_ymd_and_hms(2024, 7, 1, 22, 0, 0).unwrap();
        assert_eq!(rome_day(summer.timestamp_micros()), 20_240_702);
    }

    /// A cession registered on the 2nd and accepted on the 4th, another registered on the
    /// 3rd and refused by its cessionario on the same day: each side's sums step on the days
    /// they changed, and a day that changes nothing is no row.
    #[test]
    fn the_history_gives_each_keys_sum_on_the_days_it_changed() {
        let mut days = DaysRecompute::new([1, 2]);
        days.add(&movement(
            micros(2, 9),
            60,
            Some((micros(4, 9), true, false)),
        ));
        days.add(&movement(
            micros(3, 9),
            10,
            Some((micros(3, 18), false, false)),
        ));
        let rows = days.finish();
        let sent: Vec<_> = rows
            .iter()
            .filter(|(k, ..)| k.0 == 1)
            .map(|(k, d, a)| (k.6.as_str(), *d, *a))
            .collect();
        assert_eq!(
            sent,
            vec![
                ("accepted", 20_240_304, 60),
                ("pending", 20_240_302, 60),
                ("pending", 20_240_304, 0),
                ("refused", 20_240_303, 10),
            ]
        );
        assert_eq!(rows.len(), 8, "the other side mirrors it: {rows:?}");
    }

    /// Rows that repeat the sum before them answer nothing: neither their presence nor
    /// their absence is a difference; a changed sum, a missing step or an extra one is.
    #[test]
    fn verify_compares_the_kept_days_as_steps() {
        let recomputed = vec![
            (key(1, 0, "pending"), 20_240_302, 60),
            (key(1, 0, "pending"), 20_240_304, 0),
        ];
        let report = |stored: Vec<DayRow>| {
            let mut r = VerifyReport::default();
            check(&mut r, stored, recomputed.clone());
            r.problems
        };
        let with_repeats = vec![
            (key(1, 0, "pending"), 20_240_302, 60),
            (key(1, 0, "pending"), 20_240_303, 60),
            (key(1, 0, "pending"), 20_240_304, 0),
            (key(1, 0, "pending"), 20_240_305, 0),
        ];
        assert!(report(with_repeats).is_empty());
        let changed = vec![
            (key(1, 0, "pending"), 20_240_302, 61),
            (key(1, 0, "pending"), 20_240_304, 0),
        ];
        let problems = report(changed);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .to_string()
                .starts_with("party 1: F1 summary as of 20240302"),
            "{}",
            problems[0]
        );
        assert_eq!(
            report(vec![(key(1, 0, "pending"), 20_240_302, 60)]).len(),
            1
        );
        let extra = vec![
            (key(1, 0, "pending"), 20_240_302, 60),
            (key(1, 0, "pending"), 20_240_304, 0),
            (key(1, 0, "accepted"), 20_240_304, 5),
        ];
        assert_eq!(report(extra).len(), 1);
    }
}
