//! The scale store: PostgreSQL.
//!
//! As with SQLite, one writer task per process takes every waiting request (up to
//! `max_batch`), decides them with the shared engine and commits once. Each batch is a
//! handful of set-based statements (`= ANY($1)` lookups, `unnest` inserts and updates), so
//! the number of round trips does not grow with the batch. Writers in different processes
//! are serialised by the row lock on `ledger_head` (`SELECT … FOR UPDATE`), which also
//! carries the hash chain; no advisory locks or triggers, so the SQL stays portable to
//! PostgreSQL-compatible distributed engines.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use cessio_core::cf::CodiceFiscale;
use cessio_core::debt::DebtPosition;
use cessio_core::f24::F24Choice;
use cessio_core::ledger::{Account, PartyId, RataId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::time::RefYear;
use cessio_store::engine::{AccountKey, StoredOperation, TransferRow};
use cessio_store::queue::{self, Job, WriteStats};
use cessio_store::rows::{self, ACCOUNT_COLUMNS, TRANSFER_COLUMNS, micros_to_time};
use cessio_store::sql;
use cessio_store::verify::Verifier;
use cessio_store::{
    AccountRef, CHANGE_MARKS_SQL, ChangeMarks, ChoiceRecord, Counts, Credit, Delegation,
    EntryQuery, EntryState, EntryStream, HoldingChanges, HoldingInfo, HoldingQuery, IdempotencyKey,
    LoginAttempt, MonitorTotal, NewOperatorEvent, NewSession, NewUser, Operation, OperatorEvent,
    OperatorEventQuery, Party, PartyEntry, Receipt, Role, STREAM_BATCH, SecretKey, SessionLimits,
    SqlValue, Store, StoreError, StoredSession, SummaryKey, User, VerifyReport, WriteConfig,
    entry_stream, holding_changes_sql, largest_holders_sql, sessions,
};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row};

mod log;
mod schema;
mod writer;

use writer::{load_head, writer_loop};

pub use schema::MIGRATIONS;

#[derive(Debug)]
pub struct PgStore {
    /// How readers connect (reconnects, `verify`).
    config: Config,
    /// `None` for a read replica ([`PgStore::connect_read_only`]).
    queue: Option<mpsc::Sender<Job>>,
    /// Replaced when found closed (a server restart, a terminated backend).
    readers: Vec<std::sync::RwLock<Arc<Client>>>,
    next_reader: AtomicUsize,
    /// Slots of [`Store::stream_entries`], held by each stream's task.
    stream_slots: cessio_store::StreamSlots,
    stats: Arc<WriteStats>,
    /// The connection of the changes made outside the writer's batches (users, PIN
    /// failures, tokens, the operator's register): each is a transaction of its own that
    /// takes the head's lock and appends to the log, which a shared reader cannot run.
    side: tokio::sync::Mutex<Option<Client>>,
}

/// A PostgreSQL row as the shared mappers ([`cessio_store::rows`]) read it: small numbers
/// are `INTEGER` or `SMALLINT` columns, dates `DATE`.
struct Pg<'a>(&'a Row);

impl rows::Columns for Pg<'_> {
    type Error = StoreError;
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        use tokio_postgres::types::Type;
        match *self.0.columns()[i].type_() {
            Type::INT4 => self.0.try_get::<_, i32>(i).map(i64::from),
            Type::INT2 => self.0.try_get::<_, i16>(i).map(i64::from),
            _ => self.0.try_get(i),
        }
        .map_err(db_err)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        use tokio_postgres::types::Type;
        match *self.0.columns()[i].type_() {
            Type::INT4 => self
                .0
                .try_get::<_, Option<i32>>(i)
                .map(|v| v.map(i64::from)),
            Type::INT2 => self
                .0
                .try_get::<_, Option<i16>>(i)
                .map(|v| v.map(i64::from)),
            _ => self.0.try_get(i),
        }
        .map_err(db_err)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.0.try_get(i).map_err(db_err)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.0.try_get(i).map_err(db_err)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        self.0.try_get(i).map_err(db_err)
    }
    fn date(&self, i: usize) -> Result<NaiveDate, StoreError> {
        self.0.try_get(i).map_err(db_err)
    }
    fn opt_date(&self, i: usize) -> Result<Option<NaiveDate>, StoreError> {
        self.0.try_get(i).map_err(db_err)
    }
    fn invalid(&self, _: usize, e: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
        StoreError::backend(e)
    }
}

fn db_err(e: tokio_postgres::Error) -> StoreError {
    // tokio-postgres says only "db error"; the server's own words are in the source.
    let reason = match std::error::Error::source(&e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    };
    if connection_lost(&e) {
        // Retryable: the client may send the same request again under the same key, and
        // whatever did commit before the connection dropped is replayed, not reapplied.
        return StoreError::Unavailable { reason };
    }
    StoreError::Backend { reason }
}

/// Whether an error says the server went away (a restart, a terminated backend, a cut
/// network) rather than that a statement failed: SQLSTATE class 08 (connection exception)
/// and 57P (admin, crash or immediate shutdown; cannot connect now), a closed connection,
/// or an I/O error under it.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(state) = e.code() {
        let code = state.code();
        return code.starts_with("08") || code.starts_with("57P");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Readers share connections: tokio-postgres pipelines concurrent queries on one.
const READERS: usize = 4;

async fn connect(config: &Config) -> Result<Client, StoreError> {
    let (client, connection) =
        config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::Unavailable {
                reason: format!(
                    "PostgreSQL a {}: {e}",
                    config
                        .get_hosts()
                        .first()
                        .map(|h| format!("{h:?}"))
                        .unwrap_or_default()
                ),
            })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

