//! The register's log: one hash-chained entry per state change, written by the
//! transaction that makes the change. Every table that serves reads is a projection of it:
//! an entry carries the images of the rows its change wrote (`Put`: the whole row after
//! the change), and the transfers it appended are tied to it by the hash of the last one
//! (the transfers keep their own chain, which `verify` replays for the balances).
//!
//! `verify` rebuilds each projection from the log ([`Projections`]) and compares it with
//! the stored table row by row ([`TableCheck`]), naming table, key, column, expected and
//! found. The idempotency of operations is decided on the log too (its
//! `idempotency_key` column, unique), so removing a row of `operations` cannot make a
//! retried request apply twice.
//!
//! Rows are compared in one canonical form on both backends ([`Value`]): integers,
//! booleans as 0/1, dates as `YYYY-MM-DD`, text. Each table's columns and their kinds are
//! declared once here ([`TABLES`]); the backends build their `SELECT` lists from them.
//!
//! An entry records an operation (idempotency key, request hash, acting user, party, time
//! and receipt) or a change made outside one (a user created, a PIN failure counted, a
//! token issued or revoked, the deceased flag). Its hash is SHA-256 of the previous entry's
//! hash and all its columns; the head keeps the last entry (`log_seq`, `log_hash`). The
//! writer appends one entry per operation of a batch ([`plan_entries`]: the rows the engine
//! planned, and those the database gave ids to, read back), chained after the head
//! ([`seal`]), before its one commit. A change made outside the writer's batches runs in a
//! transaction of its own that takes the same lock (SQLite's write lock, PostgreSQL's head
//! row) and appends its entry before committing; a right PIN with no failure to clear
//! writes nothing. A register written before the log records its rows as the log's first
//! entries when opened ([`adoption_entries`]).

use std::collections::HashMap;

use cessio_core::ledger::{GENESIS_HASH, Hash, hash_to_hex};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{OperationRow, Plan};
use crate::model::{Credit, NewOperatorEvent, Party, Rata};
use cessio_core::ledger::Account;

/// One column's value in the canonical form both backends are read into.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// Read by hand rather than derived: an untagged enum buffers each value and tries every
/// variant in turn, building an error for each miss, and `verify` reads every value the
/// log ever wrote.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("null, an integer or a string")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
                i64::try_from(v)
                    .map(Value::Int)
                    .map_err(|_| E::custom(format!("integer {v} out of range")))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Value, E> {
                Ok(Value::Text(v))
            }
        }
        d.deserialize_any(Visit)
    }
}

impl Value {
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    pub fn opt_int(v: Option<i64>) -> Value {
        v.map_or(Value::Null, Value::Int)
    }

    pub fn opt_text(v: Option<impl Into<String>>) -> Value {
        v.map_or(Value::Null, |s| Value::Text(s.into()))
    }

    pub fn bool(b: bool) -> Value {
        Value::Int(i64::from(b))
    }

    pub fn date(d: NaiveDate) -> Value {
        Value::Text(d.to_string())
    }

    pub fn micros(t: DateTime<Utc>) -> Value {
        Value::Int(t.timestamp_micros())
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// How a column is stored, which says how each backend reads it into a [`Value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    Int,
    Text,
    /// INTEGER 0/1 on SQLite, BOOLEAN on PostgreSQL.
    Bool,
    /// TEXT on SQLite, DATE on PostgreSQL.
    Date,
}

/// A projection table: its name and its columns, the key (`id`) first.
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColType)],
}

impl TableSpec {
    /// The key column: the first, a row's id in every table but `cession_paths`, whose
    /// key is its cession's transfer.
    pub fn key(&self) -> &'static str {
        self.columns.first().map_or("id", |(c, _)| c)
    }

    /// The `SELECT` list in canonical order, each column through `expr` (the backend's cast).
    pub fn select_list(&self, expr: impl Fn(&str, ColType) -> String) -> String {
        self.columns
            .iter()
            .map(|(c, t)| expr(c, *t))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn by_name(name: &str) -> Option<&'static TableSpec> {
        TABLES.iter().copied().find(|t| t.name == name)
    }
}

use ColType::{Bool, Date, Int, Text};

