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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use cessio_core::cf::CodiceFiscale;
use cessio_core::ledger::{
    Account, AccountKind, Balance, PartyId, PendingState, PendingTransfer, Phase, RataId,
    TransferKind, hash_from_hex, hash_to_hex,
};
use cessio_core::money::Cents;
use cessio_core::time::RefYear;
use cessio_store::engine::{
    self, AccountKey, Head, Needs, Plan, Prefetched, StoredOperation, TransferRow,
};
use cessio_store::verify::Verifier;
use cessio_store::{
    AccountRef, Counts, Credit, CreditOrigin, IdempotencyKey, Operation, Party, PartyKind, Rata,
    Receipt, Store, StoreError, VerifyReport, WriteConfig,
};
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Config, GenericClient, NoTls, Row};

mod schema;

type Reply = oneshot::Sender<Result<Receipt, StoreError>>;

struct Job {
    op: Operation,
    reply: Reply,
}

#[derive(Debug, Default)]
struct WriteStats {
    batches: AtomicU64,
    operations: AtomicU64,
}

#[derive(Debug)]
pub struct PgStore {
    config: Config,
    queue: mpsc::Sender<Job>,
    readers: Vec<Client>,
    next_reader: AtomicUsize,
    stats: Arc<WriteStats>,
}

fn db_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::backend(e)
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

impl PgStore {
    /// Connects to a `postgres://` URL, runs migrations, and starts the writer. With
    /// `schema`, every connection works in that schema (created if missing): tests use it
    /// to run in parallel on one database.
    pub async fn connect(
        url: &str,
        schema: Option<&str>,
        config: WriteConfig,
    ) -> Result<Self, StoreError> {
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
            let admin = connect(&pg).await?;
            admin
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .map_err(db_err)?;
            pg.options(format!("-c search_path={schema}"));
        }
        let mut writer = connect(&pg).await?;
        schema::migrate(&mut writer).await?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(connect(&pg).await?);
        }
        let (queue, rx) = mpsc::channel(config.queue_capacity.max(1));
        let stats = Arc::new(WriteStats::default());
        tokio::spawn(writer_loop(
            writer,
            rx,
            config.max_batch.max(1),
            stats.clone(),
        ));
        Ok(PgStore {
            config: pg,
            queue,
            readers,
            next_reader: AtomicUsize::new(0),
            stats,
        })
    }

    pub fn write_stats(&self) -> (u64, u64) {
        (
            self.stats.batches.load(Ordering::Relaxed),
            self.stats.operations.load(Ordering::Relaxed),
        )
    }

    fn reader(&self) -> &Client {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        &self.readers[i]
    }
}

