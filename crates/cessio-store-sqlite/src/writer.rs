//! The write path: the writer thread takes every waiting request (up to `max_batch`),
//! loads what the batch needs inside one `BEGIN IMMEDIATE` transaction, decides it with
//! the shared engine, writes the plan back table by table and commits once.

use std::collections::HashMap;

use cessio_core::f24::F24Choice;
use cessio_core::ledger::{
    Hash, PartyId, PendingState, PendingTransfer, TransferKind, hash_from_hex, hash_to_hex,
};
use cessio_core::money::Cents;
use cessio_store::engine::{self, Head, Needs, Plan, Prefetched, StoredOperation};
use cessio_store::queue::{self, Job, WriteStats};
use cessio_store::sql;
use cessio_store::{
    DELEGATION_GRANTED_EVENT, DELEGATION_REVOKED_EVENT, DelegationChange, DelegationScope,
    Operation, Receipt, StoreError,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::mpsc;

use cessio_store::log::OPERATOR_EVENTS;

use cessio_store::rows::{self, ACCOUNT_COLUMNS, TRANSFER_COLUMNS};

use crate::{account_from_row, db_err, fk_error, log};

pub(crate) fn writer_loop(
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

pub(crate) fn load_head(conn: &Connection) -> Result<Head, StoreError> {
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

fn prefetch(tx: &Transaction<'_>, needs: &Needs) -> Result<Prefetched, StoreError> {
    let mut pre = Prefetched::default();
    {
        let mut st = tx.prepare_cached(sql::LOGGED_OPERATION).map_err(db_err)?;
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
                "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE rata = ?1 AND kind = ?2 AND party = ?3"
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
                "SELECT {ACCOUNT_COLUMNS} FROM accounts a WHERE id = ?1"
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
    {
        let mut st = tx
            .prepare_cached(
                "SELECT declared, on_date FROM f24_choices WHERE party = ?1 AND rata = ?2 ORDER BY id DESC LIMIT 1",
            )
            .map_err(db_err)?;
        for (rata, party) in &needs.choices {
            let last: Option<(bool, String)> = st
                .query_row(params![party, rata], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db_err)?;
            if let Some((declared, on)) = last {
                let on = on.parse().map_err(StoreError::backend)?;
                pre.choices.insert(
                    (*rata, *party),
                    if declared {
                        F24Choice::Declared { on }
                    } else {
                        F24Choice::Revoked { on }
                    },
                );
            }
        }
        let mut st = tx.prepare_cached(sql::LAST_DEBT_POSITION).map_err(db_err)?;
        for party in &needs.debts {
            let json: Option<String> = st
                .query_row([party], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            if let Some(json) = json {
                pre.debts.insert(
                    *party,
                    serde_json::from_str(&json).map_err(StoreError::backend)?,
                );
            }
        }
        let mut st = tx
            .prepare_cached(&format!(
                "SELECT at, data FROM operator_events WHERE counterparty = ?2 AND party = ?1 AND kind = '{}' ORDER BY id",
                cessio_store::BANK_CLIENT_EVENT
            ))
            .map_err(db_err)?;
        for (bank, client) in &needs.bank_clients {
            let list = st
                .query_map(params![bank, client], |r| {
                    let data: String = r.get(1)?;
                    Ok((
                        cessio_store::rows::micros_to_time(r.get(0)?),
                        cessio_store::bank_client_in(
                            &serde_json::from_str(&data).unwrap_or_default(),
                        ),
                    ))
                })
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            pre.bank_clients.insert((*bank, *client), list);
        }
        let mut st = tx
            .prepare_cached(
                "SELECT party, counterparty, amount FROM transfers
                  WHERE rata = ?1 AND kind = 'seize' AND phase = 'posted'",
            )
            .map_err(db_err)?;
        // Sorted by rata: two holders of one rata read its rows once.
        let mut read: Option<(i64, Vec<engine::SeizureRow>)> = None;
        for (rata, holder) in &needs.seizures {
            if read.as_ref().is_none_or(|(r, _)| r != rata) {
                let rows = st
                    .query_map([rata], |r| {
                        Ok((r.get(0)?, r.get(1)?, Cents::new(r.get(2)?)))
                    })
                    .map_err(db_err)?
                    .collect::<Result<_, _>>()
                    .map_err(db_err)?;
                read = Some((*rata, rows));
            }
            let rows = read.as_ref().map_or(&[][..], |(_, rows)| rows.as_slice());
            let seized = engine::seized_from(rows, *holder);
            if seized.is_positive() {
                pre.seized.insert((*rata, *holder), seized);
            }
        }
    }
    Ok(pre)
}

/// F1's summary and the parties' feeds, in the batch's transaction: the rows the plan
/// changes, computed from it ([`engine::projected`]), one upsert each.
fn write_summary(tx: &Transaction<'_>, plan: &Plan) -> Result<(), StoreError> {
    let wanted = engine::wanted(plan);
    let mut st = tx
        .prepare_cached(
            "SELECT c.type_key, r.year, r.codice_tributo FROM rate r JOIN credits c ON c.id = r.credit WHERE r.id = ?1",
        )
        .map_err(db_err)?;
    let mut rata = HashMap::new();
    for id in wanted.rata {
        if let Some(facts) = st
            .query_row([id], |r| {
                Ok(engine::RataFacts {
                    type_key: r.get(0)?,
                    year: r.get(1)?,
                    codice_tributo: r.get(2)?,
                })
            })
            .optional()
            .map_err(db_err)?
        {
            rata.insert(id, facts);
        }
    }
    let mut st = tx
        .prepare_cached(
            "SELECT t.rata, t.kind, t.amount, t.party, t.counterparty, c.type_key, r.year, r.codice_tributo
               FROM transfers t JOIN rate r ON r.id = t.rata JOIN credits c ON c.id = r.credit
              WHERE t.id = ?1",
        )
        .map_err(db_err)?;
    let mut answered = HashMap::new();
    for id in wanted.answered {
        let row = st
            .query_row([id], |r| {
                let facts = engine::RataFacts {
                    type_key: r.get(5)?,
                    year: r.get(6)?,
                    codice_tributo: r.get(7)?,
                };
                let moved = (
                    r.get(0)?,
                    r.get::<_, String>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                );
                Ok((moved, facts))
            })
            .optional()
            .map_err(db_err)?;
        if let Some(((rata_id, kind, amount, party, counterparty), facts)) = row {
            let kind = TransferKind::parse(&kind).ok_or_else(|| StoreError::Backend {
                reason: format!("tipo di movimento sconosciuto '{kind}' nel movimento {id}"),
            })?;
            let moved = engine::MovementFacts {
                rata: rata_id,
                kind,
                amount: Cents::new(amount),
                party,
                counterparty,
            };
            answered.insert(id, moved);
            rata.insert(rata_id, facts);
        }
    }
    let projected = engine::projected(plan, rata, answered)?;
    let mut st = tx
        .prepare_cached(
            "INSERT INTO party_summary (party, type_key, year, codice_tributo, received, kind, state, amount)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (party, type_key, year, codice_tributo, received, kind, state)
             DO UPDATE SET amount = party_summary.amount + excluded.amount",
        )
        .map_err(db_err)?;
    for ((party, type_key, year, codice_tributo, received, kind, state), amount) in
        &projected.summary
    {
        st.execute(params![
            party,
            type_key,
            year,
            codice_tributo,
            received,
            kind,
            state,
            amount
        ])
        .map_err(db_err)?;
    }
    write_summary_days(tx, &projected.days)?;
    let mut st = tx
        .prepare_cached("INSERT INTO party_feed (party, transfer) VALUES (?1, ?2)")
        .map_err(db_err)?;
    for (party, transfer) in &projected.feed {
        st.execute(params![party, transfer]).map_err(db_err)?;
    }
    Ok(())
}

/// F1 as of a past day (`cessio_store::summary_days`): each delta added to its key's rows
/// from its day on, and the day's row created if it had none. In the usual batch every
/// delta is today's and today's row is the key's last: one statement, one row touched.
fn write_summary_days(
    tx: &Transaction<'_>,
    days: &[(cessio_store::SummaryKey, i32, i64)],
) -> Result<(), StoreError> {
    // Whose days are kept, asked once per party of the batch: most movements are between
    // persons and companies, whose deltas are then no statement at all.
    let mut is_kept = tx
        .prepare_cached(&cessio_store::summary_days::is_kept_sql(|n| {
            format!("?{n}")
        }))
        .map_err(db_err)?;
    let mut kept: HashMap<PartyId, bool> = HashMap::new();
    for ((party, ..), ..) in days {
        if !kept.contains_key(party) {
            kept.insert(*party, is_kept.exists([party]).map_err(db_err)?);
        }
    }
    let mut add = tx
        .prepare_cached(cessio_store::summary_days::DAY_ADD_SQL)
        .map_err(db_err)?;
    let mut insert = tx
        .prepare_cached(cessio_store::summary_days::DAY_INSERT_SQL)
        .map_err(db_err)?;
    for ((party, type_key, year, codice_tributo, received, kind, state), day, amount) in days {
        if kept.get(party) != Some(&true) {
            continue;
        }
        let args = params![
            party,
            type_key,
            year,
            codice_tributo,
            received,
            kind,
            state,
            day,
            amount
        ];
        let changed: Vec<i32> = add
            .query_map(args, |r| r.get(0))
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)?;
        if !changed.contains(day) {
            insert.execute(args).map_err(db_err)?;
        }
    }
    Ok(())
}

/// §5 paths (`cessio_store::paths`): the paths the batch's cessions carry, then the
/// holdings' rows its registrations, acceptances and seizures change, from the rows kept.
fn write_paths(tx: &Transaction<'_>, plan: &Plan) -> Result<(), StoreError> {
    use cessio_store::paths;
    let mut st = tx
        .prepare_cached(paths::INSERT_CESSION_PATH)
        .map_err(db_err)?;
    for c in &plan.cession_paths {
        st.execute(paths::cession_path_values(c)).map_err(db_err)?;
    }
    let wanted = paths::wanted(plan);
    let mut kept = HashMap::new();
    let mut st = tx
        .prepare_cached(&paths::holding_paths_sql("= $1"))
        .map_err(db_err)?;
    for account in wanted.accounts {
        if let Some((id, path)) = st
            .query_row([account], |r| rows::holding_path(&crate::Lite(r)))
            .optional()
            .map_err(db_err)?
        {
            kept.insert(id, path);
        }
    }
    let mut carried = HashMap::new();
    let mut st = tx
        .prepare_cached(&paths::cession_paths_sql("= $1"))
        .map_err(db_err)?;
    for cession in wanted.cessions {
        if let Some(c) = st
            .query_row([cession], |r| rows::cession_path(&crate::Lite(r)))
            .optional()
            .map_err(db_err)?
        {
            carried.insert(c.transfer, c);
        }
    }
    let mut st = tx
        .prepare_cached(paths::UPSERT_HOLDING_PATH)
        .map_err(db_err)?;
    for (account, path) in paths::changes(plan, &kept, &carried) {
        st.execute(paths::holding_path_values(account, &path))
            .map_err(db_err)?;
    }
    Ok(())
}

/// Writes a decided batch: each table's rows, the F1 sums, the log entries that record
/// them and, once, the head that carries every counter and the ends of both chains.
fn write_plan(tx: &Transaction<'_>, plan: &Plan) -> Result<(), StoreError> {
    write_parties(tx, plan)?;
    write_credits(tx, plan)?;
    write_accounts(tx, plan)?;
    write_operations(tx, plan)?;
    write_transfers(tx, plan)?;
    write_paths(tx, plan)?;
    write_summary(tx, plan)?;
    let mut written = write_f5_records(tx, plan)?;
    written.extend(write_delegations(tx, plan)?);
    written.extend(write_events(tx, plan)?);
    let log_head = write_log(tx, plan, written)?;
    write_head(tx, &plan.head, log_head)
}

/// The batch's log entries, one per operation with every row it wrote, those whose ids
/// the database assigned read back. Returns the log's new end.
fn write_log(
    tx: &Transaction<'_>,
    plan: &Plan,
    written: Written,
) -> Result<(i64, Hash), StoreError> {
    let mut extra: HashMap<i64, Vec<cessio_store::log::Put>> = HashMap::new();
    for (operation, spec, id) in written {
        extra
            .entry(operation)
            .or_default()
            .extend(log::read_back(tx, &[(spec, id)])?);
    }
    log::write_after(
        tx,
        (plan.head.log_seq, plan.head.log_hash),
        cessio_store::log::plan_entries(plan, extra),
    )
}

/// The head, written once per batch: the counters, the transfers' chain and the log's.
fn write_head(
    tx: &Transaction<'_>,
    h: &Head,
    (log_seq, log_hash): (i64, Hash),
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE ledger_head SET last_operation = ?1, last_transfer = ?2, last_hash = ?3, last_party = ?4, last_credit = ?5, last_rata = ?6, last_account = ?7, last_protocol = ?8, log_seq = ?9, log_hash = ?10 WHERE id = 1",
    )
    .and_then(|mut st| {
        st.execute(params![
            h.last_operation,
            h.last_transfer,
            hash_to_hex(&h.last_hash),
            h.last_party,
            h.last_credit,
            h.last_rata,
            h.last_account,
            h.last_protocol,
            log_seq,
            hash_to_hex(&log_hash)
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

/// The parties a batch registered (R-PARTY).
fn write_parties(tx: &Transaction<'_>, plan: &Plan) -> Result<(), StoreError> {
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
    Ok(())
}

/// The credits a batch issued, with their rate.
fn write_credits(tx: &Transaction<'_>, plan: &Plan) -> Result<(), StoreError> {
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
    Ok(())
}

/// New accounts with their final balance; touched ones updated once each.
fn write_accounts(tx: &Transaction<'_>, plan: &Plan) -> Result<(), StoreError> {
    let mut st = tx
        .prepare_cached(
            "INSERT INTO accounts (id, rata, kind, party, debits_pending, debits_posted, credits_pending, credits_posted, last_transfer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
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
    Ok(())
}

/// One row per operation applied: what a retry under the same key answers with.
fn write_operations(tx: &Transaction<'_>, plan: &Plan) -> Result<(), StoreError> {
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
    Ok(())
}

/// The batch's transfers, each with its place on the hash chain.
fn write_transfers(tx: &Transaction<'_>, plan: &Plan) -> Result<(), StoreError> {
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