pub const PARTIES: TableSpec = TableSpec {
    name: "parties",
    columns: &[
        ("id", Int),
        ("cf", Text),
        ("name", Text),
        ("kind", Text),
        ("deceased", Bool),
        ("created_at", Int),
    ],
};
pub const CREDITS: TableSpec = TableSpec {
    name: "credits",
    columns: &[
        ("id", Int),
        ("protocol", Text),
        ("type_key", Text),
        ("beneficiary", Int),
        ("holder", Int),
        ("origin", Text),
        ("expense_year", Int),
        ("communicated_on", Date),
        ("tracciabile", Bool),
        ("created_at", Int),
        ("split_of", Int),
        ("no_tax_area", Bool),
    ],
};
pub const RATE: TableSpec = TableSpec {
    name: "rate",
    columns: &[
        ("id", Int),
        ("credit", Int),
        ("idx", Int),
        ("year", Int),
        ("amount", Int),
        ("codice_tributo", Text),
        ("codice_univoco", Text),
    ],
};
/// An account's identity: its balances and last transfer are recomputed from the
/// transfers, which `verify` replays.
pub const ACCOUNTS: TableSpec = TableSpec {
    name: "accounts",
    columns: &[("id", Int), ("rata", Int), ("kind", Text), ("party", Int)],
};
pub const OPERATIONS: TableSpec = TableSpec {
    name: "operations",
    columns: &[
        ("id", Int),
        ("idempotency_key", Text),
        ("request_hash", Text),
        ("acting_user", Text),
        ("on_behalf_of", Int),
        ("at", Int),
        ("kind", Text),
        ("receipt", Text),
    ],
};
pub const USERS: TableSpec = TableSpec {
    name: "users",
    columns: &[
        ("id", Int),
        ("username", Text),
        ("display_name", Text),
        ("password_hash", Text),
        ("pin_hash", Text),
        ("pin_failures", Int),
        ("party", Int),
        ("role", Text),
        ("created_at", Int),
    ],
};
pub const DELEGATIONS: TableSpec = TableSpec {
    name: "delegations",
    columns: &[
        ("id", Int),
        ("user_id", Int),
        ("party", Int),
        ("created_at", Int),
        ("revoked_at", Int),
        ("scope", Text),
        ("valid_until", Date),
        ("granted_by", Text),
        ("revoked_by", Text),
        ("operation", Int),
    ],
};
pub const API_TOKENS: TableSpec = TableSpec {
    name: "api_tokens",
    columns: &[
        ("id", Int),
        ("user_id", Int),
        ("token_hash", Text),
        ("name", Text),
        ("created_at", Int),
        ("revoked_at", Int),
    ],
};
pub const AUDIT_LOG: TableSpec = TableSpec {
    name: "audit_log",
    columns: &[
        ("id", Int),
        ("at", Int),
        ("actor", Text),
        ("action", Text),
        ("detail", Text),
    ],
};
pub const F24_CHOICES: TableSpec = TableSpec {
    name: "f24_choices",
    columns: &[
        ("id", Int),
        ("operation", Int),
        ("rata", Int),
        ("party", Int),
        ("declared", Bool),
        ("on_date", Date),
        ("at", Int),
    ],
};
pub const DEBT_POSITIONS: TableSpec = TableSpec {
    name: "debt_positions",
    columns: &[
        ("id", Int),
        ("operation", Int),
        ("party", Int),
        ("position", Text),
        ("at", Int),
    ],
};
pub const OPERATOR_EVENTS: TableSpec = TableSpec {
    name: "operator_events",
    columns: &[
        ("id", Int),
        ("kind", Text),
        ("at", Int),
        ("actor", Text),
        ("transfer", Int),
        ("party", Int),
        ("counterparty", Int),
        ("data", Text),
    ],
};
/// The §5 path each cession carries (`crate::paths`), keyed by the cession's transfer.
pub const CESSION_PATHS: TableSpec = TableSpec {
    name: "cession_paths",
    columns: &[
        ("transfer", Int),
        ("before_cutoff", Int),
        ("from_cutoff", Int),
        ("bank_client", Int),
        ("received_on", Int),
    ],
};

