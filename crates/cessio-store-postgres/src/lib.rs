//! The scale store: PostgreSQL.
//!
//! As with SQLite, one writer task per process takes every waiting request (up to
//! `max_batch`), decides them with the shared engine and commits once. Each batch is a
//! handful of set-based statements (`= ANY($1)` lookups, `unnest` inserts and updates), so
//! the number of round trips does not grow with the batch. Writers in different processes
//! are serialised by the row lock on `ledger_head` (`SELECT … FOR UPDATE`), which also
//! carries the hash chain; no advisory locks or triggers, so the SQL stays portable to
//! PostgreSQL-compatible distributed engines.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use cessio_core::cf::CodiceFiscale;
use cessio_core::debt::DebtPosition;
use cessio_core::f24::F24Choice;
use cessio_core::ledger::{
    Account, AccountKind, Balance, PartyId, PendingState, PendingTransfer, Phase, RataId,
    TransferKind, hash_from_hex, hash_to_hex,
};
use cessio_core::money::Cents;
use cessio_core::time::RefYear;
use cessio_store::engine::{
    self, AccountKey, Head, Needs, Plan, Prefetched, StoredOperation, TransferRow,
};
use cessio_store::queue::{self, Job, WriteStats};
use cessio_store::verify::Verifier;
use cessio_store::{
    AccountRef, Answer, CHANGE_MARKS_SQL, ChangeMarks, ChoiceRecord, Counts, Credit, CreditOrigin,
    DELEGATION_GRANTED_EVENT, DELEGATION_REVOKED_EVENT, Delegation, DelegationChange,
    DelegationScope, EntryQuery, EntryState, EntryStream, HoldingChanges, HoldingInfo,
    HoldingQuery, IdempotencyKey, LoginAttempt, MonitorTotal, NewOperatorEvent, NewSession,
    NewUser, Operation, OperatorEvent, OperatorEventQuery, Party, PartyEntry, PartyKind, Rata,
    Receipt, Role, STREAM_BATCH, SecretKey, SessionLimits, SqlValue, Store, StoreError,
    StoredSession, SummaryKey, User, VerifyReport, WriteConfig, entry_stream, holding_changes_sql,
    largest_holders_sql, sessions,
};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, GenericClient, NoTls, Row, Statement, Transaction};

mod log;
mod schema;

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
fn entry_from_row(r: &Row, until: i64) -> PartyEntry {
    let kind: &str = r.get(2);
    let phase: &str = r.get(3);
    let answer_phase: Option<&str> = r.get(8);
    let answer_at: Option<i64> = r.get(9);
    let origin: &str = r.get(19);
    let idx: i32 = r.get(11);
    let year: i32 = r.get(12);
    PartyEntry {
        transfer: r.get(0),
        at: micros_to_time(r.get(1)),
        kind: TransferKind::parse(kind).unwrap_or(TransferKind::Correction),
        pending: phase == "pending",
        amount: Cents::new(r.get(4)),
        party: r.get(5),
        counterparty: r.get(6),
        disclose: r.get(7),
        answer: match (answer_phase, answer_at) {
            (Some(p), Some(at)) if at <= until => Some(Answer {
                accepted: p == "post_pending",
                at: micros_to_time(at),
                by: r.get(21),
            }),
            _ => None,
        },
        rata: r.get(10),
        rata_index: u32::try_from(idx).unwrap_or_default(),
        year: RefYear::new(u16::try_from(year).unwrap_or_default()),
        codice_tributo: r.get(13),
        codice_univoco: r.get(14),
        credit: r.get(15),
        type_key: r.get(16),
        protocol: r.get(17),
        tracciabile: r.get(18),
        origin: CreditOrigin::parse(origin).unwrap_or(CreditOrigin::Granted),
        communicated_on: r.get(20),
    }
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
}

async fn writer_loop(
    mut client: Client,
    config: Config,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    stats: Arc<WriteStats>,
) {
    let mut statements = match Statements::prepare(&client).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot prepare the write statements");
            while let Some(job) = rx.recv().await {
                job.fail(e.clone());
            }
            return;
        }
    };
    while let Some(first) = rx.recv().await {
        let batch = queue::take_batch(&mut rx, first, max_batch);
        let ops = queue::operations(&batch);
        let outcome = write_batch(&mut client, &statements, &ops).await;
        queue::answer(batch, outcome, &stats);
        if client.is_closed() {
            // The callers of the failed batch got an error and may retry with the same
            // idempotency keys: a batch that did commit before the connection dropped is
            // then replayed, never applied twice. Requests keep queueing meanwhile.
            (client, statements) = reconnect(&config).await;
        }
    }
}

/// The write path's statements, prepared once per writer connection so that each batch
/// costs one round trip per statement at most, and statements sent together pipeline.
struct Statements {
    head: Statement,
    operations: Statement,
    pending: Statement,
    accounts_by_key: Statement,
    accounts_by_id: Statement,
    parties: Statement,
    cfs: Statement,
    rate: Statement,
    insert_parties: Statement,
    insert_credits: Statement,
    insert_rate: Statement,
    insert_accounts: Statement,
    update_accounts: Statement,
    insert_operations: Statement,
    insert_transfers: Statement,
    update_head: Statement,
    suspensions: Statement,
    delegations: Statement,
    summary_new: Statement,
    summary_answers: Statement,
}