/// One row of [`EntryQuery::sql`]; answers after `until` (micros) count as not given.
fn entry_from_row(r: &Row, until: i64) -> Result<PartyEntry, StoreError> {
    rows::entry(&Pg(r), until)
}

/// A statement's parameters as PostgreSQL binds them, from the portable query builders'
/// values (integers and text mixed).
fn bound(values: &[SqlValue]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    values
        .iter()
        .map(|v| match v {
            SqlValue::Int(i) => Box::new(*i) as Box<dyn ToSql + Sync + Send>,
            SqlValue::Text(t) => Box::new(t.clone()),
        })
        .collect()
}

/// The settings every connection to the register shares (its schema, the planner options
/// below), from a `postgres://` URL. With `create_schema`, the schema is created if missing
/// (a primary); a read replica must find it.
async fn register_config(
    url: &str,
    schema: Option<&str>,
    create_schema: bool,
) -> Result<Config, StoreError> {
    cessio_store::backend_kind(url)?;
    let mut pg: Config = url.parse().map_err(|e| StoreError::BadUrl {
        url: url.to_string(),
        reason: format!("{e}"),
    })?;
    pg.connect_timeout(std::time::Duration::from_secs(10));
    if let Some(schema) = schema {
        if !schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::BadUrl {
                url: url.to_string(),
                reason: format!("nome di schema non valido '{schema}'"),
            });
        }
        if create_schema {
            let admin = connect(&pg).await?;
            admin
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .map_err(db_err)?;
        }
        pg.options(format!("-c search_path={schema}"));
        pg.application_name(format!("cessio-{schema}"));
    }
    // Reads are many and short, beside the writer on few cores: parallel workers cost
    // more to start than the index lookups they share (a history batch of 1,000 rate on
    // the 0.02 national register: 3.6 ms without, 14–96 ms with).
    // JIT compiles plans whose estimated cost is high, which a short statement's estimate
    // can be without statistics (a bulk load with autovacuum off): one batch's summary
    // update on the 0.1 national register ran in 1.2 s with JIT and parallel workers,
    // 0.16 s without.
    let options = pg.get_options().unwrap_or_default().to_string();
    pg.options(format!(
        "{options} -c max_parallel_workers_per_gather=0 -c jit=off"
    ));
    Ok(pg)
}

/// The readers' settings: they price a random page near a sequential one, as on SSDs or a
/// register held in memory: with the default (4.0, spinning disks) the F4 export of a
/// month of the largest bank on the 0.1 national register hashed the whole 4.2-million-row
/// rate table (3.4 s) rather than look its 32,805 rows up by key (1.1 s).
fn reader_config(pg: &Config) -> Config {
    let mut reader_config = pg.clone();
    let options = reader_config.get_options().unwrap_or_default().to_string();
    reader_config.options(format!("{options} -c random_page_cost=1.1"));
    reader_config
}

async fn connect_readers(
    config: &Config,
) -> Result<Vec<std::sync::RwLock<Arc<Client>>>, StoreError> {
    let mut readers = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        readers.push(std::sync::RwLock::new(Arc::new(connect(config).await?)));
    }
    Ok(readers)
}

/// Where the server's write-ahead log stands, in bytes from its start: on a standby what
/// it has replayed (what its reads show), on a primary what it has written (every commit
/// acknowledged so far is before it).
const SQL_WAL_POSITION: &str = "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint";

impl PgStore {
    /// Connects to a `postgres://` URL, runs migrations, and starts the writer. With
    /// `schema`, every connection works in that schema (created if missing): tests use it
    /// to run in parallel on one database.
    pub async fn connect(
        url: &str,
        schema: Option<&str>,
        config: WriteConfig,
    ) -> Result<Self, StoreError> {
        let pg = register_config(url, schema, true).await?;
        let reader_config = reader_config(&pg);
        let readers = connect_readers(&reader_config).await?;
        let (queue, rx) = mpsc::channel(config.queue_capacity.max(1));
        let stats = Arc::new(WriteStats::default());
        // The writer gets a thread and a runtime of its own: on a busy shared runtime its
        // wake-ups would queue behind every client task, and the whole batch waits.
        let (ready, started) = oneshot::channel::<Result<(), StoreError>>();
        let mut writer_config = pg.clone();
        // Generic plans for `= ANY($1)` and `unnest` joins guess array sizes and can pick
        // sequential scans of tables that only grow; custom plans see the real arrays.
        let options = writer_config.get_options().unwrap_or_default().to_string();
        writer_config.options(format!("{options} -c plan_cache_mode=force_custom_plan"));
        let writer_stats = stats.clone();
        let max_batch = config.max_batch.max(1);
        std::thread::Builder::new()
            .name("cessio-pg-writer".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(StoreError::backend(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut client = match connect(&writer_config).await {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    if let Err(e) = schema::migrate(&mut client).await {
                        let _ = ready.send(Err(e));
                        return;
                    }
                    if let Err(e) = log::adopt(&mut client).await {
                        let _ = ready.send(Err(e));
                        return;
                    }
                    let _ = ready.send(Ok(()));
                    writer_loop(client, writer_config, rx, max_batch, writer_stats).await;
                });
            })
            .map_err(StoreError::backend)?;
        started.await.map_err(|_| StoreError::Unavailable {
            reason: "il processo di scrittura non è partito".into(),
        })??;
        Ok(PgStore {
            config: reader_config,
            queue: Some(queue),
            readers,
            next_reader: AtomicUsize::new(0),
            stream_slots: cessio_store::StreamSlots::default(),
            stats,
            side: tokio::sync::Mutex::new(None),
        })
    }

