//! `verify`'s side of the log: every projection rebuilt from the log and compared with its
//! table row by row.
//!
//! What is kept of a rebuilt row is its fingerprint ([`digest`], 16 bytes of SHA-256 over
//! the row's canonical values), not the row: the check's memory is then a few dozen bytes
//! per row of the register, whatever the rows hold, where whole rows cost ten times that.
//! A stored row whose fingerprint differs is kept (at most [`crate::verify::MAX_PROBLEMS`]
//! of them), and the log is read a second time for the images of those rows alone
//! ([`RowDetails`]), so the report still names table, key, column, expected and found. A
//! register that verifies reads the log once.
//!
//! An idempotency key recorded twice is found by the database ([`DUPLICATE_KEYS_SQL`],
//! over the log's unique index) rather than by a map of every key in memory.

use std::collections::HashMap;

use cessio_core::ledger::{GENESIS_HASH, Hash, hash_from_hex};
use sha2::{Digest as _, Sha256};

use crate::engine::Head;
use crate::id_map::IdMap;
use crate::log::{ACCOUNTS, Body, CREDITS, Entry, OPERATIONS, PARTIES, RATE, TableSpec, Value};
use crate::verify::{MAX_PROBLEMS, Problem};

/// What `verify` keeps of a row rebuilt from the log.
pub type Digest = [u8; 16];

/// What `verify` keeps of a transfer's chain hash the log recorded.
pub type Anchor = [u8; 16];

pub fn anchor(hash: &Hash) -> Anchor {
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash[..16]);
    out
}

