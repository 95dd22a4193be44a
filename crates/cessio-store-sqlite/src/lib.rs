//! The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so that an
//! acknowledged operation survives a crash or power loss.
//!
//! One writer thread owns the write connection. It takes every request waiting in its
//! queue (up to `max_batch`), decides them with the shared engine inside one `BEGIN
//! IMMEDIATE` transaction, commits once, and only then answers each caller: group commit
//! turns one fsync per operation into one per batch without weakening durability.
//! Reads use their own connections and never wait for the writer (WAL readers see the
//! last committed state).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use tokio::sync::mpsc;

use cessio_store::log::{API_TOKENS, AUDIT_LOG, OPERATOR_EVENTS, PARTIES, USERS};

mod log;
mod schema;

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
    let kind: String = r.get(2)?;
    let phase: String = r.get(3)?;
    let answer_phase: Option<String> = r.get(8)?;
    let answer_at: Option<i64> = r.get(9)?;
    let origin: String = r.get(19)?;
    let date: String = r.get(20)?;
    Ok(PartyEntry {
        transfer: r.get(0)?,
        at: micros_to_time(r.get(1)?),
        kind: TransferKind::parse(&kind).unwrap_or(TransferKind::Correction),
        pending: phase == "pending",
        amount: Cents::new(r.get(4)?),
        party: r.get(5)?,
        counterparty: r.get(6)?,
        disclose: r.get(7)?,
        answer: match (answer_phase, answer_at) {
            (Some(p), Some(at)) if at <= until => Some(Answer {
                accepted: p == "post_pending",
                at: micros_to_time(at),
                by: r.get(21)?,
            }),
            _ => None,
        },
        rata: r.get(10)?,
        rata_index: r.get(11)?,
        year: RefYear::new(r.get(12)?),
        codice_tributo: r.get(13)?,
        codice_univoco: r.get(14)?,
        credit: r.get(15)?,
        type_key: r.get(16)?,
        protocol: r.get(17)?,
        tracciabile: r.get(18)?,
        origin: CreditOrigin::parse(&origin).unwrap_or(CreditOrigin::Granted),
        communicated_on: date.parse::<NaiveDate>().unwrap_or_default(),
    })
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

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
                c.execute_batch(&format!("PRAGMA cache_size=-{READER_CACHE_KIB};"))
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

fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    stats: &WriteStats,
) {
    while let Some(first) = rx.blocking_recv() {
        let batch = queue::take_batch(&mut rx, first, max_batch);
        let ops = queue::operations(&batch);
        let outcome = write_batch(&mut conn, &ops);
        queue::answer(batch, outcome, stats);
    }
}

fn write_batch(
    conn: &mut Connection,
    ops: &[Operation],
) -> Result<Vec<Result<Receipt, StoreError>>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let head = load_head(&tx)?;
    let needs = engine::needs(ops);
    let pre = prefetch(&tx, &needs)?;
    let (plan, results) = engine::plan(ops, pre, head);
    if !plan.is_empty() {
        write_plan(&tx, &plan)?;
    }
    tx.commit().map_err(db_err)?;
    Ok(results)
}

fn load_head(conn: &Connection) -> Result<Head, StoreError> {
    conn.query_row(
        "SELECT last_operation, last_transfer, last_hash, last_party, last_credit, last_rata, last_account, last_protocol, log_seq, log_hash FROM ledger_head WHERE id = 1",
        [],
        |r| {
            let hash: String = r.get(2)?;
            let log_hash: String = r.get(9)?;
            Ok(Head {
                last_operation: r.get(0)?,
                last_transfer: r.get(1)?,
                last_hash: hash_from_hex(&hash).unwrap_or_default(),
                last_party: r.get(3)?,
                last_credit: r.get(4)?,
                last_rata: r.get(5)?,
                last_account: r.get(6)?,
                last_protocol: r.get(7)?,
                log_seq: r.get(8)?,
                log_hash: hash_from_hex(&log_hash).unwrap_or_default(),
            })
        },
    )
    .map_err(db_err)
}

const TRANSFER_COLUMNS: &str = "id, operation, rata, debit, credit, amount, kind, phase, pending_id, at, acting_user, party, counterparty, disclose, hash";

