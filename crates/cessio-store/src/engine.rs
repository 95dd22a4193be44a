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

use std::collections::{HashMap, HashSet};

use cessio_core::ledger::{
    Account, AccountId, AccountKind, Balance, EntryFields, GENESIS_HASH, Hash, Ledger, LedgerError,
    Movement, PartyId, PendingTransfer, Phase, RataId, TransferId, TransferKind, chain_hash,
};
use cessio_core::money::Cents;
use cessio_core::rata::{CodiceUnivoco, Protocol};
use cessio_core::time::to_rome;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::model::{
    AccountRef, ChoiceRecord, Command, Credit, DelegationChange, IssuedCredit, IssuedRata,
    NewCredit, Operation, Party, Rata, Receipt, TransferRequest,
};
use cessio_core::debt::DebtPosition;
use cessio_core::f24::F24Choice;

/// The unique identity of an account: a rata, a kind, and for holders the party.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey {
    pub rata: RataId,
    pub kind: AccountKind,
    /// 0 for system accounts, so the key is a plain unique tuple in SQL.
    pub party: PartyId,
}

impl AccountKey {
    pub fn of(rata: RataId, r: AccountRef) -> Self {
        match r {
            AccountRef::Holder(party) => AccountKey {
                rata,
                kind: AccountKind::Holder,
                party,
            },
            AccountRef::System(kind) => AccountKey {
                rata,
                kind,
                party: 0,
            },
        }
    }

    pub fn of_account(a: &Account) -> Self {
        AccountKey {
            rata: a.rata,
            kind: a.kind,
            party: a.party.unwrap_or(0),
        }
    }
}

/// The single row that serialises writers and carries the counters and the chain head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub last_operation: i64,
    pub last_transfer: TransferId,
    pub last_hash: Hash,
    pub last_party: PartyId,
    pub last_credit: i64,
    pub last_rata: RataId,
    pub last_account: AccountId,
    /// Empty before the first communication.
    pub last_protocol: String,
    /// The log's last entry and its hash ([`crate::log`]).
    pub log_seq: i64,
    pub log_hash: Hash,
}

impl Head {
    /// The row counts the head's counters keep (see [`crate::Store::head_counts`]).
    pub fn counts(&self) -> crate::Counts {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        crate::Counts {
            parties: n(self.last_party),
            credits: n(self.last_credit),
            rate: n(self.last_rata),
            accounts: n(self.last_account),
            operations: n(self.last_operation),
            transfers: n(self.last_transfer),
        }
    }
}

impl Default for Head {
    fn default() -> Self {
        Head {
            last_operation: 0,
            last_transfer: 0,
            last_hash: GENESIS_HASH,
            last_party: 0,
            last_credit: 0,
            last_rata: 0,
            last_account: 0,
            last_protocol: String::new(),
            log_seq: 0,
            log_hash: GENESIS_HASH,
        }
    }
}

/// What a batch needs loaded.
#[derive(Debug, Default)]
pub struct Needs {
    pub idempotency_keys: Vec<String>,
    pub account_keys: Vec<AccountKey>,
    pub pending: Vec<TransferId>,
    pub parties: Vec<PartyId>,
    pub cfs: Vec<String>,
    pub rate: Vec<RataId>,
    /// Communications whose suspension (R-SUSP) an operation of the batch depends on.
    pub suspensions: Vec<TransferId>,
    /// (user, party) of the delegations the batch's operations are made under.
    pub delegations: Vec<(i64, PartyId)>,
}

/// A communication's suspension as the operator's register records it (R-SUSP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuspensionFact {
    pub suspension: cessio_core::suspension::Suspension,
    pub ended: bool,
}