/// Every table rebuilt from the log and compared by `verify`. The others: `transfers`
/// (their own chain, anchored in the log), the balances and `last_transfer` of
/// `accounts`, `party_summary`, `party_feed` and `holding_paths` (recomputed from the
/// transfers, and for the paths from `cession_paths`),
/// `ledger_head` (compared with the log's last entry and the projections' last ids).
/// Outside the register: `web_sessions`, `login_flows` and `login_attempts` (the web
/// layer's short-lived state, which expires and is swept, and decides no fact of the
/// register), `webhooks` (where to push a party's events and how far each got: it
/// decides no fact of the register either, and holds a secret the log must not carry)
/// and `schema_migrations`.
pub const TABLES: &[&TableSpec] = &[
    &PARTIES,
    &CREDITS,
    &RATE,
    &ACCOUNTS,
    &OPERATIONS,
    &USERS,
    &DELEGATIONS,
    &API_TOKENS,
    &AUDIT_LOG,
    &F24_CHOICES,
    &DEBT_POSITIONS,
    &OPERATOR_EVENTS,
    &CESSION_PATHS,
];

/// One row written by a change: its whole image after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Put {
    pub table: String,
    pub row: Vec<Value>,
}

impl Put {
    pub fn new(spec: &TableSpec, row: Vec<Value>) -> Put {
        debug_assert_eq!(row.len(), spec.columns.len(), "{}", spec.name);
        Put {
            table: spec.name.to_string(),
            row,
        }
    }
}

/// What an entry carries beyond its columns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    pub puts: Vec<Put>,
    /// The last transfer the change appended and its chain hash: the transfers' chain is
    /// tied to the log at every entry that moved money.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfers: Option<(i64, String)>,
}

/// An entry before it is numbered and chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    /// The operation it records (a request through the writer), or `None` for a change
    /// made outside one (a user created, a PIN failure counted, a token issued...).
    pub operation: Option<LoggedOperation>,
    /// What happened, for a reader of the log: the operation's kind or the change's name.
    pub kind: String,
    pub actor: String,
    pub at_micros: i64,
    pub body: Body,
}

impl NewEntry {
    /// A change made outside the writer's batches, with the rows it wrote.
    pub fn change(
        kind: &str,
        actor: &str,
        at: chrono::DateTime<chrono::Utc>,
        puts: Vec<Put>,
    ) -> Self {
        NewEntry {
            operation: None,
            kind: kind.to_string(),
            actor: actor.to_string(),
            at_micros: at.timestamp_micros(),
            body: Body {
                puts,
                transfers: None,
            },
        }
    }
}

/// What an entry keeps of the operation it records: enough to decide a retry and to
/// rebuild its row of `operations`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedOperation {
    pub id: i64,
    pub idempotency_key: String,
    pub request_hash: String,
    pub on_behalf_of: Option<i64>,
    pub receipt: String,
}

impl From<&OperationRow> for LoggedOperation {
    fn from(o: &OperationRow) -> Self {
        LoggedOperation {
            id: o.id,
            idempotency_key: o.idempotency_key.clone(),
            request_hash: o.request_hash.clone(),
            on_behalf_of: o.on_behalf_of,
            receipt: o.receipt_json.clone(),
        }
    }
}

impl LoggedOperation {
    /// From a stored row of `operations` (a register written before the log): its kind,
    /// actor and time, then what the entry keeps.
    pub fn from_row(row: &[Value]) -> Option<(String, String, i64, LoggedOperation)> {
        let text = |i: usize| match row.get(i) {
            Some(Value::Text(s)) => Some(s.clone()),
            _ => None,
        };
        let int = |i: usize| row.get(i).and_then(Value::as_int);
        Some((
            text(6)?,
            text(3)?,
            int(5)?,
            LoggedOperation {
                id: int(0)?,
                idempotency_key: text(1)?,
                request_hash: text(2)?,
                on_behalf_of: int(4),
                receipt: text(7)?,
            },
        ))
    }
}

/// An entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub operation: Option<i64>,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub on_behalf_of: Option<i64>,
    pub receipt: Option<String>,
    pub kind: String,
    pub actor: String,
    pub at_micros: i64,
    pub body: String,
    pub hash: Hash,
}

/// The columns of the `log` table, in the order [`Entry`] is read.
pub const LOG_COLUMNS: &str = "seq, operation, idempotency_key, request_hash, on_behalf_of, receipt, kind, actor, at, body, hash";

