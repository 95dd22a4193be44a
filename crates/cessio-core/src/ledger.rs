//! The double-entry credit ledger with two-phase transfers (DESIGN.md, "The ledger").
//!
//! Every movement of credit is a transfer between two accounts of the same rata. An account
//! is either a holder's (party, rata) or one of the rata's system accounts. A transfer is
//! posted at once, or pending and later posted or voided by a second, separate transfer:
//! the history is therefore strictly append-only (R-HISTORY), and every state of SPEC §3 is
//! a balance. Because each transfer debits one account and credits another by the same
//! amount, the sum of all balances of a rata is zero at every moment (R-CONSERVE holds by
//! construction); the checks here keep the other half of R-CONSERVE, "nothing ever goes
//! negative", and make every arithmetic step checked.
//!
//! This module is pure: the store loads the accounts a batch touches into a [`Ledger`],
//! applies operations to it, and writes back what changed.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::money::Cents;

pub type AccountId = i64;
pub type TransferId = i64;
pub type RataId = i64;
pub type PartyId = i64;

/// What an account stands for. Only the issuance account may go below zero: it is where
/// credit comes from, so its balance is minus the amount issued for the rata.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Holder,
    Issuance,
    Used,
    Expired,
    Split,
    Reduced,
    Seized,
}

impl AccountKind {
    pub const ALL: [AccountKind; 7] = [
        AccountKind::Holder,
        AccountKind::Issuance,
        AccountKind::Used,
        AccountKind::Expired,
        AccountKind::Split,
        AccountKind::Reduced,
        AccountKind::Seized,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AccountKind::Holder => "holder",
            AccountKind::Issuance => "issuance",
            AccountKind::Used => "used",
            AccountKind::Expired => "expired",
            AccountKind::Split => "split",
            AccountKind::Reduced => "reduced",
            AccountKind::Seized => "seized",
        }
    }

    pub fn parse(s: &str) -> Option<AccountKind> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether debits may exceed credits. Only issuance: every other account holds credit
    /// that came from somewhere, and R-CONSERVE forbids negative amounts in any state.
    pub const fn may_go_negative(self) -> bool {
        matches!(self, AccountKind::Issuance)
    }
}

/// The four running totals of an account, as in TigerBeetle. Every state of SPEC §3 is
/// derived from them; they are themselves derived from the transfers (`verify` recomputes
/// them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub debits_pending: Cents,
    pub debits_posted: Cents,
    pub credits_pending: Cents,
    pub credits_posted: Cents,
}

impl Balance {
    /// What the holder may use or cede now: posted in, minus posted out, minus what is on
    /// its way out. Inflight outgoing amounts are never counted as available (R-PENDING-OUT);
    /// inflight incoming amounts never are either, until posted.
    pub fn available(&self) -> Option<Cents> {
        self.credits_posted
            .checked_sub(self.debits_posted)?
            .checked_sub(self.debits_pending)
    }

    pub fn pending_in(&self) -> Cents {
        self.credits_pending
    }

    pub fn pending_out(&self) -> Cents {
        self.debits_pending
    }

    /// Posted credits minus posted debits: what the account holds once inflight
    /// transfers are ignored.
    pub fn net_posted(&self) -> Option<Cents> {
        self.credits_posted.checked_sub(self.debits_posted)
    }
}

/// An account as the ledger needs it: identity, the rata it belongs to, and its balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub rata: RataId,
    pub kind: AccountKind,
    /// The holder for `Holder` accounts; `None` for system accounts.
    pub party: Option<PartyId>,
    pub balance: Balance,
}

/// Why a movement happened, as the history shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Credit created by an option communication or granted to its first holder (F8).
    Issue,
    /// A cession between holders (F2).
    Cession,
    /// F24 use (F5).
    Use,
    /// Year-end expiry (R-F24-WINDOW-121/122).
    Expire,
    /// Ten-instalment split and its annulment (F6).
    Split,
    /// Riduzione (F7).
    Reduce,
    /// Seizure and its end (R-SEIZE).
    Seize,
    /// Operator corrections recorded with a request reference (F9).
    Correction,
}

