//! The batch engine both backends share: pure, no I/O.
//!
//! A backend's writer takes a batch of operations off its queue, asks [`needs`] what rows
//! they touch, loads exactly those inside its transaction (with the ledger head locked),
//! calls [`plan`] and writes the [`Plan`] back before committing. All decisions — the
//! idempotency check, account resolution, the ledger rules, ids, protocols and the hash
//! chain — are made here, once, so that SQLite and PostgreSQL cannot disagree.
//!
//! Each operation in a batch succeeds or fails on its own: a failed operation leaves the
//! working set exactly as before it, so it cannot fail its neighbours.

//! - [`needs`]: what a batch reads, and the facts the writer decides on;
//! - [`rows`]: what a batch writes (the [`Plan`]) and the head it advances;
//! - `commands`: one function per command;
//! - `movements`: issuing a credit, resolving and recording movements, protocols;
//! - `projected`: what a written plan adds to F1's summary and the parties' feeds.
//!
//! Decided here because they can race, on the state the batch sees: balances
//! (R-CONSERVE, R-PENDING-OUT, and so R-PARTIAL's whole rata and R-SPLIT-ANNUL's untouched
//! rate), R-SUSP (no answer to a suspended communication; a suspension only of one awaiting
//! its answer, once; its end only of an open one), R-DELEGA-END / R-DELEGA-SCOPE for a
//! delegate's operation, R-F24-CHOICE (no cession of a rata chosen for F24, no F24 use of a
//! tracciabile one not chosen, a choice declared once and revoked only while nothing is
//! reserved), R-BAN-100K/1500 on the debt position in force, R-BANK-CLIENT on the
//! relation in force between a ceding bank and its cessionario, §5's history on what the
//! holding has received since the app read it, and R-SEIZE on what is under seizure per
//! holder (one open seizure, a release of no more than it seized).
//!
//! A key the log already holds with the same request hash returns the stored receipt (`replayed: true`); under another request it is refused. Only
//! operations that applied are recorded, so a refused one can be retried, or corrected,
//! under its key without anything applying twice.

mod commands;
mod movements;
mod needs;
mod projected;
mod rows;

use std::collections::{HashMap, HashSet};

use cessio_core::ledger::{Account, AccountId, Ledger, PartyId, RataId, TransferId, TransferKind};
use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::model::{Command, DelegationChange, Operation, Receipt};

pub use needs::{
    LiveDelegation, Needs, Prefetched, SeizureRow, StoredOperation, SuspensionFact, needs,
    seized_from,
};
pub use projected::{MovementFacts, Projected, RataFacts, Wanted, projected, wanted};
pub use rows::{AccountKey, Head, OpSpan, OperationRow, Plan, TransferRow};

/// The hash that ties a retried request to the first one: everything but the time.
pub fn request_hash(op: &Operation) -> String {
    if let Some(h) = &op.request_hash {
        return h.clone();
    }
    let body =
        serde_json::to_vec(&(&op.acting_user, op.on_behalf_of, &op.command)).unwrap_or_default();
    let digest: [u8; 32] = Sha256::digest(&body).into();
    cessio_core::ledger::hash_to_hex(&digest)
}

struct Working {
    ledger: Ledger,
    ids: HashMap<AccountKey, AccountId>,
    preexisting: HashSet<AccountId>,
    parties: HashSet<PartyId>,
    cfs: HashSet<String>,
    rate: HashSet<RataId>,
    done: HashMap<String, StoredOperation>,
    pending_kinds: HashMap<TransferId, TransferKind>,
    suspensions: HashMap<TransferId, SuspensionFact>,
    delegations: HashMap<(i64, PartyId), Vec<LiveDelegation>>,
    choices: HashMap<(RataId, PartyId), cessio_core::f24::F24Choice>,
    debts: HashMap<PartyId, cessio_core::debt::DebtPosition>,
    bank_clients: HashMap<(PartyId, PartyId), needs::Relations>,
    seized: HashMap<(RataId, PartyId), cessio_core::money::Cents>,
}

