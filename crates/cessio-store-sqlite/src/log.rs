//! The log on SQLite: appending entries in the transaction that makes a change, reading
//! rows back in canonical form, and the scans `verify` compares (see `cessio_store::log`).

use cessio_core::ledger::{Hash, hash_from_hex, hash_to_hex};
use cessio_store::StoreError;
use cessio_store::engine::StoredOperation;
use cessio_store::log::{self, Entry, LOG_COLUMNS, NewEntry, Put, TableSpec, Value};
use cessio_store::sql;
use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use crate::db_err;

/// SQLite stores each canonical form as it is: no cast needed.
fn select_list(spec: &TableSpec) -> String {
    spec.select_list(|c, _| c.to_string())
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Text(f.to_string()),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Text(hash_to_hex_bytes(b)),
    }
}

fn hash_to_hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn row_values(r: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Vec<Value>> {
    (0..n).map(|i| r.get_ref(i).map(value)).collect()
}

/// The rows `(table, id)` as they now are, to record in the log.
pub(crate) fn read_back(
    conn: &Connection,
    rows: &[(&'static TableSpec, i64)],
) -> Result<Vec<Put>, StoreError> {
    let mut puts = Vec::with_capacity(rows.len());
    for (spec, id) in rows {
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {} FROM {} WHERE {} = ?1",
                select_list(spec),
                spec.name,
                spec.key()
            ))
            .map_err(db_err)?;
        if let Some(row) = st
            .query_row([id], |r| row_values(r, spec.columns.len()))
            .optional()
            .map_err(db_err)?
        {
            puts.push(Put::new(spec, row));
        }
    }
    Ok(puts)
}

/// Chains `entries` after the log's head and writes them, in the caller's transaction.
pub(crate) fn append(conn: &Connection, entries: Vec<NewEntry>) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let (seq, hash): (i64, String) = conn
        .prepare_cached("SELECT log_seq, log_hash FROM ledger_head WHERE id = 1")
        .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(db_err)?;
    let (seq, hash) = write_after(
        conn,
        (seq, hash_from_hex(&hash).unwrap_or_default()),
        entries,
    )?;
    conn.prepare_cached("UPDATE ledger_head SET log_seq = ?1, log_hash = ?2 WHERE id = 1")
        .and_then(|mut st| st.execute(params![seq, hash_to_hex(&hash)]))
        .map_err(db_err)?;
    Ok(())
}

/// Chains `entries` after `head` and writes them, leaving the head's row to the caller
/// (the writer updates it once per batch). Returns the log's new end.
pub(crate) fn write_after(
    conn: &Connection,
    head: (i64, Hash),
    entries: Vec<NewEntry>,
) -> Result<(i64, Hash), StoreError> {
    if entries.is_empty() {
        return Ok(head);
    }
    let (sealed, end) = log::seal(head, entries);
    let mut st = conn
        .prepare_cached(&format!(
            "INSERT INTO log ({LOG_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ))
        .map_err(db_err)?;
    for e in &sealed {
        st.execute(params![
            e.seq,
            e.operation,
            e.idempotency_key,
            e.request_hash,
            e.on_behalf_of,
            e.receipt,
            e.kind,
            e.actor,
            e.at_micros,
            e.body,
            e.hash_hex()
        ])
        .map_err(db_err)?;
    }
    Ok(end)
}

/// Records a change made outside the writer's batches: the rows it wrote, read back.
pub(crate) fn record(
    conn: &Connection,
    kind: &str,
    actor: &str,
    at: DateTime<Utc>,
    rows: &[(&'static TableSpec, i64)],
) -> Result<(), StoreError> {
    let puts = read_back(conn, rows)?;
    append(conn, vec![NewEntry::change(kind, actor, at, puts)])
}

/// The operation recorded under an idempotency key, from the log.
pub(crate) fn stored_operation(
    conn: &Connection,
    key: &str,
) -> Result<Option<StoredOperation>, StoreError> {
    let row: Option<(String, String)> = conn
        .prepare_cached(sql::LOGGED_OPERATION)
        .and_then(|mut st| {
            st.query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db_err)?;
    row.map(|(request_hash, receipt)| {
        Ok(StoredOperation {
            request_hash,
            receipt: serde_json::from_str(&receipt).map_err(StoreError::backend)?,
        })
    })
    .transpose()
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let hash: String = r.get(10)?;
    Ok(Entry {
        seq: r.get(0)?,
        operation: r.get(1)?,
        idempotency_key: r.get(2)?,
        request_hash: r.get(3)?,
        on_behalf_of: r.get(4)?,
        receipt: r.get(5)?,
        kind: r.get(6)?,
        actor: r.get(7)?,
        at_micros: r.get(8)?,
        body: r.get(9)?,
        hash: hash_from_hex(&hash).unwrap_or_default(),
    })
}

/// Every entry of the log, in order.
pub(crate) fn scan_log(conn: &Connection, mut f: impl FnMut(&Entry)) -> Result<(), StoreError> {
    let mut st = conn
        .prepare(&format!("SELECT {LOG_COLUMNS} FROM log ORDER BY seq"))
        .map_err(db_err)?;
    let mut rows = st.query([]).map_err(db_err)?;
    while let Some(r) = rows.next().map_err(db_err)? {
        f(&entry_from_row(r).map_err(db_err)?);
    }
    Ok(())
}

/// Every row of a projection, in id order.
pub(crate) fn scan_table(
    conn: &Connection,
    spec: &TableSpec,
    mut f: impl FnMut(Vec<Value>),
) -> Result<(), StoreError> {
    let mut st = conn
        .prepare(&format!(
            "SELECT {} FROM {} ORDER BY {}",
            select_list(spec),
            spec.name,
            spec.key()
        ))
        .map_err(db_err)?;
    let mut rows = st.query([]).map_err(db_err)?;
    while let Some(r) = rows.next().map_err(db_err)? {
        f(row_values(r, spec.columns.len()).map_err(db_err)?);
    }
    Ok(())
}

/// A register written before the log: its rows become the log's first entries
/// (`log::adoption_entries`). Nothing to do once the log has an entry or on an empty
/// register.
pub(crate) fn adopt(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let seq: i64 = tx
        .query_row("SELECT log_seq FROM ledger_head WHERE id = 1", [], |r| {
            r.get(0)
        })
        .map_err(db_err)?;
    if seq != 0 {
        return Ok(());
    }
    let last: Option<(i64, String)> = tx
        .query_row(sql::LAST_TRANSFER, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db_err)?;
    let entries = log::adoption_entries(
        Utc::now().timestamp_micros(),
        |spec| {
            let mut rows = Vec::new();
            scan_table(&tx, spec, |row| rows.push(row))?;
            Ok(rows)
        },
        last,
    )?;
    if entries.is_empty() {
        return Ok(());
    }
    append(&tx, entries)?;
    tx.commit().map_err(db_err)
}