impl Statements {
    async fn prepare(c: &Client) -> Result<Self, StoreError> {
        let p = |sql: String| async move { c.prepare(&sql).await.map_err(db_err) };
        let [summary_new, summary_answers] = cessio_store::summary_update_sql(|n| format!("${n}"));
        Ok(Statements {
            head: p(format!("{HEAD_SELECT} FOR UPDATE")).await?,
            operations: p(SQL_OPERATIONS.into()).await?,
            pending: p(SQL_PENDING.into()).await?,
            accounts_by_key: p(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts a
                 JOIN unnest($1::bigint[], $2::text[], $3::bigint[]) AS k(rata, kind, party)
                   ON a.rata = k.rata AND a.kind = k.kind AND a.party = k.party"
            ))
            .await?,
            accounts_by_id: p(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = ANY($1)"
            ))
            .await?,
            parties: p("SELECT id FROM parties WHERE id = ANY($1)".into()).await?,
            cfs: p("SELECT cf FROM parties WHERE cf = ANY($1)".into()).await?,
            rate: p("SELECT id FROM rate WHERE id = ANY($1)".into()).await?,
            insert_parties: p(SQL_INSERT_PARTIES.into()).await?,
            insert_credits: p(SQL_INSERT_CREDITS.into()).await?,
            insert_rate: p(SQL_INSERT_RATE.into()).await?,
            insert_accounts: p(SQL_INSERT_ACCOUNTS.into()).await?,
            update_accounts: p(SQL_UPDATE_ACCOUNTS.into()).await?,
            insert_operations: p(SQL_INSERT_OPERATIONS.into()).await?,
            insert_transfers: p(SQL_INSERT_TRANSFERS.into()).await?,
            update_head: p(SQL_UPDATE_HEAD.into()).await?,
            suspensions: p(format!(
                "SELECT transfer, kind, data FROM operator_events
                  WHERE transfer = ANY($1) AND kind IN ('{}', '{}') ORDER BY transfer, id",
                cessio_store::SUSPENSION_EVENT,
                cessio_store::SUSPENSION_END_EVENT
            ))
            .await?,
            delegations: p(
                "SELECT d.user_id, d.party, d.scope, d.valid_until FROM delegations d
                 JOIN unnest($1::bigint[], $2::bigint[]) AS k(user_id, party)
                   ON d.user_id = k.user_id AND d.party = k.party
                WHERE d.revoked_at IS NULL"
                    .into(),
            )
            .await?,
            summary_new: p(summary_new.clone()).await?,
            summary_answers: p(summary_answers.clone()).await?,
        })
    }
}

