//! What a batch reads before it is decided: the rows its operations name ([`needs`]), and
//! the facts the writer decides rules on (suspensions, delegations, earlier operations).

use std::collections::{HashMap, HashSet};

use cessio_core::ledger::{
    Account, AccountKind, PartyId, PendingTransfer, RataId, TransferId, TransferKind,
};

use super::{AccountKey, is_suspension};
use crate::model::{AccountRef, Command, DelegationChange, Operation, Receipt, TransferRequest};

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
