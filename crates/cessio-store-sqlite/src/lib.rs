//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so that an
//! acknowledged operation survives a crash or power loss.
//!
//! One writer thread owns the write connection. It takes every request waiting in its
//! queue (up to `max_batch`), decides them with the shared engine inside one `BEGIN
//! IMMEDIATE` transaction, commits once, and only then answers each caller: group commit
//! turns one fsync per operation into one per batch without weakening durability.
//! Reads use their own connections and never wait for the writer (WAL readers see the
//! last committed state).
//!
//! At most `READERS` reads run at once, on pooled connections with a small page cache
//! each; an F4 export's stream has a connection of its own. The writer's statements are
//! prepared once and cached.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use cessio_core::cf::CodiceFiscale;
use cessio_core::debt::DebtPosition;
use cessio_core::f24::F24Choice;
use cessio_core::ledger::{Account, PartyId, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::time::RefYear;
use cessio_store::engine::{AccountKey, StoredOperation, TransferRow};
use cessio_store::projections::{DUPLICATE_KEYS_SQL, Projections, RowDetails, TableCheck};
use cessio_store::queue::{self, Job, WriteStats};
use cessio_store::rows::{
    self, ACCOUNT_COLUMNS, CREDIT_COLUMNS, RATA_COLUMNS, TRANSFER_COLUMNS, micros_to_time,
};
use cessio_store::sql;
use cessio_store::verify::Verifier;
use cessio_store::{
    AccountRef, CHANGE_MARKS_SQL, ChangeMarks, ChoiceRecord, Counts, Credit, Delegation,
    EntryQuery, EntryState, EntryStream, HoldingChanges, HoldingInfo, HoldingQuery, IdempotencyKey,
    LoginAttempt, MonitorTotal, NewOperatorEvent, NewSession, NewUser, Operation, OperationEntry,
    OperatorEvent, OperatorEventQuery, Party, PartyEntry, Rata, Receipt, Role, STREAM_BATCH,
    SecretKey, SessionLimits, SqlValue, Store, StoreError, StoredSession, User, VerifyReport,
    WriteConfig, entry_stream, holding_changes_sql, largest_holders_sql, sessions,
};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::mpsc;

use cessio_store::log::{API_TOKENS, AUDIT_LOG, OPERATOR_EVENTS, PARTIES, USERS};

mod log;
mod schema;
mod writer;

use writer::{load_head, writer_loop};

pub use schema::MIGRATIONS;

/// Reads running at once, each on a pooled connection of its own: more would not run faster
/// on a few cores, and every connection keeps a page cache of its own (64 concurrent HTTP
/// lists on the 0.1 national register opened 64 connections and took the server to 822 MiB).
const READERS: usize = 8;
/// A reader's page cache, in KiB (the writer keeps 64 MiB).
const READER_CACHE_KIB: i64 = 16_384;
/// A stream's page cache, in KiB: it walks one index range once, and a connection opened
/// with the writer's 64 MiB cache took a server 80 MB higher per export at 50,000 rows.
const STREAM_CACHE_KIB: i64 = 4_096;
/// How much of the database file a reader reads through a memory map. In WAL mode a
/// connection's page cache is emptied whenever another connection has committed, which the
/// writer does every few milliseconds, so without the map every read copied its pages from
/// the OS cache again (`readDbPage`, a fifth of a national replay's time). SQLite caps the
/// map at its compile-time limit (2 GiB in the bundled build); pages beyond it, and those
/// still in the WAL, are read as before. The writer keeps no map: its own cache is never
/// emptied by another writer, and it writes through `pwrite` either way.
const MMAP_BYTES: i64 = 1 << 40;

#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    queue: mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    read_slots: tokio::sync::Semaphore,
    /// Slots of [`Store::stream_entries`], held by each stream's reading thread.
    stream_slots: cessio_store::StreamSlots,
    stats: std::sync::Arc<WriteStats>,
}

/// The portable query builders' values as SQLite binds them.
fn bound(values: Vec<SqlValue>) -> Vec<rusqlite::types::Value> {
    values
        .into_iter()
        .map(|v| match v {
            SqlValue::Int(i) => rusqlite::types::Value::Integer(i),
            SqlValue::Text(t) => rusqlite::types::Value::Text(t),
        })
        .collect()
}

/// One row of [`EntryQuery::sql`]; answers after `until` (micros) count as not given.
fn entry_from_row(r: &rusqlite::Row<'_>, until: i64) -> rusqlite::Result<PartyEntry> {
    rows::entry(&Lite(r), until)
}

/// A SQLite row as the shared mappers ([`cessio_store::rows`]) read it: dates are ISO text.
pub(crate) struct Lite<'a, 'b>(&'a rusqlite::Row<'b>);

impl rows::Columns for Lite<'_, '_> {
    type Error = rusqlite::Error;
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.0.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.0.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.0.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.0.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        self.0.get(i)
    }
    fn date(&self, i: usize) -> rusqlite::Result<NaiveDate> {
        let text: String = self.0.get(i)?;
        text.parse().map_err(|e| self.invalid(i, Box::new(e)))
    }
    fn opt_date(&self, i: usize) -> rusqlite::Result<Option<NaiveDate>> {
        match self.0.get::<_, Option<String>>(i)? {
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|e| self.invalid(i, Box::new(e))),
            None => Ok(None),
        }
    }
    fn invalid(&self, i: usize, e: Box<dyn std::error::Error + Send + Sync>) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e)
    }
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

/// The WAL is copied back into the database when it passes this many pages (64 MiB of
/// 4 KiB pages; SQLite's default is 1,000). A checkpoint writes each page once however
/// many frames the WAL holds of it, and every batch rewrites the same pages (the ledger
/// head, the summary, the ends of the id indexes): checkpointing 16 times less often took
/// a sixth off a national import of 100,000 rows and added a third to the group-commit
/// bench, for a longer, rarer pause (BENCHMARKS.md, "F8 bulk import and the write path").
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_000;

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Unavailable {
        reason: format!("{}: {e}", path.display()),
    })?;
    // WAL lets readers run beside the writer; FULL makes every commit durable (fsync of
    // the WAL at commit), which is what "acknowledged" promises.
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         PRAGMA synchronous=FULL;
         PRAGMA foreign_keys=ON;
         PRAGMA busy_timeout=10000;
         PRAGMA cache_size=-65536;",
    )
    .map_err(db_err)?;
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES};"
    ))
    .map_err(db_err)?;
    // The write path alone uses about twenty statements; the default cache of 16 would
    // re-prepare some of them in every batch.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at a `sqlite://path` URL and runs the
    /// migrations.
    pub fn open_url(url: &str, config: WriteConfig) -> Result<Self, StoreError> {
        let path = cessio_store::sqlite_path(url)?;
        Self::open(Path::new(path), config)
    }

    pub fn open(path: &Path, config: WriteConfig) -> Result<Self, StoreError> {
        let mut writer = open_connection(path)?;
        schema::migrate(&mut writer)?;
        log::adopt(&mut writer)?;
        let (queue, rx) = mpsc::channel(config.queue_capacity.max(1));
        let stats = std::sync::Arc::new(WriteStats::default());
        let thread_stats = stats.clone();
        let max_batch = config.max_batch.max(1);
        std::thread::Builder::new()
            .name("cessio-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, max_batch, &thread_stats))
            .map_err(StoreError::backend)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            queue,
            readers: Mutex::new(Vec::new()),
            read_slots: tokio::sync::Semaphore::new(READERS),
            stream_slots: cessio_store::StreamSlots::default(),
            stats,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a pooled read connection in the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _slot = self
            .read_slots
            .acquire()
            .await
            .map_err(StoreError::backend)?;
        let pooled = self.readers.lock().map_err(StoreError::backend)?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = open_connection(&self.path)?;
                c.execute_batch(&format!(
                    "PRAGMA cache_size=-{READER_CACHE_KIB}; PRAGMA mmap_size={MMAP_BYTES};"
                ))
                .map_err(db_err)?;
                c
            }
        };
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (conn, r)
        })
        .await
        .map_err(StoreError::backend)?;
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < READERS
        {
            pool.push(conn);
        }
        result
    }
}