impl TransferKind {
    pub const ALL: [TransferKind; 8] = [
        TransferKind::Issue,
        TransferKind::Cession,
        TransferKind::Use,
        TransferKind::Expire,
        TransferKind::Split,
        TransferKind::Reduce,
        TransferKind::Seize,
        TransferKind::Correction,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TransferKind::Issue => "issue",
            TransferKind::Cession => "cession",
            TransferKind::Use => "use",
            TransferKind::Expire => "expire",
            TransferKind::Split => "split",
            TransferKind::Reduce => "reduce",
            TransferKind::Seize => "seize",
            TransferKind::Correction => "correction",
        }
    }

    pub fn parse(s: &str) -> Option<TransferKind> {
        TransferKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The phase of one history entry. Posting or voiding a pending transfer is a new entry
/// that names the pending one, so nothing is ever updated in place (R-HISTORY).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Single-phase: moved and final.
    Posted,
    /// Reserved: out of the debit account's availability, not yet in the credit account's.
    Pending,
    /// Completes the named pending transfer.
    PostPending,
    /// Cancels the named pending transfer: the amount returns to the debit account.
    VoidPending,
}

impl Phase {
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Posted => "posted",
            Phase::Pending => "pending",
            Phase::PostPending => "post_pending",
            Phase::VoidPending => "void_pending",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        [
            Phase::Posted,
            Phase::Pending,
            Phase::PostPending,
            Phase::VoidPending,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// How a pending transfer ended, if it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingState {
    Pending,
    Posted,
    Voided,
}

/// A pending transfer as the ledger needs it to post or void it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTransfer {
    pub id: TransferId,
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Cents,
    pub state: PendingState,
}

/// One movement asked of the ledger, with accounts already resolved to ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Movement {
    /// Move `amount` now (`pending == false`) or reserve it (`pending == true`).
    Move {
        debit: AccountId,
        credit: AccountId,
        amount: Cents,
        pending: bool,
    },
    /// Post the whole of a pending transfer (R-ANSWER: answers are whole).
    Post { pending: TransferId },
    /// Void the whole of a pending transfer.
    Void { pending: TransferId },
}

/// The effect of one applied movement: what the history row records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Cents,
    pub phase: Phase,
    pub pending_id: Option<TransferId>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("Importo non disponibile: richiesti {requested}, disponibili {available} (R-CONSERVE)")]
    InsufficientAvailable {
        account: AccountId,
        requested: Cents,
        available: Cents,
    },
    #[error("L'importo deve essere maggiore di zero: {amount} (R-CONSERVE)")]
    NonPositiveAmount { amount: Cents },
    #[error("Conto sconosciuto: {account}")]
    UnknownAccount { account: AccountId },
    #[error("Un trasferimento deve avvenire tra due conti diversi (conto {account})")]
    SameAccount { account: AccountId },
    #[error("I conti {debit} e {credit} appartengono a rate diverse: il credito non cambia rata")]
    DifferentRata { debit: AccountId, credit: AccountId },
    #[error("Trasferimento in sospeso sconosciuto: {pending}")]
    UnknownPending { pending: TransferId },
    #[error("Il trasferimento {pending} non è più in sospeso: è già {state}")]
    PendingAlreadyResolved {
        pending: TransferId,
        state: &'static str,
    },
    #[error("Importo fuori dai limiti dell'aritmetica del registro")]
    Overflow,
}