/// Reconnects the writer, retrying with a growing pause (at most 5 s) until it succeeds.
async fn reconnect(config: &Config) -> (Client, Statements) {
    let mut pause = std::time::Duration::from_millis(100);
    loop {
        tracing::warn!("PostgreSQL writer connection closed: reconnecting");
        if let Ok(client) = connect(config).await
            && let Ok(statements) = Statements::prepare(&client).await
        {
            return (client, statements);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
    }
}

async fn write_batch(
    client: &mut Client,
    st: &Statements,
    ops: &[Operation],
) -> Result<Vec<Result<Receipt, StoreError>>, StoreError> {
    let tx = client.transaction().await.map_err(db_err)?;
    let needs = engine::needs(ops);
    let (head, pre) = tokio::try_join!(load_head_locked(&tx, st), prefetch(&tx, st, &needs))?;
    let (plan, results) = engine::plan(ops, pre, head);
    if !plan.is_empty() {
        write_plan(&tx, st, &plan).await?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(results)
}

const HEAD_SELECT: &str = "SELECT last_operation, last_transfer, last_hash, last_party, last_credit, last_rata, last_account, last_protocol, log_seq, log_hash FROM ledger_head WHERE id = 1";

async fn load_head_locked(c: &Transaction<'_>, st: &Statements) -> Result<Head, StoreError> {
    let r = c.query_one(&st.head, &[]).await.map_err(db_err)?;
    Ok(head_from_row(&r))
}

async fn load_head(c: &impl GenericClient) -> Result<Head, StoreError> {
    let r = c.query_one(HEAD_SELECT, &[]).await.map_err(db_err)?;
    Ok(head_from_row(&r))
}

fn head_from_row(r: &Row) -> Head {
    let hash: String = r.get(2);
    Head {
        last_operation: r.get(0),
        last_transfer: r.get(1),
        last_hash: hash_from_hex(&hash).unwrap_or_default(),
        last_party: r.get(3),
        last_credit: r.get(4),
        last_rata: r.get(5),
        last_account: r.get(6),
        last_protocol: r.get(7),
        log_seq: r.get(8),
        log_hash: hash_from_hex(r.get::<_, &str>(9)).unwrap_or_default(),
    }
}

const TRANSFER_COLUMNS: &str = "id, operation, rata, debit, credit, amount, kind, phase, pending_id, at, acting_user, party, counterparty, disclose, hash";

const ACCOUNT_COLUMNS: &str = "a.id, a.rata, a.kind, a.party, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted";

fn account_from_row(r: &Row) -> Account {
    let kind: String = r.get(2);
    let party: i64 = r.get(3);
    Account {
        id: r.get(0),
        rata: r.get(1),
        kind: AccountKind::parse(&kind).unwrap_or(AccountKind::Holder),
        party: (party != 0).then_some(party),
        balance: Balance {
            debits_pending: Cents::new(r.get(4)),
            debits_posted: Cents::new(r.get(5)),
            credits_pending: Cents::new(r.get(6)),
            credits_posted: Cents::new(r.get(7)),
        },
    }
}

const SQL_OPERATIONS: &str =
    "SELECT idempotency_key, request_hash, receipt FROM log WHERE idempotency_key = ANY($1)";
const SQL_PENDING: &str =
    "SELECT p.id, p.debit, p.credit, p.amount, p.kind, r.phase FROM transfers p
     LEFT JOIN transfers r ON r.pending_id = p.id
     WHERE p.id = ANY($1) AND p.phase = 'pending'";

/// Loads what a batch needs. The independent lookups are sent together and pipeline on
/// the one connection; only the accounts of pending transfers need a second round trip.
async fn prefetch(
    c: &Transaction<'_>,
    st: &Statements,
    needs: &Needs,
) -> Result<Prefetched, StoreError> {
    let ratas: Vec<i64> = needs.account_keys.iter().map(|k| k.rata).collect();
    let kinds: Vec<&str> = needs.account_keys.iter().map(|k| k.kind.as_str()).collect();
    let parties: Vec<i64> = needs.account_keys.iter().map(|k| k.party).collect();
    let args_operations: [&(dyn ToSql + Sync); 1] = [&needs.idempotency_keys];
    let args_pending: [&(dyn ToSql + Sync); 1] = [&needs.pending];
    let args_accounts_by_key: [&(dyn ToSql + Sync); 3] = [&ratas, &kinds, &parties];
    let args_parties: [&(dyn ToSql + Sync); 1] = [&needs.parties];
    let args_cfs: [&(dyn ToSql + Sync); 1] = [&needs.cfs];
    let args_rate: [&(dyn ToSql + Sync); 1] = [&needs.rate];
    let args_suspensions: [&(dyn ToSql + Sync); 1] = [&needs.suspensions];
    let d_users: Vec<i64> = needs.delegations.iter().map(|(u, _)| *u).collect();
    let d_parties: Vec<i64> = needs.delegations.iter().map(|(_, p)| *p).collect();
    let args_delegations: [&(dyn ToSql + Sync); 2] = [&d_users, &d_parties];
    let (
        operations,
        pending,
        accounts,
        party_rows,
        cf_rows,
        rata_rows,
        suspension_rows,
        delegation_rows,
    ) = tokio::try_join!(
        c.query(&st.operations, &args_operations),
        c.query(&st.pending, &args_pending),
        c.query(&st.accounts_by_key, &args_accounts_by_key),
        c.query(&st.parties, &args_parties),
        c.query(&st.cfs, &args_cfs),
        c.query(&st.rate, &args_rate),
        c.query(&st.suspensions, &args_suspensions),
        c.query(&st.delegations, &args_delegations),
    )
    .map_err(db_err)?;
    let mut pre = Prefetched::default();
    for r in operations {
        let receipt: &str = r.get(2);
        pre.operations.insert(
            r.get(0),
            StoredOperation {
                request_hash: r.get(1),
                receipt: serde_json::from_str(receipt).map_err(StoreError::backend)?,
            },
        );
    }
    pre.accounts = accounts.iter().map(account_from_row).collect();
    let mut missing: Vec<i64> = Vec::new();
    for r in pending {
        let kind: &str = r.get(4);
        let answer: Option<&str> = r.get(5);
        let p = PendingTransfer {
            id: r.get(0),
            debit: r.get(1),
            credit: r.get(2),
            amount: Cents::new(r.get(3)),
            state: match answer {
                None => PendingState::Pending,
                Some("post_pending") => PendingState::Posted,
                Some(_) => PendingState::Voided,
            },
        };
        missing.extend([p.debit, p.credit]);
        pre.pending.push((
            p,
            TransferKind::parse(kind).unwrap_or(TransferKind::Cession),
        ));
    }
    let known: HashSet<i64> = pre.accounts.iter().map(|a| a.id).collect();
    missing.retain(|id| !known.contains(id));
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        for r in c
            .query(&st.accounts_by_id, &[&missing])
            .await
            .map_err(db_err)?
        {
            pre.accounts.push(account_from_row(&r));
        }
    }
    pre.parties = party_rows.iter().map(|r| r.get(0)).collect();
    pre.cfs = cf_rows.iter().map(|r| r.get(0)).collect();
    pre.rate = rata_rows.iter().map(|r| r.get(0)).collect();
    let mut events: std::collections::HashMap<i64, Vec<(String, serde_json::Value)>> =
        std::collections::HashMap::new();
    for r in &suspension_rows {
        let data: &str = r.get(2);
        events
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), serde_json::from_str(data).unwrap_or_default()));
    }
    for (t, list) in events {
        if let Some(fact) = engine::SuspensionFact::fold(list.iter().map(|(k, d)| (k.as_str(), d)))
        {
            pre.suspensions.insert(t, fact);
        }
    }
    for key in &needs.delegations {
        pre.delegations.insert(*key, Vec::new());
    }
    for r in &delegation_rows {
        let scope: &str = r.get(2);
        pre.delegations
            .entry((r.get(0), r.get(1)))
            .or_default()
            .push(engine::LiveDelegation {
                scope: DelegationScope::parse(scope).unwrap_or(DelegationScope::Consultazione),
                until: r.get(3),
            });
    }
    Ok(pre)
}

const SQL_INSERT_PARTIES: &str = "INSERT INTO parties (id, cf, name, kind, deceased, created_at)
     SELECT id, cf, name, kind, false, created_at
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS t(id, cf, name, kind, created_at)";
const SQL_INSERT_CREDITS: &str = "INSERT INTO credits (id, protocol, type_key, beneficiary, holder, origin, expense_year, communicated_on, tracciabile, created_at, split_of, no_tax_area)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::int[], $8::date[], $9::bool[], $10::bigint[], $11::bigint[], $12::bool[])";
const SQL_INSERT_RATE: &str = "INSERT INTO rate (id, credit, idx, year, amount, codice_tributo, codice_univoco)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::bigint[], $6::text[], $7::text[])";
const SQL_INSERT_ACCOUNTS: &str = "INSERT INTO accounts (id, rata, kind, party, debits_pending, debits_posted, credits_pending, credits_posted, last_transfer)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])";
/// An account loaded but not moved (its operation was refused) keeps its `last_transfer`.
const SQL_UPDATE_ACCOUNTS: &str = "UPDATE accounts a SET debits_pending = u.dp, debits_posted = u.dpo, credits_pending = u.cp, credits_posted = u.cpo, last_transfer = COALESCE(u.lt, a.last_transfer)
     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS u(id, dp, dpo, cp, cpo, lt)
     WHERE a.id = u.id";