    /// Opens a read replica of the register, such as a streaming standby, which refuses
    /// every write: readers only, each transaction read-only; no migration, no adoption of
    /// an older register, no writer (writes through this store are refused). The register
    /// found must be at the schema version this build migrates to: an older one is a
    /// primary this build has not started on yet (or a standby that has not replayed the
    /// migration), a newer one a primary migrated by a newer build.
    pub async fn connect_read_only(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        let mut config = reader_config(&register_config(url, schema, false).await?);
        let options = config.get_options().unwrap_or_default().to_string();
        config.options(format!("{options} -c default_transaction_read_only=on"));
        let readers = connect_readers(&config).await?;
        let first = readers[0].read().map_err(StoreError::backend)?.clone();
        schema::check_version(&first, schema.unwrap_or("public")).await?;
        Ok(PgStore {
            config,
            queue: None,
            readers,
            next_reader: AtomicUsize::new(0),
            stream_slots: cessio_store::StreamSlots::default(),
            stats: Arc::default(),
            side: tokio::sync::Mutex::new(None),
        })
    }

    /// The writer's queue; a read-only store has none.
    fn queue(&self) -> Result<&mpsc::Sender<Job>, StoreError> {
        self.queue
            .as_ref()
            .ok_or_else(|| StoreError::InvalidOperation {
                reason:
                    "questo database è una replica di sola lettura: le scritture vanno al primario"
                        .into(),
            })
    }

    /// Runs a statement of the store's portable query builders (`EntryQuery::sql`,
    /// `OperatorEventQuery::sql`), whose parameters mix integers and text.
    async fn query_values(&self, sql: &str, values: &[SqlValue]) -> Result<Vec<Row>, StoreError> {
        let params = bound(values);
        let params: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        self.reader()
            .await?
            .query(sql, &params)
            .await
            .map_err(db_err)
    }

    /// A reader connection, reconnected first if the server closed it.
    /// Runs `sql` in a transaction of its own holding the head's lock, then records in the
    /// log, as one entry, the rows `rows` names from the statement's row (if any). `Ok(None)`
    /// when the statement returned no row, and nothing is recorded then.
    #[allow(clippy::too_many_arguments)]
    async fn logged_change(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        kind: &str,
        actor: &str,
        at: DateTime<Utc>,
        rows: impl FnOnce(&Row) -> Vec<(&'static cessio_store::log::TableSpec, i64)>,
        on_error: impl FnOnce(tokio_postgres::Error) -> StoreError,
    ) -> Result<Option<Row>, StoreError> {
        let mut side = self.side.lock().await;
        if side.as_ref().is_none_or(|c| c.is_closed()) {
            *side = Some(connect(&self.config).await?);
        }
        let Some(client) = side.as_mut() else {
            return Err(StoreError::backend("no connection for the change"));
        };
        let tx = client.transaction().await.map_err(db_err)?;
        log::lock(&tx).await?;
        let row = tx.query_opt(sql, params).await.map_err(on_error)?;
        if let Some(r) = &row {
            log::record(&tx, kind, actor, at, &rows(r)).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(row)
    }

    async fn reader(&self) -> Result<Arc<Client>, StoreError> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let slot = &self.readers[i];
        let current = slot.read().map_err(StoreError::backend)?.clone();
        if !current.is_closed() {
            return Ok(current);
        }
        tracing::warn!("PostgreSQL reader connection closed: reconnecting");
        let fresh = Arc::new(connect(&self.config).await?);
        *slot.write().map_err(StoreError::backend)? = fresh.clone();
        Ok(fresh)
    }

    /// Every row a read returns, mapped.
    async fn read_all<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.reader()
            .await?
            .query(sql, params)
            .await
            .map_err(db_err)?
            .iter()
            .map(map)
            .collect()
    }

    /// The row a read returns, if any, mapped.
    async fn read_opt<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.reader()
            .await?
            .query_opt(sql, params)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(map)
            .transpose()
    }
}

fn account_from_row(r: &Row) -> Result<Account, StoreError> {
    rows::account(&Pg(r))
}

fn delegation_from_row(r: &Row) -> Result<Delegation, StoreError> {
    rows::delegation(&Pg(r))
}

fn holding_info_from_row(r: &Row) -> Result<HoldingInfo, StoreError> {
    rows::holding_info(&Pg(r))
}

fn party_from_row(r: &Row) -> Result<Party, StoreError> {
    rows::party(&Pg(r))
}

fn transfer_from_row(r: &Row) -> Result<TransferRow, StoreError> {
    rows::transfer(&Pg(r))
}

const VERIFY_PAGE: i64 = 10_000;

