//! What a batch writes: the [`Plan`], its rows, and the [`Head`] it advances.

use std::collections::HashMap;

use cessio_core::debt::DebtPosition;
use cessio_core::ledger::{
    Account, AccountId, AccountKind, EntryFields, GENESIS_HASH, Hash, PartyId, Phase, RataId,
    TransferId, TransferKind,
};
use cessio_core::money::Cents;
use chrono::{DateTime, Utc};

use crate::model::{AccountRef, ChoiceRecord, Credit, DelegationChange, Party, Rata};

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
    /// The §5 paths the batch's cessions carry (`crate::paths`), in transfer order.
    pub cession_paths: Vec<crate::paths::CessionPath>,
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