fn is_suspension(kind: &str) -> bool {
    kind == crate::model::SUSPENSION_EVENT || kind == crate::model::SUSPENSION_END_EVENT
}

/// Decides every operation of a batch against the loaded rows and the head. Returns what to
/// write and one result per operation, in order.
pub fn plan(
    ops: &[Operation],
    pre: Prefetched,
    head: Head,
) -> (Plan, Vec<Result<Receipt, StoreError>>) {
    let mut w = Working {
        ledger: Ledger::new(),
        ids: HashMap::new(),
        preexisting: HashSet::new(),
        parties: pre.parties,
        cfs: pre.cfs,
        rate: pre.rate,
        done: pre.operations,
        pending_kinds: HashMap::new(),
        suspensions: pre.suspensions,
        delegations: pre.delegations,
        choices: pre.choices,
        debts: pre.debts,
        bank_clients: pre.bank_clients,
        seized: pre.seized,
    };
    for a in pre.accounts {
        w.ids.insert(AccountKey::of_account(&a), a.id);
        w.preexisting.insert(a.id);
        w.ledger.insert_account(a);
    }
    for (p, kind) in pre.pending {
        w.pending_kinds.insert(p.id, kind);
        w.ledger.insert_pending(p);
    }
    let mut plan = Plan {
        head,
        ..Plan::default()
    };
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        let hash = request_hash(op);
        if let Some(prev) = w.done.get(op.idempotency_key.as_str()) {
            results.push(if prev.request_hash == hash {
                Ok(Receipt {
                    replayed: true,
                    ..prev.receipt.clone()
                })
            } else {
                Err(StoreError::IdempotencyConflict {
                    key: op.idempotency_key.as_str().to_string(),
                })
            });
            continue;
        }
        let saved = Savepoint::take(&plan);
        match commands::apply(op, &mut w, &mut plan) {
            Ok(receipt) => {
                let receipt_json = serde_json::to_string(&receipt).unwrap_or_default();
                plan.operations.push(OperationRow {
                    id: receipt.operation_id,
                    idempotency_key: op.idempotency_key.as_str().to_string(),
                    request_hash: hash.clone(),
                    acting_user: op.acting_user.clone(),
                    on_behalf_of: op.on_behalf_of,
                    at: op.at,
                    kind: command_kind(&op.command),
                    receipt_json,
                });
                plan.spans.push(OpSpan {
                    parties: plan.parties.len(),
                    credits: plan.credits.len(),
                    accounts: plan.new_accounts.len(),
                    transfers: plan.transfers.len(),
                });
                w.done.insert(
                    op.idempotency_key.as_str().to_string(),
                    StoredOperation {
                        request_hash: hash,
                        receipt: receipt.clone(),
                    },
                );
                results.push(Ok(receipt));
            }
            Err(e) => {
                saved.restore(&mut plan, &mut w);
                results.push(Err(e));
            }
        }
    }
    // Pre-existing accounts are written once, with their final balance.
    let mut updates: Vec<Account> = w
        .ledger
        .accounts()
        .filter(|a| w.preexisting.contains(&a.id))
        .copied()
        .collect();
    updates.sort_by_key(|a| a.id);
    plan.account_updates = updates;
    for a in &mut plan.new_accounts {
        if let Some(now) = w.ledger.account(a.id) {
            a.balance = now.balance;
        }
    }
    (plan, results)
}

pub fn command_kind(c: &Command) -> &'static str {
    match c {
        Command::RegisterParty(_) => "register_party",
        Command::IssueCredit(_) => "issue_credit",
        Command::Transfer(_) => "transfer",
        Command::F24Choice { .. } => "f24_choice",
        Command::DebtPosition { .. } => "debt_position",
        Command::Split { .. } => "split",
        Command::Delegation(DelegationChange::Grant { .. }) => "delegation_grant",
        Command::Delegation(DelegationChange::Revoke { .. }) => "delegation_revoke",
        Command::OperatorEvent { .. } => "operator_event",
    }
}

