//! What a batch reads before it is decided: the rows its operations name ([`needs`]), and
//! the facts the writer decides rules on (suspensions, delegations, earlier operations).

use std::collections::{HashMap, HashSet};

use cessio_core::ledger::{
    Account, AccountKind, PartyId, PendingTransfer, RataId, TransferId, TransferKind,
};

use cessio_core::chain::BankClient;
use cessio_core::debt::DebtPosition;
use cessio_core::f24::F24Choice;
use cessio_core::money::Cents;
use chrono::{DateTime, Utc};

use super::{AccountKey, is_suspension};
use crate::model::{
    AccountRef, Command, DelegationChange, Operation, Receipt, TransferRequest, WriterCheck,
};

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
    /// (rata, party) of the holdings whose F24 choice an operation depends on
    /// (R-F24-CHOICE): those it declares or revokes, cedes, or uses in an F24.
    pub choices: Vec<(RataId, PartyId)>,
    /// Parties whose debt position an F24 of the batch is checked against (R-BAN-100K/1500).
    pub debts: Vec<PartyId>,
    /// (bank, client) pairs whose relation a cession of the batch depends on (R-BANK-CLIENT).
    pub bank_clients: Vec<(PartyId, PartyId)>,
    /// (rata, holder) of the holdings a seizure or its release of the batch moves (R-SEIZE).
    pub seizures: Vec<(RataId, PartyId)>,
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
                    if let Some(suspension) = crate::model::suspension_in(data) {
                        out = Some(SuspensionFact {
                            suspension,
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

/// A posted seizure transfer of a rata: `(party, counterparty, amount)`. A seizure names
/// the holder as its party, a release as its counterparty (R-SEIZE).
pub type SeizureRow = (Option<PartyId>, Option<PartyId>, Cents);

/// What is under seizure for `holder` after a rata's seizure rows: seized minus released.
pub fn seized_from(rows: &[SeizureRow], holder: PartyId) -> Cents {
    rows.iter()
        .fold(Cents::ZERO, |acc, (party, counterparty, amount)| {
            match (party, counterparty) {
                (Some(p), None) if *p == holder => acc.checked_add(*amount).unwrap_or(Cents::MAX),
                (None, Some(c)) if *c == holder => acc.checked_sub(*amount).unwrap_or(Cents::ZERO),
                _ => acc,
            }
        })
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
    /// The last choice recorded for each holding named in `Needs` that has one.
    pub choices: HashMap<(RataId, PartyId), F24Choice>,
    /// The position in force of each party named in `Needs` that has one.
    pub debts: HashMap<PartyId, DebtPosition>,
    /// Every relation recorded for each (bank, client) named in `Needs`, in register
    /// order, with the time it was recorded at.
    pub bank_clients: HashMap<(PartyId, PartyId), Relations>,
    /// What is under seizure now for each (rata, holder) named in `Needs` that has some:
    /// seized minus released.
    pub seized: HashMap<(RataId, PartyId), Cents>,
}

/// The relations recorded for one (bank, client), in register order, each with the time
/// it was recorded at (R-BANK-CLIENT).
pub type Relations = Vec<(DateTime<Utc>, BankClient)>;

pub fn needs(ops: &[Operation]) -> Needs {
    let mut n = Needs::default();
    for op in ops {
        n.idempotency_keys
            .push(op.idempotency_key.as_str().to_string());
        if let Some(d) = &op.delegate {
            n.delegations.push((d.user, d.party));
        }
        for c in &op.checks {
            match c {
                WriterCheck::ChoiceDeclared { rata, party } => n.choices.push((*rata, *party)),
                WriterCheck::OffsetAllowed { party, .. } => n.debts.push(*party),
                WriterCheck::HoldingReceived { rata, party, .. } => n
                    .account_keys
                    .push(AccountKey::of(*rata, AccountRef::Holder(*party))),
                WriterCheck::BankClient { bank, client, .. } => {
                    n.bank_clients.push((*bank, *client))
                }
            }
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
                n.choices.push((*rata, *party));
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
                        TransferRequest::Move {
                            rata,
                            from,
                            to,
                            kind,
                            ..
                        } => {
                            match (kind, from, to) {
                                // A rata chosen for F24 is not cedible (R-F24-CHOICE).
                                (TransferKind::Cession, AccountRef::Holder(p), _) => {
                                    n.choices.push((*rata, *p))
                                }
                                (TransferKind::Seize, AccountRef::Holder(p), _)
                                | (TransferKind::Seize, _, AccountRef::Holder(p)) => {
                                    n.seizures.push((*rata, *p))
                                }
                                _ => {}
                            }
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
    n.choices.sort_unstable();
    n.choices.dedup();
    n.debts.sort_unstable();
    n.debts.dedup();
    n.bank_clients.sort_unstable();
    n.bank_clients.dedup();
    n.seizures.sort_unstable();
    n.seizures.dedup();
    n.account_keys.sort_unstable();
    n.account_keys.dedup();
    n.cfs.sort_unstable();
    n.cfs.dedup();
    n.idempotency_keys.sort_unstable();
    n.idempotency_keys.dedup();
    n
}