async fn writer_loop(
    mut client: Client,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    stats: Arc<WriteStats>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let ops: Vec<Operation> = batch.iter().map(|j| j.op.clone()).collect();
        let outcome = write_batch(&mut client, &ops).await;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .operations
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        match outcome {
            Ok(results) => {
                for (job, result) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "batch rolled back");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

async fn write_batch(
    client: &mut Client,
    ops: &[Operation],
) -> Result<Vec<Result<Receipt, StoreError>>, StoreError> {
    let tx = client.transaction().await.map_err(db_err)?;
    let head = load_head(&tx, true).await?;
    let needs = engine::needs(ops);
    let pre = prefetch(&tx, &needs).await?;
    let (plan, results) = engine::plan(ops, pre, head);
    if !plan.is_empty() {
        write_plan(&tx, &plan).await?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(results)
}

async fn load_head(c: &impl GenericClient, lock: bool) -> Result<Head, StoreError> {
    let sql = format!(
        "SELECT last_operation, last_transfer, last_hash, last_party, last_credit, last_rata, last_account, last_protocol FROM ledger_head WHERE id = 1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let r = c.query_one(&sql, &[]).await.map_err(db_err)?;
    let hash: String = r.get(2);
    Ok(Head {
        last_operation: r.get(0),
        last_transfer: r.get(1),
        last_hash: hash_from_hex(&hash).unwrap_or_default(),
        last_party: r.get(3),
        last_credit: r.get(4),
        last_rata: r.get(5),
        last_account: r.get(6),
        last_protocol: r.get(7),
    })
}

const TRANSFER_COLUMNS: &str = "id, operation, rata, debit, credit, amount, kind, phase, pending_id, at, acting_user, party, counterparty, hash";

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

async fn prefetch(c: &impl GenericClient, needs: &Needs) -> Result<Prefetched, StoreError> {
    let mut pre = Prefetched::default();
    if !needs.idempotency_keys.is_empty() {
        for r in c
            .query(
                "SELECT idempotency_key, request_hash, receipt FROM operations WHERE idempotency_key = ANY($1)",
                &[&needs.idempotency_keys],
            )
            .await
            .map_err(db_err)?
        {
            let receipt: String = r.get(2);
            pre.operations.insert(
                r.get(0),
                StoredOperation {
                    request_hash: r.get(1),
                    receipt: serde_json::from_str(&receipt).map_err(StoreError::backend)?,
                },
            );
        }
    }
    let mut account_ids: Vec<i64> = Vec::new();
    if !needs.pending.is_empty() {
        for r in c
            .query(
                "SELECT p.id, p.debit, p.credit, p.amount, p.kind, r.phase FROM transfers p
                 LEFT JOIN transfers r ON r.pending_id = p.id
                 WHERE p.id = ANY($1) AND p.phase = 'pending'",
                &[&needs.pending],
            )
            .await
            .map_err(db_err)?
        {
            let kind: String = r.get(4);
            let answer: Option<String> = r.get(5);
            let p = PendingTransfer {
                id: r.get(0),
                debit: r.get(1),
                credit: r.get(2),
                amount: Cents::new(r.get(3)),
                state: match answer.as_deref() {
                    None => PendingState::Pending,
                    Some("post_pending") => PendingState::Posted,
                    Some(_) => PendingState::Voided,
                },
            };
            account_ids.extend([p.debit, p.credit]);
            pre.pending.push((
                p,
                TransferKind::parse(&kind).unwrap_or(TransferKind::Cession),
            ));
        }
    }
    if !needs.account_keys.is_empty() {
        let ratas: Vec<i64> = needs.account_keys.iter().map(|k| k.rata).collect();
        let kinds: Vec<&str> = needs.account_keys.iter().map(|k| k.kind.as_str()).collect();
        let parties: Vec<i64> = needs.account_keys.iter().map(|k| k.party).collect();
        for r in c
            .query(
                &format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts a
                     JOIN unnest($1::bigint[], $2::text[], $3::bigint[]) AS k(rata, kind, party)
                       ON a.rata = k.rata AND a.kind = k.kind AND a.party = k.party"
                ),
                &[&ratas, &kinds, &parties],
            )
            .await
            .map_err(db_err)?
        {
            pre.accounts.push(account_from_row(&r));
        }
    }
    account_ids.retain(|id| !pre.accounts.iter().any(|a| a.id == *id));
    account_ids.sort_unstable();
    account_ids.dedup();
    if !account_ids.is_empty() {
        for r in c
            .query(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE a.id = ANY($1)"),
                &[&account_ids],
            )
            .await
            .map_err(db_err)?
        {
            pre.accounts.push(account_from_row(&r));
        }
    }
    if !needs.parties.is_empty() {
        for r in c
            .query(
                "SELECT id FROM parties WHERE id = ANY($1)",
                &[&needs.parties],
            )
            .await
            .map_err(db_err)?
        {
            pre.parties.insert(r.get(0));
        }
    }
    if !needs.cfs.is_empty() {
        for r in c
            .query("SELECT cf FROM parties WHERE cf = ANY($1)", &[&needs.cfs])
            .await
            .map_err(db_err)?
        {
            pre.cfs.insert(r.get(0));
        }
    }
    if !needs.rate.is_empty() {
        for r in c
            .query("SELECT id FROM rate WHERE id = ANY($1)", &[&needs.rate])
            .await
            .map_err(db_err)?
        {
            pre.rate.insert(r.get(0));
        }
    }
    Ok(pre)
}

async fn write_plan(c: &impl GenericClient, plan: &Plan) -> Result<(), StoreError> {
    if !plan.parties.is_empty() {
        let ids: Vec<i64> = plan.parties.iter().map(|(p, _)| p.id).collect();
        let cfs: Vec<&str> = plan.parties.iter().map(|(p, _)| p.cf.as_str()).collect();
        let names: Vec<&str> = plan.parties.iter().map(|(p, _)| p.name.as_str()).collect();
        let kinds: Vec<&str> = plan.parties.iter().map(|(p, _)| p.kind.as_str()).collect();
        let ats: Vec<i64> = plan
            .parties
            .iter()
            .map(|(_, at)| at.timestamp_micros())
            .collect();
        c.execute(
            "INSERT INTO parties (id, cf, name, kind, deceased, created_at)
             SELECT id, cf, name, kind, false, created_at
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS t(id, cf, name, kind, created_at)",
            &[&ids, &cfs, &names, &kinds, &ats],
        )
        .await
        .map_err(db_err)?;
    }
    if !plan.credits.is_empty() {
        let p = &plan.credits;
        let ids: Vec<i64> = p.iter().map(|c| c.id).collect();
        let protocols: Vec<&str> = p.iter().map(|c| c.protocol.as_str()).collect();
        let types: Vec<&str> = p.iter().map(|c| c.type_key.as_str()).collect();
        let beneficiaries: Vec<i64> = p.iter().map(|c| c.beneficiary).collect();
        let holders: Vec<i64> = p.iter().map(|c| c.holder).collect();
        let origins: Vec<&str> = p.iter().map(|c| c.origin.as_str()).collect();
        let years: Vec<i32> = p.iter().map(|c| i32::from(c.expense_year)).collect();
        let dates: Vec<NaiveDate> = p.iter().map(|c| c.communicated_on).collect();
        let tracciabili: Vec<bool> = p.iter().map(|c| c.tracciabile).collect();
        let ats: Vec<i64> = p.iter().map(|c| c.created_at.timestamp_micros()).collect();
        c.execute(
            "INSERT INTO credits (id, protocol, type_key, beneficiary, holder, origin, expense_year, communicated_on, tracciabile, created_at)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::int[], $8::date[], $9::bool[], $10::bigint[])",
            &[&ids, &protocols, &types, &beneficiaries, &holders, &origins, &years, &dates, &tracciabili, &ats],
        )
        .await
        .map_err(db_err)?;
        let rate: Vec<&Rata> = plan.rate().collect();
        let ids: Vec<i64> = rate.iter().map(|r| r.id).collect();
        let credits: Vec<i64> = rate.iter().map(|r| r.credit).collect();
        let idx: Vec<i32> = rate
            .iter()
            .map(|r| i32::try_from(r.index).unwrap_or(i32::MAX))
            .collect();
        let years: Vec<i32> = rate.iter().map(|r| i32::from(r.year.get())).collect();
        let amounts: Vec<i64> = rate.iter().map(|r| r.amount.get()).collect();
        let codes: Vec<&str> = rate.iter().map(|r| r.codice_tributo.as_str()).collect();
        let univoci: Vec<&str> = rate.iter().map(|r| r.codice_univoco.as_str()).collect();
        c.execute(
            "INSERT INTO rate (id, credit, idx, year, amount, codice_tributo, codice_univoco)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::bigint[], $6::text[], $7::text[])",
            &[&ids, &credits, &idx, &years, &amounts, &codes, &univoci],
        )
        .await
        .map_err(db_err)?;
    }
    for (accounts, insert) in [(&plan.new_accounts, true), (&plan.account_updates, false)] {
        if accounts.is_empty() {
            continue;
        }
        let ids: Vec<i64> = accounts.iter().map(|a| a.id).collect();
        let dp: Vec<i64> = accounts
            .iter()
            .map(|a| a.balance.debits_pending.get())
            .collect();
        let dpo: Vec<i64> = accounts
            .iter()
            .map(|a| a.balance.debits_posted.get())
            .collect();
        let cp: Vec<i64> = accounts
            .iter()
            .map(|a| a.balance.credits_pending.get())
            .collect();
        let cpo: Vec<i64> = accounts
            .iter()
            .map(|a| a.balance.credits_posted.get())
            .collect();
        if insert {
            let ratas: Vec<i64> = accounts.iter().map(|a| a.rata).collect();
            let kinds: Vec<&str> = accounts.iter().map(|a| a.kind.as_str()).collect();
            let parties: Vec<i64> = accounts.iter().map(|a| a.party.unwrap_or(0)).collect();
            c.execute(
                "INSERT INTO accounts (id, rata, kind, party, debits_pending, debits_posted, credits_pending, credits_posted)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])",
                &[&ids, &ratas, &kinds, &parties, &dp, &dpo, &cp, &cpo],
            )
            .await
            .map_err(db_err)?;
        } else {
            c.execute(
                "UPDATE accounts a SET debits_pending = u.dp, debits_posted = u.dpo, credits_pending = u.cp, credits_posted = u.cpo
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(id, dp, dpo, cp, cpo)
                 WHERE a.id = u.id",
                &[&ids, &dp, &dpo, &cp, &cpo],
            )
            .await
            .map_err(db_err)?;
        }
    }
    {
        let o = &plan.operations;
        let ids: Vec<i64> = o.iter().map(|x| x.id).collect();
        let keys: Vec<&str> = o.iter().map(|x| x.idempotency_key.as_str()).collect();
        let hashes: Vec<&str> = o.iter().map(|x| x.request_hash.as_str()).collect();
        let users: Vec<&str> = o.iter().map(|x| x.acting_user.as_str()).collect();
        let behalf: Vec<Option<i64>> = o.iter().map(|x| x.on_behalf_of).collect();
        let ats: Vec<i64> = o.iter().map(|x| x.at.timestamp_micros()).collect();
        let kinds: Vec<&str> = o.iter().map(|x| x.kind).collect();
        let receipts: Vec<&str> = o.iter().map(|x| x.receipt_json.as_str()).collect();
        c.execute(
            "INSERT INTO operations (id, idempotency_key, request_hash, acting_user, on_behalf_of, at, kind, receipt)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[])",
            &[&ids, &keys, &hashes, &users, &behalf, &ats, &kinds, &receipts],
        )
        .await
        .map_err(db_err)?;
    }
    if !plan.transfers.is_empty() {
        let t = &plan.transfers;
        let ids: Vec<i64> = t.iter().map(|x| x.id).collect();
        let ops: Vec<i64> = t.iter().map(|x| x.operation).collect();
        let ratas: Vec<i64> = t.iter().map(|x| x.rata).collect();
        let debits: Vec<i64> = t.iter().map(|x| x.debit).collect();
        let credits: Vec<i64> = t.iter().map(|x| x.credit).collect();
        let amounts: Vec<i64> = t.iter().map(|x| x.amount.get()).collect();
        let kinds: Vec<&str> = t.iter().map(|x| x.kind.as_str()).collect();
        let phases: Vec<&str> = t.iter().map(|x| x.phase.as_str()).collect();
        let pendings: Vec<Option<i64>> = t.iter().map(|x| x.pending_id).collect();
        let ats: Vec<i64> = t.iter().map(|x| x.at_micros).collect();
        let users: Vec<&str> = t.iter().map(|x| x.acting_user.as_str()).collect();
        let parties: Vec<Option<i64>> = t.iter().map(|x| x.party).collect();
        let counterparties: Vec<Option<i64>> = t.iter().map(|x| x.counterparty).collect();
        let hashes: Vec<String> = t.iter().map(|x| hash_to_hex(&x.hash)).collect();
        c.execute(
            "INSERT INTO transfers (id, operation, rata, debit, credit, amount, kind, phase, pending_id, at, acting_user, party, counterparty, hash)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::bigint[], $13::bigint[], $14::text[])",
            &[&ids, &ops, &ratas, &debits, &credits, &amounts, &kinds, &phases, &pendings, &ats, &users, &parties, &counterparties, &hashes],
        )
        .await
        .map_err(db_err)?;
    }
    let h = &plan.head;
    c.execute(
        "UPDATE ledger_head SET last_operation = $1, last_transfer = $2, last_hash = $3, last_party = $4, last_credit = $5, last_rata = $6, last_account = $7, last_protocol = $8 WHERE id = 1",
        &[&h.last_operation, &h.last_transfer, &hash_to_hex(&h.last_hash), &h.last_party, &h.last_credit, &h.last_rata, &h.last_account, &h.last_protocol],
    )
    .await
    .map_err(db_err)?;
    Ok(())
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
    let hash: String = r.get(13);
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
        hash: hash_from_hex(&hash).unwrap_or_default(),
    }
}

const VERIFY_PAGE: i64 = 10_000;

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn submit(&self, op: Operation) -> Result<Receipt, StoreError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || StoreError::Unavailable {
            reason: "il processo di scrittura si è fermato".into(),
        };
        self.queue
            .send(Job { op, reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    async fn party(&self, id: PartyId) -> Result<Option<Party>, StoreError> {
        self.reader()
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
        self.reader()
            .query_opt(
                "SELECT id, cf, name, kind, deceased FROM parties WHERE cf = $1",
                &[&cf.as_str()],
            )
            .await
            .map_err(db_err)?
            .map(|r| party_from_row(&r))
            .transpose()
    }

    async fn credit(&self, id: i64) -> Result<Option<Credit>, StoreError> {
        let c = self.reader();
        let Some(r) = c
            .query_opt(
                "SELECT id, protocol, type_key, beneficiary, holder, origin, expense_year, communicated_on, tracciabile, created_at FROM credits WHERE id = $1",
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

    async fn history(&self, rata: RataId) -> Result<Vec<TransferRow>, StoreError> {
        Ok(self
            .reader()
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

    async fn receipt(&self, key: &IdempotencyKey) -> Result<Option<Receipt>, StoreError> {
        self.reader()
            .query_opt(
                "SELECT receipt FROM operations WHERE idempotency_key = $1",
                &[&key.as_str()],
            )
            .await
            .map_err(db_err)?
            .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(StoreError::backend))
            .transpose()
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        let r = self
            .reader()
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
        let head = load_head(&tx, false).await?;
        let mut v = Verifier::new();
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
        tx.commit().await.map_err(db_err)?;
        Ok(v.finish(accounts, rate, &head))
    }
}