/// Enough of the plan and working set to undo one failed operation. The ledger itself
/// rolls back its balances; what is added here is rows and ids.
struct Savepoint {
    head: Head,
    events: usize,
    parties: usize,
    credits: usize,
    new_accounts: usize,
    transfers: usize,
    choices: usize,
    debt_positions: usize,
    delegations: usize,
    cession_paths: usize,
}

impl Savepoint {
    fn take(plan: &Plan) -> Self {
        Savepoint {
            head: plan.head.clone(),
            events: plan.events.len(),
            parties: plan.parties.len(),
            credits: plan.credits.len(),
            new_accounts: plan.new_accounts.len(),
            transfers: plan.transfers.len(),
            choices: plan.choices.len(),
            debt_positions: plan.debt_positions.len(),
            delegations: plan.delegations.len(),
            cession_paths: plan.cession_paths.len(),
        }
    }

    fn restore(self, plan: &mut Plan, w: &mut Working) {
        for (p, _) in plan.parties.drain(self.parties..) {
            w.parties.remove(&p.id);
            w.cfs.remove(p.cf.as_str());
        }
        for c in plan.credits.drain(self.credits..) {
            for r in c.rate {
                w.rate.remove(&r.id);
            }
        }
        for a in plan.new_accounts.drain(self.new_accounts..) {
            w.ids.remove(&AccountKey::of_account(&a));
            w.ledger.remove_account(a.id);
        }
        for t in plan.transfers.drain(self.transfers..) {
            w.pending_kinds.remove(&t.id);
        }
        plan.choices.truncate(self.choices);
        plan.debt_positions.truncate(self.debt_positions);
        plan.delegations.truncate(self.delegations);
        plan.cession_paths.truncate(self.cession_paths);
        plan.events.truncate(self.events);
        plan.head = self.head;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NewOperatorEvent, WriterCheck};
    use crate::{BANK_CLIENT_EVENT, IdempotencyKey};
    use cessio_core::chain::BankClient;
    use chrono::TimeZone;

    fn op(key: &str, command: Command, checks: Vec<WriterCheck>) -> Operation {
        Operation {
            idempotency_key: IdempotencyKey::parse(key).expect("a valid key"),
            acting_user: "tester".into(),
            on_behalf_of: None,
            at: chrono::Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap(),
            command,
            request_hash: None,
            delegate: None,
            checks,
        }
    }

    #[test]
    fn r_bank_client_a_relation_recorded_earlier_in_the_batch_decides_the_next_operation() {
        let (bank, client) = (1, 2);
        let checked = |key: &str| {
            op(
                key,
                Command::DebtPosition {
                    party: bank,
                    position: cessio_core::debt::DebtPosition::default(),
                },
                vec![WriterCheck::BankClient {
                    bank,
                    client,
                    admitted: vec![BankClient::NonConsumer],
                }],
            )
        };
        let first = checked("before");
        let ended = op(
            "ended",
            Command::OperatorEvent {
                event: NewOperatorEvent {
                    kind: BANK_CLIENT_EVENT.into(),
                    at: first.at,
                    actor: "op".into(),
                    transfer: None,
                    party: Some(bank),
                    counterparty: Some(client),
                    data: serde_json::json!({ "relation": BankClient::Consumer }),
                },
                void: None,
            },
            Vec::new(),
        );
        let mut pre = Prefetched::default();
        pre.parties.insert(bank);
        pre.bank_clients.insert(
            (bank, client),
            vec![(
                first.at - chrono::Duration::hours(1),
                BankClient::NonConsumer,
            )],
        );
        let (_, results) = plan(&[first, ended, checked("after")], pre, Head::default());
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(results[1].is_ok(), "{:?}", results[1]);
        let e = results[2]
            .as_ref()
            .expect_err("the relation ended before it");
        assert_eq!(e.code(), "r_bank_client_changed", "{e}");
    }
}