fn user_from_row(r: &Row) -> Result<User, StoreError> {
    rows::user(&Pg(r))
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn submit(&self, op: Operation) -> Result<Receipt, StoreError> {
        queue::submit(self.queue()?, op).await
    }

    fn write_stats(&self) -> (u64, u64) {
        self.stats.snapshot()
    }

    async fn party(&self, id: PartyId) -> Result<Option<Party>, StoreError> {
        self.read_opt(sql::PARTY_BY_ID, &[&id], party_from_row)
            .await
    }

    async fn party_by_cf(&self, cf: &CodiceFiscale) -> Result<Option<Party>, StoreError> {
        // Omocodia: the subject may be registered under another spelling of its code; the
        // exact spelling is preferred.
        let variants: Vec<String> = cf
            .omocode_variants()
            .iter()
            .map(|v| v.as_str().to_string())
            .collect();
        self.read_opt(
            "SELECT id, cf, name, kind, deceased FROM parties WHERE cf = ANY($1)
                  ORDER BY (cf = $2) DESC LIMIT 1",
            &[&variants, &cf.as_str()],
            party_from_row,
        )
        .await
    }

    async fn credit(&self, id: i64) -> Result<Option<Credit>, StoreError> {
        let c = self.reader().await?;
        let Some(r) = c
            .query_opt(sql::CREDIT_BY_ID, &[&id])
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let mut credit = rows::credit(&Pg(&r))?;
        credit.rate = c
            .query(sql::RATE_OF_CREDIT, &[&id])
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| rows::rata(&Pg(r)))
            .collect::<Result<_, _>>()?;
        Ok(Some(credit))
    }

    async fn account(&self, rata: RataId, r: AccountRef) -> Result<Option<Account>, StoreError> {
        let k = AccountKey::of(rata, r);
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.rata = $1 AND a.kind = $2 AND a.party = $3"
        );
        self.read_opt(
            &sql,
            &[&k.rata, &k.kind.as_str(), &k.party],
            account_from_row,
        )
        .await
    }

    async fn holdings(&self, party: PartyId) -> Result<Vec<Account>, StoreError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.party = $1 AND a.kind = 'holder' ORDER BY a.rata"
        );
        self.read_all(&sql, &[&party], account_from_row).await
    }

    async fn holdings_in(
        &self,
        party: PartyId,
        rate: &[RataId],
    ) -> Result<Vec<Account>, StoreError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.party = $1 AND a.kind = 'holder' AND a.rata = ANY($2) ORDER BY a.rata"
        );
        self.read_all(&sql, &[&party, &rate], account_from_row)
            .await
    }

    async fn largest_holders(&self, n: usize) -> Result<Vec<PartyId>, StoreError> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.read_all(&largest_holders_sql(|i| format!("${i}")), &[&n], |r| {
            r.try_get(0).map_err(db_err)
        })
        .await
    }

    async fn holding_changes(
        &self,
        party: PartyId,
        since: ChangeMarks,
    ) -> Result<HoldingChanges, StoreError> {
        let c = self.reader().await?;
        // The marks first: whatever commits after them is found now and again next time.
        let row = c.query_one(CHANGE_MARKS_SQL, &[]).await.map_err(db_err)?;
        let marks = ChangeMarks {
            transfer: row.get(0),
            choice: row.get(1),
        };
        let rate = c
            .query(
                &holding_changes_sql(|n| format!("${n}")),
                &[&party, &since.transfer, &since.choice],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(HoldingChanges { rate, marks })
    }

    async fn transfer(
        &self,
        id: cessio_core::ledger::TransferId,
    ) -> Result<Option<TransferRow>, StoreError> {
        self.read_opt(sql::TRANSFER_BY_ID, &[&id], transfer_from_row)
            .await
    }

    async fn history(&self, rata: RataId) -> Result<Vec<TransferRow>, StoreError> {
        self.read_all(sql::TRANSFERS_OF_RATA, &[&rata], transfer_from_row)
            .await
    }

    async fn histories(&self, rate: &[RataId]) -> Result<Vec<TransferRow>, StoreError> {
        self.read_all(
            &format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE rata = ANY($1) ORDER BY rata, id"
            ),
            &[&rate],
            transfer_from_row,
        )
        .await
    }

    async fn stored_operation(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<StoredOperation>, StoreError> {
        log::stored_operation(self.reader().await?.as_ref(), key.as_str()).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let r = self
            .reader()
            .await?
            .query_one(
                "SELECT (SELECT COUNT(*) FROM parties), (SELECT COUNT(*) FROM credits), (SELECT COUNT(*) FROM rate),
                        (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM operations), (SELECT COUNT(*) FROM transfers)",
                &[],
            )
            .await
            .map_err(db_err)?;
        let n = |i: usize| u64::try_from(r.get::<_, i64>(i)).unwrap_or(0);
        Ok(Counts {
            parties: n(0),
            credits: n(1),
            rate: n(2),
            accounts: n(3),
            operations: n(4),
            transfers: n(5),
        })
    }

    async fn head_counts(&self) -> Result<Counts, StoreError> {
        Ok(load_head(self.reader().await?.as_ref()).await?.counts())
    }

    async fn ping_writer(&self) -> Result<(), StoreError> {
        queue::ping(self.queue()?).await
    }

    async fn wal_position(&self) -> Result<Option<u64>, StoreError> {
        let row = self
            .reader()
            .await?
            .query_one(SQL_WAL_POSITION, &[])
            .await
            .map_err(db_err)?;
        let position: Option<i64> = row.get(0);
        // A standby that has replayed nothing yet has no position: it is not a replica to
        // read from until it has one.
        position
            .and_then(|p| u64::try_from(p).ok())
            .map(Some)
            .ok_or_else(|| StoreError::Unavailable {
                reason: "la replica non ha ancora applicato il log del primario".into(),
            })
    }

    async fn parties(&self, ids: &[PartyId]) -> Result<Vec<Party>, StoreError> {
        self.read_all(
            "SELECT id, cf, name, kind, deceased FROM parties WHERE id = ANY($1) ORDER BY id",
            &[&ids],
            party_from_row,
        )
        .await
    }

    async fn monitor_totals(
        &self,
        party: PartyId,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<MonitorTotal>, StoreError> {
        // Today's state is kept in the summary; a past date is recomputed from the history.
        let reader = self.reader().await?;
        let rows = match until {
            None => {
                reader
                    .query(
                        &cessio_store::summary_totals_sql(|n| format!("${n}")),
                        &[&party],
                    )
                    .await
            }
            Some(u) => {
                reader
                    .query(
                        &cessio_store::monitor_totals_sql(|n| format!("${n}")),
                        &[&party, &u.timestamp_micros()],
                    )
                    .await
            }
        }
        .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| {
                let year: i32 = r.get(1);
                let received: i32 = r.get(3);
                let kind: &str = r.get(4);
                let state: &str = r.get(5);
                let amount: i64 = r.get(6);
                MonitorTotal {
                    type_key: r.get(0),
                    year: RefYear::new(u16::try_from(year).unwrap_or_default()),
                    codice_tributo: r.get(2),
                    received: received == 1,
                    kind: TransferKind::parse(kind).unwrap_or(TransferKind::Correction),
                    state: EntryState::parse(state).unwrap_or(EntryState::Pending),
                    amount: Cents::new(amount),
                }
            })
            .collect())
    }

    async fn find_entries(&self, query: &EntryQuery) -> Result<Vec<PartyEntry>, StoreError> {
        let until = query.until.map_or(i64::MAX, |u| u.timestamp_micros());
        let (sql, values) = query.sql(|n| format!("${n}"));
        let rows = self.query_values(&sql, &values).await?;
        rows.iter().map(|r| entry_from_row(r, until)).collect()
    }

    async fn count_entries(&self, query: &EntryQuery, cap: usize) -> Result<usize, StoreError> {
        let (sql, values) = query.count_sql(cap, |n| format!("${n}"));
        let rows = self.query_values(&sql, &values).await?;
        let count: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(usize::try_from(count).unwrap_or_default())
    }

    async fn stream_entries(&self, query: EntryQuery) -> Result<EntryStream, StoreError> {
        let until = query.until.map_or(i64::MAX, |u| u.timestamp_micros());
        let (sql, values) = query.sql(|n| format!("${n}"));
        let slot = self.stream_slots.take().await?;
        // A connection of its own: tokio-postgres hands a query's rows over only as fast
        // as they are taken, and on a shared reader every other read would wait behind a
        // slow download.
        let client = connect(&self.config).await?;
        // Prepared here, so that a statement the server refuses fails the request rather
        // than the stream.
        let statement = client.prepare(&sql).await.map_err(db_err)?;
        let (mut sender, stream) = entry_stream(STREAM_BATCH);
        tokio::spawn(async move {
            let _slot = slot;
            let params = bound(&values);
            let rows = client
                .query_raw(
                    &statement,
                    params.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)),
                )
                .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => return sender.fail(db_err(e)).await,
            };
            let mut rows = std::pin::pin!(rows);
            while let Some(row) = rows.next().await {
                match row {
                    Ok(r) => match entry_from_row(&r, until) {
                        Ok(entry) => {
                            if !sender.push(entry).await {
                                return;
                            }
                        }
                        Err(e) => return sender.fail(e).await,
                    },
                    Err(e) => return sender.fail(db_err(e)).await,
                }
            }
            sender.finish().await;
        });
        Ok(stream)
    }

    async fn create_user(
        &self,
        user: NewUser,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        use cessio_store::log::{AUDIT_LOG, USERS};
        let micros = at.timestamp_micros();
        let detail = format!(
            "'{}' role {} party {:?}",
            user.username,
            user.role.as_str(),
            user.party
        );
        let username = user.username.clone();
        let row = self
            .logged_change(
                "WITH u AS (
                   INSERT INTO users (username, display_name, password_hash, pin_hash, pin_failures, party, role, created_at)
                   VALUES ($1, $2, $3, $4, 0, $5, $6, $7) RETURNING id),
                 a AS (INSERT INTO audit_log (at, actor, action, detail)
                   SELECT $7, $8, 'create_user', 'user ' || u.id || ' ' || $9 FROM u RETURNING id)
                 SELECT u.id, a.id FROM u, a",
                &[&user.username, &user.display_name, &user.password_hash, &user.pin_hash, &user.party, &user.role.as_str(), &micros, &actor, &detail],
                "create_user",
                actor,
                at,
                |r| vec![(&USERS, r.get(0)), (&AUDIT_LOG, r.get(1))],
                |e| {
                    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                        StoreError::UserExists { username }
                    } else {
                        db_err(e)
                    }
                },
            )
            .await?;
        row.map(|r| r.get(0))
            .ok_or_else(|| StoreError::backend("user not created"))
    }

    async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.read_opt(sql::USER_BY_ID, &[&id], user_from_row).await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.read_opt(sql::USER_BY_NAME, &[&username], user_from_row)
            .await
    }

    async fn has_operator(&self) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .await?
            .query_one(sql::HAS_ROLE, &[&Role::Operator.as_str()])
            .await
            .map_err(db_err)?
            .get(0))
    }

    async fn users_of_party(&self, party: PartyId) -> Result<Vec<User>, StoreError> {
        self.read_all(sql::USERS_OF_PARTY, &[&party], user_from_row)
            .await
    }

    async fn pin_failed(&self, user: i64, at: DateTime<Utc>) -> Result<u32, StoreError> {
        let r = self
            .logged_change(
                sql::PIN_FAILED,
                &[&user],
                "pin_failed",
                &format!("user {user}"),
                at,
                |_| vec![(&cessio_store::log::USERS, user)],
                db_err,
            )
            .await?
            .ok_or(StoreError::UnknownUser { user })?;
        Ok(u32::try_from(r.get::<_, i32>(0)).unwrap_or(u32::MAX))
    }

    async fn pin_attempt(
        &self,
        user: i64,
        max: u32,
        at: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError> {
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        Ok(self
            .logged_change(
                sql::PIN_ATTEMPT,
                &[&user, &max],
                "pin_failed",
                &format!("user {user}"),
                at,
                |_| vec![(&cessio_store::log::USERS, user)],
                db_err,
            )
            .await?
            .map(|r| u32::try_from(r.get::<_, i32>(0)).unwrap_or(u32::MAX)))
    }

    async fn pin_succeeded(
        &self,
        user: i64,
        max: u32,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // Most right PINs find no failure to clear: they write nothing, and so add no entry
        // to the log and wait for no lock.
        let failures: Option<i32> = self
            .reader()
            .await?
            .query_opt(sql::PIN_FAILURES, &[&user])
            .await
            .map_err(db_err)?
            .map(|r| r.get(0));
        match failures {
            None => return Ok(false),
            Some(0) => return Ok(true),
            Some(_) => {}
        }
        let max = i32::try_from(max).unwrap_or(i32::MAX);
        Ok(self
            .logged_change(
                "UPDATE users SET pin_failures = 0 WHERE id = $1 AND pin_failures < $2 RETURNING id",
                &[&user, &max],
                "pin_cleared",
                &format!("user {user}"),
                at,
                |_| vec![(&cessio_store::log::USERS, user)],
                db_err,
            )
            .await?
            .is_some())
    }

    async fn pin_reset(
        &self,
        user: i64,
        actor: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use cessio_store::log::{AUDIT_LOG, USERS};
        let who = actor.map_or_else(|| format!("user {user}"), str::to_string);
        let r = self
            .logged_change(
                "WITH u AS (UPDATE users SET pin_failures = 0 WHERE id = $1 RETURNING id),
                 a AS (INSERT INTO audit_log (at, actor, action, detail)
                   SELECT $2, $3, 'pin_unlock', 'user ' || u.id FROM u WHERE $3::text IS NOT NULL RETURNING id)
                 SELECT u.id, (SELECT id FROM a) FROM u",
                &[&user, &at.timestamp_micros(), &actor],
                "pin_cleared",
                &who,
                at,
                |r| {
                    let mut rows = vec![(&USERS, user)];
                    if let Some(audit) = r.get::<_, Option<i64>>(1) {
                        rows.push((&AUDIT_LOG, audit));
                    }
                    rows
                },
                db_err,
            )
            .await?;
        r.map(|_| ()).ok_or(StoreError::UnknownUser { user })
    }

    async fn delegations(&self, user: i64) -> Result<Vec<Delegation>, StoreError> {
        self.read_all(sql::LIVE_DELEGATIONS_OF_USER, &[&user], delegation_from_row)
            .await
    }

    async fn party_delegations(
        &self,
        party: PartyId,
        limit: usize,
    ) -> Result<Vec<Delegation>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_all(
            sql::DELEGATIONS_OF_PARTY,
            &[&party, &limit],
            delegation_from_row,
        )
        .await
    }

    async fn create_token(
        &self,
        user: i64,
        token_hash: &str,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.logged_change(
            "INSERT INTO api_tokens (user_id, token_hash, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            &[&user, &token_hash, &name, &at.timestamp_micros()],
            "create_token",
            &format!("user {user}"),
            at,
            |r| vec![(&cessio_store::log::API_TOKENS, r.get(0))],
            db_err,
        )
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::backend("token not created"))
    }

    async fn token_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        self.read_opt(sql::USER_OF_TOKEN, &[&token_hash], user_from_row)
            .await
    }

    async fn revoke_token(
        &self,
        user: i64,
        token: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .logged_change(
                "UPDATE api_tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id",
                &[&token, &user, &at.timestamp_micros()],
                "revoke_token",
                &format!("user {user}"),
                at,
                |_| vec![(&cessio_store::log::API_TOKENS, token)],
                db_err,
            )
            .await?
            .is_some())
    }

    async fn operation_transfers(&self, operation: i64) -> Result<Vec<TransferRow>, StoreError> {
        let c = self.reader().await?;
        // The receipt names the operation's transfers: a range of the primary key.
        let Some(row) = c
            .query_opt(sql::OPERATION_RECEIPT, &[&operation])
            .await
            .map_err(db_err)?
        else {
            return Ok(Vec::new());
        };
        let receipt: Receipt =
            serde_json::from_str(row.get::<_, &str>(0)).map_err(StoreError::backend)?;
        let (Some(first), Some(last)) = (
            receipt.transfers.iter().min().copied(),
            receipt.transfers.iter().max().copied(),
        ) else {
            return Ok(Vec::new());
        };
        c.query(sql::TRANSFERS_OF_OPERATION, &[&first, &last, &operation])
            .await
            .map_err(db_err)?
            .iter()
            .map(transfer_from_row)
            .collect()
    }

    async fn f24_choices(&self, party: PartyId) -> Result<Vec<ChoiceRecord>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query(sql::LAST_F24_CHOICES, &[&party])
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| {
                let on: NaiveDate = r.get(2);
                ChoiceRecord {
                    rata: r.get(0),
                    party,
                    choice: if r.get(1) {
                        F24Choice::Declared { on }
                    } else {
                        F24Choice::Revoked { on }
                    },
                }
            })
            .collect())
    }

    async fn debt_position(&self, party: PartyId) -> Result<Option<DebtPosition>, StoreError> {
        self.reader()
            .await?
            .query_opt(sql::LAST_DEBT_POSITION, &[&party])
            .await
            .map_err(db_err)?
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(StoreError::backend))
            .transpose()
    }

    async fn holding_infos(&self, query: &HoldingQuery) -> Result<Vec<HoldingInfo>, StoreError> {
        self.query_values(&query.sql(|n| format!("${n}")), &query.params())
            .await?
            .iter()
            .map(holding_info_from_row)
            .collect()
    }

    async fn splits_of(&self, rata: RataId) -> Result<Vec<i64>, StoreError> {
        self.read_all(sql::SPLITS_OF_RATA, &[&rata], |r| {
            r.try_get(0).map_err(db_err)
        })
        .await
    }

    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        self.reader()
            .await?
            // The register's own tables (through the search path), not every schema of
            // the database.
            .batch_execute(
                "ANALYZE parties, credits, rate, accounts, transfers, operations, party_summary",
            )
            .await
            .map_err(db_err)
    }

    async fn verify(&self) -> Result<VerifyReport, StoreError> {
        // A dedicated connection in one repeatable-read snapshot, so a verify running
        // beside the writer sees one consistent state.
        let mut client = connect(&self.config).await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db_err)?;
        let head = load_head(&tx).await?;
        let mut projections = cessio_store::log::Projections::new();
        log::scan_log(&tx, |e| projections.feed(e)).await?;
        let (mut v, mut log_summary) = Verifier::after_log(&mut projections, &head);
        for spec in cessio_store::log::TABLES {
            let mut check = cessio_store::log::TableCheck::new(spec, projections.take(spec));
            log::scan_table(&tx, spec, |row| check.feed(row)).await?;
            let (n, problems) = check.finish();
            v.table_checked(n, problems, &mut log_summary);
        }
        let mut last = 0i64;
        loop {
            let rows = tx
                .query(sql::TRANSFERS_AFTER, &[&last, &VERIFY_PAGE])
                .await
                .map_err(db_err)?;
            let Some(end) = rows.last().map(|r| r.get::<_, i64>(0)) else {
                break;
            };
            for r in &rows {
                v.feed(&transfer_from_row(r)?);
            }
            last = end;
        }
        let accounts: Vec<Account> = tx
            .query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a"), &[])
            .await
            .map_err(db_err)?
            .iter()
            .map(account_from_row)
            .collect::<Result<_, _>>()?;
        let rate: Vec<(RataId, Cents)> = tx
            .query(sql::RATE_AMOUNTS, &[])
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| (r.get(0), Cents::new(r.get(1))))
            .collect();
        let mut report = v.finish(accounts, rate, &head);
        log_summary.into_report(&mut report);
        let mut summary = Vec::with_capacity(2);
        for sql in [
            cessio_store::SUMMARY_STORED_SQL.to_string(),
            cessio_store::summary_recompute_sql(),
        ] {
            let rows: Vec<(SummaryKey, i64)> = tx
                .query(&sql, &[])
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| {
                    (
                        (
                            r.get(0),
                            r.get(1),
                            i64::from(r.get::<_, i32>(2)),
                            r.get(3),
                            i64::from(r.get::<_, i32>(4)),
                            r.get(5),
                            r.get(6),
                        ),
                        r.get(7),
                    )
                })
                .collect();
            summary.push(rows);
        }
        let moved: Vec<(i64, i64, i64)> = tx
            .query(cessio_store::LAST_TRANSFER_CHECK_SQL, &[])
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        tx.commit().await.map_err(db_err)?;
        let recomputed = summary.pop().unwrap_or_default();
        let stored = summary.pop().unwrap_or_default();
        cessio_store::verify::check_summary(&mut report, stored, recomputed);
        cessio_store::verify::check_last_transfers(&mut report, moved);
        Ok(report)
    }

    async fn set_deceased(
        &self,
        party: PartyId,
        deceased: bool,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use cessio_store::log::{AUDIT_LOG, PARTIES};
        let detail = format!("party {party} deceased {deceased}");
        let row = self
            .logged_change(
                "WITH p AS (UPDATE parties SET deceased = $1 WHERE id = $2 RETURNING id),
                 a AS (INSERT INTO audit_log (at, actor, action, detail)
                   SELECT $3, $4, 'set_deceased', $5 FROM p RETURNING id)
                 SELECT p.id, a.id FROM p, a",
                &[&deceased, &party, &at.timestamp_micros(), &actor, &detail],
                "set_deceased",
                actor,
                at,
                |r| vec![(&PARTIES, party), (&AUDIT_LOG, r.get(1))],
                db_err,
            )
            .await?;
        match row {
            Some(_) => Ok(()),
            None => Err(StoreError::UnknownParty { party }),
        }
    }

    async fn append_operator_event(&self, event: NewOperatorEvent) -> Result<i64, StoreError> {
        let data = event.data.to_string();
        self.logged_change(
            "INSERT INTO operator_events (kind, at, actor, transfer, party, counterparty, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &event.kind,
                &event.at.timestamp_micros(),
                &event.actor,
                &event.transfer,
                &event.party,
                &event.counterparty,
                &data,
            ],
            &event.kind,
            &event.actor,
            event.at,
            |r| vec![(&cessio_store::log::OPERATOR_EVENTS, r.get(0))],
            db_err,
        )
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::backend("operator event not recorded"))
    }

    async fn operator_events(
        &self,
        query: &OperatorEventQuery,
    ) -> Result<Vec<OperatorEvent>, StoreError> {
        let (sql, values) = query.sql(|n| format!("${n}"));
        let rows = self.query_values(&sql, &values).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let data: String = r.get(7);
                OperatorEvent {
                    id: r.get(0),
                    kind: r.get(1),
                    at: micros_to_time(r.get(2)),
                    actor: r.get(3),
                    transfer: r.get(4),
                    party: r.get(5),
                    counterparty: r.get(6),
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                }
            })
            .collect())
    }
    async fn create_session(
        &self,
        session: NewSession,
        limits: SessionLimits,
    ) -> Result<bool, StoreError> {
        let total = i64::try_from(limits.total).unwrap_or(i64::MAX);
        let per_user = i64::try_from(limits.per_user.max(1)).unwrap_or(i64::MAX);
        let c = self.reader().await?;
        // Two statements, not one transaction: reader connections are shared, and ending
        // the oldest sessions again is harmless. Concurrent sign-ins may pass the total
        // by a few; the per-user eviction after each insert converges whatever the order.
        let created = c
            .query_opt(
                &sessions::create_session_sql(|n| format!("${n}")),
                &[
                    &session.key.as_str(),
                    &session.user,
                    &session.data,
                    &sessions::micros(session.at),
                    &sessions::micros(session.expires_at),
                    &total,
                ],
            )
            .await
            .map_err(db_err)?
            .is_some();
        if created {
            c.execute(
                &sessions::evict_sessions_sql(|n| format!("${n}")),
                &[&session.user, &per_user],
            )
            .await
            .map_err(db_err)?;
        }
        Ok(created)
    }

    async fn session(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredSession>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query_opt(
                &sessions::session_sql(|n| format!("${n}")),
                &[&key.as_str(), &sessions::micros(now)],
            )
            .await
            .map_err(db_err)?
            .map(|r| StoredSession {
                user: r.get(0),
                data: r.get(1),
                notice: r.get(2),
                expires_at: sessions::from_micros(r.get(3)),
            }))
    }

    async fn touch_session(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .await?
            .execute(
                &sessions::touch_session_sql(|n| format!("${n}")),
                &[
                    &key.as_str(),
                    &sessions::micros(now),
                    &sessions::micros(expires_at),
                ],
            )
            .await
            .map_err(db_err)?
            > 0)
    }

    async fn set_session_notice(
        &self,
        key: &SecretKey,
        notice: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .await?
            .execute(
                &sessions::set_notice_sql(|n| format!("${n}")),
                &[&key.as_str(), &notice, &sessions::micros(now)],
            )
            .await
            .map_err(db_err)?
            > 0)
    }

    async fn take_session_notice(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        // The row is locked and read as it was, then cleared: of two pages taking the same
        // notice at once, the second finds none.
        Ok(self
            .reader()
            .await?
            .query_opt(
                "WITH old AS (SELECT id, notice FROM web_sessions
                               WHERE token_hash = $1 AND expires_at > $2 AND notice IS NOT NULL
                               FOR UPDATE)
                 UPDATE web_sessions s SET notice = NULL FROM old WHERE s.id = old.id
                 RETURNING old.notice",
                &[&key.as_str(), &sessions::micros(now)],
            )
            .await
            .map_err(db_err)?
            .and_then(|r| r.get(0)))
    }

    async fn end_session(&self, key: &SecretKey) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .await?
            .execute(
                &sessions::end_session_sql(|n| format!("${n}")),
                &[&key.as_str()],
            )
            .await
            .map_err(db_err)?
            > 0)
    }

    async fn start_login_flow(
        &self,
        key: &SecretKey,
        data: String,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        cap: usize,
    ) -> Result<bool, StoreError> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        Ok(self
            .reader()
            .await?
            .query_opt(
                &sessions::start_login_flow_sql(|n| format!("${n}")),
                &[
                    &key.as_str(),
                    &data,
                    &sessions::micros(expires_at),
                    &sessions::micros(now),
                    &cap,
                ],
            )
            .await
            .map_err(db_err)?
            .is_some())
    }

    async fn take_login_flow(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let now = sessions::micros(now);
        Ok(self
            .reader()
            .await?
            .query_opt(
                &sessions::take_login_flow_sql(|n| format!("${n}")),
                &[&key.as_str()],
            )
            .await
            .map_err(db_err)?
            .filter(|r| r.get::<_, i64>(1) > now)
            .map(|r| r.get(0)))
    }

    async fn count_login_attempt(
        &self,
        key: &str,
        limit: u32,
        now: DateTime<Utc>,
        expired: DateTime<Utc>,
    ) -> Result<LoginAttempt, StoreError> {
        let c = self.reader().await?;
        let counted = c
            .query_opt(
                &sessions::count_attempt_sql(|n| format!("${n}")),
                &[
                    &key,
                    &sessions::micros(now),
                    &sessions::micros(expired),
                    &i64::from(limit),
                ],
            )
            .await
            .map_err(db_err)?;
        if let Some(r) = counted {
            return Ok(LoginAttempt::Counted {
                window_start: sessions::from_micros(r.get(0)),
                attempts: u32::try_from(r.get::<_, i64>(1)).unwrap_or(u32::MAX),
            });
        }
        let start = c
            .query_opt(&sessions::attempt_window_sql(|n| format!("${n}")), &[&key])
            .await
            .map_err(db_err)?
            .map_or(sessions::micros(now), |r| r.get(0));
        Ok(LoginAttempt::Refused {
            window_start: sessions::from_micros(start),
        })
    }

    async fn uncount_login_attempt(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.reader()
            .await?
            .execute(
                &sessions::uncount_attempt_sql(|n| format!("${n}")),
                &[&key, &sessions::micros(window_start)],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn forgive_login_attempts(
        &self,
        keys: &[String],
        expired: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let c = self.reader().await?;
        let [drop, lower] = sessions::forgive_attempts_sql(|n| format!("${n}"), keys.len());
        let expired = sessions::micros(expired);
        let mut params: Vec<&(dyn ToSql + Sync)> =
            keys.iter().map(|k| k as &(dyn ToSql + Sync)).collect();
        params.push(&expired);
        c.execute(&drop, &params).await.map_err(db_err)?;
        c.execute(&lower, &params[..keys.len()])
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn trim_login_attempts(
        &self,
        expired: DateTime<Utc>,
        keep: usize,
    ) -> Result<usize, StoreError> {
        let c = self.reader().await?;
        let [old, oldest, count] = sessions::trim_attempts_sql(|n| format!("${n}"));
        c.execute(&old, &[&sessions::micros(expired)])
            .await
            .map_err(db_err)?;
        let left: i64 = c.query_one(&count, &[]).await.map_err(db_err)?.get(0);
        let left = usize::try_from(left).unwrap_or(0);
        if left <= keep {
            return Ok(left);
        }
        let excess = i64::try_from(left - keep).unwrap_or(i64::MAX);
        c.execute(&oldest, &[&excess]).await.map_err(db_err)?;
        Ok(keep)
    }

    async fn sweep_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let c = self.reader().await?;
        let mut gone = 0;
        for sql in sessions::sweep_sql(|n| format!("${n}")) {
            gone += c
                .execute(&sql, &[&sessions::micros(now)])
                .await
                .map_err(db_err)?;
        }
        Ok(gone)
    }
}