impl LedgerError {
    pub const fn code(&self) -> &'static str {
        match self {
            LedgerError::InsufficientAvailable { .. } => "insufficient_available",
            LedgerError::NonPositiveAmount { .. } => "amount_not_positive",
            LedgerError::UnknownAccount { .. } => "unknown_account",
            LedgerError::SameAccount { .. } => "same_account",
            LedgerError::DifferentRata { .. } => "different_rata",
            LedgerError::UnknownPending { .. } => "unknown_pending",
            LedgerError::PendingAlreadyResolved { .. } => "pending_already_resolved",
            LedgerError::Overflow => "amount_overflow",
        }
    }
}

/// A working set of accounts and pending transfers. Applying an operation is atomic: if
/// any movement fails, the ledger is left exactly as it was.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    accounts: HashMap<AccountId, Account>,
    pending: HashMap<TransferId, PendingTransfer>,
}

/// What a failed operation must restore.
#[derive(Debug, Default)]
struct Undo {
    accounts: Vec<Account>,
    /// The pending transfer's previous value, or `None` if the operation created it.
    pending: Vec<(TransferId, Option<PendingTransfer>)>,
}

impl Ledger {
    pub fn new() -> Self {
        Ledger::default()
    }

    pub fn insert_account(&mut self, account: Account) {
        self.accounts.insert(account.id, account);
    }

    /// Forgets an account, as when the operation that created it failed.
    pub fn remove_account(&mut self, id: AccountId) {
        self.accounts.remove(&id);
    }