impl SuspensionFact {
    /// Folds a communication's register entries, oldest first: `(kind, data)`.
    pub fn fold<'a>(
        events: impl IntoIterator<Item = (&'a str, &'a serde_json::Value)>,
    ) -> Option<SuspensionFact> {
        let mut out = None;
        for (kind, data) in events {
            match kind {
                crate::model::SUSPENSION_EVENT => {
                    let date = |k: &str| {
                        data.get(k)
                            .and_then(|v| v.as_str())
                            .and_then(|s| s.parse::<chrono::NaiveDate>().ok())
                    };
                    if let (Some(from), Some(until)) = (date("from"), date("until")) {
                        out = Some(SuspensionFact {
                            suspension: cessio_core::suspension::Suspension { from, until },
                            ended: false,
                        });
                    }
                }
                crate::model::SUSPENSION_END_EVENT => {
                    if let Some(f) = &mut out {
                        f.ended = true;
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Whether it holds the communication on `today` (Rome): not ended by the operator and
    /// not lapsed (R-SUSP).
    pub fn holds_on(&self, today: chrono::NaiveDate) -> bool {
        !self.ended && cessio_core::suspension::outcome_on(&self.suspension, today).is_none()
    }
}

/// A delegation as the writer checks it: its scope and last day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveDelegation {
    pub scope: crate::model::DelegationScope,
    pub until: Option<chrono::NaiveDate>,
}

/// An operation already recorded under an idempotency key.
#[derive(Clone, Debug)]
pub struct StoredOperation {
    pub request_hash: String,
    pub receipt: Receipt,
}

/// The rows a backend loaded for [`Needs`]. Accounts must include those of every loaded
/// pending transfer (debit and credit), found by id.
#[derive(Debug, Default)]
pub struct Prefetched {
    pub operations: HashMap<String, StoredOperation>,
    pub accounts: Vec<Account>,
    /// Pending transfers with the kind they were recorded under (their answer keeps it).
    pub pending: Vec<(PendingTransfer, TransferKind)>,
    pub parties: HashSet<PartyId>,
    pub cfs: HashSet<String>,
    pub rate: HashSet<RataId>,
    pub suspensions: HashMap<TransferId, SuspensionFact>,
    /// The live (not revoked) delegations of each (user, party) named in `Needs`.
    pub delegations: HashMap<(i64, PartyId), Vec<LiveDelegation>>,
}

pub fn needs(ops: &[Operation]) -> Needs {
    let mut n = Needs::default();
    for op in ops {
        n.idempotency_keys
            .push(op.idempotency_key.as_str().to_string());
        if let Some(d) = &op.delegate {
            n.delegations.push((d.user, d.party));
        }
        match &op.command {
            // Every spelling of the code (omocodia): one subject is one party.
            Command::RegisterParty(p) => n.cfs.extend(
                p.cf.omocode_variants()
                    .iter()
                    .map(|v| v.as_str().to_string()),
            ),
            Command::IssueCredit(c) => n.parties.extend([c.beneficiary, c.holder]),
            Command::F24Choice { rata, party, .. } => {
                n.rate.push(*rata);
                n.parties.push(*party);
                n.account_keys
                    .push(AccountKey::of(*rata, AccountRef::Holder(*party)));
            }
            Command::DebtPosition { party, .. } => n.parties.push(*party),
            Command::OperatorEvent { event, void } => {
                if let Some(t) = event.transfer.filter(|_| is_suspension(&event.kind)) {
                    n.pending.push(t);
                    n.suspensions.push(t);
                }
                n.pending.extend(*void);
            }
            Command::Delegation(
                DelegationChange::Grant { party, .. } | DelegationChange::Revoke { party, .. },
            ) => n.parties.push(*party),
            Command::Split {
                rata,
                party,
                credit,
                ..
            } => {
                n.rate.push(*rata);
                n.parties
                    .extend([*party, credit.beneficiary, credit.holder]);
                n.account_keys.extend([
                    AccountKey::of(*rata, AccountRef::Holder(*party)),
                    AccountKey::of(*rata, AccountRef::System(AccountKind::Split)),
                ]);
            }
            Command::Transfer(moves) => {
                for m in moves {
                    match m {
                        TransferRequest::Move { rata, from, to, .. } => {
                            n.rate.push(*rata);
                            for r in [from, to] {
                                n.account_keys.push(AccountKey::of(*rata, *r));
                                if let AccountRef::Holder(p) = r {
                                    n.parties.push(*p);
                                }
                            }
                        }
                        TransferRequest::Post { pending } | TransferRequest::Void { pending } => {
                            n.pending.push(*pending);
                            n.suspensions.push(*pending);
                        }
                    }
                }
            }
        }
    }
    for v in [
        &mut n.parties,
        &mut n.rate,
        &mut n.pending,
        &mut n.suspensions,
    ] {
        v.sort_unstable();
        v.dedup();
    }
    n.delegations.sort_unstable();
    n.delegations.dedup();
    n.account_keys.sort_unstable();
    n.account_keys.dedup();
    n.cfs.sort_unstable();
    n.cfs.dedup();
    n.idempotency_keys.sort_unstable();
    n.idempotency_keys.dedup();
    n
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationRow {
    pub id: i64,
    pub idempotency_key: String,
    pub request_hash: String,
    pub acting_user: String,
    pub on_behalf_of: Option<PartyId>,
    pub at: DateTime<Utc>,
    pub kind: &'static str,
    pub receipt_json: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRow {
    pub id: TransferId,
    pub operation: i64,
    pub rata: RataId,
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Cents,
    pub kind: TransferKind,
    pub phase: Phase,
    pub pending_id: Option<TransferId>,
    pub at_micros: i64,
    pub acting_user: String,
    pub party: Option<PartyId>,
    pub counterparty: Option<PartyId>,
    pub disclose: bool,
    pub hash: Hash,
}

impl TransferRow {
    pub fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            id: self.id,
            operation: self.operation,
            rata: self.rata,
            debit: self.debit,
            credit: self.credit,
            amount: self.amount,
            kind: self.kind,
            phase: self.phase,
            pending_id: self.pending_id,
            at_micros: self.at_micros,
            acting_user: &self.acting_user,
            party: self.party,
            counterparty: self.counterparty,
            disclose: self.disclose,
        }
    }
}

/// Where one operation's rows end in a [`Plan`]'s lists (each operation's start where the
/// one before ended): the log records each operation with the rows it wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpSpan {
    pub parties: usize,
    pub credits: usize,
    pub accounts: usize,
    pub transfers: usize,
}

/// Everything a batch writes. New accounts carry their final balance; `account_updates`
/// are the final balances of pre-existing accounts the batch touched (one write each).
#[derive(Debug, Default)]
pub struct Plan {
    pub parties: Vec<(Party, DateTime<Utc>)>,
    pub credits: Vec<Credit>,
    pub new_accounts: Vec<Account>,
    pub account_updates: Vec<Account>,
    pub operations: Vec<OperationRow>,
    pub transfers: Vec<TransferRow>,
    /// F24 choices recorded (R-F24-CHOICE), with the operation and time.
    pub choices: Vec<(ChoiceRecord, i64, DateTime<Utc>)>,
    /// Debt positions recorded by the operator, with the operation and time.
    pub debt_positions: Vec<(PartyId, DebtPosition, i64, DateTime<Utc>)>,
    /// Delegations granted or revoked: the change, the operation, the actor and the time.
    pub delegations: Vec<(DelegationChange, i64, String, DateTime<Utc>)>,
    /// Entries of the operator's register recorded through the writer, with the operation.
    pub events: Vec<(crate::model::NewOperatorEvent, i64)>,
    /// One per entry of `operations`, in the same order.
    pub spans: Vec<OpSpan>,
    pub head: Head,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    pub fn rate(&self) -> impl Iterator<Item = &Rata> {
        self.credits.iter().flat_map(|c| c.rate.iter())
    }

    /// Per account the id of the batch's last transfer that moved it, which the backends
    /// store as the account's `last_transfer` (what changed since a reader last looked).
    /// The batch's transfers are in id order, so the last one written for an account wins.
    pub fn last_transfers(&self) -> HashMap<AccountId, TransferId> {
        self.transfers
            .iter()
            .flat_map(|t| [(t.debit, t.id), (t.credit, t.id)])
            .collect()
    }
}

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
        match apply(op, &mut w, &mut plan) {
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
        plan.events.truncate(self.events);
        plan.head = self.head;
    }
}

fn validate_user(op: &Operation) -> Result<(), StoreError> {
    if op.acting_user.is_empty() || op.acting_user.len() > Operation::MAX_USER_LEN {
        return Err(StoreError::InvalidOperation {
            reason: "l'utente che agisce deve essere indicato (al massimo 128 caratteri)".into(),
        });
    }
    Ok(())
}

fn apply(op: &Operation, w: &mut Working, plan: &mut Plan) -> Result<Receipt, StoreError> {
    validate_user(op)?;
    let today = cessio_core::time::rome_date(op.at);
    if let Some(d) = &op.delegate {
        check_delegation(d, w)?;
    }
    plan.head.last_operation += 1;
    let operation_id = plan.head.last_operation;
    let mut receipt = Receipt {
        operation_id,
        at: op.at,
        replayed: false,
        transfers: Vec::new(),
        amount: Cents::ZERO,
        party: None,
        credit: None,
    };
    match &op.command {
        Command::RegisterParty(p) => {
            let name = p.name.trim();
            if name.is_empty() || name.chars().count() > 200 {
                return Err(StoreError::InvalidOperation {
                    reason: "la denominazione è obbligatoria (al massimo 200 caratteri)".into(),
                });
            }
            // An omocodic variant of a registered code names the same person: refused as
            // a duplicate, naming the form registered.
            if let Some(registered) =
                p.cf.omocode_variants()
                    .into_iter()
                    .find(|v| w.cfs.contains(v.as_str()))
            {
                return Err(StoreError::PartyExists {
                    cf: registered.as_str().to_string(),
                });
            }
            w.cfs.insert(p.cf.as_str().to_string());
            plan.head.last_party += 1;
            let id = plan.head.last_party;
            w.parties.insert(id);
            plan.parties.push((
                Party {
                    id,
                    cf: p.cf.clone(),
                    name: name.to_string(),
                    kind: p.kind,
                    deceased: false,
                },
                op.at,
            ));
            receipt.party = Some(id);
        }
        Command::IssueCredit(c) => {
            let (issued, ids, amount) = issue(
                op,
                operation_id,
                w,
                plan,
                c,
                Vec::new(),
                (TransferKind::Issue, Some(c.beneficiary)),
                None,
            )?;
            receipt.amount = amount;
            receipt.transfers = ids;
            receipt.credit = Some(issued);
        }
        Command::F24Choice {
            rata,
            party,
            declared,
            on,
        } => {
            if !w.rate.contains(rata) {
                return Err(StoreError::UnknownRata { rata: *rata });
            }
            if !w
                .ids
                .contains_key(&AccountKey::of(*rata, AccountRef::Holder(*party)))
            {
                return Err(StoreError::NoHolding {
                    rata: *rata,
                    party: *party,
                });
            }
            let choice = if *declared {
                F24Choice::Declared { on: *on }
            } else {
                F24Choice::Revoked { on: *on }
            };
            plan.choices.push((
                ChoiceRecord {
                    rata: *rata,
                    party: *party,
                    choice,
                },
                operation_id,
                op.at,
            ));
            receipt.party = Some(*party);
        }
        Command::DebtPosition { party, position } => {
            if !w.parties.contains(party) {
                return Err(StoreError::UnknownParty { party: *party });
            }
            if position.loads.len() > 1_000 {
                return Err(StoreError::InvalidOperation {
                    reason: "una posizione debitoria ha al massimo 1.000 carichi".into(),
                });
            }
            plan.debt_positions
                .push((*party, position.clone(), operation_id, op.at));
            receipt.party = Some(*party);
        }
        Command::Delegation(change) => {
            // The user is not loaded here: the app resolves it by name before submitting,
            // and users are never deleted.
            let party = match change {
                DelegationChange::Grant { party, .. } | DelegationChange::Revoke { party, .. } => {
                    *party
                }
            };
            if !w.parties.contains(&party) {
                return Err(StoreError::UnknownParty { party });
            }
            // Later operations of the batch see the change (a grant supersedes the live
            // delegation of the pair; a revocation ends it).
            match change {
                DelegationChange::Grant {
                    user,
                    party,
                    scope,
                    until,
                } => {
                    w.delegations.insert(
                        (*user, *party),
                        vec![LiveDelegation {
                            scope: *scope,
                            until: *until,
                        }],
                    );
                }
                DelegationChange::Revoke { user, party } => {
                    w.delegations.insert((*user, *party), Vec::new());
                }
            }
            plan.delegations
                .push((change.clone(), operation_id, op.acting_user.clone(), op.at));
            receipt.party = Some(party);
        }
        Command::Split {
            rata,
            party,
            amount,
            credit,
        } => {
            if credit.holder != *party || credit.awaiting_answer {
                return Err(StoreError::InvalidOperation {
                    reason: "le rate della ripartizione vanno al titolare, senza accettazione"
                        .into(),
                });
            }
            let total = Cents::checked_sum(credit.rate.iter().map(|r| r.amount))
                .ok_or(StoreError::Ledger(LedgerError::Overflow))?;
            if total != *amount {
                return Err(StoreError::InvalidOperation {
                    reason: format!(
                        "le rate della ripartizione sommano {total}, non {amount} (R-SPLIT-CENTS)"
                    ),
                });
            }
            let out = resolve(
                &TransferRequest::Move {
                    rata: *rata,
                    from: AccountRef::Holder(*party),
                    to: AccountRef::System(AccountKind::Split),
                    amount: *amount,
                    kind: TransferKind::Split,
                    pending: false,
                    disclose: false,
                },
                w,
                plan,
            )?;
            let (issued, ids, _moved) = issue(
                op,
                operation_id,
                w,
                plan,
                credit,
                vec![out],
                (TransferKind::Split, Some(*party)),
                Some(*rata),
            )?;
            // The amount split, not the sum of both sides of the operation.
            receipt.amount = *amount;
            receipt.transfers = ids;
            receipt.party = Some(*party);
            receipt.credit = Some(issued);
        }
        Command::Transfer(requests) => {
            if requests.is_empty() || requests.len() > Operation::MAX_MOVEMENTS {
                return Err(StoreError::InvalidOperation {
                    reason: format!(
                        "un'operazione contiene da 1 a {} movimenti",
                        Operation::MAX_MOVEMENTS
                    ),
                });
            }
            let mut movements = Vec::with_capacity(requests.len());
            for r in requests {
                if let TransferRequest::Post { pending } | TransferRequest::Void { pending } = r {
                    check_not_suspended(*pending, today, w)?;
                }
                let mut planned = resolve(r, w, plan)?;
                if matches!(
                    planned.movement,
                    Movement::Post { .. } | Movement::Void { .. }
                ) && op.on_behalf_of.is_some()
                {
                    // An answer records who gave it: the cessionario accepting or
                    // refusing, or the sender annulling its own communication.
                    planned.party = op.on_behalf_of;
                }
                movements.push(planned);
            }
            let (ids, amount) = record(op, operation_id, w, plan, &movements)?;
            receipt.transfers = ids;
            receipt.amount = amount;
        }
        Command::OperatorEvent { event, void } => {
            if event.kind.trim().is_empty() || event.kind.len() > 64 {
                return Err(StoreError::InvalidOperation {
                    reason: "il tipo di annotazione è obbligatorio (al massimo 64 caratteri)"
                        .into(),
                });
            }
            let transfer = event.transfer.filter(|_| is_suspension(&event.kind));
            let mut ended = None;
            if let Some(t) = transfer {
                let open = w.suspensions.get(&t).copied();
                if event.kind == crate::model::SUSPENSION_EVENT {
                    let awaiting = w
                        .ledger
                        .pending(t)
                        .is_some_and(|p| p.state == cessio_core::ledger::PendingState::Pending);
                    if !awaiting {
                        return Err(rule(
                            "R-SUSP",
                            "r_susp_answered",
                            "la comunicazione ha già avuto risposta: non può più essere sospesa (R-SUSP)",
                        ));
                    }
                    if open.is_some() {
                        return Err(rule(
                            "R-SUSP",
                            "r_susp_once",
                            "la comunicazione è già stata sospesa: una sola sospensione per comunicazione (R-SUSP)",
                        ));
                    }
                } else {
                    let Some(fact) = open.filter(|f| !f.ended) else {
                        return Err(rule(
                            "R-SUSP",
                            "r_susp_not_open",
                            "la comunicazione non ha una sospensione aperta (R-SUSP)",
                        ));
                    };
                    ended = Some(fact);
                }
            }
            if let Some(pending) = void {
                let planned = resolve(&TransferRequest::Void { pending: *pending }, w, plan)?;
                let (ids, amount) = record(op, operation_id, w, plan, &[planned])?;
                receipt.transfers = ids;
                receipt.amount = amount;
            }
            match (transfer, ended) {
                (Some(t), Some(fact)) => {
                    w.suspensions.insert(
                        t,
                        SuspensionFact {
                            ended: true,
                            ..fact
                        },
                    );
                }
                (Some(t), None) => {
                    let Some(fact) = SuspensionFact::fold([(event.kind.as_str(), &event.data)])
                    else {
                        return Err(StoreError::InvalidOperation {
                            reason: "una sospensione indica le date \"from\" e \"until\"".into(),
                        });
                    };
                    w.suspensions.insert(t, fact);
                }
                _ => {}
            }
            plan.events.push((event.clone(), operation_id));
            receipt.party = event.party;
        }
    }
    Ok(receipt)
}

fn rule(rule: &'static str, code: &'static str, detail: &str) -> StoreError {
    StoreError::Rule {
        rule,
        code,
        detail: detail.to_string(),
    }
}

/// R-SUSP, decided on the register the batch sees: a suspended communication can be
/// neither accepted nor refused until the operator ends the suspension or it lapses.
fn check_not_suspended(
    pending: TransferId,
    today: chrono::NaiveDate,
    w: &Working,
) -> Result<(), StoreError> {
    match w.suspensions.get(&pending) {
        Some(f) if f.holds_on(today) => Err(StoreError::Rule {
            rule: "R-SUSP",
            code: "r_susp_suspended",
            detail: format!(
                "La comunicazione è sospesa per controlli (art. 122-bis DL 34/2020) fino al {}: potrà essere accettata o rifiutata solo dopo l'esito (R-SUSP)",
                cessio_core::law::it_date(f.suspension.until)
            ),
        }),
        _ => Ok(()),
    }
}

/// The delegation an operation is made under, on the delegations the batch sees: a
/// revocation committed before it refuses it (R-DELEGA-END), as does a view-only scope
/// (R-DELEGA-SCOPE).
fn check_delegation(d: &crate::model::DelegateCheck, w: &Working) -> Result<(), StoreError> {
    let live: Vec<&LiveDelegation> = w
        .delegations
        .get(&(d.user, d.party))
        .into_iter()
        .flatten()
        .filter(|l| l.until.is_none_or(|u| d.on <= u))
        .collect();
    if live.is_empty() {
        return Err(rule(
            "R-DELEGA-END",
            "delegation_ended",
            "La delega per questo soggetto è stata revocata o è scaduta: l'operazione non è stata eseguita (R-DELEGA-END)",
        ));
    }
    if !live
        .iter()
        .any(|l| l.scope == crate::model::DelegationScope::Disposizione)
    {
        return Err(rule(
            "R-DELEGA-SCOPE",
            "delegation_view_only",
            "La delega ricevuta per questo soggetto è di sola consultazione: per disporre dei crediti serve una delega anche alla disposizione (R-DELEGA-SCOPE)",
        ));
    }
    Ok(())
}

/// Creates a credit and issues its rate to the holder, after `before` (the movements that
/// make room for it, for a split), all in one operation. `recorded` is the kind and party
/// the issuance rows record.
#[expect(
    clippy::too_many_arguments,
    reason = "one operation's context and its parts"
)]
fn issue(
    op: &Operation,
    operation_id: i64,
    w: &mut Working,
    plan: &mut Plan,
    c: &NewCredit,
    before: Vec<Planned>,
    recorded: (TransferKind, Option<PartyId>),
    split_of: Option<RataId>,
) -> Result<(IssuedCredit, Vec<TransferId>, Cents), StoreError> {
    for p in [c.beneficiary, c.holder] {
        if !w.parties.contains(&p) {
            return Err(StoreError::UnknownParty { party: p });
        }
    }
    if c.rate.is_empty() || c.rate.len() > 10 {
        return Err(StoreError::InvalidOperation {
            reason: "una comunicazione ha da 1 a 10 rate".into(),
        });
    }
    plan.head.last_credit += 1;
    let credit_id = plan.head.last_credit;
    let protocol = next_protocol(&plan.head.last_protocol, op.at)?;
    plan.head.last_protocol = protocol.as_str().to_string();
    let mut rate = Vec::with_capacity(c.rate.len());
    let mut movements = before;
    movements.reserve(c.rate.len());
    let mut issued = IssuedCredit {
        id: credit_id,
        protocol: protocol.as_str().to_string(),
        rate: Vec::new(),
        pending: Vec::new(),
    };
    for (i, r) in c.rate.iter().enumerate() {
        if !r.amount.is_positive() {
            return Err(StoreError::InvalidOperation {
                reason: format!("la rata {} ha un importo non positivo", i + 1),
            });
        }
        plan.head.last_rata += 1;
        let rata_id = plan.head.last_rata;
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let univoco =
            CodiceUnivoco::new(&protocol, 1, index).map_err(|e| StoreError::InvalidOperation {
                reason: e.to_string(),
            })?;
        w.rate.insert(rata_id);
        let issuance = new_account(w, plan, rata_id, AccountRef::System(AccountKind::Issuance));
        let holder = new_account(w, plan, rata_id, AccountRef::Holder(c.holder));
        movements.push(Planned {
            rata: rata_id,
            kind: recorded.0,
            movement: Movement::Move {
                debit: issuance,
                credit: holder,
                amount: r.amount,
                pending: c.awaiting_answer,
            },
            party: recorded.1,
            disclose: true,
        });
        issued.rate.push(IssuedRata {
            id: rata_id,
            codice_univoco: univoco.as_str().to_string(),
        });
        rate.push(Rata {
            id: rata_id,
            credit: credit_id,
            index,
            year: r.year,
            amount: r.amount,
            codice_tributo: r.codice_tributo.clone(),
            codice_univoco: univoco.as_str().to_string(),
        });
    }
    let (ids, amount) = record(op, operation_id, w, plan, &movements)?;
    if c.awaiting_answer {
        issued.pending.clone_from(&ids);
    }
    plan.credits.push(Credit {
        id: credit_id,
        protocol: protocol.as_str().to_string(),
        type_key: c.type_key.clone(),
        beneficiary: c.beneficiary,
        holder: c.holder,
        origin: c.origin,
        expense_year: c.expense_year,
        communicated_on: c.communicated_on,
        tracciabile: c.tracciabile,
        created_at: op.at,
        rate,
        split_of,
        beneficiary_no_tax_area: c.beneficiary_no_tax_area,
    });
    Ok((issued, ids, amount))
}