const ACCOUNT_COLUMNS: &str =
    "id, rata, kind, party, debits_pending, debits_posted, credits_pending, credits_posted";

fn account_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let kind: String = r.get(2)?;
    let party: i64 = r.get(3)?;
    Ok(Account {
        id: r.get(0)?,
        rata: r.get(1)?,
        kind: AccountKind::parse(&kind).unwrap_or(AccountKind::Holder),
        party: (party != 0).then_some(party),
        balance: Balance {
            debits_pending: Cents::new(r.get(4)?),
            debits_posted: Cents::new(r.get(5)?),
            credits_pending: Cents::new(r.get(6)?),
            credits_posted: Cents::new(r.get(7)?),
        },
    })
}

fn prefetch(tx: &Transaction<'_>, needs: &Needs) -> Result<Prefetched, StoreError> {
    let mut pre = Prefetched::default();
    {
        let mut st = tx
            .prepare_cached("SELECT request_hash, receipt FROM log WHERE idempotency_key = ?1")
            .map_err(db_err)?;
        for key in &needs.idempotency_keys {
            let row: Option<(String, String)> = st
                .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db_err)?;
            if let Some((request_hash, receipt)) = row {
                let receipt: Receipt =
                    serde_json::from_str(&receipt).map_err(StoreError::backend)?;
                pre.operations.insert(
                    key.clone(),
                    StoredOperation {
                        request_hash,
                        receipt,
                    },
                );
            }
        }
    }
    let mut account_ids = Vec::new();
    {
        let mut st = tx
            .prepare_cached(
                "SELECT p.id, p.debit, p.credit, p.amount, p.kind, r.phase FROM transfers p
                 LEFT JOIN transfers r ON r.pending_id = p.id
                 WHERE p.id = ?1 AND p.phase = 'pending'",
            )
            .map_err(db_err)?;
        for id in &needs.pending {
            let row = st
                .query_row([id], |r| {
                    let kind: String = r.get(4)?;
                    let answer: Option<String> = r.get(5)?;
                    Ok((
                        PendingTransfer {
                            id: r.get(0)?,
                            debit: r.get(1)?,
                            credit: r.get(2)?,
                            amount: Cents::new(r.get(3)?),
                            state: match answer.as_deref() {
                                None => PendingState::Pending,
                                Some("post_pending") => PendingState::Posted,
                                Some(_) => PendingState::Voided,
                            },
                        },
                        TransferKind::parse(&kind).unwrap_or(TransferKind::Cession),
                    ))
                })
                .optional()
                .map_err(db_err)?;
            if let Some((p, kind)) = row {
                account_ids.extend([p.debit, p.credit]);
                pre.pending.push((p, kind));
            }
        }
    }
    {
        let mut by_key = tx
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE rata = ?1 AND kind = ?2 AND party = ?3"
            ))
            .map_err(db_err)?;
        for k in &needs.account_keys {
            if let Some(a) = by_key
                .query_row(params![k.rata, k.kind.as_str(), k.party], account_from_row)
                .optional()
                .map_err(db_err)?
            {
                pre.accounts.push(a);
            }
        }
        let mut by_id = tx
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"
            ))
            .map_err(db_err)?;
        account_ids.sort_unstable();
        account_ids.dedup();
        for id in account_ids {
            if pre.accounts.iter().any(|a| a.id == id) {
                continue;
            }
            if let Some(a) = by_id
                .query_row([id], account_from_row)
                .optional()
                .map_err(db_err)?
            {
                pre.accounts.push(a);
            }
        }
    }
    {
        let mut st = tx
            .prepare_cached("SELECT 1 FROM parties WHERE id = ?1")
            .map_err(db_err)?;
        for id in &needs.parties {
            if st.exists([id]).map_err(db_err)? {
                pre.parties.insert(*id);
            }
        }
        let mut st = tx
            .prepare_cached("SELECT 1 FROM parties WHERE cf = ?1")
            .map_err(db_err)?;
        for cf in &needs.cfs {
            if st.exists([cf]).map_err(db_err)? {
                pre.cfs.insert(cf.clone());
            }
        }
        let mut st = tx
            .prepare_cached("SELECT 1 FROM rate WHERE id = ?1")
            .map_err(db_err)?;
        for id in &needs.rate {
            if st.exists([id]).map_err(db_err)? {
                pre.rate.insert(*id);
            }
        }
    }
    {
        let mut st = tx
            .prepare_cached(&format!(
                "SELECT kind, data FROM operator_events WHERE transfer = ?1 AND kind IN ('{}', '{}') ORDER BY id",
                cessio_store::SUSPENSION_EVENT,
                cessio_store::SUSPENSION_END_EVENT
            ))
            .map_err(db_err)?;
        for t in &needs.suspensions {
            let events: Vec<(String, serde_json::Value)> = st
                .query_map([t], |r| {
                    let data: String = r.get(1)?;
                    Ok((r.get(0)?, serde_json::from_str(&data).unwrap_or_default()))
                })
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            if let Some(fact) =
                engine::SuspensionFact::fold(events.iter().map(|(k, d)| (k.as_str(), d)))
            {
                pre.suspensions.insert(*t, fact);
            }
        }
        let mut st = tx
            .prepare_cached(
                "SELECT scope, valid_until FROM delegations WHERE user_id = ?1 AND party = ?2 AND revoked_at IS NULL",
            )
            .map_err(db_err)?;
        for (user, party) in &needs.delegations {
            let live: Vec<engine::LiveDelegation> = st
                .query_map(params![user, party], |r| {
                    let scope: String = r.get(0)?;
                    let until: Option<String> = r.get(1)?;
                    Ok(engine::LiveDelegation {
                        scope: DelegationScope::parse(&scope)
                            .unwrap_or(DelegationScope::Consultazione),
                        until: until.and_then(|d| d.parse().ok()),
                    })
                })
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            pre.delegations.insert((*user, *party), live);
        }
    }
    Ok(pre)
}