/// The fingerprint of a row in canonical form: each value tagged by kind, text prefixed
/// by its length, so that no two different rows encode alike.
pub fn digest(row: &[Value]) -> Digest {
    let mut h = Sha256::new();
    for v in row {
        match v {
            Value::Null => h.update([0u8]),
            Value::Int(i) => {
                h.update([1u8]);
                h.update(i.to_le_bytes());
            }
            Value::Text(s) => {
                h.update([2u8]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    let full = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The idempotency keys the log records more than once, with the first and the last entry
/// that record each: `(key, first seq, last seq)`. The writer decides retries on the
/// log's unique index, so a row here means the register was altered beneath it.
pub const DUPLICATE_KEYS_SQL: &str = "SELECT idempotency_key, MIN(seq), MAX(seq) FROM log
  WHERE idempotency_key IS NOT NULL
  GROUP BY idempotency_key HAVING COUNT(*) > 1
  ORDER BY MIN(seq) LIMIT 100";

/// The expected content of every projection, rebuilt from the log in order.
#[derive(Debug, Default)]
pub struct Projections {
    tables: HashMap<&'static str, IdMap<Digest>>,
    /// Per table, the head's counter: its ids are kept in a vector up to it.
    limits: HashMap<&'static str, i64>,
    /// Where the log anchors the transfers' chain: (transfer id, the first half of its
    /// chain hash), in log order, which is the transfers' order. Half a SHA-256 is as far
    /// beyond a forger's reach as a row's fingerprint, at 24 bytes an entry that moved
    /// money where a map of whole hashes took three times that.
    pub anchors: Vec<(i64, Anchor)>,
    /// The last entry read and its hash.
    pub last_seq: i64,
    pub last_hash: Hash,
    pub entries: u64,
    pub problems: Vec<Problem>,
}

impl Projections {
    pub fn new() -> Projections {
        Projections {
            last_hash: GENESIS_HASH,
            ..Projections::default()
        }
    }

    /// For a register whose head is `head`: the tables it counts ids for are kept by id.
    pub fn for_head(head: &Head) -> Projections {
        let limits = [
            (PARTIES.name, head.last_party),
            (CREDITS.name, head.last_credit),
            (RATE.name, head.last_rata),
            (ACCOUNTS.name, head.last_account),
            (OPERATIONS.name, head.last_operation),
        ];
        Projections {
            limits: limits.into_iter().collect(),
            ..Projections::new()
        }
    }

    fn problem(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    /// Feed entries in `seq` order.
    pub fn feed(&mut self, e: &Entry) {
        self.entries += 1;
        if e.seq != self.last_seq + 1 {
            self.problem(Problem::LogGap {
                expected: self.last_seq + 1,
                found: e.seq,
            });
        }
        if e.chain(&self.last_hash) != e.hash {
            self.problem(Problem::LogHash { seq: e.seq });
        }
        // Continue from the stored hash so that one edited entry is reported once.
        self.last_seq = e.seq;
        self.last_hash = e.hash;
        if let Some(row) = e.operation_row() {
            self.put(OPERATIONS.name, &row);
        }
        let Some(body) = self.body(e) else {
            return;
        };
        for p in body.puts {
            match TableSpec::by_name(&p.table) {
                Some(spec) if p.row.len() == spec.columns.len() => self.put(spec.name, &p.row),
                _ => self.problem(Problem::LogEntry {
                    seq: e.seq,
                    reason: format!("row of unknown table or shape {:?}", p.table),
                }),
            }
        }
        if let Some((id, hex)) = body.transfers {
            match hash_from_hex(&hex) {
                Some(hash) => self.anchors.push((id, anchor(&hash))),
                None => self.problem(Problem::LogEntry {
                    seq: e.seq,
                    reason: format!("transfer {id}'s hash {hex:?} is not a SHA-256"),
                }),
            }
        }
    }

    fn body(&mut self, e: &Entry) -> Option<Body> {
        match serde_json::from_str(&e.body) {
            Ok(b) => Some(b),
            Err(err) => {
                self.problem(Problem::LogEntry {
                    seq: e.seq,
                    reason: format!("unreadable body: {err}"),
                });
                None
            }
        }
    }

    fn put(&mut self, table: &'static str, row: &[Value]) {
        let Some(id) = row.first().and_then(Value::as_int) else {
            return;
        };
        let limit = self.limits.get(table).copied().unwrap_or(0);
        self.tables
            .entry(table)
            .or_insert_with(|| IdMap::new(limit))
            .insert(id, digest(row));
    }

    /// Reports each idempotency key [`DUPLICATE_KEYS_SQL`] found, at the later entry.
    pub fn duplicate_keys(&mut self, found: impl IntoIterator<Item = (String, i64, i64)>) {
        for (key, first, last) in found {
            self.problem(Problem::LogEntry {
                seq: last,
                reason: format!("idempotency key {key:?} already recorded by entry {first}"),
            });
        }
    }

    /// The expected rows of one table, taken out to be compared.
    pub fn take(&mut self, spec: &TableSpec) -> IdMap<Digest> {
        self.tables.remove(spec.name).unwrap_or_default()
    }

    /// The highest id the log gives each table (what the head's counters must say).
    pub fn last_id(&self, spec: &TableSpec) -> i64 {
        self.tables
            .get(spec.name)
            .and_then(IdMap::last_id)
            .unwrap_or(0)
    }
}

/// Compares a stored table, fed in id order, with its projection from the log.
pub struct TableCheck {
    spec: &'static TableSpec,
    expected: Box<dyn Iterator<Item = (i64, Digest)> + Send>,
    next: Option<(i64, Digest)>,
    rows: u64,
    problems: Vec<Problem>,
    /// The rows found different from the log's: the index of each one's problem, and the
    /// row, to be named column by column once the log gives the expected image.
    differing: Vec<(usize, Vec<Value>)>,
}

impl std::fmt::Debug for TableCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCheck")
            .field("table", &self.spec.name)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl TableCheck {
    pub fn new(spec: &'static TableSpec, expected: IdMap<Digest>) -> TableCheck {
        let mut expected: Box<dyn Iterator<Item = (i64, Digest)> + Send> =
            Box::new(expected.into_sorted());
        let next = expected.next();
        TableCheck {
            spec,
            expected,
            next,
            rows: 0,
            problems: Vec::new(),
            differing: Vec::new(),
        }
    }

    fn problem(&mut self, p: Problem) -> bool {
        let room = self.problems.len() < MAX_PROBLEMS;
        if room {
            self.problems.push(p);
        }
        room
    }

    fn missing(&mut self, id: i64) {
        self.problem(Problem::Row {
            table: self.spec.name,
            key: id,
            column: None,
            expected: "a row".into(),
            found: "none (the row was deleted)".into(),
        });
    }

    /// Feed stored rows in id order.
    pub fn feed(&mut self, row: Vec<Value>) {
        self.rows += 1;
        let Some(id) = row.first().and_then(Value::as_int) else {
            self.problem(Problem::Row {
                table: self.spec.name,
                key: 0,
                column: Some("id"),
                expected: "an integer id".into(),
                found: row.first().map(Value::to_string).unwrap_or_default(),
            });
            return;
        };
        while let Some((want, _)) = &self.next {
            if *want >= id {
                break;
            }
            let want = *want;
            self.missing(want);
            self.next = self.expected.next();
        }
        match self.next.take() {
            Some((want, expected)) if want == id => {
                self.next = self.expected.next();
                if digest(&row) != expected {
                    let at = self.problems.len();
                    let recorded = self.problem(Problem::Row {
                        table: self.spec.name,
                        key: id,
                        column: None,
                        expected: "the row the log wrote".into(),
                        found: "a different row".into(),
                    });
                    if recorded {
                        self.differing.push((at, row));
                    }
                }
            }
            other => {
                self.next = other;
                self.problem(Problem::Row {
                    table: self.spec.name,
                    key: id,
                    column: None,
                    expected: "no row (the log never wrote it)".into(),
                    found: "a row".into(),
                });
            }
        }
    }

    pub fn finish(mut self) -> TableResult {
        while let Some((id, _)) = self.next.take() {
            self.missing(id);
            self.next = self.expected.next();
        }
        TableResult {
            spec: self.spec,
            rows: self.rows,
            problems: self.problems,
            differing: self.differing,
        }
    }
}

/// One table compared: its rows counted and what differs, the rows that differ still to
/// be named column by column ([`TableResult::resolve`]).
#[derive(Debug)]
pub struct TableResult {
    spec: &'static TableSpec,
    pub rows: u64,
    problems: Vec<Problem>,
    differing: Vec<(usize, Vec<Value>)>,
}

impl TableResult {
    /// The problems, each differing row named by the columns that differ from the image
    /// `details` found in the log.
    pub fn resolve(self, details: &RowDetails) -> (u64, Vec<Problem>) {
        let mut found: HashMap<usize, Vec<Value>> = self.differing.into_iter().collect();
        let mut out = Vec::with_capacity(self.problems.len());
        for (i, p) in self.problems.into_iter().enumerate() {
            let (Some(row), Problem::Row { key, .. }) = (found.remove(&i), &p) else {
                out.push(p);
                continue;
            };
            let Some(expected) = details.image(self.spec.name, *key) else {
                out.push(p);
                continue;
            };
            let before = out.len();
            for (c, (column, _)) in self.spec.columns.iter().enumerate() {
                let found = row.get(c).unwrap_or(&Value::Null);
                let want = expected.get(c).unwrap_or(&Value::Null);
                if found != want {
                    out.push(Problem::Row {
                        table: self.spec.name,
                        key: *key,
                        column: Some(column),
                        expected: want.to_string(),
                        found: found.to_string(),
                    });
                }
            }
            // The fingerprints differ but no column does: cannot happen unless the
            // fingerprint or the log changed beneath the check, so say so as found.
            if out.len() == before {
                out.push(p);
            }
        }
        (self.rows, out)
    }
}

/// The images the log last wrote for the rows that differ, read by a second pass over
/// the log: only a register with differences pays for it.
#[derive(Debug, Default)]
pub struct RowDetails {
    wanted: HashMap<(&'static str, i64), Option<Vec<Value>>>,
}

impl RowDetails {
    pub fn of(results: &[TableResult]) -> RowDetails {
        let mut wanted = HashMap::new();
        for r in results {
            for (i, _) in &r.differing {
                if let Some(Problem::Row { key, .. }) = r.problems.get(*i) {
                    wanted.insert((r.spec.name, *key), None);
                }
            }
        }
        RowDetails { wanted }
    }

    /// Whether any row needs the log read again.
    pub fn needed(&self) -> bool {
        !self.wanted.is_empty()
    }

    /// Feed entries in `seq` order; the last image of each wanted row stays.
    pub fn feed(&mut self, e: &Entry) {
        if let Some(row) = e.operation_row() {
            self.keep(OPERATIONS.name, row);
        }
        let Ok(body) = serde_json::from_str::<Body>(&e.body) else {
            return;
        };
        for p in body.puts {
            if let Some(spec) = TableSpec::by_name(&p.table) {
                self.keep(spec.name, p.row);
            }
        }
    }

    fn keep(&mut self, table: &'static str, row: Vec<Value>) {
        let Some(id) = row.first().and_then(Value::as_int) else {
            return;
        };
        if let Some(slot) = self.wanted.get_mut(&(table, id)) {
            *slot = Some(row);
        }
    }

    fn image(&self, table: &'static str, key: i64) -> Option<&Vec<Value>> {
        self.wanted.get(&(table, key)).and_then(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{AUDIT_LOG, NewEntry, Put, seal};

    fn entry(kind: &str) -> NewEntry {
        NewEntry {
            operation: None,
            kind: kind.into(),
            actor: "op".into(),
            at_micros: 1,
            body: Body {
                puts: vec![Put::new(
                    &AUDIT_LOG,
                    vec![
                        Value::Int(1),
                        Value::Int(1),
                        Value::text("op"),
                        Value::text(kind),
                        Value::text(""),
                    ],
                )],
                transfers: None,
            },
        }
    }

    #[test]
    fn r_history_log_chain_covers_every_column() {
        let (sealed, head) = seal((0, GENESIS_HASH), vec![entry("a"), entry("b")]);
        assert_eq!(head.0, 2);
        let mut p = Projections::new();
        for e in &sealed {
            p.feed(e);
        }
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let mut edited = sealed.clone();
        edited[0].actor = "someone else".into();
        let mut p = Projections::new();
        for e in &edited {
            p.feed(e);
        }
        assert_eq!(p.problems, vec![Problem::LogHash { seq: 1 }]);
    }

    #[test]
    fn r_history_table_check_names_table_key_and_column() {
        let (sealed, _) = seal((0, GENESIS_HASH), vec![entry("a"), entry("b")]);
        let mut p = Projections::new();
        for e in &sealed {
            p.feed(e);
        }
        // Entry "b" rewrote audit row 1; rows 2 and 3 as the log would have them.
        let mut expected = p.take(&AUDIT_LOG);
        let row = |id: i64, action: &str| {
            vec![
                Value::Int(id),
                Value::Int(1),
                Value::text("op"),
                Value::text(action),
                Value::text(""),
            ]
        };
        expected.insert(2, digest(&row(2, "b")));
        let mut c = TableCheck::new(&AUDIT_LOG, expected);
        c.feed(row(1, "x"));
        c.feed(row(3, "c"));
        let result = c.finish();
        let mut details = RowDetails::of(std::slice::from_ref(&result));
        assert!(details.needed());
        for e in &sealed {
            details.feed(e);
        }
        let (rows, problems) = result.resolve(&details);
        assert_eq!(rows, 2);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "audit_log 1 column action: expected \"b\", found \"x\"",
                "audit_log 2: expected a row, found none (the row was deleted)",
                "audit_log 3: expected no row (the log never wrote it), found a row",
            ]
        );
    }

    #[test]
    fn r_history_a_register_that_verifies_reads_the_log_once() {
        let (sealed, _) = seal((0, GENESIS_HASH), vec![entry("a")]);
        let mut p = Projections::new();
        for e in &sealed {
            p.feed(e);
        }
        let mut c = TableCheck::new(&AUDIT_LOG, p.take(&AUDIT_LOG));
        c.feed(vec![
            Value::Int(1),
            Value::Int(1),
            Value::text("op"),
            Value::text("a"),
            Value::text(""),
        ]);
        let result = c.finish();
        assert!(!RowDetails::of(std::slice::from_ref(&result)).needed());
        assert_eq!(result.resolve(&RowDetails::default()), (1, Vec::new()));
    }

    #[test]
    fn r_history_fingerprints_tell_apart_rows_that_would_print_alike() {
        let text = |s: &str| Value::text(s);
        assert_ne!(
            digest(&[text("ab"), text("c")]),
            digest(&[text("a"), text("bc")])
        );
        assert_ne!(digest(&[Value::Int(1)]), digest(&[text("1")]));
        assert_ne!(digest(&[Value::Null]), digest(&[text("")]));
    }

    #[test]
    fn r_history_a_duplicated_idempotency_key_is_named_at_its_later_entry() {
        let mut p = Projections::new();
        p.duplicate_keys([("k".to_string(), 3, 9)]);
        assert_eq!(
            p.problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec!["log entry 9: idempotency key \"k\" already recorded by entry 3"]
        );
    }

    #[test]
    fn values_read_back_as_written() {
        let row = vec![
            Value::Null,
            Value::Int(-7),
            Value::Int(i64::MAX),
            Value::text("è \"q\""),
        ];
        let json = serde_json::to_string(&row).expect("a row serialises");
        let back: Vec<Value> = serde_json::from_str(&json).expect("a row reads back");
        assert_eq!(back, row);
        assert!(serde_json::from_str::<Value>("18446744073709551615").is_err());
        assert!(serde_json::from_str::<Value>("1.5").is_err());
    }
}