fn resolve(r: &TransferRequest, w: &mut Working, plan: &mut Plan) -> Result<Planned, StoreError> {
    match *r {
        TransferRequest::Move {
            rata,
            from,
            to,
            amount,
            kind,
            pending,
            disclose,
        } => {
            if !w.rate.contains(&rata) {
                return Err(StoreError::UnknownRata { rata });
            }
            if from == AccountRef::System(AccountKind::Issuance)
                || to == AccountRef::System(AccountKind::Issuance)
            {
                // Credit is created only by issuing a credit (R-CONSERVE).
                return Err(StoreError::InvalidOperation {
                    reason:
                        "il credito si crea solo con una comunicazione dell'opzione (R-CONSERVE)"
                            .into(),
                });
            }
            if !amount.is_positive() {
                return Err(StoreError::Ledger(LedgerError::NonPositiveAmount {
                    amount,
                }));
            }
            let debit = match w.ids.get(&AccountKey::of(rata, from)) {
                Some(id) => *id,
                None => {
                    return Err(match from {
                        AccountRef::Holder(party) => StoreError::NoHolding { rata, party },
                        AccountRef::System(_) => {
                            StoreError::Ledger(LedgerError::InsufficientAvailable {
                                account: 0,
                                requested: amount,
                                available: Cents::ZERO,
                            })
                        }
                    });
                }
            };
            if let AccountRef::Holder(p) = to
                && !w.parties.contains(&p)
            {
                return Err(StoreError::UnknownParty { party: p });
            }
            let credit = match w.ids.get(&AccountKey::of(rata, to)) {
                Some(id) => *id,
                None => new_account(w, plan, rata, to),
            };
            Ok(Planned {
                rata,
                kind,
                movement: Movement::Move {
                    debit,
                    credit,
                    amount,
                    pending,
                },
                party: None,
                disclose,
            })
        }
        TransferRequest::Post { pending } | TransferRequest::Void { pending } => {
            let p = w
                .ledger
                .pending(pending)
                .ok_or(StoreError::Ledger(LedgerError::UnknownPending { pending }))?;
            let rata = w
                .ledger
                .account(p.debit)
                .map(|a| a.rata)
                .ok_or(StoreError::Ledger(LedgerError::UnknownPending { pending }))?;
            let movement = if matches!(r, TransferRequest::Post { .. }) {
                Movement::Post { pending }
            } else {
                Movement::Void { pending }
            };
            // The answer keeps the kind of what it answers; the phase tells them apart.
            Ok(Planned {
                rata,
                kind: TransferKind::Cession,
                movement,
                party: None,
                disclose: false,
            })
        }
    }
}