const SQL_INSERT_OPERATIONS: &str = "INSERT INTO operations (id, idempotency_key, request_hash, acting_user, on_behalf_of, at, kind, receipt)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[])";
const SQL_INSERT_TRANSFERS: &str = "INSERT INTO transfers (id, operation, rata, debit, credit, amount, kind, phase, pending_id, at, acting_user, party, counterparty, disclose, hash)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::bigint[], $13::bigint[], $14::bool[], $15::text[])";
const SQL_UPDATE_HEAD: &str = "UPDATE ledger_head SET last_operation = $1, last_transfer = $2, last_hash = $3, last_party = $4, last_credit = $5, last_rata = $6, last_account = $7, last_protocol = $8 WHERE id = 1";

/// Writes a batch's plan. Every statement is sent at once: they pipeline, and PostgreSQL
/// runs them in the order sent, so foreign keys (parties → credits → rate → accounts,
/// operations → transfers) are satisfied.
async fn write_plan(c: &Transaction<'_>, st: &Statements, plan: &Plan) -> Result<(), StoreError> {
    let pa = &plan.parties;
    let p_ids: Vec<i64> = pa.iter().map(|(p, _)| p.id).collect();
    let p_cfs: Vec<&str> = pa.iter().map(|(p, _)| p.cf.as_str()).collect();
    let p_names: Vec<&str> = pa.iter().map(|(p, _)| p.name.as_str()).collect();
    let p_kinds: Vec<&str> = pa.iter().map(|(p, _)| p.kind.as_str()).collect();
    let p_ats: Vec<i64> = pa.iter().map(|(_, at)| at.timestamp_micros()).collect();

    let cr = &plan.credits;
    let c_ids: Vec<i64> = cr.iter().map(|c| c.id).collect();
    let c_protocols: Vec<&str> = cr.iter().map(|c| c.protocol.as_str()).collect();
    let c_types: Vec<&str> = cr.iter().map(|c| c.type_key.as_str()).collect();
    let c_beneficiaries: Vec<i64> = cr.iter().map(|c| c.beneficiary).collect();
    let c_holders: Vec<i64> = cr.iter().map(|c| c.holder).collect();
    let c_origins: Vec<&str> = cr.iter().map(|c| c.origin.as_str()).collect();
    let c_years: Vec<i32> = cr.iter().map(|c| i32::from(c.expense_year)).collect();
    let c_dates: Vec<NaiveDate> = cr.iter().map(|c| c.communicated_on).collect();
    let c_tracciabili: Vec<bool> = cr.iter().map(|c| c.tracciabile).collect();
    let c_ats: Vec<i64> = cr.iter().map(|c| c.created_at.timestamp_micros()).collect();
    let c_split_of: Vec<Option<i64>> = cr.iter().map(|c| c.split_of).collect();
    let c_no_tax_area: Vec<bool> = cr.iter().map(|c| c.beneficiary_no_tax_area).collect();

    let rate: Vec<&Rata> = plan.rate().collect();
    let r_ids: Vec<i64> = rate.iter().map(|r| r.id).collect();
    let r_credits: Vec<i64> = rate.iter().map(|r| r.credit).collect();
    let r_idx: Vec<i32> = rate
        .iter()
        .map(|r| i32::try_from(r.index).unwrap_or(i32::MAX))
        .collect();
    let r_years: Vec<i32> = rate.iter().map(|r| i32::from(r.year.get())).collect();
    let r_amounts: Vec<i64> = rate.iter().map(|r| r.amount.get()).collect();
    let r_codes: Vec<&str> = rate.iter().map(|r| r.codice_tributo.as_str()).collect();
    let r_univoci: Vec<&str> = rate.iter().map(|r| r.codice_univoco.as_str()).collect();

    let balances = |accounts: &[Account]| -> [Vec<i64>; 5] {
        [
            accounts.iter().map(|a| a.id).collect(),
            accounts
                .iter()
                .map(|a| a.balance.debits_pending.get())
                .collect(),
            accounts
                .iter()
                .map(|a| a.balance.debits_posted.get())
                .collect(),
            accounts
                .iter()
                .map(|a| a.balance.credits_pending.get())
                .collect(),
            accounts
                .iter()
                .map(|a| a.balance.credits_posted.get())
                .collect(),
        ]
    };
    let na = &plan.new_accounts;
    let [n_ids, n_dp, n_dpo, n_cp, n_cpo] = balances(na);
    let n_ratas: Vec<i64> = na.iter().map(|a| a.rata).collect();
    let n_kinds: Vec<&str> = na.iter().map(|a| a.kind.as_str()).collect();
    let n_parties: Vec<i64> = na.iter().map(|a| a.party.unwrap_or(0)).collect();
    let [u_ids, u_dp, u_dpo, u_cp, u_cpo] = balances(&plan.account_updates);
    let last = plan.last_transfers();
    let n_last: Vec<i64> = na
        .iter()
        .map(|a| last.get(&a.id).copied().unwrap_or(0))
        .collect();
    let u_last: Vec<Option<i64>> = plan
        .account_updates
        .iter()
        .map(|a| last.get(&a.id).copied())
        .collect();

    let o = &plan.operations;
    let o_ids: Vec<i64> = o.iter().map(|x| x.id).collect();
    let o_keys: Vec<&str> = o.iter().map(|x| x.idempotency_key.as_str()).collect();
    let o_hashes: Vec<&str> = o.iter().map(|x| x.request_hash.as_str()).collect();
    let o_users: Vec<&str> = o.iter().map(|x| x.acting_user.as_str()).collect();
    let o_behalf: Vec<Option<i64>> = o.iter().map(|x| x.on_behalf_of).collect();
    let o_ats: Vec<i64> = o.iter().map(|x| x.at.timestamp_micros()).collect();
    let o_kinds: Vec<&str> = o.iter().map(|x| x.kind).collect();
    let o_receipts: Vec<&str> = o.iter().map(|x| x.receipt_json.as_str()).collect();

    let t = &plan.transfers;
    let t_ids: Vec<i64> = t.iter().map(|x| x.id).collect();
    let t_ops: Vec<i64> = t.iter().map(|x| x.operation).collect();
    let t_ratas: Vec<i64> = t.iter().map(|x| x.rata).collect();
    let t_debits: Vec<i64> = t.iter().map(|x| x.debit).collect();
    let t_credits: Vec<i64> = t.iter().map(|x| x.credit).collect();
    let t_amounts: Vec<i64> = t.iter().map(|x| x.amount.get()).collect();
    let t_kinds: Vec<&str> = t.iter().map(|x| x.kind.as_str()).collect();
    let t_phases: Vec<&str> = t.iter().map(|x| x.phase.as_str()).collect();
    let t_pendings: Vec<Option<i64>> = t.iter().map(|x| x.pending_id).collect();
    let t_ats: Vec<i64> = t.iter().map(|x| x.at_micros).collect();
    let t_users: Vec<&str> = t.iter().map(|x| x.acting_user.as_str()).collect();
    let t_parties: Vec<Option<i64>> = t.iter().map(|x| x.party).collect();
    let t_counterparties: Vec<Option<i64>> = t.iter().map(|x| x.counterparty).collect();
    let t_disclose: Vec<bool> = t.iter().map(|x| x.disclose).collect();
    let t_hashes: Vec<String> = t.iter().map(|x| hash_to_hex(&x.hash)).collect();

    let summary_from: i64 = t_ids.iter().min().map_or(0, |id| id - 1);
    let summary_to: i64 = t_ids.iter().max().copied().unwrap_or(0);
    let args_summary: [&(dyn ToSql + Sync); 2] = [&summary_from, &summary_to];
    let h = &plan.head;
    let head_hash = hash_to_hex(&h.last_hash);
    let args_insert_parties: [&(dyn ToSql + Sync); 5] =
        [&p_ids, &p_cfs, &p_names, &p_kinds, &p_ats];
    let args_insert_credits: [&(dyn ToSql + Sync); 12] = [
        &c_ids,
        &c_protocols,
        &c_types,
        &c_beneficiaries,
        &c_holders,
        &c_origins,
        &c_years,
        &c_dates,
        &c_tracciabili,
        &c_ats,
        &c_split_of,
        &c_no_tax_area,
    ];
    let args_insert_rate: [&(dyn ToSql + Sync); 7] = [
        &r_ids, &r_credits, &r_idx, &r_years, &r_amounts, &r_codes, &r_univoci,
    ];
    let args_insert_accounts: [&(dyn ToSql + Sync); 9] = [
        &n_ids, &n_ratas, &n_kinds, &n_parties, &n_dp, &n_dpo, &n_cp, &n_cpo, &n_last,
    ];
    let args_update_accounts: [&(dyn ToSql + Sync); 6] =
        [&u_ids, &u_dp, &u_dpo, &u_cp, &u_cpo, &u_last];
    let args_insert_operations: [&(dyn ToSql + Sync); 8] = [
        &o_ids,
        &o_keys,
        &o_hashes,
        &o_users,
        &o_behalf,
        &o_ats,
        &o_kinds,
        &o_receipts,
    ];
    let args_insert_transfers: [&(dyn ToSql + Sync); 15] = [
        &t_ids,
        &t_ops,
        &t_ratas,
        &t_debits,
        &t_credits,
        &t_amounts,
        &t_kinds,
        &t_phases,
        &t_pendings,
        &t_ats,
        &t_users,
        &t_parties,
        &t_counterparties,
        &t_disclose,
        &t_hashes,
    ];
    let args_update_head: [&(dyn ToSql + Sync); 8] = [
        &h.last_operation,
        &h.last_transfer,
        &head_hash,
        &h.last_party,
        &h.last_credit,
        &h.last_rata,
        &h.last_account,
        &h.last_protocol,
    ];
    tokio::try_join!(
        c.execute(&st.insert_parties, &args_insert_parties),
        c.execute(&st.insert_credits, &args_insert_credits),
        c.execute(&st.insert_rate, &args_insert_rate),
        c.execute(&st.insert_accounts, &args_insert_accounts),
        c.execute(&st.update_accounts, &args_update_accounts),
        c.execute(&st.insert_operations, &args_insert_operations),
        c.execute(&st.insert_transfers, &args_insert_transfers),
        // F1's summary, from the transfers just inserted (one id range per batch).
        c.execute(&st.summary_new, &args_summary),
        c.execute(&st.summary_answers, &args_summary),
        c.execute(&st.update_head, &args_update_head),
    )
    .map_err(db_err)?;
    let mut written = write_f5_records(c, plan).await?;
    written.extend(write_delegations(c, plan).await?);
    for (e, operation) in &plan.events {
        let id: i64 = c
            .query_one(
                "INSERT INTO operator_events (kind, at, actor, transfer, party, counterparty, data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &e.kind,
                    &e.at.timestamp_micros(),
                    &e.actor,
                    &e.transfer,
                    &e.party,
                    &e.counterparty,
                    &e.data.to_string(),
                ],
            )
            .await
            .map_err(db_err)?
            .get(0);
        written.push((*operation, &cessio_store::log::OPERATOR_EVENTS, id));
    }
    let mut extra: std::collections::HashMap<i64, Vec<cessio_store::log::Put>> =
        std::collections::HashMap::new();
    for (operation, spec, id) in written {
        extra
            .entry(operation)
            .or_default()
            .extend(log::read_back(c, &[(spec, id)]).await?);
    }
    log::append_after(
        c,
        (plan.head.log_seq, plan.head.log_hash),
        cessio_store::log::plan_entries(plan, extra),
    )
    .await
}

