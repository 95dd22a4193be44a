//! The log on PostgreSQL: appending entries in the transaction that makes a change,
//! reading rows back in canonical form, and the scans `verify` compares (see
//! `cessio_store::log`).

use cessio_core::ledger::{hash_from_hex, hash_to_hex};
use cessio_store::StoreError;
use cessio_store::engine::StoredOperation;
use cessio_store::log::{self, ColType, Entry, LOG_COLUMNS, NewEntry, Put, TableSpec, Value};
use cessio_store::sql;
use chrono::{DateTime, Utc};
use tokio_postgres::{Client, GenericClient, Row};

use crate::db_err;

/// Each column cast to its canonical form: integers as bigint, booleans as 0/1, dates as
/// `YYYY-MM-DD`.
fn select_list(spec: &TableSpec) -> String {
    spec.select_list(|c, t| match t {
        ColType::Int => format!("{c}::bigint"),
        ColType::Text => c.to_string(),
        ColType::Bool => format!("{c}::int::bigint"),
        ColType::Date => format!("to_char({c}, 'YYYY-MM-DD')"),
    })
}

fn row_values(spec: &TableSpec, r: &Row) -> Vec<Value> {
    spec.columns
        .iter()
        .enumerate()
        .map(|(i, (_, t))| match t {
            ColType::Int | ColType::Bool => Value::opt_int(r.get::<_, Option<i64>>(i)),
            ColType::Text | ColType::Date => Value::opt_text(r.get::<_, Option<String>>(i)),
        })
        .collect()
}