impl Entry {
    /// SHA-256 of the previous entry's hash and every column of this one.
    pub fn chain(&self, previous: &Hash) -> Hash {
        let fields = (
            self.seq,
            self.operation,
            &self.idempotency_key,
            &self.request_hash,
            self.on_behalf_of,
            &self.receipt,
            &self.kind,
            &self.actor,
            self.at_micros,
            &self.body,
        );
        let mut h = Sha256::new();
        h.update(previous);
        h.update(serde_json::to_vec(&fields).unwrap_or_default());
        h.finalize().into()
    }

    pub fn hash_hex(&self) -> String {
        hash_to_hex(&self.hash)
    }

    /// The stored operation's row of `operations`, as the log says it must be.
    pub fn operation_row(&self) -> Option<Vec<Value>> {
        let id = self.operation?;
        Some(vec![
            Value::Int(id),
            Value::opt_text(self.idempotency_key.clone()),
            Value::opt_text(self.request_hash.clone()),
            Value::text(&self.actor),
            Value::opt_int(self.on_behalf_of),
            Value::Int(self.at_micros),
            Value::text(&self.kind),
            Value::opt_text(self.receipt.clone()),
        ])
    }
}

/// Numbers and chains entries after `(seq, hash)`, the log's head; returns the entries and
/// the new head.
pub fn seal(head: (i64, Hash), entries: Vec<NewEntry>) -> (Vec<Entry>, (i64, Hash)) {
    let (mut seq, mut previous) = head;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        seq += 1;
        let body = serde_json::to_string(&e.body).unwrap_or_default();
        let (operation, idempotency_key, request_hash, on_behalf_of, receipt) = match e.operation {
            Some(o) => (
                Some(o.id),
                Some(o.idempotency_key),
                Some(o.request_hash),
                o.on_behalf_of,
                Some(o.receipt),
            ),
            None => (None, None, None, None, None),
        };
        let mut entry = Entry {
            seq,
            operation,
            idempotency_key,
            request_hash,
            on_behalf_of,
            receipt,
            kind: e.kind,
            actor: e.actor,
            at_micros: e.at_micros,
            body,
            hash: GENESIS_HASH,
        };
        entry.hash = entry.chain(&previous);
        previous = entry.hash;
        out.push(entry);
    }
    (out, (seq, previous))
}

/// One entry per operation of a batch's plan, with the rows each wrote. `extra` holds the
/// rows whose ids the database assigned while writing (F24 choices, debt positions,
/// delegations and their register entries), by operation id.
pub fn plan_entries(plan: &Plan, mut extra: HashMap<i64, Vec<Put>>) -> Vec<NewEntry> {
    let mut out = Vec::with_capacity(plan.operations.len());
    let mut from = crate::engine::OpSpan::default();
    let mut paths = 0;
    for (op, span) in plan.operations.iter().zip(&plan.spans) {
        let mut puts = Vec::new();
        for (p, at) in &plan.parties[from.parties..span.parties] {
            puts.push(party_put(p, *at));
        }
        for c in &plan.credits[from.credits..span.credits] {
            puts.push(credit_put(c));
            puts.extend(c.rate.iter().map(rata_put));
        }
        for a in &plan.new_accounts[from.accounts..span.accounts] {
            puts.push(account_put(a));
        }
        let last = plan.transfers[from.transfers..span.transfers]
            .last()
            .map_or(0, |t| t.id);
        while let Some(c) = plan.cession_paths.get(paths).filter(|c| c.transfer <= last) {
            puts.push(cession_path_put(c));
            paths += 1;
        }
        puts.extend(extra.remove(&op.id).unwrap_or_default());
        let transfers = plan.transfers[from.transfers..span.transfers]
            .last()
            .map(|t| (t.id, hash_to_hex(&t.hash)));
        out.push(NewEntry {
            operation: Some(op.into()),
            kind: op.kind.to_string(),
            actor: op.acting_user.clone(),
            at_micros: op.at.timestamp_micros(),
            body: Body { puts, transfers },
        });
        from = *span;
    }
    out
}

pub fn cession_path_put(c: &crate::paths::CessionPath) -> Put {
    Put::new(
        &CESSION_PATHS,
        vec![
            Value::Int(c.transfer),
            Value::Int(i64::from(c.path.before_cutoff)),
            Value::Int(i64::from(c.path.from_cutoff)),
            Value::bool(c.path.bank_client),
            Value::Int(i64::from(c.day)),
        ],
    )
}