    pub fn insert_pending(&mut self, pending: PendingTransfer) {
        self.pending.insert(pending.id, pending);
    }

    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    pub fn pending(&self, id: TransferId) -> Option<&PendingTransfer> {
        self.pending.get(&id)
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// Applies all movements or none. `next_transfer_id` gives the id each movement will
    /// be recorded under, so that a pending transfer created here can be found later.
    pub fn apply(
        &mut self,
        movements: &[Movement],
        mut next_transfer_id: impl FnMut() -> TransferId,
    ) -> Result<Vec<Applied>, LedgerError> {
        let mut undo = Undo::default();
        let mut applied = Vec::with_capacity(movements.len());
        for movement in movements {
            let id = next_transfer_id();
            match self.apply_one(*movement, id, &mut undo) {
                Ok(a) => applied.push(a),
                Err(e) => {
                    self.rollback(undo);
                    return Err(e);
                }
            }
        }
        Ok(applied)
    }

    fn rollback(&mut self, undo: Undo) {
        // Restored in reverse so the oldest snapshot of a touched entry wins.
        for account in undo.accounts.into_iter().rev() {
            self.accounts.insert(account.id, account);
        }
        for (id, previous) in undo.pending.into_iter().rev() {
            match previous {
                Some(p) => self.pending.insert(id, p),
                None => self.pending.remove(&id),
            };
        }
    }

    fn apply_one(
        &mut self,
        movement: Movement,
        id: TransferId,
        undo: &mut Undo,
    ) -> Result<Applied, LedgerError> {
        match movement {
            Movement::Move {
                debit,
                credit,
                amount,
                pending,
            } => {
                if !amount.is_positive() {
                    return Err(LedgerError::NonPositiveAmount { amount });
                }
                let (mut d, mut c) = self.pair(debit, credit)?;
                if !d.kind.may_go_negative() {
                    let available = d.balance.available().ok_or(LedgerError::Overflow)?;
                    if available < amount {
                        return Err(LedgerError::InsufficientAvailable {
                            account: debit,
                            requested: amount,
                            available,
                        });
                    }
                }
                if pending {
                    d.balance.debits_pending = add(d.balance.debits_pending, amount)?;
                    c.balance.credits_pending = add(c.balance.credits_pending, amount)?;
                } else {
                    d.balance.debits_posted = add(d.balance.debits_posted, amount)?;
                    c.balance.credits_posted = add(c.balance.credits_posted, amount)?;
                }
                self.store_pair(d, c, undo);
                if pending {
                    undo.pending.push((id, None));
                    self.pending.insert(
                        id,
                        PendingTransfer {
                            id,
                            debit,
                            credit,
                            amount,
                            state: PendingState::Pending,
                        },
                    );
                }
                Ok(Applied {
                    debit,
                    credit,
                    amount,
                    phase: if pending {
                        Phase::Pending
                    } else {
                        Phase::Posted
                    },
                    pending_id: None,
                })
            }
            Movement::Post { pending } | Movement::Void { pending } => {
                let post = matches!(movement, Movement::Post { .. });
                let p = *self
                    .pending
                    .get(&pending)
                    .ok_or(LedgerError::UnknownPending { pending })?;
                match p.state {
                    PendingState::Pending => {}
                    PendingState::Posted => {
                        return Err(LedgerError::PendingAlreadyResolved {
                            pending,
                            state: "confermato",
                        });
                    }
                    PendingState::Voided => {
                        return Err(LedgerError::PendingAlreadyResolved {
                            pending,
                            state: "annullato",
                        });
                    }
                }
                let (mut d, mut c) = self.pair(p.debit, p.credit)?;
                d.balance.debits_pending = sub(d.balance.debits_pending, p.amount)?;
                c.balance.credits_pending = sub(c.balance.credits_pending, p.amount)?;
                if post {
                    d.balance.debits_posted = add(d.balance.debits_posted, p.amount)?;
                    c.balance.credits_posted = add(c.balance.credits_posted, p.amount)?;
                }
                self.store_pair(d, c, undo);
                undo.pending.push((pending, Some(p)));
                self.pending.insert(
                    pending,
                    PendingTransfer {
                        state: if post {
                            PendingState::Posted
                        } else {
                            PendingState::Voided
                        },
                        ..p
                    },
                );
                Ok(Applied {
                    debit: p.debit,
                    credit: p.credit,
                    amount: p.amount,
                    phase: if post {
                        Phase::PostPending
                    } else {
                        Phase::VoidPending
                    },
                    pending_id: Some(pending),
                })
            }
        }
    }

    fn pair(&self, debit: AccountId, credit: AccountId) -> Result<(Account, Account), LedgerError> {
        if debit == credit {
            return Err(LedgerError::SameAccount { account: debit });
        }
        let d = *self
            .accounts
            .get(&debit)
            .ok_or(LedgerError::UnknownAccount { account: debit })?;
        let c = *self
            .accounts
            .get(&credit)
            .ok_or(LedgerError::UnknownAccount { account: credit })?;
        if d.rata != c.rata {
            return Err(LedgerError::DifferentRata { debit, credit });
        }
        Ok((d, c))
    }

    fn store_pair(&mut self, d: Account, c: Account, undo: &mut Undo) {
        for new in [d, c] {
            if let Some(old) = self.accounts.insert(new.id, new) {
                undo.accounts.push(old);
            }
        }
    }
}

fn add(a: Cents, b: Cents) -> Result<Cents, LedgerError> {
    a.checked_add(b).ok_or(LedgerError::Overflow)
}

fn sub(a: Cents, b: Cents) -> Result<Cents, LedgerError> {
    a.checked_sub(b)
        .filter(|c| !c.is_negative())
        .ok_or(LedgerError::Overflow)
}

/// Where replayed balances are kept, by account: a map, or `verify`'s vector by id.
pub trait Balances<T> {
    /// The account's balance, zero when first asked for.
    fn balance_mut(&mut self, account: AccountId) -> &mut T;
}

impl<T: Default> Balances<T> for HashMap<AccountId, T> {
    fn balance_mut(&mut self, account: AccountId) -> &mut T {
        self.entry(account).or_default()
    }
}

/// The pending transfers already posted or voided, by id: a set, or `verify`'s bits.
pub trait ResolvedSet {
    fn insert_resolved(&mut self, id: TransferId);
    fn is_resolved(&self, id: TransferId) -> bool;
}

impl ResolvedSet for std::collections::HashSet<TransferId> {
    fn insert_resolved(&mut self, id: TransferId) {
        self.insert(id);
    }
    fn is_resolved(&self, id: TransferId) -> bool {
        self.contains(&id)
    }
}

/// Replays one history entry onto recomputed balances, as `verify` does. Returns an error
/// if the entry is inconsistent with what came before (e.g. a post of a pending transfer
/// that is not pending). A pending transfer leaves `pending` when it is resolved, for
/// `resolved`, which holds only its id: a register has one per cession ever made.
pub fn replay_entry(
    balances: &mut impl Balances<Balance>,
    pending: &mut HashMap<TransferId, PendingTransfer>,
    resolved: &mut impl ResolvedSet,
    entry: &EntryFields<'_>,
) -> Result<(), String> {
    let amount = entry.amount;
    let bump = |b: &mut Cents, delta: Cents, plus: bool| -> Result<(), String> {
        *b = if plus {
            b.checked_add(delta)
        } else {
            b.checked_sub(delta)
        }
        .ok_or_else(|| "overflow".to_string())?;
        Ok(())
    };
    match entry.phase {
        Phase::Posted | Phase::Pending => {
            let pending_phase = entry.phase == Phase::Pending;
            let d = balances.balance_mut(entry.debit);
            if pending_phase {
                bump(&mut d.debits_pending, amount, true)?;
            } else {
                bump(&mut d.debits_posted, amount, true)?;
            }
            let c = balances.balance_mut(entry.credit);
            if pending_phase {
                bump(&mut c.credits_pending, amount, true)?;
            } else {
                bump(&mut c.credits_posted, amount, true)?;
            }
            if pending_phase {
                pending.insert(
                    entry.id,
                    PendingTransfer {
                        id: entry.id,
                        debit: entry.debit,
                        credit: entry.credit,
                        amount,
                        state: PendingState::Pending,
                    },
                );
            }
        }
        Phase::PostPending | Phase::VoidPending => {
            let pid = entry
                .pending_id
                .ok_or_else(|| "post/void without pending id".to_string())?;
            let Some(p) = pending
                .get(&pid)
                .filter(|p| p.state == PendingState::Pending)
            else {
                return Err(if resolved.is_resolved(pid) {
                    format!("pending transfer {pid} resolved twice")
                } else {
                    format!("pending transfer {pid} not found before it")
                });
            };
            if p.debit != entry.debit || p.credit != entry.credit || p.amount != amount {
                return Err(format!(
                    "entry does not match pending transfer {pid} (accounts or amount differ)"
                ));
            }
            pending.remove(&pid);
            resolved.insert_resolved(pid);
            let post = entry.phase == Phase::PostPending;
            let d = balances.balance_mut(entry.debit);
            bump(&mut d.debits_pending, amount, false)?;
            if post {
                bump(&mut d.debits_posted, amount, true)?;
            }
            let c = balances.balance_mut(entry.credit);
            bump(&mut c.credits_pending, amount, false)?;
            if post {
                bump(&mut c.credits_posted, amount, true)?;
            }
        }
    }
    Ok(())
}

/// The fields of one history entry that the hash chain covers: every column of the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryFields<'a> {
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
    pub acting_user: &'a str,
    pub party: Option<PartyId>,
    pub counterparty: Option<PartyId>,
    /// The cedente authorised the cessionario to see its name (SPEC §2 visibility).
    pub disclose: bool,
}