fn account_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    rows::account(&Lite(r))
}

fn delegation_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delegation> {
    rows::delegation(&Lite(r))
}

fn holding_info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HoldingInfo> {
    rows::holding_info(&Lite(r))
}

/// Every row of a cached statement, mapped.
fn all<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut st = c.prepare_cached(sql).map_err(db_err)?;
    st.query_map(params, f)
        .map_err(db_err)?
        .collect::<Result<_, _>>()
        .map_err(db_err)
}

fn party_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Party> {
    rows::party(&Lite(r))
}

fn load_credit(conn: &Connection, id: i64) -> Result<Option<Credit>, StoreError> {
    let credit = conn
        .prepare_cached(&format!(
            "SELECT {CREDIT_COLUMNS} FROM credits WHERE id = ?1"
        ))
        .and_then(|mut st| st.query_row([id], |r| rows::credit(&Lite(r))).optional())
        .map_err(db_err)?;
    let Some(mut credit) = credit else {
        return Ok(None);
    };
    credit.rate = all(conn, sql::RATE_OF_CREDIT, [id], |r| rows::rata(&Lite(r)))?;
    Ok(Some(credit))
}

/// Page size for streaming the history: bounded memory whatever the table size.
const VERIFY_PAGE: i64 = 10_000;

fn verify_all(conn: &Connection) -> Result<VerifyReport, StoreError> {
    // One read transaction: a consistent snapshot even while the writer goes on.
    conn.execute_batch("BEGIN").map_err(db_err)?;
    let result = (|| {
        let head = load_head(conn)?;
        let mut projections = Projections::for_head(&head);
        log::scan_log(conn, |e| projections.feed(e))?;
        projections.duplicate_keys(all(conn, DUPLICATE_KEYS_SQL, [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?);
        let (mut v, mut summary) = Verifier::after_log(&mut projections, &head);
        let mut results = Vec::new();
        for spec in cessio_store::log::TABLES {
            let mut check = TableCheck::new(spec, projections.take(spec));
            log::scan_table(conn, spec, |row| check.feed(row))?;
            results.push(check.finish());
        }
        let mut details = RowDetails::of(&results);
        if details.needed() {
            log::scan_log(conn, |e| details.feed(e))?;
        }
        for r in results {
            let (n, problems) = r.resolve(&details);
            v.table_checked(n, problems, &mut summary);
        }
        let mut st = conn.prepare(sql::TRANSFERS_AFTER).map_err(db_err)?;
        let mut last = 0i64;
        loop {
            let rows: Vec<TransferRow> = st
                .query_map(params![last, VERIFY_PAGE], transfer_from_row)
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            let Some(end) = rows.last().map(|r| r.id) else {
                break;
            };
            for row in &rows {
                v.feed(row);
            }
            last = end;
        }
        // Streamed into the check, not collected: a register has an account per holder
        // of every rata.
        let mut failed = None;
        let mut st = conn
            .prepare(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a"))
            .map_err(db_err)?;
        let accounts = st
            .query_map([], account_from_row)
            .map_err(db_err)?
            .map_while(|r| r.map_err(|e| failed = Some(e)).ok());
        let mut st = conn.prepare(sql::RATE_AMOUNTS).map_err(db_err)?;
        let mut rate_failed = None;
        let rate = st
            .query_map([], |r| Ok((r.get(0)?, Cents::new(r.get(1)?))))
            .map_err(db_err)?
            .map_while(|r| r.map_err(|e| rate_failed = Some(e)).ok());
        let mut report = v.finish(accounts, rate, &head);
        if let Some(e) = failed.or(rate_failed) {
            return Err(db_err(e));
        }
        summary.into_report(&mut report);
        let differences = all(conn, &cessio_store::summary_diff_sql(), [], |r| {
            rows::summary_difference(&Lite(r))
        })?;
        cessio_store::verify::check_summary(&mut report, differences);
        check_summary_days(conn, &mut report)?;
        let pairs = |sql: &str| -> Result<Vec<(i64, i64)>, StoreError> {
            all(conn, sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
        };
        cessio_store::verify::check_feed(
            &mut report,
            pairs(&cessio_store::feed::FEED_MISSING_SQL)?,
            pairs(&cessio_store::feed::FEED_EXTRA_SQL)?,
        );
        let moved: Vec<(i64, i64, i64)> = conn
            .prepare(cessio_store::LAST_TRANSFER_CHECK_SQL)
            .map_err(db_err)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        cessio_store::verify::check_last_transfers(&mut report, moved);
        let paths = all(conn, &cessio_store::paths::diff_sql(), [], |r| {
            rows::path_difference(&Lite(r))
        })?;
        cessio_store::paths::check(&mut report, paths);
        Ok(report)
    })();
    let _ = conn.execute_batch("COMMIT");
    result
}

fn transfer_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TransferRow> {
    rows::transfer(&Lite(r))
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    rows::user(&Lite(r))
}

fn audit(
    tx: &rusqlite::Transaction<'_>,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    detail: &str,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO audit_log (at, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
        params![at.timestamp_micros(), actor, action, detail],
    )
    .map_err(db_err)?;
    Ok(tx.last_insert_rowid())
}

fn fk_error(e: rusqlite::Error, user: i64, party: PartyId) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::InvalidOperation {
                reason: format!("utente {user} o soggetto {party} inesistente"),
            }
        }
        e => db_err(e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn submit(&self, op: Operation) -> Result<Receipt, StoreError> {
        queue::submit(&self.queue, op).await
    }

    fn write_stats(&self) -> (u64, u64) {
        self.stats.snapshot()
    }

    async fn party(&self, id: PartyId) -> Result<Option<Party>, StoreError> {
        self.read(move |c| {
            c.query_row(sql::PARTY_BY_ID, [id], party_from_row)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn party_by_cf(&self, cf: &CodiceFiscale) -> Result<Option<Party>, StoreError> {
        let exact = cf.as_str().to_string();
        // Omocodia: the subject may be registered under another spelling of its code.
        let variants: Vec<String> = cf
            .omocode_variants()
            .iter()
            .map(|v| v.as_str().to_string())
            .collect();
        self.read(move |c| {
            let mut st = c
                .prepare_cached("SELECT id, cf, name, kind, deceased FROM parties WHERE cf = ?1")
                .map_err(db_err)?;
            if let Some(p) = st
                .query_row([&exact], party_from_row)
                .optional()
                .map_err(db_err)?
            {
                return Ok(Some(p));
            }
            for v in variants.iter().filter(|v| **v != exact) {
                if let Some(p) = st
                    .query_row([v], party_from_row)
                    .optional()
                    .map_err(db_err)?
                {
                    return Ok(Some(p));
                }
            }
            Ok(None)
        })
        .await
    }

    async fn credit(&self, id: i64) -> Result<Option<Credit>, StoreError> {
        self.read(move |c| load_credit(c, id)).await
    }

    async fn account(&self, rata: RataId, r: AccountRef) -> Result<Option<Account>, StoreError> {
        let k = AccountKey::of(rata, r);
        self.read(move |c| {
            c.query_row(
                &format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE rata = ?1 AND kind = ?2 AND party = ?3"
                ),
                params![k.rata, k.kind.as_str(), k.party],
                account_from_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn holdings(&self, party: PartyId) -> Result<Vec<Account>, StoreError> {
        self.read(move |c| {
            all(
                c,
                &format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE party = ?1 AND kind = 'holder' ORDER BY rata"
                ),
                [party],
                account_from_row,
            )
        })
        .await
    }

    async fn holdings_in(
        &self,
        party: PartyId,
        rate: &[RataId],
    ) -> Result<Vec<Account>, StoreError> {
        let rate = rate.to_vec();
        self.read(move |c| {
            let mut out = Vec::with_capacity(rate.len());
            // Bounded parameter lists: SQLite caps the number of bound values.
            for chunk in rate.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                out.extend(all(
                    c,
                    &format!(
                        "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE party = ? AND kind = 'holder' AND rata IN ({marks})"
                    ),
                    rusqlite::params_from_iter(std::iter::once(&party).chain(chunk)),
                    account_from_row,
                )?);
            }
            out.sort_by_key(|a| a.rata);
            Ok(out)
        })
        .await
    }

    async fn largest_holders(&self, n: usize) -> Result<Vec<PartyId>, StoreError> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.read(move |c| {
            all(c, &largest_holders_sql(|i| format!("?{i}")), [n], |r| {
                r.get(0)
            })
        })
        .await
    }

    async fn holding_changes(
        &self,
        party: PartyId,
        since: ChangeMarks,
    ) -> Result<HoldingChanges, StoreError> {
        self.read(move |c| {
            // The marks first: whatever commits after them is found now and again next time.
            let marks = c
                .query_row(CHANGE_MARKS_SQL, [], |r| {
                    Ok(ChangeMarks {
                        transfer: r.get(0)?,
                        choice: r.get(1)?,
                    })
                })
                .map_err(db_err)?;
            let rate = all(
                c,
                &holding_changes_sql(|n| format!("?{n}")),
                [party, since.transfer, since.choice],
                |r| r.get(0),
            )?;
            Ok(HoldingChanges { rate, marks })
        })
        .await
    }

    async fn sent_amounts(
        &self,
        party: PartyId,
        after: TransferId,
    ) -> Result<Vec<(TransferId, Cents)>, StoreError> {
        self.read(move |c| {
            all(c, sql::SENT_AMOUNTS, [party, after], |r| {
                Ok((r.get(0)?, Cents::new(r.get(1)?)))
            })
        })
        .await
    }

    async fn transfer(
        &self,
        id: cessio_core::ledger::TransferId,
    ) -> Result<Option<TransferRow>, StoreError> {
        self.read(move |c| {
            c.query_row(sql::TRANSFER_BY_ID, [id], transfer_from_row)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn history(&self, rata: RataId) -> Result<Vec<TransferRow>, StoreError> {
        self.read(move |c| all(c, sql::TRANSFERS_OF_RATA, [rata], transfer_from_row))
            .await
    }

    async fn histories(&self, rate: &[RataId]) -> Result<Vec<TransferRow>, StoreError> {
        let rate = rate.to_vec();
        self.read(move |c| {
            let mut out = Vec::new();
            // Bounded parameter lists: SQLite caps the number of bound values.
            for chunk in rate.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                out.extend(all(
                    c,
                    &format!(
                        "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE rata IN ({marks}) ORDER BY rata, id"
                    ),
                    rusqlite::params_from_iter(chunk),
                    transfer_from_row,
                )?);
            }
            Ok(out)
        })
        .await
    }

    async fn holding_paths(
        &self,
        accounts: &[cessio_core::ledger::AccountId],
    ) -> Result<
        Vec<(
            cessio_core::ledger::AccountId,
            cessio_store::paths::HoldingPath,
        )>,
        StoreError,
    > {
        let accounts = accounts.to_vec();
        self.read(move |c| {
            let mut found = Vec::with_capacity(accounts.len());
            // Bounded parameter lists: SQLite caps the number of bound values.
            for chunk in accounts.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                found.extend(all(
                    c,
                    &cessio_store::paths::holding_paths_sql(&format!("IN ({marks})")),
                    rusqlite::params_from_iter(chunk),
                    |r| rows::holding_path(&Lite(r)),
                )?);
            }
            found.sort_unstable_by_key(|(a, _)| *a);
            Ok(found)
        })
        .await
    }

    async fn rate_with_credits(&self, rate: &[RataId]) -> Result<Vec<(Rata, Credit)>, StoreError> {
        let rate = rate.to_vec();
        self.read(move |c| {
            // Bounded parameter lists: SQLite caps the number of bound values.
            let by_ids = |table: &str, columns: &str, ids: &[i64]| {
                let marks = vec!["?"; ids.len()].join(",");
                format!("SELECT {columns} FROM {table} WHERE id IN ({marks})")
            };
            let mut found = Vec::new();
            for chunk in rate.chunks(500) {
                found.extend(all(
                    c,
                    &by_ids("rate", RATA_COLUMNS, chunk),
                    rusqlite::params_from_iter(chunk),
                    |r| rows::rata(&Lite(r)),
                )?);
            }
            let mut credits = Vec::new();
            for chunk in rows::credits_of(&found).chunks(500) {
                credits.extend(all(
                    c,
                    &by_ids("credits", CREDIT_COLUMNS, chunk),
                    rusqlite::params_from_iter(chunk),
                    |r| rows::credit(&Lite(r)),
                )?);
            }
            Ok(rows::rate_with_credits(found, credits))
        })
        .await
    }

    async fn stored_operation(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<StoredOperation>, StoreError> {
        let key = key.as_str().to_string();
        self.read(move |c| log::stored_operation(c, &key)).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.read(|c| {
            let count = |table: &str| -> Result<u64, StoreError> {
                c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(db_err)
            };
            Ok(Counts {
                parties: count("parties")?,
                credits: count("credits")?,
                rate: count("rate")?,
                accounts: count("accounts")?,
                operations: count("operations")?,
                transfers: count("transfers")?,
            })
        })
        .await
    }

    async fn head_counts(&self) -> Result<Counts, StoreError> {
        self.read(|c| load_head(c).map(|h| h.counts())).await
    }

    async fn ping_writer(&self) -> Result<(), StoreError> {
        queue::ping(&self.queue).await
    }

    async fn parties(&self, ids: &[PartyId]) -> Result<Vec<Party>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |c| {
            let mut st = c.prepare_cached(sql::PARTY_BY_ID).map_err(db_err)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(p) = st
                    .query_row([id], party_from_row)
                    .optional()
                    .map_err(db_err)?
                {
                    out.push(p);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn monitor_totals(
        &self,
        party: PartyId,
        as_of: Option<NaiveDate>,
    ) -> Result<Vec<MonitorTotal>, StoreError> {
        self.read(move |c| {
            use cessio_store::summary_days as days;
            // Today's state is kept in the summary, a past day's in the kept days or, for a
            // party whose days are not kept, in its history.
            let is_kept = |c: &Connection, party: PartyId| -> Result<bool, StoreError> {
                c.prepare_cached(&days::is_kept_sql(|n| format!("?{n}")))
                    .map_err(db_err)?
                    .exists([party])
                    .map_err(db_err)
            };
            let (mut st, args) = match as_of {
                None => (
                    c.prepare_cached(&cessio_store::summary_totals_sql(|n| format!("?{n}")))
                        .map_err(db_err)?,
                    vec![party],
                ),
                Some(d) if is_kept(c, party)? => (
                    c.prepare_cached(&days::summary_as_of_sql(|n| format!("?{n}")))
                        .map_err(db_err)?,
                    vec![party, i64::from(days::day_number(d))],
                ),
                Some(d) => (
                    c.prepare_cached(&days::summary_as_of_history_sql(|n| format!("?{n}")))
                        .map_err(db_err)?,
                    vec![party, days::end_of_day_micros(d)],
                ),
            };
            st.query_map(rusqlite::params_from_iter(args), |r| {
                let kind: String = r.get(4)?;
                let state: String = r.get(5)?;
                Ok(MonitorTotal {
                    type_key: r.get(0)?,
                    year: RefYear::new(r.get(1)?),
                    codice_tributo: r.get(2)?,
                    received: r.get::<_, i64>(3)? == 1,
                    kind: TransferKind::parse(&kind).unwrap_or(TransferKind::Correction),
                    state: EntryState::parse(&state).unwrap_or(EntryState::Pending),
                    amount: Cents::new(r.get(6)?),
                })
            })
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)
        })
        .await
    }

    async fn find_entries(&self, query: &EntryQuery) -> Result<Vec<PartyEntry>, StoreError> {
        let until = query.until.map_or(i64::MAX, |u| u.timestamp_micros());
        let (sql, values) = query.sql(|n| format!("?{n}"));
        self.read(move |c| {
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            st.query_map(rusqlite::params_from_iter(bound(values)), |r| {
                entry_from_row(r, until)
            })
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)
        })
        .await
    }

    async fn count_entries(&self, query: &EntryQuery, cap: usize) -> Result<usize, StoreError> {
        let (sql, values) = query.count_sql(cap, |n| format!("?{n}"));
        self.read(move |c| {
            let count: i64 = c
                .prepare_cached(&sql)
                .map_err(db_err)?
                .query_row(rusqlite::params_from_iter(bound(values)), |r| r.get(0))
                .map_err(db_err)?;
            Ok(usize::try_from(count).unwrap_or_default())
        })
        .await
    }

    async fn stream_entries(&self, query: EntryQuery) -> Result<EntryStream, StoreError> {
        let until = query.until.map_or(i64::MAX, |u| u.timestamp_micros());
        let (sql, values) = query.sql(|n| format!("?{n}"));
        let slot = self.stream_slots.take().await?;
        // A connection of its own, not a pooled reader: the statement holds its read
        // snapshot until the last row is taken, however slowly the client downloads.
        let conn = open_connection(&self.path)?;
        conn.execute_batch(&format!(
            "PRAGMA cache_size=-{STREAM_CACHE_KIB}; PRAGMA mmap_size={MMAP_BYTES};"
        ))
        .map_err(db_err)?;
        // Prepared here first (and cached for the reading thread), so that a statement the
        // engine refuses fails the request rather than the stream.
        conn.prepare_cached(&sql).map_err(db_err)?;
        let (mut sender, stream) = entry_stream(STREAM_BATCH);
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let result = (|| {
                let mut st = conn.prepare_cached(&sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(bound(values)))?;
                while let Some(r) = rows.next()? {
                    if !sender.blocking_push(&handle, entry_from_row(r, until)?) {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            })();
            match result {
                Ok(Some(())) => sender.blocking_finish(&handle),
                Ok(None) => {}
                Err(e) => sender.blocking_fail(&handle, db_err(e)),
            }
        });
        Ok(stream)
    }

    async fn create_user(
        &self,
        user: NewUser,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let actor = actor.to_string();
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let result = tx.execute(
                "INSERT INTO users (username, display_name, password_hash, pin_hash, pin_failures, party, role, created_at)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7)",
                params![user.username, user.display_name, user.password_hash, user.pin_hash, user.party, user.role.as_str(), at.timestamp_micros()],
            );
            match result {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(StoreError::UserExists { username: user.username });
                }
                Err(e) => return Err(db_err(e)),
                Ok(_) => {}
            }
            let id = tx.last_insert_rowid();
            let audit_id = audit(&tx, at, &actor, "create_user", &format!("user {id} '{}' role {} party {:?}", user.username, user.role.as_str(), user.party))?;
            log::record(&tx, "create_user", &actor, at, &[(&USERS, id), (&AUDIT_LOG, audit_id)])?;
            tx.commit().map_err(db_err)?;
            Ok(id)
        })
        .await
    }

    async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.read(move |c| {
            c.query_row(sql::USER_BY_ID, [id], user_from_row)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_string();
        self.read(move |c| {
            c.query_row(sql::USER_BY_NAME, [username], user_from_row)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn has_operator(&self) -> Result<bool, StoreError> {
        self.read(move |c| {
            c.query_row(sql::HAS_ROLE, [Role::Operator.as_str()], |r| r.get(0))
                .map_err(db_err)
        })
        .await
    }

    async fn users_of_party(&self, party: PartyId) -> Result<Vec<User>, StoreError> {
        self.read(move |c| all(c, sql::USERS_OF_PARTY, [party], user_from_row))
            .await
    }

    async fn pin_failed(&self, user: i64, at: DateTime<Utc>) -> Result<u32, StoreError> {
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let failures: u32 = tx
                .query_row(sql::PIN_FAILED, [user], |r| r.get(0))
                .optional()
                .map_err(db_err)?
                .ok_or(StoreError::UnknownUser { user })?;
            log::record(
                &tx,
                "pin_failed",
                &format!("user {user}"),
                at,
                &[(&USERS, user)],
            )?;
            tx.commit().map_err(db_err)?;
            Ok(failures)
        })
        .await
    }

    async fn pin_attempt(
        &self,
        user: i64,
        max: u32,
        at: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let failures: Option<u32> = tx
                .query_row(sql::PIN_ATTEMPT, params![user, max], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            if failures.is_some() {
                log::record(
                    &tx,
                    "pin_failed",
                    &format!("user {user}"),
                    at,
                    &[(&USERS, user)],
                )?;
            }
            tx.commit().map_err(db_err)?;
            Ok(failures)
        })
        .await
    }

    async fn pin_succeeded(
        &self,
        user: i64,
        max: u32,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.read(move |c| {
            // Most right PINs find no failure to clear: they write nothing, and so add no
            // entry to the log and wait for no writer.
            let failures: Option<u32> = c
                .query_row(sql::PIN_FAILURES, [user], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            match failures {
                None => return Ok(false),
                Some(0) => return Ok(true),
                Some(_) => {}
            }
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let cleared = tx
                .execute(
                    "UPDATE users SET pin_failures = 0 WHERE id = ?1 AND pin_failures < ?2",
                    params![user, max],
                )
                .map_err(db_err)?
                > 0;
            if cleared {
                log::record(
                    &tx,
                    "pin_cleared",
                    &format!("user {user}"),
                    at,
                    &[(&USERS, user)],
                )?;
            }
            tx.commit().map_err(db_err)?;
            Ok(cleared)
        })
        .await
    }

    async fn pin_reset(
        &self,
        user: i64,
        actor: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let actor = actor.map(str::to_string);
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let n = tx
                .execute("UPDATE users SET pin_failures = 0 WHERE id = ?1", [user])
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::UnknownUser { user });
            }
            let mut rows = vec![(&USERS, user)];
            if let Some(actor) = &actor {
                rows.push((
                    &AUDIT_LOG,
                    audit(&tx, at, actor, "pin_unlock", &format!("user {user}"))?,
                ));
            }
            let who = actor.unwrap_or_else(|| format!("user {user}"));
            log::record(&tx, "pin_cleared", &who, at, &rows)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn delegations(&self, user: i64) -> Result<Vec<Delegation>, StoreError> {
        self.read(move |c| {
            let mut st = c
                .prepare_cached(sql::LIVE_DELEGATIONS_OF_USER)
                .map_err(db_err)?;
            st.query_map([user], delegation_from_row)
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)
        })
        .await
    }

    async fn party_delegations(
        &self,
        party: PartyId,
        limit: usize,
    ) -> Result<Vec<Delegation>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut st = c
                .prepare_cached(sql::DELEGATIONS_OF_PARTY)
                .map_err(db_err)?;
            st.query_map(params![party, limit], delegation_from_row)
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)
        })
        .await
    }

    async fn create_token(
        &self,
        user: i64,
        token_hash: &str,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let (hash, name) = (token_hash.to_string(), name.to_string());
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            tx.execute(
                "INSERT INTO api_tokens (user_id, token_hash, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![user, hash, name, at.timestamp_micros()],
            )
            .map_err(db_err)?;
            let id = tx.last_insert_rowid();
            log::record(&tx, "create_token", &format!("user {user}"), at, &[(&API_TOKENS, id)])?;
            tx.commit().map_err(db_err)?;
            Ok(id)
        })
        .await
    }

    async fn token_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let hash = token_hash.to_string();
        self.read(move |c| {
            c.query_row(sql::USER_OF_TOKEN, [hash], user_from_row)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn revoke_token(
        &self,
        user: i64,
        token: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let n = tx
                .execute(
                    "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                    params![token, user, at.timestamp_micros()],
                )
                .map_err(db_err)?;
            if n > 0 {
                log::record(&tx, "revoke_token", &format!("user {user}"), at, &[(&API_TOKENS, token)])?;
            }
            tx.commit().map_err(db_err)?;
            Ok(n > 0)
        })
        .await
    }

    async fn operation_entry(&self, id: i64) -> Result<Option<OperationEntry>, StoreError> {
        self.read(move |c| {
            c.query_row(sql::OPERATION_ENTRY, [id], |r| {
                rows::operation_entry(&Lite(r))
            })
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn credit_of_rata(&self, rata: RataId) -> Result<Option<Credit>, StoreError> {
        self.read(move |c| {
            let credit: Option<i64> = c
                .query_row(sql::CREDIT_OF_RATA, [rata], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            match credit {
                Some(id) => load_credit(c, id),
                None => Ok(None),
            }
        })
        .await
    }

    async fn operation_transfers(&self, operation: i64) -> Result<Vec<TransferRow>, StoreError> {
        self.read(move |c| {
            // The receipt names the operation's transfers: a range of the primary key.
            let receipt: Option<String> = c
                .query_row(sql::OPERATION_RECEIPT, [operation], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            let Some(receipt) = receipt else {
                return Ok(Vec::new());
            };
            let receipt: Receipt = serde_json::from_str(&receipt).map_err(StoreError::backend)?;
            let (Some(first), Some(last)) = (
                receipt.transfers.iter().min().copied(),
                receipt.transfers.iter().max().copied(),
            ) else {
                return Ok(Vec::new());
            };
            all(
                c,
                sql::TRANSFERS_OF_OPERATION,
                params![first, last, operation],
                transfer_from_row,
            )
        })
        .await
    }

    async fn f24_choices(&self, party: PartyId) -> Result<Vec<ChoiceRecord>, StoreError> {
        self.read(move |c| {
            all(c, sql::LAST_F24_CHOICES, [party], |r| {
                let declared: bool = r.get(1)?;
                let on: String = r.get(2)?;
                let on = on.parse::<NaiveDate>().unwrap_or_default();
                Ok(ChoiceRecord {
                    rata: r.get(0)?,
                    party,
                    choice: if declared {
                        F24Choice::Declared { on }
                    } else {
                        F24Choice::Revoked { on }
                    },
                })
            })
        })
        .await
    }

    async fn debt_position(&self, party: PartyId) -> Result<Option<DebtPosition>, StoreError> {
        self.read(move |c| {
            let json: Option<String> = c
                .query_row(sql::LAST_DEBT_POSITION, [party], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            json.map(|j| serde_json::from_str(&j).map_err(StoreError::backend))
                .transpose()
        })
        .await
    }

    async fn holding_infos(&self, query: &HoldingQuery) -> Result<Vec<HoldingInfo>, StoreError> {
        let params = bound(query.params());
        let sql = query.sql(|n| format!("?{n}"));
        self.read(move |c| {
            all(
                c,
                &sql,
                rusqlite::params_from_iter(params),
                holding_info_from_row,
            )
        })
        .await
    }

    async fn splits_of(&self, rata: RataId) -> Result<Vec<i64>, StoreError> {
        self.read(move |c| all(c, sql::SPLITS_OF_RATA, [rata], |r| r.get(0)))
            .await
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.read(verify_all).await
    }

    async fn set_deceased(
        &self,
        party: PartyId,
        deceased: bool,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let actor = actor.to_string();
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let n = tx
                .execute(
                    "UPDATE parties SET deceased = ?1 WHERE id = ?2",
                    params![deceased, party],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::UnknownParty { party });
            }
            let audit_id = audit(
                &tx,
                at,
                &actor,
                "set_deceased",
                &format!("party {party} deceased {deceased}"),
            )?;
            log::record(
                &tx,
                "set_deceased",
                &actor,
                at,
                &[(&PARTIES, party), (&AUDIT_LOG, audit_id)],
            )?;
            tx.commit().map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn append_operator_event(&self, event: NewOperatorEvent) -> Result<i64, StoreError> {
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            tx.execute(
                "INSERT INTO operator_events (kind, at, actor, transfer, party, counterparty, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    event.kind,
                    event.at.timestamp_micros(),
                    event.actor,
                    event.transfer,
                    event.party,
                    event.counterparty,
                    event.data.to_string()
                ],
            )
            .map_err(db_err)?;
            let id = tx.last_insert_rowid();
            log::record(
                &tx,
                &event.kind,
                &event.actor,
                event.at,
                &[(&OPERATOR_EVENTS, id)],
            )?;
            tx.commit().map_err(db_err)?;
            Ok(id)
        })
        .await
    }

    async fn operator_events(
        &self,
        query: &OperatorEventQuery,
    ) -> Result<Vec<OperatorEvent>, StoreError> {
        let (sql, values) = query.sql(|n| format!("?{n}"));
        self.read(move |c| {
            all(c, &sql, rusqlite::params_from_iter(bound(values)), |r| {
                let data: String = r.get(7)?;
                Ok(OperatorEvent {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    at: micros_to_time(r.get(2)?),
                    actor: r.get(3)?,
                    transfer: r.get(4)?,
                    party: r.get(5)?,
                    counterparty: r.get(6)?,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                })
            })
        })
        .await
    }

    async fn party_feed(
        &self,
        party: PartyId,
        after: TransferId,
        limit: usize,
    ) -> Result<Vec<cessio_store::feed::FeedRow>, StoreError> {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| cessio_store::feed::feed_page_sql(|n| format!("?{n}")));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            all(c, &SQL, params![party, after, limit], |r| {
                cessio_store::feed::feed_row(&Lite(r))
            })
        })
        .await
    }

    async fn party_feed_end(&self, party: PartyId) -> Result<(TransferId, i64), StoreError> {
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| cessio_store::feed::feed_end_sql(|n| format!("?{n}")));
        self.read(move |c| {
            c.prepare_cached(&SQL)
                .and_then(|mut st| st.query_row([party], |r| Ok((r.get(0)?, r.get(1)?))))
                .map_err(db_err)
        })
        .await
    }

    async fn feed_rows(
        &self,
        ids: &[TransferId],
    ) -> Result<Vec<cessio_store::feed::FeedRow>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |c| {
            let mut out = Vec::new();
            // Bounded parameter lists: SQLite caps the number of bound values.
            for chunk in ids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                out.extend(all(
                    c,
                    &cessio_store::feed::feed_rows_sql(&marks),
                    rusqlite::params_from_iter(chunk),
                    |r| cessio_store::feed::feed_row(&Lite(r)),
                )?);
            }
            Ok(out)
        })
        .await
    }
    async fn create_session(
        &self,
        session: NewSession,
        limits: SessionLimits,
    ) -> Result<bool, StoreError> {
        let total = i64::try_from(limits.total).unwrap_or(i64::MAX);
        let per_user = i64::try_from(limits.per_user.max(1)).unwrap_or(i64::MAX);
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let created = tx
                .prepare_cached(&sessions::create_session_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .query_row(
                    params![
                        session.key.as_str(),
                        session.user,
                        session.data,
                        sessions::micros(session.at),
                        sessions::micros(session.expires_at),
                        total
                    ],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map_err(db_err)?
                .is_some();
            if created {
                tx.prepare_cached(&sessions::evict_sessions_sql(|n| format!("?{n}")))
                    .map_err(db_err)?
                    .execute(params![session.user, per_user])
                    .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(created)
        })
        .await
    }

    async fn session(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredSession>, StoreError> {
        let key = key.clone();
        self.read(move |c| {
            c.prepare_cached(&sessions::session_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .query_row(params![key.as_str(), sessions::micros(now)], |r| {
                    Ok(StoredSession {
                        user: r.get(0)?,
                        data: r.get(1)?,
                        notice: r.get(2)?,
                        expires_at: sessions::from_micros(r.get(3)?),
                    })
                })
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn touch_session(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        self.read(move |c| {
            c.prepare_cached(&sessions::touch_session_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .execute(params![
                    key.as_str(),
                    sessions::micros(now),
                    sessions::micros(expires_at)
                ])
                .map(|n| n > 0)
                .map_err(db_err)
        })
        .await
    }

    async fn set_session_notice(
        &self,
        key: &SecretKey,
        notice: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        self.read(move |c| {
            c.prepare_cached(&sessions::set_notice_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .execute(params![key.as_str(), notice, sessions::micros(now)])
                .map(|n| n > 0)
                .map_err(db_err)
        })
        .await
    }

    async fn take_session_notice(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let key = key.clone();
        self.read(move |c| {
            // SQLite's RETURNING shows the new row only: read and clear in one transaction.
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let notice: Option<String> = tx
                .prepare_cached(&sessions::session_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .query_row(params![key.as_str(), sessions::micros(now)], |r| r.get(2))
                .optional()
                .map_err(db_err)?
                .flatten();
            if notice.is_some() {
                tx.prepare_cached(&sessions::set_notice_sql(|n| format!("?{n}")))
                    .map_err(db_err)?
                    .execute(params![key.as_str(), None::<String>, sessions::micros(now)])
                    .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(notice)
        })
        .await
    }

    async fn end_session(&self, key: &SecretKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.read(move |c| {
            c.prepare_cached(&sessions::end_session_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .execute([key.as_str()])
                .map(|n| n > 0)
                .map_err(db_err)
        })
        .await
    }

    async fn start_login_flow(
        &self,
        key: &SecretKey,
        data: String,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        cap: usize,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        self.read(move |c| {
            c.prepare_cached(&sessions::start_login_flow_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .query_row(
                    params![
                        key.as_str(),
                        data,
                        sessions::micros(expires_at),
                        sessions::micros(now),
                        cap
                    ],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
                .map(|r| r.is_some())
                .map_err(db_err)
        })
        .await
    }

    async fn take_login_flow(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let key = key.clone();
        let now = sessions::micros(now);
        self.read(move |c| {
            let taken = c
                .prepare_cached(&sessions::take_login_flow_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .query_row([key.as_str()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()
                .map_err(db_err)?;
            Ok(taken.filter(|(_, end)| *end > now).map(|(data, _)| data))
        })
        .await
    }

    async fn count_login_attempt(
        &self,
        key: &str,
        limit: u32,
        now: DateTime<Utc>,
        expired: DateTime<Utc>,
    ) -> Result<LoginAttempt, StoreError> {
        let key = key.to_string();
        self.read(move |c| {
            let counted = c
                .prepare_cached(&sessions::count_attempt_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .query_row(
                    params![
                        key,
                        sessions::micros(now),
                        sessions::micros(expired),
                        i64::from(limit)
                    ],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()
                .map_err(db_err)?;
            if let Some((start, attempts)) = counted {
                return Ok(LoginAttempt::Counted {
                    window_start: sessions::from_micros(start),
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                });
            }
            let start: Option<i64> = c
                .prepare_cached(&sessions::attempt_window_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .query_row([&key], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            Ok(LoginAttempt::Refused {
                window_start: sessions::from_micros(start.unwrap_or(sessions::micros(now))),
            })
        })
        .await
    }

    async fn uncount_login_attempt(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let key = key.to_string();
        self.read(move |c| {
            c.prepare_cached(&sessions::uncount_attempt_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .execute(params![key, sessions::micros(window_start)])
                .map(|_| ())
                .map_err(db_err)
        })
        .await
    }

    async fn forgive_login_attempts(
        &self,
        keys: &[String],
        expired: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let keys = keys.to_vec();
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let [drop, lower] = sessions::forgive_attempts_sql(|n| format!("?{n}"), keys.len());
            let mut params: Vec<rusqlite::types::Value> = keys
                .iter()
                .map(|k| rusqlite::types::Value::Text(k.clone()))
                .collect();
            params.push(rusqlite::types::Value::Integer(sessions::micros(expired)));
            tx.execute(&drop, rusqlite::params_from_iter(params.iter()))
                .map_err(db_err)?;
            tx.execute(
                &lower,
                rusqlite::params_from_iter(params[..keys.len()].iter()),
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn trim_login_attempts(
        &self,
        expired: DateTime<Utc>,
        keep: usize,
    ) -> Result<usize, StoreError> {
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let [old, oldest, count] = sessions::trim_attempts_sql(|n| format!("?{n}"));
            tx.execute(&old, [sessions::micros(expired)])
                .map_err(db_err)?;
            let left: i64 = tx.query_row(&count, [], |r| r.get(0)).map_err(db_err)?;
            let left = usize::try_from(left).unwrap_or(0);
            let mut kept = left;
            if left > keep {
                let excess = i64::try_from(left - keep).unwrap_or(i64::MAX);
                tx.execute(&oldest, [excess]).map_err(db_err)?;
                kept = keep;
            }
            tx.commit().map_err(db_err)?;
            Ok(kept)
        })
        .await
    }

    async fn sweep_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.read(move |c| {
            let mut gone = 0u64;
            for sql in sessions::sweep_sql(|n| format!("?{n}")) {
                gone += c.execute(&sql, [sessions::micros(now)]).map_err(db_err)? as u64;
            }
            Ok(gone)
        })
        .await
    }

    async fn create_webhook(
        &self,
        hook: cessio_store::webhooks::NewWebhook,
    ) -> Result<Option<i64>, StoreError> {
        use cessio_store::webhooks;
        self.read(move |c| {
            let mut st = c
                .prepare_cached(&webhooks::insert_sql(|n| format!("?{n}")))
                .map_err(db_err)?;
            let mut rows = st
                .query(params![
                    hook.party,
                    hook.url,
                    hook.secret,
                    hook.created_by,
                    hook.at.timestamp_micros(),
                    hook.cursor,
                    hook.user
                ])
                .map_err(db_err)?;
            match rows.next().map_err(db_err)? {
                Some(r) => Ok(Some(r.get(0).map_err(db_err)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn webhooks_of(
        &self,
        party: PartyId,
    ) -> Result<Vec<cessio_store::webhooks::Webhook>, StoreError> {
        use cessio_store::webhooks;
        self.read(move |c| {
            all(
                c,
                &webhooks::of_party_sql(|n| format!("?{n}")),
                [party],
                |r| webhooks::webhook(&Lite(r)),
            )
        })
        .await
    }

    async fn revoke_webhook(
        &self,
        party: PartyId,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use cessio_store::webhooks;
        self.read(move |c| {
            c.prepare_cached(&webhooks::revoke_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .execute(params![party, id, at.timestamp_micros()])
                .map(|n| n > 0)
                .map_err(db_err)
        })
        .await
    }

    async fn claim_due_webhooks(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<cessio_store::webhooks::Webhook>, StoreError> {
        use cessio_store::webhooks;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            // Every process asks twice a second: most often nothing is due, and the
            // question alone must not take the register's write lock.
            let any: bool = c
                .prepare_cached(&webhooks::any_due_sql(|n| format!("?{n}")))
                .and_then(|mut st| st.query_row([now.timestamp_micros()], |r| r.get(0)))
                .map_err(db_err)?;
            if !any {
                return Ok(Vec::new());
            }
            all(
                c,
                &webhooks::claim_due_sql(|n| format!("?{n}"), false),
                params![
                    now.timestamp_micros(),
                    lease_until.timestamp_micros(),
                    limit
                ],
                |r| webhooks::webhook(&Lite(r)),
            )
        })
        .await
    }

    async fn record_delivery(
        &self,
        id: i64,
        at: DateTime<Utc>,
        outcome: &cessio_store::webhooks::Delivery,
    ) -> Result<(), StoreError> {
        use cessio_store::webhooks;
        let (next, cursor, events, kind, status, error) = webhooks::record_values(outcome);
        let (cursor, error) = (cursor.map(str::to_string), error.map(str::to_string));
        self.read(move |c| {
            c.prepare_cached(&webhooks::record_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .execute(params![
                    id,
                    at.timestamp_micros(),
                    next,
                    cursor,
                    events,
                    kind,
                    status,
                    error
                ])
                .map(|_| ())
                .map_err(db_err)
        })
        .await
    }

    async fn submit_job(
        &self,
        job: cessio_store::jobs::NewJob,
    ) -> Result<cessio_store::jobs::Job, StoreError> {
        use cessio_store::jobs;
        self.read(move |c| {
            c.prepare_cached(&jobs::submit_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .query_row(
                    params![
                        job.kind.as_str(),
                        job.owner,
                        job.runs_as,
                        job.party,
                        job.accept.map(i64::from),
                        job.digest,
                        job.file,
                        job.total_rows,
                        job.at.timestamp_micros()
                    ],
                    |r| jobs::job(&Lite(r)),
                )
                .map_err(db_err)
        })
        .await
    }

    async fn job(&self, id: i64) -> Result<Option<cessio_store::jobs::Job>, StoreError> {
        use cessio_store::jobs;
        self.read(move |c| {
            c.prepare_cached(&jobs::get_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .query_row([id], |r| jobs::job(&Lite(r)))
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn jobs_of(
        &self,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<cessio_store::jobs::Job>, StoreError> {
        use cessio_store::jobs;
        let owner = owner.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            all(
                c,
                &jobs::of_owner_sql(|n| format!("?{n}")),
                params![owner, limit],
                |r| jobs::job(&Lite(r)),
            )
        })
        .await
    }

    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        only: Option<i64>,
    ) -> Result<Option<(cessio_store::jobs::Job, Vec<u8>)>, StoreError> {
        use cessio_store::jobs;
        self.read(move |c| {
            // Runners ask often and most often nothing waits: the question alone must not
            // take the register's write lock.
            if only.is_none() {
                let any: bool = c
                    .prepare_cached(&jobs::any_due_sql(|n| format!("?{n}")))
                    .and_then(|mut st| st.query_row([now.timestamp_micros()], |r| r.get(0)))
                    .map_err(db_err)?;
                if !any {
                    return Ok(None);
                }
            }
            c.prepare_cached(&jobs::claim_sql(|n| format!("?{n}"), false))
                .map_err(db_err)?
                .query_row(
                    params![now.timestamp_micros(), lease_until.timestamp_micros(), only],
                    |r| {
                        let file: Vec<u8> = r.get(17)?;
                        Ok((jobs::job(&Lite(r))?, file))
                    },
                )
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn save_job_part(
        &self,
        id: i64,
        done_before: i64,
        part: cessio_store::jobs::JobPart,
        at: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use cessio_store::jobs;
        self.read(move |c| {
            let tx = c.unchecked_transaction().map_err(db_err)?;
            let done_after = done_before + i64::try_from(part.rows.len()).unwrap_or(i64::MAX);
            let moved = tx
                .prepare_cached(&jobs::progress_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .execute(params![
                    id,
                    done_before,
                    done_after,
                    part.applied,
                    part.already,
                    part.refused,
                    at.timestamp_micros(),
                    lease_until.timestamp_micros()
                ])
                .map_err(db_err)?;
            if moved == 0 {
                return Ok(false);
            }
            {
                let mut st = tx
                    .prepare_cached(&jobs::row_sql(|n| format!("?{n}")))
                    .map_err(db_err)?;
                for row in &part.rows {
                    st.execute(params![id, row.line, row.outcome])
                        .map_err(db_err)?;
                }
            }
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn finish_job(
        &self,
        id: i64,
        state: cessio_store::jobs::JobState,
        error: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use cessio_store::jobs;
        self.read(move |c| {
            c.prepare_cached(&jobs::finish_sql(|n| format!("?{n}")))
                .map_err(db_err)?
                .execute(params![id, state.as_str(), error, at.timestamp_micros()])
                .map(|_| ())
                .map_err(db_err)
        })
        .await
    }

    async fn job_rows(
        &self,
        id: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<cessio_store::jobs::JobRow>, StoreError> {
        use cessio_store::jobs;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            all(
                c,
                &jobs::rows_sql(|n| format!("?{n}")),
                params![id, after, limit],
                |r| {
                    Ok(jobs::JobRow {
                        line: r.get(0)?,
                        outcome: r.get(1)?,
                    })
                },
            )
        })
        .await
    }
}

/// `verify`'s check of `party_summary_days`, a party at a time: the memory holds one
/// party's days, recomputed from its own movements, not the register's.
fn check_summary_days(conn: &Connection, report: &mut VerifyReport) -> Result<(), StoreError> {
    use cessio_store::summary_days as days;
    let kept = kept_parties(conn)?;
    let stored = all(conn, days::STORED_PARTIES_SQL, [], |r| r.get::<_, i64>(0))?;
    let mut stored_st = conn
        .prepare(&days::stored_of_party_sql("?1"))
        .map_err(db_err)?;
    let mut history_st = conn
        .prepare(&days::history_of_party_sql("?1"))
        .map_err(db_err)?;
    for (party, is_kept) in days::parties_to_check(kept, stored) {
        if report.problems.len() >= cessio_store::verify::MAX_PROBLEMS {
            break;
        }
        let stored = stored_st
            .query_map([party], |r| rows::summary_day(&Lite(r)))
            .map_err(db_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_err)?;
        let recomputed = if is_kept {
            party_days(&mut history_st, party)?
        } else {
            Vec::new()
        };
        days::check(report, stored, recomputed);
    }
    Ok(())
}

/// The parties whose days are kept.
pub(crate) fn kept_parties(conn: &Connection) -> Result<Vec<PartyId>, StoreError> {
    all(
        conn,
        &cessio_store::summary_days::kept_parties_sql(),
        [],
        |r| r.get::<_, i64>(0),
    )
}

/// One kept party's `party_summary_days` recomputed from its own movements
/// (`cessio_store::summary_days`), `history` being `history_of_party_sql("?1")`: `verify`
/// and the migration that creates the table go a party at a time, so that memory holds
/// one party's days, not the register's.
pub(crate) fn party_days(
    history: &mut rusqlite::Statement<'_>,
    party: PartyId,
) -> Result<Vec<cessio_store::summary_days::DayRow>, StoreError> {
    days_from(
        history.query([party]).map_err(db_err)?,
        cessio_store::summary_days::DaysRecompute::new([party]),
    )
}

/// The kept days of `days`' parties from the movements `rows` reads.
fn days_from(
    mut rows: rusqlite::Rows<'_>,
    mut days: cessio_store::summary_days::DaysRecompute,
) -> Result<Vec<cessio_store::summary_days::DayRow>, StoreError> {
    while let Some(r) = rows.next().map_err(db_err)? {
        days.add(&rows::history_movement(&Lite(r)).map_err(db_err)?);
    }
    Ok(days.finish())
}