pub fn party_put(p: &Party, at: DateTime<Utc>) -> Put {
    Put::new(
        &PARTIES,
        vec![
            Value::Int(p.id),
            Value::text(p.cf.as_str()),
            Value::text(&p.name),
            Value::text(p.kind.as_str()),
            Value::bool(p.deceased),
            Value::micros(at),
        ],
    )
}

pub fn credit_put(c: &Credit) -> Put {
    Put::new(
        &CREDITS,
        vec![
            Value::Int(c.id),
            Value::text(&c.protocol),
            Value::text(&c.type_key),
            Value::Int(c.beneficiary),
            Value::Int(c.holder),
            Value::text(c.origin.as_str()),
            Value::Int(i64::from(c.expense_year)),
            Value::date(c.communicated_on),
            Value::bool(c.tracciabile),
            Value::micros(c.created_at),
            Value::opt_int(c.split_of),
            Value::bool(c.beneficiary_no_tax_area),
        ],
    )
}

pub fn rata_put(r: &Rata) -> Put {
    Put::new(
        &RATE,
        vec![
            Value::Int(r.id),
            Value::Int(r.credit),
            Value::Int(i64::from(r.index)),
            Value::Int(i64::from(r.year.get())),
            Value::Int(r.amount.get()),
            Value::text(&r.codice_tributo),
            Value::text(&r.codice_univoco),
        ],
    )
}

pub fn account_put(a: &Account) -> Put {
    Put::new(
        &ACCOUNTS,
        vec![
            Value::Int(a.id),
            Value::Int(a.rata),
            Value::text(a.kind.as_str()),
            Value::Int(a.party.unwrap_or(0)),
        ],
    )
}

/// The register entry of an operator event, as written with the id the database gave it.
pub fn operator_event_put(id: i64, e: &NewOperatorEvent) -> Put {
    Put::new(
        &OPERATOR_EVENTS,
        vec![
            Value::Int(id),
            Value::text(&e.kind),
            Value::micros(e.at),
            Value::text(&e.actor),
            Value::opt_int(e.transfer),
            Value::opt_int(e.party),
            Value::opt_int(e.counterparty),
            Value::text(e.data.to_string()),
        ],
    )
}

/// Rows recorded per entry when a register written before the log adopts it.
const ADOPT_CHUNK: usize = 10_000;

/// The entries that record a register written before the log: one per operation (so that
/// retries are still decided on the log), the other tables' rows in chunks, and the last
/// transfer, `(id, hash)`, they are tied to. `rows` gives each table's rows in canonical
/// form; `operations` comes first.
pub fn adoption_entries(
    at_micros: i64,
    mut rows: impl FnMut(&'static TableSpec) -> Result<Vec<Vec<Value>>, crate::StoreError>,
    last_transfer: Option<(i64, String)>,
) -> Result<Vec<NewEntry>, crate::StoreError> {
    let entry = |puts: Vec<Put>, transfers| NewEntry {
        operation: None,
        kind: "adopt".into(),
        actor: "cessio".into(),
        at_micros,
        body: Body { puts, transfers },
    };
    let mut entries = Vec::new();
    for row in rows(&OPERATIONS)? {
        let Some((kind, actor, at, op)) = LoggedOperation::from_row(&row) else {
            return Err(crate::StoreError::backend(format!(
                "operations row {:?} cannot be adopted",
                row.first()
            )));
        };
        entries.push(NewEntry {
            operation: Some(op),
            kind,
            actor,
            at_micros: at,
            body: Body::default(),
        });
    }
    for spec in TABLES.iter().copied().filter(|t| t.name != OPERATIONS.name) {
        let mut chunk: Vec<Put> = rows(spec)?
            .into_iter()
            .map(|row| Put::new(spec, row))
            .collect();
        while !chunk.is_empty() {
            let rest = chunk.split_off(chunk.len().min(ADOPT_CHUNK));
            entries.push(entry(chunk, None));
            chunk = rest;
        }
    }
    if !entries.is_empty() && last_transfer.is_some() {
        entries.push(entry(Vec::new(), last_transfer));
    }
    Ok(entries)
}