pub type Hash = [u8; 32];

/// The hash of the entry before the first one.
pub const GENESIS_HASH: Hash = [0; 32];

/// SHA-256 of the previous entry's hash followed by an unambiguous encoding of this entry.
/// Any edited, inserted or deleted row changes every hash after it, so `verify` finds the
/// first broken row.
pub fn chain_hash(previous: &Hash, e: &EntryFields<'_>) -> Hash {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(e.id.to_be_bytes());
    h.update(e.operation.to_be_bytes());
    h.update(e.rata.to_be_bytes());
    h.update(e.debit.to_be_bytes());
    h.update(e.credit.to_be_bytes());
    h.update(e.amount.get().to_be_bytes());
    h.update([e.kind as u8, e.phase as u8]);
    h.update(e.pending_id.unwrap_or(0).to_be_bytes());
    h.update(e.at_micros.to_be_bytes());
    h.update((e.acting_user.len() as u64).to_be_bytes());
    h.update(e.acting_user.as_bytes());
    h.update(e.party.unwrap_or(0).to_be_bytes());
    h.update(e.counterparty.unwrap_or(0).to_be_bytes());
    h.update([u8::from(e.disclose)]);
    h.finalize().into()
}

/// Lowercase hex of a hash, or of the part of one that is kept.
pub fn hash_to_hex(hash: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(64);
    for b in hash {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub fn hash_from_hex(hex: &str) -> Option<Hash> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn account(id: AccountId, kind: AccountKind) -> Account {
        Account {
            id,
            rata: 1,
            kind,
            party: (kind == AccountKind::Holder).then_some(id),
            balance: Balance::default(),
        }
    }

    /// Issuance (1), holders 2 and 3, used (4); 1000 cents issued to holder 2.
    fn funded() -> Ledger {
        let mut l = Ledger::new();
        l.insert_account(account(1, AccountKind::Issuance));
        l.insert_account(account(2, AccountKind::Holder));
        l.insert_account(account(3, AccountKind::Holder));
        l.insert_account(account(4, AccountKind::Used));
        let mut id = 0;
        l.apply(
            &[Movement::Move {
                debit: 1,
                credit: 2,
                amount: Cents::new(1000),
                pending: false,
            }],
            || {
                id += 1;
                id
            },
        )
        .unwrap();
        l
    }

    fn mv(debit: AccountId, credit: AccountId, amount: i64, pending: bool) -> Movement {
        Movement::Move {
            debit,
            credit,
            amount: Cents::new(amount),
            pending,
        }
    }

    fn counter(start: TransferId) -> impl FnMut() -> TransferId {
        let mut id = start;
        move || {
            id += 1;
            id
        }
    }

    #[test]
    fn r_history_replay_names_a_pending_transfer_resolved_twice() {
        let entry = |id, phase, pending_id| EntryFields {
            id,
            operation: 0,
            rata: 1,
            debit: 1,
            credit: 2,
            amount: Cents::new(500),
            kind: TransferKind::Cession,
            phase,
            pending_id,
            at_micros: 0,
            acting_user: "",
            party: None,
            counterparty: None,
            disclose: false,
        };
        let (mut balances, mut pending) = (HashMap::new(), HashMap::new());
        let mut resolved = std::collections::HashSet::new();
        let mut replay = |e| replay_entry(&mut balances, &mut pending, &mut resolved, &e);
        assert_eq!(replay(entry(1, Phase::Pending, None)), Ok(()));
        assert_eq!(replay(entry(2, Phase::PostPending, Some(1))), Ok(()));
        assert_eq!(
            replay(entry(3, Phase::VoidPending, Some(1))),
            Err("pending transfer 1 resolved twice".into())
        );
        assert_eq!(
            replay(entry(4, Phase::PostPending, Some(9))),
            Err("pending transfer 9 not found before it".into())
        );
        assert!(pending.is_empty(), "a resolved transfer keeps only its id");
        assert_eq!(balances[&2].credits_posted, Cents::new(500));
    }

    #[test]
    fn r_conserve_rejects_moving_more_than_available() {
        let mut l = funded();
        let err = l.apply(&[mv(2, 3, 1001, false)], counter(10)).unwrap_err();
        assert_eq!(
            err,
            LedgerError::InsufficientAvailable {
                account: 2,
                requested: Cents::new(1001),
                available: Cents::new(1000)
            }
        );
    }

    #[test]
    fn r_pending_out_inflight_amount_is_not_available() {
        let mut l = funded();
        l.apply(&[mv(2, 3, 600, true)], counter(10)).unwrap();
        let b = l.account(2).unwrap().balance;
        assert_eq!(b.available(), Some(Cents::new(400)));
        assert_eq!(l.account(3).unwrap().balance.available(), Some(Cents::ZERO));
        assert_eq!(l.account(3).unwrap().balance.pending_in(), Cents::new(600));
        let err = l.apply(&[mv(2, 4, 401, false)], counter(20)).unwrap_err();
        assert_eq!(err.code(), "insufficient_available");
    }

    #[test]
    fn r_answer_refusal_returns_amount_to_cedente() {
        let mut l = funded();
        l.apply(&[mv(2, 3, 600, true)], counter(10)).unwrap();
        l.apply(&[Movement::Void { pending: 11 }], counter(20))
            .unwrap();
        assert_eq!(
            l.account(2).unwrap().balance.available(),
            Some(Cents::new(1000))
        );
        assert_eq!(l.account(3).unwrap().balance, Balance::default());
        let again = l
            .apply(&[Movement::Post { pending: 11 }], counter(30))
            .unwrap_err();
        assert_eq!(again.code(), "pending_already_resolved");
    }

    #[test]
    fn r_answer_acceptance_posts_whole_amount() {
        let mut l = funded();
        l.apply(&[mv(2, 3, 600, true)], counter(10)).unwrap();
        l.apply(&[Movement::Post { pending: 11 }], counter(20))
            .unwrap();
        assert_eq!(
            l.account(3).unwrap().balance.available(),
            Some(Cents::new(600))
        );
        assert_eq!(
            l.account(2).unwrap().balance.available(),
            Some(Cents::new(400))
        );
    }

    #[test]
    fn operation_is_atomic_when_a_later_movement_fails() {
        let mut l = funded();
        let before: Vec<Account> = {
            let mut v: Vec<_> = l.accounts().copied().collect();
            v.sort_by_key(|a| a.id);
            v
        };
        let err = l
            .apply(&[mv(2, 3, 500, true), mv(2, 4, 600, false)], counter(10))
            .unwrap_err();
        assert_eq!(err.code(), "insufficient_available");
        let mut after: Vec<_> = l.accounts().copied().collect();
        after.sort_by_key(|a| a.id);
        assert_eq!(before, after);
        assert!(l.pending(11).is_none());
    }

    #[test]
    fn rejects_bad_movements_with_typed_errors() {
        let mut l = funded();
        assert_eq!(
            l.apply(&[mv(2, 3, 0, false)], counter(10))
                .unwrap_err()
                .code(),
            "amount_not_positive"
        );
        assert_eq!(
            l.apply(&[mv(2, 3, -5, false)], counter(10))
                .unwrap_err()
                .code(),
            "amount_not_positive"
        );
        assert_eq!(
            l.apply(&[mv(2, 2, 5, false)], counter(10))
                .unwrap_err()
                .code(),
            "same_account"
        );
        assert_eq!(
            l.apply(&[mv(2, 99, 5, false)], counter(10))
                .unwrap_err()
                .code(),
            "unknown_account"
        );
        assert_eq!(
            l.apply(&[Movement::Post { pending: 77 }], counter(10))
                .unwrap_err()
                .code(),
            "unknown_pending"
        );
        let mut other = account(9, AccountKind::Holder);
        other.rata = 2;
        l.insert_account(other);
        assert_eq!(
            l.apply(&[mv(2, 9, 5, false)], counter(10))
                .unwrap_err()
                .code(),
            "different_rata"
        );
    }

    #[test]
    fn r_history_chain_hash_changes_with_any_field() {
        let base = EntryFields {
            id: 1,
            operation: 1,
            rata: 1,
            debit: 1,
            credit: 2,
            amount: Cents::new(100),
            kind: TransferKind::Issue,
            phase: Phase::Posted,
            pending_id: None,
            at_micros: 0,
            acting_user: "op",
            party: Some(2),
            counterparty: None,
            disclose: false,
        };
        let h = chain_hash(&GENESIS_HASH, &base);
        let variants = [
            EntryFields { id: 2, ..base },
            EntryFields {
                amount: Cents::new(101),
                ..base
            },
            EntryFields {
                phase: Phase::Pending,
                ..base
            },
            EntryFields {
                acting_user: "oq",
                ..base
            },
            EntryFields {
                counterparty: Some(3),
                ..base
            },
            EntryFields {
                disclose: true,
                ..base
            },
        ];
        for v in variants {
            assert_ne!(chain_hash(&GENESIS_HASH, &v), h);
        }
        assert_ne!(chain_hash(&h, &base), h);
        assert_eq!(hash_from_hex(&hash_to_hex(&h)), Some(h));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Move(u8, u8, i64, bool),
        Post(u8),
        Void(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..5, 0u8..5, -10i64..2_000, any::<bool>())
                .prop_map(|(a, b, c, p)| Op::Move(a, b, c, p)),
            (0u8..40).prop_map(Op::Post),
            (0u8..40).prop_map(Op::Void),
        ]
    }

    proptest! {
        /// R-CONSERVE: whatever sequence of operations is tried, balances of the rata sum
        /// to zero, no account but issuance goes negative, and replaying the accepted
        /// history gives the same balances.
        #[test]
        fn r_conserve_any_sequence_keeps_balances_consistent(ops in proptest::collection::vec(op(), 1..60)) {
            let mut l = Ledger::new();
            for (id, kind) in [(1, AccountKind::Issuance), (2, AccountKind::Holder), (3, AccountKind::Holder), (4, AccountKind::Used), (5, AccountKind::Holder)] {
                l.insert_account(account(id, kind));
            }
            let mut next = 0i64;
            let mut history: Vec<(TransferId, Applied)> = Vec::new();
            for o in ops {
                let movement = match o {
                    Op::Move(a, b, amount, p) => mv(i64::from(a) + 1, i64::from(b) + 1, amount, p),
                    Op::Post(i) => Movement::Post { pending: i64::from(i) },
                    Op::Void(i) => Movement::Void { pending: i64::from(i) },
                };
                let start = next;
                let mut ids = Vec::new();
                if let Ok(applied) = l.apply(&[movement], || { next += 1; ids.push(next); next }) {
                    for (i, a) in ids.iter().zip(applied) { history.push((*i, a)); }
                } else {
                    next = start;
                }
            }
            let mut net = Cents::ZERO;
            for a in l.accounts() {
                let b = a.balance;
                if !a.kind.may_go_negative() {
                    prop_assert!(b.available().unwrap() >= Cents::ZERO);
                }
                net = net.checked_add(b.credits_posted).unwrap().checked_sub(b.debits_posted).unwrap()
                    .checked_add(b.credits_pending).unwrap().checked_sub(b.debits_pending).unwrap();
            }
            prop_assert_eq!(net, Cents::ZERO);
            let mut balances = HashMap::new();
            let mut pending = HashMap::new();
            let mut resolved = std::collections::HashSet::new();
            for (id, a) in &history {
                let e = EntryFields { id: *id, operation: 0, rata: 1, debit: a.debit, credit: a.credit, amount: a.amount,
                    kind: TransferKind::Cession, phase: a.phase, pending_id: a.pending_id, at_micros: 0,
                    acting_user: "", party: None, counterparty: None, disclose: false };
                prop_assert!(replay_entry(&mut balances, &mut pending, &mut resolved, &e).is_ok());
            }
            for a in l.accounts() {
                prop_assert_eq!(balances.get(&a.id).copied().unwrap_or_default(), a.balance);
            }
        }
    }
}
