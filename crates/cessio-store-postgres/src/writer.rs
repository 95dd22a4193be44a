//! The write path: one writer task per process takes every waiting request (up to
//! `max_batch`), loads what the batch needs under the head's lock, decides it with the
//! shared engine and writes the plan back, one set-based statement per table.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cessio_core::f24::F24Choice;
use cessio_core::ledger::{
    Account, PendingState, PendingTransfer, TransferKind, hash_from_hex, hash_to_hex,
};
use cessio_core::money::Cents;
use cessio_store::engine::{self, Head, Needs, Plan, Prefetched, StoredOperation};
use cessio_store::queue::{self, Job, WriteStats};
use cessio_store::{
    DELEGATION_GRANTED_EVENT, DELEGATION_REVOKED_EVENT, DelegationChange, DelegationScope,
    Operation, Rata, Receipt, StoreError,
};
use chrono::NaiveDate;
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, GenericClient, Row, Statement, Transaction};

use cessio_store::rows::{self, ACCOUNT_COLUMNS};

use crate::{account_from_row, connect, db_err, log};

pub(crate) async fn writer_loop(
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
    choices: Statement,
    debts: Statement,
    bank_clients: Statement,
    seizures: Statement,
    rata_facts: Statement,
    answered: Statement,
    upsert_summary: Statement,
    insert_summary_days: Statement,
    add_summary_days: Statement,
    insert_feed: Statement,
    insert_cession_paths: Statement,
    holding_paths: Statement,
    cession_paths: Statement,
    upsert_holding_paths: Statement,
}