fn new_account(w: &mut Working, plan: &mut Plan, rata: RataId, r: AccountRef) -> AccountId {
    plan.head.last_account += 1;
    let id = plan.head.last_account;
    let key = AccountKey::of(rata, r);
    let account = Account {
        id,
        rata,
        kind: key.kind,
        party: (key.kind == AccountKind::Holder).then_some(key.party),
        balance: Balance::default(),
    };
    w.ids.insert(key, id);
    w.ledger.insert_account(account);
    plan.new_accounts.push(account);
    id
}

/// One movement decided for an operation, with what its history row records beyond the
/// ledger's view.
struct Planned {
    rata: RataId,
    kind: TransferKind,
    movement: Movement,
    /// Recorded as the movement's party when the debit account has none: the beneficiary
    /// of an issuance is the cedente of the option communication.
    party: Option<PartyId>,
    disclose: bool,
}

/// Applies movements to the ledger and appends their history rows, chained.
fn record(
    op: &Operation,
    operation_id: i64,
    w: &mut Working,
    plan: &mut Plan,
    movements: &[Planned],
) -> Result<(Vec<TransferId>, Cents), StoreError> {
    // Everything that can fail is checked before the ledger changes: once `apply`
    // succeeds, nothing may fail, or the working set would keep a failed operation's
    // balances for the rest of the batch.
    let total = movements
        .iter()
        .try_fold(Cents::ZERO, |acc, m| match m.movement {
            Movement::Move { amount, .. } => acc.checked_add(amount),
            Movement::Post { pending } | Movement::Void { pending } => {
                acc.checked_add(w.ledger.pending(pending).map_or(Cents::ZERO, |p| p.amount))
            }
        })
        .ok_or(StoreError::Ledger(LedgerError::Overflow))?;
    let only: Vec<Movement> = movements.iter().map(|m| m.movement).collect();
    let mut next = plan.head.last_transfer;
    let applied = w.ledger.apply(&only, || {
        next += 1;
        next
    })?;
    let at_micros = op.at.timestamp_micros();
    let mut ids = Vec::with_capacity(applied.len());
    for (m, a) in movements.iter().zip(applied) {
        let (rata, kind, movement) = (&m.rata, &m.kind, &m.movement);
        plan.head.last_transfer += 1;
        let id = plan.head.last_transfer;
        // An answer names only the party that gave it, when the caller said who that is;
        // guessing it from the accounts would make a refusal look like an annulment.
        let party = match movement {
            Movement::Post { .. } | Movement::Void { .. } => m.party,
            Movement::Move { .. } => m
                .party
                .or_else(|| w.ledger.account(a.debit).and_then(|x| x.party)),
        };
        let counterparty = w.ledger.account(a.credit).and_then(|x| x.party);
        // Answers are recorded under the kind of the transfer they answer.
        let kind = match movement {
            Movement::Post { pending } | Movement::Void { pending } => {
                w.pending_kinds.get(pending).copied().unwrap_or(*kind)
            }
            Movement::Move { pending: true, .. } => {
                w.pending_kinds.insert(id, *kind);
                *kind
            }
            Movement::Move { .. } => *kind,
        };
        let mut row = TransferRow {
            id,
            operation: operation_id,
            rata: *rata,
            debit: a.debit,
            credit: a.credit,
            amount: a.amount,
            kind,
            phase: a.phase,
            pending_id: a.pending_id,
            at_micros,
            acting_user: op.acting_user.clone(),
            party,
            counterparty,
            disclose: m.disclose,
            hash: GENESIS_HASH,
        };
        row.hash = chain_hash(&plan.head.last_hash, &row.fields());
        plan.head.last_hash = row.hash;
        plan.transfers.push(row);
        ids.push(id);
    }
    Ok((ids, total))
}

/// The next protocol: the registration time in Rome plus a progressive within that second.
/// Protocols only grow, so if more than 99,999 arrive within one second the time part
/// moves on to the next second rather than repeat a number.
fn next_protocol(last: &str, at: DateTime<Utc>) -> Result<Protocol, StoreError> {
    let local = to_rome(at);
    let candidate_prefix = local.format("%y%m%d%H%M%S").to_string();
    let err = |e: &dyn std::fmt::Display| StoreError::InvalidOperation {
        reason: e.to_string(),
    };
    if last.len() == 17 && last[..12] >= candidate_prefix[..] {
        let progressive: u32 = last[12..].parse().unwrap_or(0);
        if progressive < 99_999 {
            return Protocol::parse(&format!("{}{:05}", &last[..12], progressive + 1))
                .map_err(|e| err(&e));
        }
        let last_time = chrono::NaiveDateTime::parse_from_str(&last[..12], "%y%m%d%H%M%S")
            .map_err(|e| err(&e))?;
        return Protocol::new(last_time + chrono::Duration::seconds(1), 1).map_err(|e| err(&e));
    }
    Protocol::new(local, 1).map_err(|e| err(&e))
}