static SUMMARY_UPDATE: std::sync::LazyLock<[String; 2]> =
    std::sync::LazyLock::new(|| cessio_store::summary_update_sql(|n| format!("?{n}")));

/// F1's summary, in the batch's transaction: two set-based statements over the transfers
/// just inserted (ids are assigned in order, so the batch's are one range).
fn write_summary(tx: &Transaction<'_>, plan: &Plan) -> Result<(), StoreError> {
    let ids = plan.transfers.iter().map(|t| t.id);
    let (Some(first), Some(last)) = (ids.clone().min(), ids.max()) else {
        return Ok(());
    };
    for sql in SUMMARY_UPDATE.iter() {
        tx.prepare_cached(sql)
            .map_err(db_err)?
            .execute(params![first - 1, last])
            .map_err(db_err)?;
    }
    Ok(())
}

fn write_plan(tx: &Transaction<'_>, plan: &Plan) -> Result<(), StoreError> {
    {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO parties (id, cf, name, kind, deceased, created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            )
            .map_err(db_err)?;
        for (p, at) in &plan.parties {
            st.execute(params![
                p.id,
                p.cf.as_str(),
                p.name,
                p.kind.as_str(),
                at.timestamp_micros()
            ])
            .map_err(db_err)?;
        }
    }
    {
        let mut credit = tx
            .prepare_cached(
                "INSERT INTO credits (id, protocol, type_key, beneficiary, holder, origin, expense_year, communicated_on, tracciabile, created_at, split_of, no_tax_area)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .map_err(db_err)?;
        let mut rata = tx
            .prepare_cached(
                "INSERT INTO rate (id, credit, idx, year, amount, codice_tributo, codice_univoco) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(db_err)?;
        for c in &plan.credits {
            credit
                .execute(params![
                    c.id,
                    c.protocol,
                    c.type_key,
                    c.beneficiary,
                    c.holder,
                    c.origin.as_str(),
                    c.expense_year,
                    c.communicated_on.to_string(),
                    c.tracciabile,
                    c.created_at.timestamp_micros(),
                    c.split_of,
                    c.beneficiary_no_tax_area
                ])
                .map_err(db_err)?;
            for r in &c.rate {
                rata.execute(params![
                    r.id,
                    r.credit,
                    r.index,
                    r.year.get(),
                    r.amount.get(),
                    r.codice_tributo,
                    r.codice_univoco
                ])
                .map_err(db_err)?;
            }
        }
    }
    {
        let mut st = tx
            .prepare_cached(&format!(
                "INSERT INTO accounts ({ACCOUNT_COLUMNS}, last_transfer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))
            .map_err(db_err)?;
        let last = plan.last_transfers();
        for a in &plan.new_accounts {
            let b = a.balance;
            st.execute(params![
                a.id,
                a.rata,
                a.kind.as_str(),
                a.party.unwrap_or(0),
                b.debits_pending.get(),
                b.debits_posted.get(),
                b.credits_pending.get(),
                b.credits_posted.get(),
                last.get(&a.id).copied().unwrap_or(0)
            ])
            .map_err(db_err)?;
        }
        // An account loaded but not moved (its operation was refused) keeps its mark.
        let mut st = tx
            .prepare_cached(
                "UPDATE accounts SET debits_pending = ?2, debits_posted = ?3, credits_pending = ?4, credits_posted = ?5, last_transfer = COALESCE(?6, last_transfer) WHERE id = ?1",
            )
            .map_err(db_err)?;
        for a in &plan.account_updates {
            let b = a.balance;
            st.execute(params![
                a.id,
                b.debits_pending.get(),
                b.debits_posted.get(),
                b.credits_pending.get(),
                b.credits_posted.get(),
                last.get(&a.id).copied()
            ])
            .map_err(db_err)?;
        }
    }
    {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO operations (id, idempotency_key, request_hash, acting_user, on_behalf_of, at, kind, receipt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(db_err)?;
        for o in &plan.operations {
            st.execute(params![
                o.id,
                o.idempotency_key,
                o.request_hash,
                o.acting_user,
                o.on_behalf_of,
                o.at.timestamp_micros(),
                o.kind,
                o.receipt_json
            ])
            .map_err(db_err)?;
        }
    }
    {
        let mut st = tx
            .prepare_cached(
                &format!("INSERT INTO transfers ({TRANSFER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
            )
            .map_err(db_err)?;
        for t in &plan.transfers {
            st.execute(params![
                t.id,
                t.operation,
                t.rata,
                t.debit,
                t.credit,
                t.amount.get(),
                t.kind.as_str(),
                t.phase.as_str(),
                t.pending_id,
                t.at_micros,
                t.acting_user,
                t.party,
                t.counterparty,
                t.disclose,
                hash_to_hex(&t.hash)
            ])
            .map_err(db_err)?;
        }
    }
    write_summary(tx, plan)?;
    let mut written = write_f5_records(tx, plan)?;
    written.extend(write_delegations(tx, plan)?);
    written.extend(write_events(tx, plan)?);
    let mut extra: std::collections::HashMap<i64, Vec<cessio_store::log::Put>> =
        std::collections::HashMap::new();
    for (operation, spec, id) in written {
        extra
            .entry(operation)
            .or_default()
            .extend(log::read_back(tx, &[(spec, id)])?);
    }
    log::append(tx, cessio_store::log::plan_entries(plan, extra))?;
    let h = &plan.head;
    tx.execute(
        "UPDATE ledger_head SET last_operation = ?1, last_transfer = ?2, last_hash = ?3, last_party = ?4, last_credit = ?5, last_rata = ?6, last_account = ?7, last_protocol = ?8 WHERE id = 1",
        params![
            h.last_operation,
            h.last_transfer,
            hash_to_hex(&h.last_hash),
            h.last_party,
            h.last_credit,
            h.last_rata,
            h.last_account,
            h.last_protocol
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Rows whose ids the database assigned while writing a batch: (operation, table, id).
type Written = Vec<(i64, &'static cessio_store::log::TableSpec, i64)>;

/// The F24 choices and debt positions a batch recorded (F5).
fn write_f5_records(tx: &Transaction<'_>, plan: &Plan) -> Result<Written, StoreError> {
    let mut written = Written::new();
    if !plan.choices.is_empty() {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO f24_choices (operation, rata, party, declared, on_date, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(db_err)?;
        for (c, operation, at) in &plan.choices {
            let (declared, on) = match c.choice {
                F24Choice::Declared { on } => (true, on),
                F24Choice::Revoked { on } => (false, on),
                F24Choice::NotDeclared => continue,
            };
            st.execute(params![
                operation,
                c.rata,
                c.party,
                declared,
                on.to_string(),
                at.timestamp_micros()
            ])
            .map_err(db_err)?;
            written.push((
                *operation,
                &cessio_store::log::F24_CHOICES,
                tx.last_insert_rowid(),
            ));
        }
    }
    if !plan.debt_positions.is_empty() {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO debt_positions (operation, party, position, at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db_err)?;
        for (party, position, operation, at) in &plan.debt_positions {
            let json = serde_json::to_string(position).map_err(StoreError::backend)?;
            st.execute(params![operation, party, json, at.timestamp_micros()])
                .map_err(db_err)?;
            written.push((
                *operation,
                &cessio_store::log::DEBT_POSITIONS,
                tx.last_insert_rowid(),
            ));
        }
    }
    Ok(written)
}

/// The delegations a batch granted or revoked, each with its entry in the operator's
/// register in the same transaction: a change without its audit entry cannot be committed.
fn write_delegations(tx: &Transaction<'_>, plan: &Plan) -> Result<Written, StoreError> {
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
        let ended: Vec<i64> = tx
            .prepare_cached(
                "UPDATE delegations SET revoked_at = ?3, revoked_by = ?4 WHERE user_id = ?1 AND party = ?2 AND revoked_at IS NULL RETURNING id",
            )
            .and_then(|mut st| {
                st.query_map(params![user, party, at_micros, actor], |r| r.get(0))?
                    .collect()
            })
            .map_err(db_err)?;
        written.extend(ended.iter().map(|id| (*operation, &DELEGATIONS, *id)));
        let (kind, data) = match change {
            DelegationChange::Grant { scope, until, .. } => {
                tx.prepare_cached(
                    "INSERT INTO delegations (user_id, party, created_at, scope, valid_until, granted_by, operation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        user,
                        party,
                        at_micros,
                        scope.as_str(),
                        until.map(|d| d.to_string()),
                        actor,
                        operation
                    ])
                })
                .map_err(|e| fk_error(e, user, party))?;
                written.push((*operation, &DELEGATIONS, tx.last_insert_rowid()));
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
        tx.prepare_cached(
            "INSERT INTO operator_events (kind, at, actor, transfer, party, counterparty, data) VALUES (?1, ?2, ?3, NULL, ?4, NULL, ?5)",
        )
        .and_then(|mut st| st.execute(params![kind, at_micros, actor, party, data.to_string()]))
        .map_err(db_err)?;
        written.push((*operation, &OPERATOR_EVENTS, tx.last_insert_rowid()));
    }
    Ok(written)
}

/// The entries of the operator's register recorded through the writer.
fn write_events(tx: &Transaction<'_>, plan: &Plan) -> Result<Written, StoreError> {
    let mut written = Written::new();
    for (e, operation) in &plan.events {
        tx.prepare_cached(
            "INSERT INTO operator_events (kind, at, actor, transfer, party, counterparty, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                e.kind,
                e.at.timestamp_micros(),
                e.actor,
                e.transfer,
                e.party,
                e.counterparty,
                e.data.to_string()
            ])
        })
        .map_err(db_err)?;
        written.push((*operation, &OPERATOR_EVENTS, tx.last_insert_rowid()));
    }
    Ok(written)
}

const DELEGATION_COLUMNS: &str =
    "id, user_id, party, scope, valid_until, created_at, granted_by, revoked_at, revoked_by";

fn delegation_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delegation> {
    let scope: String = r.get(3)?;
    let until: Option<String> = r.get(4)?;
    let revoked: Option<i64> = r.get(7)?;
    Ok(Delegation {
        id: r.get(0)?,
        user: r.get(1)?,
        party: r.get(2)?,
        scope: DelegationScope::parse(&scope).unwrap_or(DelegationScope::Consultazione),
        until: until.and_then(|d| d.parse().ok()),
        granted_at: micros_to_time(r.get(5)?),
        granted_by: r.get(6)?,
        revoked_at: revoked.map(micros_to_time),
        revoked_by: r.get(8)?,
    })
}

fn holding_info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HoldingInfo> {
    let ceded: Option<i64> = r.get(17)?;
    Ok(HoldingInfo {
        account: account_from_row(r)?,
        rata: Rata {
            id: r.get(8)?,
            credit: r.get(9)?,
            index: r.get(10)?,
            year: RefYear::new(r.get(11)?),
            amount: Cents::new(r.get(12)?),
            codice_tributo: r.get(13)?,
            codice_univoco: r.get(14)?,
        },
        type_key: r.get(15)?,
        tracciabile: r.get(16)?,
        received_by_cession_at: ceded.map(micros_to_time),
        communicated_on: r
            .get::<_, String>(18)?
            .parse::<NaiveDate>()
            .unwrap_or_default(),
    })
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
    let cf: String = r.get(1)?;
    let kind: String = r.get(3)?;
    Ok(Party {
        id: r.get(0)?,
        cf: CodiceFiscale::parse(&cf).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?,
        name: r.get(2)?,
        kind: PartyKind::parse(&kind).unwrap_or(PartyKind::Person),
        deceased: r.get(4)?,
    })
}

fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn load_credit(conn: &Connection, id: i64) -> Result<Option<Credit>, StoreError> {
    let credit = conn
        .query_row(
            "SELECT id, protocol, type_key, beneficiary, holder, origin, expense_year, communicated_on, tracciabile, created_at, split_of, no_tax_area FROM credits WHERE id = ?1",
            [id],
            |r| {
                let origin: String = r.get(5)?;
                let date: String = r.get(7)?;
                Ok(Credit {
                    id: r.get(0)?,
                    protocol: r.get(1)?,
                    type_key: r.get(2)?,
                    beneficiary: r.get(3)?,
                    holder: r.get(4)?,
                    origin: CreditOrigin::parse(&origin).unwrap_or(CreditOrigin::Granted),
                    expense_year: r.get(6)?,
                    communicated_on: date.parse::<NaiveDate>().unwrap_or_default(),
                    tracciabile: r.get(8)?,
                    created_at: micros_to_time(r.get(9)?),
                    rate: Vec::new(),
                    split_of: r.get(10)?,
                    beneficiary_no_tax_area: r.get(11)?,
                })
            },
        )
        .optional()
        .map_err(db_err)?;
    let Some(mut credit) = credit else {
        return Ok(None);
    };
    let mut st = conn
        .prepare_cached(
            "SELECT id, credit, idx, year, amount, codice_tributo, codice_univoco FROM rate WHERE credit = ?1 ORDER BY idx",
        )
        .map_err(db_err)?;
    credit.rate = st
        .query_map([id], |r| {
            Ok(Rata {
                id: r.get(0)?,
                credit: r.get(1)?,
                index: r.get(2)?,
                year: RefYear::new(r.get(3)?),
                amount: Cents::new(r.get(4)?),
                codice_tributo: r.get(5)?,
                codice_univoco: r.get(6)?,
            })
        })
        .map_err(db_err)?
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    Ok(Some(credit))
}

/// Page size for streaming the history: bounded memory whatever the table size.
const VERIFY_PAGE: i64 = 10_000;

fn verify_all(conn: &Connection) -> Result<VerifyReport, StoreError> {
    // One read transaction: a consistent snapshot even while the writer goes on.
    conn.execute_batch("BEGIN").map_err(db_err)?;
    let result = (|| {
        let head = load_head(conn)?;
        let mut projections = cessio_store::log::Projections::new();
        log::scan_log(conn, |e| projections.feed(e))?;
        let (mut v, mut summary) = Verifier::after_log(&mut projections, &head);
        for spec in cessio_store::log::TABLES {
            let mut check = cessio_store::log::TableCheck::new(spec, projections.take(spec));
            log::scan_table(conn, spec, |row| check.feed(row))?;
            let (n, problems) = check.finish();
            v.table_checked(n, problems, &mut summary);
        }
        let mut st = conn
            .prepare(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))
            .map_err(db_err)?;
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
        let mut st = conn
            .prepare(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts"))
            .map_err(db_err)?;
        let accounts: Vec<Account> = st
            .query_map([], account_from_row)
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        let mut st = conn
            .prepare("SELECT id, amount FROM rate")
            .map_err(db_err)?;
        let rate: Vec<(RataId, Cents)> = st
            .query_map([], |r| Ok((r.get(0)?, Cents::new(r.get(1)?))))
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        let mut report = v.finish(accounts, rate, &head);
        summary.into_report(&mut report);
        let summary = |sql: &str| -> Result<Vec<(SummaryKey, i64)>, StoreError> {
            conn.prepare(sql)
                .map_err(db_err)?
                .query_map([], |r| {
                    Ok((
                        (
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ),
                        r.get(7)?,
                    ))
                })
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)
        };
        cessio_store::verify::check_summary(
            &mut report,
            summary(cessio_store::SUMMARY_STORED_SQL)?,
            summary(&cessio_store::summary_recompute_sql())?,
        );
        let moved: Vec<(i64, i64, i64)> = conn
            .prepare(cessio_store::LAST_TRANSFER_CHECK_SQL)
            .map_err(db_err)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        cessio_store::verify::check_last_transfers(&mut report, moved);
        Ok(report)
    })();
    let _ = conn.execute_batch("COMMIT");
    result
}

fn transfer_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TransferRow> {
    let kind: String = r.get(6)?;
    let phase: String = r.get(7)?;
    let hash: String = r.get(14)?;
    Ok(TransferRow {
        id: r.get(0)?,
        operation: r.get(1)?,
        rata: r.get(2)?,
        debit: r.get(3)?,
        credit: r.get(4)?,
        amount: Cents::new(r.get(5)?),
        // An unknown kind or phase string is tampering: map it to a value the hash
        // will not match rather than fail the whole verification.
        kind: TransferKind::parse(&kind).unwrap_or(TransferKind::Correction),
        phase: Phase::parse(&phase).unwrap_or(Phase::Posted),
        pending_id: r.get(8)?,
        at_micros: r.get(9)?,
        acting_user: r.get(10)?,
        party: r.get(11)?,
        counterparty: r.get(12)?,
        disclose: r.get(13)?,
        hash: hash_from_hex(&hash).unwrap_or_default(),
    })
}

const USER_COLUMNS: &str = "u.id, u.username, u.display_name, u.password_hash, u.pin_hash, u.pin_failures, u.party, u.role";

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(7)?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        password_hash: r.get(3)?,
        pin_hash: r.get(4)?,
        pin_failures: r.get(5)?,
        party: r.get(6)?,
        role: Role::parse(&role).unwrap_or(Role::User),
    })
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
            c.query_row(
                "SELECT id, cf, name, kind, deceased FROM parties WHERE id = ?1",
                [id],
                party_from_row,
            )
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
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE rata = ?1 AND kind = ?2 AND party = ?3"
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
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE party = ?1 AND kind = 'holder' ORDER BY rata"
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
                        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE party = ? AND kind = 'holder' AND rata IN ({marks})"
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

    async fn transfer(
        &self,
        id: cessio_core::ledger::TransferId,
    ) -> Result<Option<TransferRow>, StoreError> {
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ?1"),
                [id],
                transfer_from_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn history(&self, rata: RataId) -> Result<Vec<TransferRow>, StoreError> {
        self.read(move |c| {
            all(
                c,
                &format!("SELECT {TRANSFER_COLUMNS} FROM transfers WHERE rata = ?1 ORDER BY id"),
                [rata],
                transfer_from_row,
            )
        })
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
            let mut st = c
                .prepare_cached("SELECT id, cf, name, kind, deceased FROM parties WHERE id = ?1")
                .map_err(db_err)?;
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
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<MonitorTotal>, StoreError> {
        self.read(move |c| {
            // Today's state is kept in the summary; a past date is recomputed from the
            // history.
            let (mut st, args) = match until {
                None => (
                    c.prepare_cached(&cessio_store::summary_totals_sql(|n| format!("?{n}")))
                        .map_err(db_err)?,
                    vec![party],
                ),
                Some(u) => (
                    c.prepare_cached(&cessio_store::monitor_totals_sql(|n| format!("?{n}")))
                        .map_err(db_err)?,
                    vec![party, u.timestamp_micros()],
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
        conn.execute_batch(&format!("PRAGMA cache_size=-{STREAM_CACHE_KIB};"))
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
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"),
                [id],
                user_from_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_string();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = ?1"),
                [username],
                user_from_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn has_operator(&self) -> Result<bool, StoreError> {
        self.read(move |c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE role = ?1)",
                [Role::Operator.as_str()],
                |r| r.get(0),
            )
            .map_err(db_err)
        })
        .await
    }

    async fn users_of_party(&self, party: PartyId) -> Result<Vec<User>, StoreError> {
        self.read(move |c| {
            all(
                c,
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.party = ?1 ORDER BY u.id"),
                [party],
                user_from_row,
            )
        })
        .await
    }

    async fn pin_failed(&self, user: i64, at: DateTime<Utc>) -> Result<u32, StoreError> {
        self.read(move |c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let failures: u32 = tx
                .query_row(
                    "UPDATE users SET pin_failures = pin_failures + 1 WHERE id = ?1 RETURNING pin_failures",
                    [user],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?
                .ok_or(StoreError::UnknownUser { user })?;
            log::record(&tx, "pin_failed", &format!("user {user}"), at, &[(&USERS, user)])?;
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
                .query_row(
                    "UPDATE users SET pin_failures = pin_failures + 1 WHERE id = ?1 AND pin_failures < ?2 RETURNING pin_failures",
                    params![user, max],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            if failures.is_some() {
                log::record(&tx, "pin_failed", &format!("user {user}"), at, &[(&USERS, user)])?;
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
                .query_row(
                    "SELECT pin_failures FROM users WHERE id = ?1",
                    [user],
                    |r| r.get(0),
                )
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
                .prepare_cached(&format!(
                    "SELECT {DELEGATION_COLUMNS} FROM delegations WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY party, id"
                ))
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
                .prepare_cached(&format!(
                    "SELECT {DELEGATION_COLUMNS} FROM delegations WHERE party = ?1 ORDER BY id DESC LIMIT ?2"
                ))
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
            c.query_row(
                &format!(
                    "SELECT {USER_COLUMNS} FROM users u JOIN api_tokens t ON t.user_id = u.id WHERE t.token_hash = ?1 AND t.revoked_at IS NULL"
                ),
                [hash],
                user_from_row,
            )
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

    async fn operation_transfers(&self, operation: i64) -> Result<Vec<TransferRow>, StoreError> {
        self.read(move |c| {
            // The receipt names the operation's transfers: a range of the primary key.
            let receipt: Option<String> = c
                .query_row(
                    "SELECT receipt FROM operations WHERE id = ?1",
                    [operation],
                    |r| r.get(0),
                )
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
                &format!(
                    "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id >= ?1 AND id <= ?2 AND operation = ?3 ORDER BY id"
                ),
                params![first, last, operation],
                transfer_from_row,
            )
        })
        .await
    }

    async fn f24_choices(&self, party: PartyId) -> Result<Vec<ChoiceRecord>, StoreError> {
        self.read(move |c| {
            all(
                c,
                "SELECT f.rata, f.declared, f.on_date FROM f24_choices f
                  WHERE f.party = ?1
                    AND f.id = (SELECT MAX(g.id) FROM f24_choices g WHERE g.party = f.party AND g.rata = f.rata)
                  ORDER BY f.rata",
                [party],
                |r| {
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
                },
            )
        })
        .await
    }

    async fn debt_position(&self, party: PartyId) -> Result<Option<DebtPosition>, StoreError> {
        self.read(move |c| {
            let json: Option<String> = c
                .query_row(
                    "SELECT position FROM debt_positions WHERE party = ?1 ORDER BY id DESC LIMIT 1",
                    [party],
                    |r| r.get(0),
                )
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
        self.read(move |c| {
            all(
                c,
                "SELECT id FROM credits WHERE split_of = ?1 ORDER BY id",
                [rata],
                |r| r.get(0),
            )
        })
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
}