/// Rows whose ids the database assigned while writing a batch: (operation, table, id).
type Written = Vec<(i64, &'static cessio_store::log::TableSpec, i64)>;

/// The delegations a batch granted or revoked (rare), each with its entry in the
/// operator's register in the same transaction.
async fn write_delegations(c: &Transaction<'_>, plan: &Plan) -> Result<Written, StoreError> {
    use cessio_store::log::{DELEGATIONS, OPERATOR_EVENTS};
    let mut written = Written::new();
    for (change, operation, actor, at) in &plan.delegations {
        let at_micros = at.timestamp_micros();
        let (user, party) = match change {
            DelegationChange::Grant { user, party, .. }
            | DelegationChange::Revoke { user, party } => (*user, *party),
        };
        // A grant supersedes the live delegation of the pair, so that one pair has at most
        // one; a revocation ends it.
        let ended: Vec<i64> = c
            .query(
                "UPDATE delegations SET revoked_at = $3, revoked_by = $4
                  WHERE user_id = $1 AND party = $2 AND revoked_at IS NULL RETURNING id",
                &[&user, &party, &at_micros, actor],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        written.extend(ended.iter().map(|id| (*operation, &DELEGATIONS, *id)));
        let (kind, data) = match change {
            DelegationChange::Grant { scope, until, .. } => {
                let id: i64 = c
                    .query_one(
                        "INSERT INTO delegations (user_id, party, created_at, scope, valid_until, granted_by, operation)
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                        &[&user, &party, &at_micros, &scope.as_str(), until, actor, operation],
                    )
                    .await
                    .map_err(db_err)?
                    .get(0);
                written.push((*operation, &DELEGATIONS, id));
                (
                    DELEGATION_GRANTED_EVENT,
                    serde_json::json!({ "user": user, "scope": scope, "until": until, "operation": operation }),
                )
            }
            DelegationChange::Revoke { .. } if ended.is_empty() => continue,
            DelegationChange::Revoke { .. } => (
                DELEGATION_REVOKED_EVENT,
                serde_json::json!({ "user": user, "operation": operation }),
            ),
        };
        let id: i64 = c
            .query_one(
                "INSERT INTO operator_events (kind, at, actor, transfer, party, counterparty, data)
                 VALUES ($1, $2, $3, NULL, $4, NULL, $5) RETURNING id",
                &[&kind, &at_micros, actor, &party, &data.to_string()],
            )
            .await
            .map_err(db_err)?
            .get(0);
        written.push((*operation, &OPERATOR_EVENTS, id));
    }
    Ok(written)
}

const DELEGATION_COLUMNS: &str =
    "id, user_id, party, scope, valid_until, created_at, granted_by, revoked_at, revoked_by";

fn delegation_from_row(r: &Row) -> Delegation {
    let scope: String = r.get(3);
    Delegation {
        id: r.get(0),
        user: r.get(1),
        party: r.get(2),
        scope: DelegationScope::parse(&scope).unwrap_or(DelegationScope::Consultazione),
        until: r.get(4),
        granted_at: micros_to_time(r.get(5)),
        granted_by: r.get(6),
        revoked_at: r.get::<_, Option<i64>>(7).map(micros_to_time),
        revoked_by: r.get(8),
    }
}

/// The F24 choices and debt positions a batch recorded (F5): rare, one statement each.
async fn write_f5_records(c: &Transaction<'_>, plan: &Plan) -> Result<Written, StoreError> {
    let mut written = Written::new();
    for (record, operation, at) in &plan.choices {
        let (declared, on) = match record.choice {
            F24Choice::Declared { on } => (true, on),
            F24Choice::Revoked { on } => (false, on),
            F24Choice::NotDeclared => continue,
        };
        let id: i64 = c
            .query_one(
                "INSERT INTO f24_choices (operation, rata, party, declared, on_date, at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    operation,
                    &record.rata,
                    &record.party,
                    &declared,
                    &on,
                    &at.timestamp_micros(),
                ],
            )
            .await
            .map_err(db_err)?
            .get(0);
        written.push((*operation, &cessio_store::log::F24_CHOICES, id));
    }
    for (party, position, operation, at) in &plan.debt_positions {
        let json = serde_json::to_string(position).map_err(StoreError::backend)?;
        let id: i64 = c
            .query_one(
                "INSERT INTO debt_positions (operation, party, position, at) VALUES ($1, $2, $3, $4) RETURNING id",
                &[operation, party, &json, &at.timestamp_micros()],
            )
            .await
            .map_err(db_err)?
            .get(0);
        written.push((*operation, &cessio_store::log::DEBT_POSITIONS, id));
    }
    Ok(written)
}

fn holding_info_from_row(r: &Row) -> HoldingInfo {
    let idx: i32 = r.get(10);
    let year: i32 = r.get(11);
    let ceded: Option<i64> = r.get(17);
    HoldingInfo {
        account: account_from_row(r),
        rata: Rata {
            id: r.get(8),
            credit: r.get(9),
            index: u32::try_from(idx).unwrap_or_default(),
            year: RefYear::new(u16::try_from(year).unwrap_or_default()),
            amount: Cents::new(r.get(12)),
            codice_tributo: r.get(13),
            codice_univoco: r.get(14),
        },
        type_key: r.get(15),
        tracciabile: r.get(16),
        received_by_cession_at: ceded.map(micros_to_time),
        communicated_on: r.get(18),
    }
}

fn party_from_row(r: &Row) -> Result<Party, StoreError> {
    let cf: String = r.get(1);
    let kind: String = r.get(3);
    Ok(Party {
        id: r.get(0),
        cf: CodiceFiscale::parse(&cf).map_err(StoreError::backend)?,
        name: r.get(2),
        kind: PartyKind::parse(&kind).unwrap_or(PartyKind::Person),
        deceased: r.get(4),
    })
}

fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn transfer_from_row(r: &Row) -> TransferRow {
    let kind: String = r.get(6);
    let phase: String = r.get(7);
    let hash: String = r.get(14);
    TransferRow {
        id: r.get(0),
        operation: r.get(1),
        rata: r.get(2),
        debit: r.get(3),
        credit: r.get(4),
        amount: Cents::new(r.get(5)),
        // An unknown kind or phase is tampering: the hash will not match.
        kind: TransferKind::parse(&kind).unwrap_or(TransferKind::Correction),
        phase: Phase::parse(&phase).unwrap_or(Phase::Posted),
        pending_id: r.get(8),
        at_micros: r.get(9),
        acting_user: r.get(10),
        party: r.get(11),
        counterparty: r.get(12),
        disclose: r.get(13),
        hash: hash_from_hex(&hash).unwrap_or_default(),
    }
}

const VERIFY_PAGE: i64 = 10_000;

const USER_COLUMNS: &str = "u.id, u.username, u.display_name, u.password_hash, u.pin_hash, u.pin_failures, u.party, u.role";

fn user_from_row(r: &Row) -> User {
    let role: &str = r.get(7);
    let failures: i32 = r.get(5);
    User {
        id: r.get(0),
        username: r.get(1),
        display_name: r.get(2),
        password_hash: r.get(3),
        pin_hash: r.get(4),
        pin_failures: u32::try_from(failures).unwrap_or(u32::MAX),
        party: r.get(6),
        role: Role::parse(role).unwrap_or(Role::User),
    }
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
        self.reader()
            .await?
            .query_opt(
                "SELECT id, cf, name, kind, deceased FROM parties WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(db_err)?
            .map(|r| party_from_row(&r))
            .transpose()
    }

    async fn party_by_cf(&self, cf: &CodiceFiscale) -> Result<Option<Party>, StoreError> {
        // Omocodia: the subject may be registered under another spelling of its code; the
        // exact spelling is preferred.
        let variants: Vec<String> = cf
            .omocode_variants()
            .iter()
            .map(|v| v.as_str().to_string())
            .collect();
        self.reader()
            .await?
            .query_opt(
                "SELECT id, cf, name, kind, deceased FROM parties WHERE cf = ANY($1)
                  ORDER BY (cf = $2) DESC LIMIT 1",
                &[&variants, &cf.as_str()],
            )
            .await
            .map_err(db_err)?
            .map(|r| party_from_row(&r))
            .transpose()
    }

    async fn credit(&self, id: i64) -> Result<Option<Credit>, StoreError> {
        let c = self.reader().await?;
        let Some(r) = c
            .query_opt(
                "SELECT id, protocol, type_key, beneficiary, holder, origin, expense_year, communicated_on, tracciabile, created_at, split_of, no_tax_area FROM credits WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let origin: String = r.get(5);
        let year: i32 = r.get(6);
        let mut credit = Credit {
            id: r.get(0),
            protocol: r.get(1),
            type_key: r.get(2),
            beneficiary: r.get(3),
            holder: r.get(4),
            origin: CreditOrigin::parse(&origin).unwrap_or(CreditOrigin::Granted),
            expense_year: u16::try_from(year).unwrap_or_default(),
            communicated_on: r.get(7),
            tracciabile: r.get(8),
            created_at: micros_to_time(r.get(9)),
            rate: Vec::new(),
            split_of: r.get(10),
            beneficiary_no_tax_area: r.get(11),
        };
        for r in c
            .query(
                "SELECT id, credit, idx, year, amount, codice_tributo, codice_univoco FROM rate WHERE credit = $1 ORDER BY idx",
                &[&id],
            )
            .await
            .map_err(db_err)?
        {
            let idx: i32 = r.get(2);
            let year: i32 = r.get(3);
            credit.rate.push(Rata {
                id: r.get(0),
                credit: r.get(1),
                index: u32::try_from(idx).unwrap_or_default(),
                year: RefYear::new(u16::try_from(year).unwrap_or_default()),
                amount: Cents::new(r.get(4)),
                codice_tributo: r.get(5),
                codice_univoco: r.get(6),
            });
        }
        Ok(Some(credit))
    }

    async fn account(&self, rata: RataId, r: AccountRef) -> Result<Option<Account>, StoreError> {
        let k = AccountKey::of(rata, r);
        Ok(self
            .reader()
            .await?
            .query_opt(
                &format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.rata = $1 AND a.kind = $2 AND a.party = $3"
                ),
                &[&k.rata, &k.kind.as_str(), &k.party],
            )
            .await
            .map_err(db_err)?
            .map(|r| account_from_row(&r)))
    }

    async fn holdings(&self, party: PartyId) -> Result<Vec<Account>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query(
                &format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.party = $1 AND a.kind = 'holder' ORDER BY a.rata"
                ),
                &[&party],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(account_from_row)
            .collect())
    }

    async fn holdings_in(
        &self,
        party: PartyId,
        rate: &[RataId],
    ) -> Result<Vec<Account>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query(
                &format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.party = $1 AND a.kind = 'holder' AND a.rata = ANY($2) ORDER BY a.rata"
                ),
                &[&party, &rate],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(account_from_row)
            .collect())
    }

    async fn largest_holders(&self, n: usize) -> Result<Vec<PartyId>, StoreError> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        Ok(self
            .reader()
            .await?
            .query(&largest_holders_sql(|i| format!("${i}")), &[&n])
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| r.get(0))
            .collect())
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
        Ok(self
            .reader()
            .await?
            .query_opt(
                &format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(db_err)?
            .as_ref()
            .map(transfer_from_row))
    }

    async fn history(&self, rata: RataId) -> Result<Vec<TransferRow>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query(
                &format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE rata = $1 ORDER BY id"),
                &[&rata],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(transfer_from_row)
            .collect())
    }

    async fn histories(&self, rate: &[RataId]) -> Result<Vec<TransferRow>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query(
                &format!(
                    "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE rata = ANY($1) ORDER BY rata, id"
                ),
                &[&rate],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(transfer_from_row)
            .collect())
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
        self.reader()
            .await?
            .query(
                "SELECT id, cf, name, kind, deceased FROM parties WHERE id = ANY($1) ORDER BY id",
                &[&ids],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(party_from_row)
            .collect()
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
        Ok(rows.iter().map(|r| entry_from_row(r, until)).collect())
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
                    Ok(r) => {
                        if !sender.push(entry_from_row(&r, until)).await {
                            return;
                        }
                    }
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
        Ok(self
            .reader()
            .await?
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"),
                &[&id],
            )
            .await
            .map_err(db_err)?
            .map(|r| user_from_row(&r)))
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1"),
                &[&username],
            )
            .await
            .map_err(db_err)?
            .map(|r| user_from_row(&r)))
    }

    async fn has_operator(&self) -> Result<bool, StoreError> {
        Ok(self
            .reader()
            .await?
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM users WHERE role = $1)",
                &[&Role::Operator.as_str()],
            )
            .await
            .map_err(db_err)?
            .get(0))
    }

    async fn users_of_party(&self, party: PartyId) -> Result<Vec<User>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.party = $1 ORDER BY u.id"),
                &[&party],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(user_from_row)
            .collect())
    }

    async fn pin_failed(&self, user: i64, at: DateTime<Utc>) -> Result<u32, StoreError> {
        let r = self
            .logged_change(
                "UPDATE users SET pin_failures = pin_failures + 1 WHERE id = $1 RETURNING pin_failures",
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
                "UPDATE users SET pin_failures = pin_failures + 1 WHERE id = $1 AND pin_failures < $2 RETURNING pin_failures",
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
            .query_opt("SELECT pin_failures FROM users WHERE id = $1", &[&user])
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
        Ok(self
            .reader()
            .await?
            .query(
                &format!(
                    "SELECT {DELEGATION_COLUMNS} FROM delegations WHERE user_id = $1 AND revoked_at IS NULL ORDER BY party, id"
                ),
                &[&user],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(delegation_from_row)
            .collect())
    }

    async fn party_delegations(
        &self,
        party: PartyId,
        limit: usize,
    ) -> Result<Vec<Delegation>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .reader()
            .await?
            .query(
                &format!(
                    "SELECT {DELEGATION_COLUMNS} FROM delegations WHERE party = $1 ORDER BY id DESC LIMIT $2"
                ),
                &[&party, &limit],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(delegation_from_row)
            .collect())
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
        Ok(self
            .reader()
            .await?
            .query_opt(
                &format!(
                    "SELECT {USER_COLUMNS} FROM users u JOIN api_tokens t ON t.user_id = u.id WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
                ),
                &[&token_hash],
            )
            .await
            .map_err(db_err)?
            .map(|r| user_from_row(&r)))
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
            .query_opt(
                "SELECT receipt FROM operations WHERE id = $1",
                &[&operation],
            )
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
        Ok(c
            .query(
                &format!(
                    "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id >= $1 AND id <= $2 AND operation = $3 ORDER BY id"
                ),
                &[&first, &last, &operation],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(transfer_from_row)
            .collect())
    }

    async fn f24_choices(&self, party: PartyId) -> Result<Vec<ChoiceRecord>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query(
                "SELECT f.rata, f.declared, f.on_date FROM f24_choices f
                  WHERE f.party = $1
                    AND f.id = (SELECT MAX(g.id) FROM f24_choices g WHERE g.party = f.party AND g.rata = f.rata)
                  ORDER BY f.rata",
                &[&party],
            )
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
            .query_opt(
                "SELECT position FROM debt_positions WHERE party = $1 ORDER BY id DESC LIMIT 1",
                &[&party],
            )
            .await
            .map_err(db_err)?
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(StoreError::backend))
            .transpose()
    }

    async fn holding_infos(&self, query: &HoldingQuery) -> Result<Vec<HoldingInfo>, StoreError> {
        Ok(self
            .query_values(&query.sql(|n| format!("${n}")), &query.params())
            .await?
            .iter()
            .map(holding_info_from_row)
            .collect())
    }

    async fn splits_of(&self, rata: RataId) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .reader()
            .await?
            .query(
                "SELECT id FROM credits WHERE split_of = $1 ORDER BY id",
                &[&rata],
            )
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| r.get(0))
            .collect())
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
                .query(
                    &format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id > $1 ORDER BY id LIMIT $2"),
                    &[&last, &VERIFY_PAGE],
                )
                .await
                .map_err(db_err)?;
            let Some(end) = rows.last().map(|r| r.get::<_, i64>(0)) else {
                break;
            };
            for r in &rows {
                v.feed(&transfer_from_row(r));
            }
            last = end;
        }
        let accounts: Vec<Account> = tx
            .query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a"), &[])
            .await
            .map_err(db_err)?
            .iter()
            .map(account_from_row)
            .collect();
        let rate: Vec<(RataId, Cents)> = tx
            .query("SELECT id, amount FROM rate", &[])
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