impl Statements {
    async fn prepare(c: &Client) -> Result<Self, StoreError> {
        let p = |sql: String| async move { c.prepare(&sql).await.map_err(db_err) };
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
            choices: p(SQL_CHOICES.into()).await?,
            debts: p(SQL_DEBTS.into()).await?,
            bank_clients: p(format!(
                "SELECT e.party, e.counterparty, e.at, e.data FROM operator_events e
                 JOIN unnest($1::bigint[], $2::bigint[]) AS k(bank, client)
                   ON e.party = k.bank AND e.counterparty = k.client
                WHERE e.kind = '{}' ORDER BY e.id",
                cessio_store::BANK_CLIENT_EVENT
            ))
            .await?,
            seizures: p("SELECT rata, party, counterparty, amount FROM transfers
                  WHERE rata = ANY($1) AND kind = 'seize' AND phase = 'posted'"
                .into())
            .await?,
            rata_facts: p(SQL_RATA_FACTS.into()).await?,
            answered: p(SQL_ANSWERED.into()).await?,
            upsert_summary: p(SQL_UPSERT_SUMMARY.into()).await?,
            insert_summary_days: p(sql_insert_summary_days()).await?,
            add_summary_days: p(SQL_ADD_SUMMARY_DAYS.into()).await?,
            insert_feed: p(SQL_INSERT_FEED.into()).await?,
            insert_cession_paths: p(SQL_INSERT_CESSION_PATHS.into()).await?,
            holding_paths: p(cessio_store::paths::holding_paths_sql("= ANY($1)")).await?,
            cession_paths: p(cessio_store::paths::cession_paths_sql("= ANY($1)")).await?,
            upsert_holding_paths: p(SQL_UPSERT_HOLDING_PATHS.into()).await?,
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

pub(crate) async fn load_head(c: &impl GenericClient) -> Result<Head, StoreError> {
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

const SQL_OPERATIONS: &str =
    "SELECT idempotency_key, request_hash, receipt FROM log WHERE idempotency_key = ANY($1)";
const SQL_PENDING: &str =
    "SELECT p.id, p.debit, p.credit, p.amount, p.kind, r.phase FROM transfers p
     LEFT JOIN transfers r ON r.pending_id = p.id
     WHERE p.id = ANY($1) AND p.phase = 'pending'";

/// The last F24 choice of each (rata, party) asked for (R-F24-CHOICE).
const SQL_CHOICES: &str =
    "SELECT DISTINCT ON (f.rata, f.party) f.rata, f.party, f.declared, f.on_date
     FROM f24_choices f
     JOIN unnest($1::bigint[], $2::bigint[]) AS k(rata, party)
       ON f.rata = k.rata AND f.party = k.party
    ORDER BY f.rata, f.party, f.id DESC";
/// The debt position in force of each party asked for (R-BAN-100K/1500).
const SQL_DEBTS: &str = "SELECT DISTINCT ON (party) party, position FROM debt_positions
    WHERE party = ANY($1) ORDER BY party, id DESC";

/// A lookup of `keys` keys: none asked, no statement sent. Most batches name no
/// suspension, delegation, debt, bank client or seizure, and each statement sent costs the
/// server a bind and an execution and the writer one more reply to wait for.
async fn query_some(
    c: &Transaction<'_>,
    st: &Statement,
    args: &[&(dyn ToSql + Sync)],
    keys: usize,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    if keys == 0 {
        return Ok(Vec::new());
    }
    c.query(st, args).await
}

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
    let c_rate: Vec<i64> = needs.choices.iter().map(|(r, _)| *r).collect();
    let c_parties: Vec<i64> = needs.choices.iter().map(|(_, p)| *p).collect();
    let args_choices: [&(dyn ToSql + Sync); 2] = [&c_rate, &c_parties];
    let args_debts: [&(dyn ToSql + Sync); 1] = [&needs.debts];
    let b_banks: Vec<i64> = needs.bank_clients.iter().map(|(b, _)| *b).collect();
    let b_clients: Vec<i64> = needs.bank_clients.iter().map(|(_, c)| *c).collect();
    let args_bank_clients: [&(dyn ToSql + Sync); 2] = [&b_banks, &b_clients];
    let s_rate: Vec<i64> = needs.seizures.iter().map(|(r, _)| *r).collect();
    let args_seizures: [&(dyn ToSql + Sync); 1] = [&s_rate];
    let (
        operations,
        pending,
        accounts,
        party_rows,
        cf_rows,
        rata_rows,
        suspension_rows,
        delegation_rows,
        choice_rows,
        debt_rows,
        bank_client_rows,
        seizure_rows,
    ) = tokio::try_join!(
        c.query(&st.operations, &args_operations),
        c.query(&st.pending, &args_pending),
        c.query(&st.accounts_by_key, &args_accounts_by_key),
        c.query(&st.parties, &args_parties),
        query_some(c, &st.cfs, &args_cfs, needs.cfs.len()),
        c.query(&st.rate, &args_rate),
        query_some(
            c,
            &st.suspensions,
            &args_suspensions,
            needs.suspensions.len()
        ),
        query_some(
            c,
            &st.delegations,
            &args_delegations,
            needs.delegations.len()
        ),
        query_some(c, &st.choices, &args_choices, needs.choices.len()),
        query_some(c, &st.debts, &args_debts, needs.debts.len()),
        query_some(
            c,
            &st.bank_clients,
            &args_bank_clients,
            needs.bank_clients.len()
        ),
        query_some(c, &st.seizures, &args_seizures, needs.seizures.len()),
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
    pre.accounts = accounts
        .iter()
        .map(account_from_row)
        .collect::<Result<_, _>>()?;
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
            pre.accounts.push(account_from_row(&r)?);
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
    for r in &choice_rows {
        let on = r.get(3);
        pre.choices.insert(
            (r.get(0), r.get(1)),
            if r.get(2) {
                F24Choice::Declared { on }
            } else {
                F24Choice::Revoked { on }
            },
        );
    }
    for r in &debt_rows {
        let json: &str = r.get(1);
        pre.debts.insert(
            r.get(0),
            serde_json::from_str(json).map_err(StoreError::backend)?,
        );
    }
    for key in &needs.bank_clients {
        pre.bank_clients.insert(*key, Vec::new());
    }
    for r in &bank_client_rows {
        let data: &str = r.get(3);
        pre.bank_clients
            .entry((r.get(0), r.get(1)))
            .or_default()
            .push((
                cessio_store::rows::micros_to_time(r.get(2)),
                cessio_store::bank_client_in(&serde_json::from_str(data).unwrap_or_default()),
            ));
    }
    let mut by_rata: HashMap<i64, Vec<engine::SeizureRow>> = HashMap::new();
    for r in &seizure_rows {
        by_rata
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), Cents::new(r.get(3))));
    }
    for (rata, holder) in &needs.seizures {
        let rows = by_rata.get(rata).map_or(&[][..], Vec::as_slice);
        let seized = engine::seized_from(rows, *holder);
        if seized.is_positive() {
            pre.seized.insert((*rata, *holder), seized);
        }
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
const SQL_UPDATE_HEAD: &str = "UPDATE ledger_head SET last_operation = $1, last_transfer = $2, last_hash = $3, last_party = $4, last_credit = $5, last_rata = $6, last_account = $7, last_protocol = $8, log_seq = $9, log_hash = $10 WHERE id = 1";

/// Writes a batch's plan. Every statement is sent at once: they pipeline, and PostgreSQL
/// runs them in the order sent, so foreign keys (parties → credits → rate → accounts,
/// operations → transfers) are satisfied.
/// Writes a decided batch: one statement per table, sent together so that they pipeline
/// in this order (F1's sums read the transfers just inserted), then the rows whose ids the
/// database assigns, the log entries that record them all, and the head, once.
async fn write_plan(c: &Transaction<'_>, st: &Statements, plan: &Plan) -> Result<(), StoreError> {
    tokio::try_join!(
        write_parties(c, st, plan),
        write_credits(c, st, plan),
        write_accounts(c, st, plan),
        write_operations(c, st, plan),
        write_transfers(c, st, plan),
        write_summary(c, st, plan),
        write_paths(c, st, plan),
    )?;
    let mut written = write_f5_records(c, plan).await?;
    written.extend(write_delegations(c, plan).await?);
    written.extend(write_events(c, plan).await?);
    let log_head = write_log(c, plan, written).await?;
    write_head(c, st, &plan.head, log_head).await
}

/// The parties a batch registered (R-PARTY).
async fn write_parties(
    c: &Transaction<'_>,
    st: &Statements,
    plan: &Plan,
) -> Result<(), StoreError> {
    let pa = &plan.parties;
    let p_ids: Vec<i64> = pa.iter().map(|(p, _)| p.id).collect();
    let p_cfs: Vec<&str> = pa.iter().map(|(p, _)| p.cf.as_str()).collect();
    let p_names: Vec<&str> = pa.iter().map(|(p, _)| p.name.as_str()).collect();
    let p_kinds: Vec<&str> = pa.iter().map(|(p, _)| p.kind.as_str()).collect();
    let p_ats: Vec<i64> = pa.iter().map(|(_, at)| at.timestamp_micros()).collect();
    c.execute(
        &st.insert_parties,
        &[&p_ids, &p_cfs, &p_names, &p_kinds, &p_ats],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The credits a batch issued, and their rate.
async fn write_credits(
    c: &Transaction<'_>,
    st: &Statements,
    plan: &Plan,
) -> Result<(), StoreError> {
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
    let args_credits: [&(dyn ToSql + Sync); 12] = [
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
    let args_rate: [&(dyn ToSql + Sync); 7] = [
        &r_ids, &r_credits, &r_idx, &r_years, &r_amounts, &r_codes, &r_univoci,
    ];
    tokio::try_join!(
        c.execute(&st.insert_credits, &args_credits),
        c.execute(&st.insert_rate, &args_rate),
    )
    .map_err(db_err)?;
    Ok(())
}

/// New accounts with their final balance; the touched ones updated once each, keeping
/// their mark when loaded but not moved (their operation was refused).
async fn write_accounts(
    c: &Transaction<'_>,
    st: &Statements,
    plan: &Plan,
) -> Result<(), StoreError> {
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
    let args_insert: [&(dyn ToSql + Sync); 9] = [
        &n_ids, &n_ratas, &n_kinds, &n_parties, &n_dp, &n_dpo, &n_cp, &n_cpo, &n_last,
    ];
    let args_update: [&(dyn ToSql + Sync); 6] = [&u_ids, &u_dp, &u_dpo, &u_cp, &u_cpo, &u_last];
    tokio::try_join!(
        c.execute(&st.insert_accounts, &args_insert),
        c.execute(&st.update_accounts, &args_update),
    )
    .map_err(db_err)?;
    Ok(())
}

/// One row per operation applied: what a retry under the same key answers with.
async fn write_operations(
    c: &Transaction<'_>,
    st: &Statements,
    plan: &Plan,
) -> Result<(), StoreError> {
    let o = &plan.operations;
    let o_ids: Vec<i64> = o.iter().map(|x| x.id).collect();
    let o_keys: Vec<&str> = o.iter().map(|x| x.idempotency_key.as_str()).collect();
    let o_hashes: Vec<&str> = o.iter().map(|x| x.request_hash.as_str()).collect();
    let o_users: Vec<&str> = o.iter().map(|x| x.acting_user.as_str()).collect();
    let o_behalf: Vec<Option<i64>> = o.iter().map(|x| x.on_behalf_of).collect();
    let o_ats: Vec<i64> = o.iter().map(|x| x.at.timestamp_micros()).collect();
    let o_kinds: Vec<&str> = o.iter().map(|x| x.kind).collect();
    let o_receipts: Vec<&str> = o.iter().map(|x| x.receipt_json.as_str()).collect();
    c.execute(
        &st.insert_operations,
        &[
            &o_ids,
            &o_keys,
            &o_hashes,
            &o_users,
            &o_behalf,
            &o_ats,
            &o_kinds,
            &o_receipts,
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The batch's transfers, each with its place on the hash chain.
async fn write_transfers(
    c: &Transaction<'_>,
    st: &Statements,
    plan: &Plan,
) -> Result<(), StoreError> {
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
    c.execute(
        &st.insert_transfers,
        &[
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
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The credit's type is a subquery by key, not a join: a join leaves PostgreSQL free to
/// hash the whole `credits` table for every batch when its estimate of the batch is off
/// (no statistics yet during a bulk load, or a generic plan's guess). With the summary's
/// earlier statements it did: generating the 0.1 national register slowed from 950 to
/// 70 steps/s as the tables grew.
const SQL_RATA_FACTS: &str = "SELECT r.id, (SELECT c.type_key FROM credits c WHERE c.id = r.credit), r.year::bigint, r.codice_tributo
     FROM rate r WHERE r.id = ANY($1)";
/// Each answered movement with its rata's facts, looked up by key for the same reason.
const SQL_ANSWERED: &str = "SELECT t.id, t.rata, t.kind, t.amount, t.party, t.counterparty,
            (SELECT c.type_key FROM rate r JOIN credits c ON c.id = r.credit WHERE r.id = t.rata),
            (SELECT r.year::bigint FROM rate r WHERE r.id = t.rata),
            (SELECT r.codice_tributo FROM rate r WHERE r.id = t.rata)
       FROM transfers t WHERE t.id = ANY($1)";
const SQL_UPSERT_SUMMARY: &str = "INSERT INTO party_summary (party, type_key, year, codice_tributo, received, kind, state, amount)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bigint[])
     ON CONFLICT (party, type_key, year, codice_tributo, received, kind, state)
     DO UPDATE SET amount = party_summary.amount + excluded.amount";
const SQL_INSERT_FEED: &str = "INSERT INTO party_feed (party, transfer)
     SELECT * FROM unnest($1::bigint[], $2::bigint[])";

const SQL_INSERT_CESSION_PATHS: &str =
    "INSERT INTO cession_paths (transfer, before_cutoff, from_cutoff, bank_client, received_on)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])";
const SQL_UPSERT_HOLDING_PATHS: &str = "INSERT INTO holding_paths (account, before_cutoff, from_cutoff, bank_client, received_on, seized, unknown)
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
     ON CONFLICT (account) DO UPDATE SET before_cutoff = excluded.before_cutoff,
        from_cutoff = excluded.from_cutoff, bank_client = excluded.bank_client,
        received_on = excluded.received_on, seized = excluded.seized, unknown = excluded.unknown";

/// §5 paths (`cessio_store::paths`): the paths the batch's cessions carry, then the
/// holdings' rows its registrations, acceptances and seizures change, from the rows kept.
async fn write_paths(c: &Transaction<'_>, st: &Statements, plan: &Plan) -> Result<(), StoreError> {
    use cessio_store::paths;
    let wanted = paths::wanted(plan);
    let columns = |values: Vec<[Option<i64>; 7]>| -> Vec<Vec<Option<i64>>> {
        (0..7)
            .map(|i| values.iter().map(|v| v[i]).collect())
            .collect()
    };
    let carried_cols: Vec<Vec<i64>> = {
        let values: Vec<[i64; 5]> = plan
            .cession_paths
            .iter()
            .map(paths::cession_path_values)
            .collect();
        (0..5)
            .map(|i| values.iter().map(|v| v[i]).collect())
            .collect()
    };
    let insert: Vec<&(dyn ToSql + Sync)> = carried_cols
        .iter()
        .map(|v| v as &(dyn ToSql + Sync))
        .collect();
    let (_, kept_rows, carried_rows) = tokio::try_join!(
        async {
            if plan.cession_paths.is_empty() {
                return Ok(0);
            }
            c.execute(&st.insert_cession_paths, &insert).await
        },
        async {
            if wanted.accounts.is_empty() {
                return Ok(Vec::new());
            }
            c.query(&st.holding_paths, &[&wanted.accounts]).await
        },
        async {
            if wanted.cessions.is_empty() {
                return Ok(Vec::new());
            }
            c.query(&st.cession_paths, &[&wanted.cessions]).await
        },
    )
    .map_err(db_err)?;
    let kept: HashMap<i64, paths::HoldingPath> = kept_rows
        .iter()
        .map(|r| rows::holding_path(&crate::Pg(r)))
        .collect::<Result<_, _>>()?;
    let carried: HashMap<i64, paths::CessionPath> = carried_rows
        .iter()
        .map(|r| rows::cession_path(&crate::Pg(r)).map(|c| (c.transfer, c)))
        .collect::<Result<_, _>>()?;
    let changes = paths::changes(plan, &kept, &carried);
    if changes.is_empty() {
        return Ok(());
    }
    let upsert = columns(
        changes
            .iter()
            .map(|(account, path)| paths::holding_path_values(*account, path))
            .collect(),
    );
    let params: Vec<&(dyn ToSql + Sync)> =
        upsert.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    c.execute(&st.upsert_holding_paths, &params)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// F1's sums and the parties' feeds: the rows the plan changes, computed from it
/// ([`engine::projected`]) once the rate and answered movements of earlier batches are
/// loaded, then one statement for each table.
async fn write_summary(
    c: &Transaction<'_>,
    st: &Statements,
    plan: &Plan,
) -> Result<(), StoreError> {
    let wanted = engine::wanted(plan);
    let (rata_ids, answered_ids): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
        ([&wanted.rata], [&wanted.answered]);
    let (rata_rows, answered_rows) = tokio::try_join!(
        c.query(&st.rata_facts, &rata_ids),
        c.query(&st.answered, &answered_ids),
    )
    .map_err(db_err)?;
    let rata_facts = |r: &Row, from: usize| engine::RataFacts {
        type_key: r.get(from),
        year: r.get(from + 1),
        codice_tributo: r.get(from + 2),
    };
    let mut rata: HashMap<i64, engine::RataFacts> = rata_rows
        .iter()
        .map(|r| (r.get(0), rata_facts(r, 1)))
        .collect();
    let mut answered = HashMap::new();
    for r in &answered_rows {
        let id: i64 = r.get(0);
        let kind: &str = r.get(2);
        let kind = TransferKind::parse(kind).ok_or_else(|| StoreError::Backend {
            reason: format!("tipo di movimento sconosciuto '{kind}' nel movimento {id}"),
        })?;
        let moved = engine::MovementFacts {
            rata: r.get(1),
            kind,
            amount: Cents::new(r.get(3)),
            party: r.get(4),
            counterparty: r.get(5),
        };
        answered.insert(id, moved);
        rata.insert(moved.rata, rata_facts(r, 6));
    }
    let projected = engine::projected(plan, rata, answered)?;
    let s = &projected.summary;
    let parties: Vec<i64> = s.iter().map(|(k, _)| k.0).collect();
    let types: Vec<&str> = s.iter().map(|(k, _)| k.1.as_str()).collect();
    let years: Vec<i64> = s.iter().map(|(k, _)| k.2).collect();
    let codici: Vec<&str> = s.iter().map(|(k, _)| k.3.as_str()).collect();
    let received: Vec<i64> = s.iter().map(|(k, _)| k.4).collect();
    let kinds: Vec<&str> = s.iter().map(|(k, _)| k.5.as_str()).collect();
    let states: Vec<&str> = s.iter().map(|(k, _)| k.6.as_str()).collect();
    let amounts: Vec<i64> = s.iter().map(|(_, a)| *a).collect();
    let feed_parties: Vec<i64> = projected.feed.iter().map(|(p, _)| *p).collect();
    let feed_transfers: Vec<i64> = projected.feed.iter().map(|(_, t)| *t).collect();
    let summary: [&(dyn ToSql + Sync); 8] = [
        &parties, &types, &years, &codici, &received, &kinds, &states, &amounts,
    ];
    let feed: [&(dyn ToSql + Sync); 2] = [&feed_parties, &feed_transfers];
    tokio::try_join!(
        c.execute(&st.upsert_summary, &summary),
        c.execute(&st.insert_feed, &feed),
        write_summary_days(c, st, &projected.days),
    )
    .map_err(db_err)?;
    Ok(())
}

/// F1 as of a past day (`cessio_store::summary_days`), set-based: the deltas' day rows for
/// the parties whose days are kept, created with the day before's sum (a statement sees
/// the rows as they were before it), then every kept row on or after a delta's day given
/// the deltas up to it.
fn sql_insert_summary_days() -> String {
    format!("INSERT INTO party_summary_days (party, type_key, year, codice_tributo, received, kind, state, day, amount)
     SELECT u.p, u.t, u.y, u.c, u.r, u.k, u.s, u.d,
            COALESCE((SELECT d.amount FROM party_summary_days d
                       WHERE d.party = u.p AND d.type_key = u.t AND d.year = u.y AND d.codice_tributo = u.c
                         AND d.received = u.r AND d.kind = u.k AND d.state = u.s AND d.day < u.d
                       ORDER BY d.day DESC LIMIT 1), 0)
       FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::int[])
            AS u(p, t, y, c, r, k, s, d)
       JOIN parties pa ON pa.id = u.p AND {}
     ON CONFLICT (party, type_key, year, codice_tributo, received, kind, state, day) DO NOTHING",
        cessio_store::summary_days::kept_kind_sql("pa.kind")
    )
}
const SQL_ADD_SUMMARY_DAYS: &str = "UPDATE party_summary_days d SET amount = d.amount + x.delta
       FROM (SELECT k.party, k.type_key, k.year, k.codice_tributo, k.received, k.kind, k.state, k.day,
                    SUM(u.a) AS delta
               FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::int[], $9::bigint[])
                    AS u(p, t, y, c, r, k, s, d, a)
               JOIN party_summary_days k
                 ON k.party = u.p AND k.type_key = u.t AND k.year = u.y AND k.codice_tributo = u.c
                AND k.received = u.r AND k.kind = u.k AND k.state = u.s AND k.day >= u.d
              GROUP BY k.party, k.type_key, k.year, k.codice_tributo, k.received, k.kind, k.state, k.day) x
      WHERE d.party = x.party AND d.type_key = x.type_key AND d.year = x.year
        AND d.codice_tributo = x.codice_tributo AND d.received = x.received AND d.kind = x.kind
        AND d.state = x.state AND d.day = x.day";

async fn write_summary_days(
    c: &Transaction<'_>,
    st: &Statements,
    days: &[(cessio_store::SummaryKey, i32, i64)],
) -> Result<u64, tokio_postgres::Error> {
    if days.is_empty() {
        return Ok(0);
    }
    let parties: Vec<i64> = days.iter().map(|(k, ..)| k.0).collect();
    let types: Vec<&str> = days.iter().map(|(k, ..)| k.1.as_str()).collect();
    let years: Vec<i64> = days.iter().map(|(k, ..)| k.2).collect();
    let codici: Vec<&str> = days.iter().map(|(k, ..)| k.3.as_str()).collect();
    let received: Vec<i64> = days.iter().map(|(k, ..)| k.4).collect();
    let kinds: Vec<&str> = days.iter().map(|(k, ..)| k.5.as_str()).collect();
    let states: Vec<&str> = days.iter().map(|(k, ..)| k.6.as_str()).collect();
    let day: Vec<i32> = days.iter().map(|(_, d, _)| *d).collect();
    let amounts: Vec<i64> = days.iter().map(|(.., a)| *a).collect();
    let args: [&(dyn ToSql + Sync); 9] = [
        &parties, &types, &years, &codici, &received, &kinds, &states, &day, &amounts,
    ];
    c.execute(&st.insert_summary_days, &args[..8]).await?;
    c.execute(&st.add_summary_days, &args).await
}

/// The entries of the operator's register recorded through the writer.
async fn write_events(c: &Transaction<'_>, plan: &Plan) -> Result<Written, StoreError> {
    let mut written = Written::new();
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
    Ok(written)
}

/// The batch's log entries, one per operation with every row it wrote, those whose ids
/// the database assigned read back. Returns the log's new end.
async fn write_log(
    c: &Transaction<'_>,
    plan: &Plan,
    written: Written,
) -> Result<(i64, cessio_core::ledger::Hash), StoreError> {
    let mut extra: std::collections::HashMap<i64, Vec<cessio_store::log::Put>> =
        std::collections::HashMap::new();
    for (operation, spec, id) in written {
        extra
            .entry(operation)
            .or_default()
            .extend(log::read_back(c, &[(spec, id)]).await?);
    }
    log::write_after(
        c,
        (plan.head.log_seq, plan.head.log_hash),
        cessio_store::log::plan_entries(plan, extra),
    )
    .await
}

/// The head, written once per batch: the counters, the transfers' chain and the log's.
async fn write_head(
    c: &Transaction<'_>,
    st: &Statements,
    h: &Head,
    (log_seq, log_hash): (i64, cessio_core::ledger::Hash),
) -> Result<(), StoreError> {
    c.execute(
        &st.update_head,
        &[
            &h.last_operation,
            &h.last_transfer,
            &hash_to_hex(&h.last_hash),
            &h.last_party,
            &h.last_credit,
            &h.last_rata,
            &h.last_account,
            &h.last_protocol,
            &log_seq,
            &hash_to_hex(&log_hash),
        ],
    )
    .await
    .map_err(db_err)?;
    Ok(())
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