/// The rows `(table, id)` as they now are, to record in the log.
pub(crate) async fn read_back(
    c: &impl GenericClient,
    rows: &[(&'static TableSpec, i64)],
) -> Result<Vec<Put>, StoreError> {
    let mut puts = Vec::with_capacity(rows.len());
    for (spec, id) in rows {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = $1",
            select_list(spec),
            spec.name,
            spec.key()
        );
        if let Some(r) = c.query_opt(&sql, &[id]).await.map_err(db_err)? {
            puts.push(Put::new(spec, row_values(spec, &r)));
        }
    }
    Ok(puts)
}

/// Takes the head's row lock, which serialises every change of the register (the writer's
/// batches take it first too), and returns the log's head.
pub(crate) async fn lock(c: &impl GenericClient) -> Result<(i64, String), StoreError> {
    let r = c
        .query_one(
            "SELECT log_seq, log_hash FROM ledger_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(db_err)?;
    Ok((r.get(0), r.get(1)))
}

/// Chains `entries` after the log's head and writes them, in the caller's transaction,
/// which holds the head's lock.
pub(crate) async fn append(
    c: &impl GenericClient,
    entries: Vec<NewEntry>,
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let (seq, hash) = lock(c).await?;
    let (seq, hash) =
        write_after(c, (seq, hash_from_hex(&hash).unwrap_or_default()), entries).await?;
    c.execute(
        "UPDATE ledger_head SET log_seq = $1, log_hash = $2 WHERE id = 1",
        &[&seq, &hash_to_hex(&hash)],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Chains `entries` after `head` and writes them, leaving the head's row to the caller
/// (the writer, which read it under its lock when the batch began, updates it once per
/// batch). Returns the log's new end.
pub(crate) async fn write_after(
    c: &impl GenericClient,
    head: (i64, cessio_core::ledger::Hash),
    entries: Vec<NewEntry>,
) -> Result<(i64, cessio_core::ledger::Hash), StoreError> {
    if entries.is_empty() {
        return Ok(head);
    }
    let (sealed, end) = log::seal(head, entries);
    let n = sealed.len();
    let seqs: Vec<i64> = sealed.iter().map(|e| e.seq).collect();
    let ops: Vec<Option<i64>> = sealed.iter().map(|e| e.operation).collect();
    let keys: Vec<Option<&str>> = sealed
        .iter()
        .map(|e| e.idempotency_key.as_deref())
        .collect();
    let hashes: Vec<Option<&str>> = sealed.iter().map(|e| e.request_hash.as_deref()).collect();
    let behalf: Vec<Option<i64>> = sealed.iter().map(|e| e.on_behalf_of).collect();
    let receipts: Vec<Option<&str>> = sealed.iter().map(|e| e.receipt.as_deref()).collect();
    let kinds: Vec<&str> = sealed.iter().map(|e| e.kind.as_str()).collect();
    let actors: Vec<&str> = sealed.iter().map(|e| e.actor.as_str()).collect();
    let ats: Vec<i64> = sealed.iter().map(|e| e.at_micros).collect();
    let bodies: Vec<&str> = sealed.iter().map(|e| e.body.as_str()).collect();
    let chain: Vec<String> = sealed.iter().map(Entry::hash_hex).collect();
    debug_assert_eq!(chain.len(), n);
    c.execute(
        &format!(
            "INSERT INTO log ({LOG_COLUMNS})
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[], $11::text[])"
        ),
        &[
            &seqs, &ops, &keys, &hashes, &behalf, &receipts, &kinds, &actors, &ats, &bodies,
            &chain,
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(end)
}

/// Records a change made outside the writer's batches: the rows it wrote, read back.
pub(crate) async fn record(
    c: &impl GenericClient,
    kind: &str,
    actor: &str,
    at: DateTime<Utc>,
    rows: &[(&'static TableSpec, i64)],
) -> Result<(), StoreError> {
    let puts = read_back(c, rows).await?;
    append(c, vec![NewEntry::change(kind, actor, at, puts)]).await
}

/// The operation recorded under an idempotency key, from the log.
pub(crate) async fn stored_operation(
    c: &impl GenericClient,
    key: &str,
) -> Result<Option<StoredOperation>, StoreError> {
    let Some(r) = c
        .query_opt(sql::LOGGED_OPERATION, &[&key])
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let receipt: &str = r.get(1);
    Ok(Some(StoredOperation {
        request_hash: r.get(0),
        receipt: serde_json::from_str(receipt).map_err(StoreError::backend)?,
    }))
}

fn entry_from_row(r: &Row) -> Entry {
    let hash: &str = r.get(10);
    Entry {
        seq: r.get(0),
        operation: r.get(1),
        idempotency_key: r.get(2),
        request_hash: r.get(3),
        on_behalf_of: r.get(4),
        receipt: r.get(5),
        kind: r.get(6),
        actor: r.get(7),
        at_micros: r.get(8),
        body: r.get(9),
        hash: hash_from_hex(hash).unwrap_or_default(),
    }
}

/// Rows per page of the scans: bounded memory whatever the table size.
const PAGE: i64 = 10_000;

/// Every entry of the log, in order, page by page.
pub(crate) async fn scan_log(
    c: &impl GenericClient,
    mut f: impl FnMut(&Entry),
) -> Result<(), StoreError> {
    let sql = format!("SELECT {LOG_COLUMNS} FROM log WHERE seq > $1 ORDER BY seq LIMIT $2");
    paged(c, &sql, 0, |r| f(&entry_from_row(r))).await
}

/// Every row of `sql` (`… WHERE key > $1 ORDER BY key LIMIT $2`, the key its first
/// column) after `after`, a page at a time: memory holds one page, whatever the table.
pub(crate) async fn paged(
    c: &impl GenericClient,
    sql: &str,
    mut after: i64,
    mut f: impl FnMut(&tokio_postgres::Row),
) -> Result<(), StoreError> {
    loop {
        let rows = c.query(sql, &[&after, &PAGE]).await.map_err(db_err)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(0);
        for r in &rows {
            f(r);
        }
    }
}

/// Every row of a projection, in id order, page by page.
pub(crate) async fn scan_table(
    c: &impl GenericClient,
    spec: &TableSpec,
    mut f: impl FnMut(Vec<Value>),
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE {key} > $1 ORDER BY {key} LIMIT $2",
        select_list(spec),
        spec.name,
        key = spec.key()
    );
    paged(c, &sql, i64::MIN, |r| f(row_values(spec, r))).await
}

/// A register written before the log: its rows become the log's first entries
/// (`log::adoption_entries`). Nothing to do once the log has an entry or on an empty
/// register.
pub(crate) async fn adopt(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(db_err)?;
    let (seq, _) = lock(&tx).await?;
    if seq != 0 {
        return Ok(());
    }
    let mut tables = std::collections::HashMap::new();
    for spec in log::TABLES {
        let mut rows = Vec::new();
        scan_table(&tx, spec, |row| rows.push(row)).await?;
        tables.insert(spec.name, rows);
    }
    let last = tx
        .query_opt(sql::LAST_TRANSFER, &[])
        .await
        .map_err(db_err)?
        .map(|r| (r.get(0), r.get(1)));
    let entries = log::adoption_entries(
        Utc::now().timestamp_micros(),
        |spec| Ok(tables.remove(spec.name).unwrap_or_default()),
        last,
    )?;
    if entries.is_empty() {
        return Ok(());
    }
    append(&tx, entries).await?;
    tx.commit().await.map_err(db_err)
}
