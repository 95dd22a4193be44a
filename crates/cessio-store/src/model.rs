//! What the store records and what a caller asks of it.
//!
//! Lists are filtered where the rows are: [`EntryQuery`] builds one parameterised query for
//! both backends from the filters F3 and F4 push down, a cedente or cessionario named by a
//! whole codice fiscale included, so that a bank's list narrowed to one cedente reads that
//! cedente's movements, not the bank's day. F1 for today reads `party_summary`, which the
//! writer keeps in each batch's transaction; a past date sums the history. A party's
//! holdings are read in pages ([`HoldingQuery`]) where all of them count (F5's
//! availability), and otherwise narrowed to the codici tributo or the one rata asked for.

use cessio_core::cf::CodiceFiscale;
use cessio_core::debt::DebtPosition;
use cessio_core::f24::F24Choice;
use cessio_core::ledger::{AccountKind, PartyId, RataId, TransferId, TransferKind};
use cessio_core::money::Cents;
use cessio_core::time::RefYear;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A caller-chosen key that makes a mutating operation safe to retry: a second submission
/// with the same key returns the first result and applies nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Bounded so that keys stay cheap to index; printable ASCII so they can be logged.
    pub const MAX_LEN: usize = 128;

    pub fn parse(key: &str) -> Result<Self, StoreError> {
        let ok = !key.is_empty()
            && key.len() <= Self::MAX_LEN
            && key.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(IdempotencyKey(key.to_string()))
        } else {
            Err(StoreError::InvalidIdempotencyKey {
                reason: format!(
                    "la chiave deve avere da 1 a {} caratteri ASCII stampabili, senza spazi",
                    Self::MAX_LEN
                ),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, StoreError> {
        IdempotencyKey::parse(&s)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

/// SPEC F9 party registry kinds. Banks, intermediaries and insurers are the soggetti
/// qualificati of R-CHAIN; public administrations may not acquire credits (R-PA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    Person,
    Company,
    Bank,
    FinancialIntermediary,
    Insurer,
    PublicAdministration,
}

impl PartyKind {
    pub const ALL: [PartyKind; 6] = [
        PartyKind::Person,
        PartyKind::Company,
        PartyKind::Bank,
        PartyKind::FinancialIntermediary,
        PartyKind::Insurer,
        PartyKind::PublicAdministration,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            PartyKind::Person => "person",
            PartyKind::Company => "company",
            PartyKind::Bank => "bank",
            PartyKind::FinancialIntermediary => "financial_intermediary",
            PartyKind::Insurer => "insurer",
            PartyKind::PublicAdministration => "public_administration",
        }
    }

    pub fn parse(s: &str) -> Option<PartyKind> {
        PartyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewParty {
    pub cf: CodiceFiscale,
    pub name: String,
    pub kind: PartyKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Party {
    pub id: PartyId,
    pub cf: CodiceFiscale,
    pub name: String,
    pub kind: PartyKind,
    pub deceased: bool,
}

/// The origin of a building credit: first cessione or sconto in fattura (SPEC §8 codes
/// depend on it). COVID credits are granted to their first holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreditOrigin {
    Cessione,
    Sconto,
    Granted,
}

impl From<cessio_core::catalogue::Origin> for CreditOrigin {
    fn from(o: cessio_core::catalogue::Origin) -> Self {
        match o {
            cessio_core::catalogue::Origin::Cessione => CreditOrigin::Cessione,
            cessio_core::catalogue::Origin::Sconto => CreditOrigin::Sconto,
        }
    }
}

impl CreditOrigin {
    pub const fn as_str(self) -> &'static str {
        match self {
            CreditOrigin::Cessione => "cessione",
            CreditOrigin::Sconto => "sconto",
            CreditOrigin::Granted => "granted",
        }
    }

    pub fn parse(s: &str) -> Option<CreditOrigin> {
        [
            CreditOrigin::Cessione,
            CreditOrigin::Sconto,
            CreditOrigin::Granted,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One rata of a credit being issued, as derived by core (F8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRata {
    pub year: RefYear,
    pub amount: Cents,
    pub codice_tributo: String,
}

impl From<&cessio_core::rata::DerivedRata> for NewRata {
    fn from(r: &cessio_core::rata::DerivedRata) -> Self {
        NewRata {
            year: r.year,
            amount: r.amount,
            codice_tributo: r.codice_tributo.clone(),
        }
    }
}

/// A credit to create: an option communication, or a COVID credit granted to its holder.
/// The store assigns the protocol and each rata's codice univoco (SPEC §7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCredit {
    pub type_key: String,
    pub beneficiary: PartyId,
    /// The fornitore or first cessionario, who answers the communication in F3.
    pub holder: PartyId,
    pub origin: CreditOrigin,
    pub expense_year: u16,
    pub communicated_on: NaiveDate,
    pub tracciabile: bool,
    pub rate: Vec<NewRata>,
    /// When true the issuance waits for the holder's answer (pending); otherwise the credit
    /// is the holder's at once (granted credits).
    pub awaiting_answer: bool,
    /// The beneficiary declared the no-tax area in the option communication (R-ECO-2018).
    #[serde(default)]
    pub beneficiary_no_tax_area: bool,
}

impl NewCredit {
    /// F6: the credit a split issues to `holder`, with the original's facts and the ten
    /// rate of the split (already issued to the holder, no answer awaited). The store
    /// refuses rate of zero, so below ten cents only the non-zero ones are issued.
    pub fn split_of(
        original: &Credit,
        holder: PartyId,
        rate: Vec<cessio_core::split::SplitRata>,
    ) -> Self {
        NewCredit {
            type_key: original.type_key.clone(),
            beneficiary: original.beneficiary,
            holder,
            origin: original.origin,
            expense_year: original.expense_year,
            communicated_on: original.communicated_on,
            tracciabile: original.tracciabile,
            rate: rate
                .into_iter()
                .filter(|r| r.amount.is_positive())
                .map(|r| NewRata {
                    year: r.year,
                    amount: r.amount,
                    codice_tributo: r.codice_tributo,
                })
                .collect(),
            awaiting_answer: false,
            beneficiary_no_tax_area: false,
        }
    }
}

/// Which account of a rata a movement touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRef {
    Holder(PartyId),
    System(AccountKind),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferRequest {
    /// Move `amount` of `rata` between two accounts, at once or as a pending transfer.
    Move {
        rata: RataId,
        from: AccountRef,
        to: AccountRef,
        amount: Cents,
        kind: TransferKind,
        pending: bool,
        /// The cedente authorises the cessionario to see its name.
        #[serde(default)]
        disclose: bool,
        /// For a cession, the §5 path it gives its cessionario when accepted, as the app
        /// decided it (`crate::paths`). Without it the cessionario's holding is read from
        /// its history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<crate::paths::CarriedPath>,
    },
    /// Post the whole of a pending transfer.
    Post { pending: TransferId },
    /// Void the whole of a pending transfer.
    Void { pending: TransferId },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    RegisterParty(NewParty),
    IssueCredit(NewCredit),
    /// All movements apply, or none.
    Transfer(Vec<TransferRequest>),
    /// R-F24-CHOICE: declare (or revoke) the choice to use a holding in F24. The app checks
    /// the rule; the store records the new state, append-only.
    F24Choice {
        rata: RataId,
        party: PartyId,
        declared: bool,
        on: NaiveDate,
    },
    /// The operator records a party's overdue-debt position (input of R-BAN-100K/1500).
    DebtPosition {
        party: PartyId,
        position: DebtPosition,
    },
    /// F6: `amount` of the party's holding of `rata` moves to the rata's split account and
    /// the new credit's rate (the ten instalments) are issued to the party, in one step.
    Split {
        rata: RataId,
        party: PartyId,
        amount: Cents,
        credit: NewCredit,
    },
    /// A delegation granted or revoked (by the titolare of the party or the operator). The
    /// app checks who may; the store records it with its audit entry in one transaction.
    Delegation(DelegationChange),
    /// An entry of the operator's register (F9), through the writer so that what it
    /// decides is decided on the state the batch sees. A suspension (R-SUSP) is refused
    /// unless its communication still awaits its answer and was never suspended; the end
    /// of a suspension is refused unless one is open, and `void` then voids the
    /// communication in the same operation ("non effettuata").
    OperatorEvent {
        event: NewOperatorEvent,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        void: Option<TransferId>,
    },
}

/// The operator's register kinds the writer decides on (R-SUSP): a suspension, with
/// `{"from", "until"}` dates in its data, and its end.
pub const SUSPENSION_EVENT: &str = "suspension";
pub const SUSPENSION_END_EVENT: &str = "suspension_end";

/// The operator's register kind for a bank's current-account client (R-BANK-CLIENT): the
/// bank is the entry's party, the client its counterparty, `{"relation"}` its data.
pub const BANK_CLIENT_EVENT: &str = "bank_client";

/// The relation a `BANK_CLIENT_EVENT` entry's data records (`No` if unreadable).
pub fn bank_client_in(data: &serde_json::Value) -> cessio_core::chain::BankClient {
    data.get("relation")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// The suspension a `SUSPENSION_EVENT` entry's data records (`{"from", "until"}`).
pub fn suspension_in(data: &serde_json::Value) -> Option<cessio_core::suspension::Suspension> {
    let date = |k: &str| {
        data.get(k)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<chrono::NaiveDate>().ok())
    };
    Some(cessio_core::suspension::Suspension {
        from: date("from")?,
        until: date("until")?,
    })
}

/// The delegation an operation is made under, checked by the writer against the
/// delegations the batch sees: a revocation committed before it refuses it, whenever the
/// app looked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegateCheck {
    pub user: i64,
    pub party: PartyId,
    /// The operation's day in Rome, against the delegation's last day.
    pub on: NaiveDate,
}

/// A rule the app applies on state the writer also holds, which the writer decides again
/// on the state its batch sees: a change committed after the app's read cannot slip past
/// it. The app chooses which rules apply from facts that never change (a rata's
/// traceability, the codes' nature); the writer decides them on the state that does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum WriterCheck {
    /// R-F24-CHOICE: an F24 uses this tracciabile holding, so its choice must be declared.
    ChoiceDeclared { rata: RataId, party: PartyId },
    /// R-BAN-100K, R-BAN-1500: the party's F24 paid on `on` offsets credits of these
    /// natures; the debt position in force must allow it.
    OffsetAllowed {
        party: PartyId,
        on: NaiveDate,
        natures: Vec<cessio_core::f24::CreditNature>,
    },
    /// §5 (R-CHAIN, R-ONCE, R-ECO-2018) was decided on the holding's history as it stood
    /// when the holder had received `received` of the rata in all (its credits posted).
    /// Another part of the rata received since comes by a path that may count more
    /// cessions (the most restrictive path counts), so the decision must be taken again.
    HoldingReceived {
        rata: RataId,
        party: PartyId,
        received: cessio_core::money::Cents,
    },
    /// R-BANK-CLIENT: a bank cedes, and §5 allows the cession, with the same effect, only
    /// under these relations of the bank with its cessionario. The relation in force at
    /// the operation's time, in the register the batch sees, must be one of them.
    BankClient {
        bank: PartyId,
        client: PartyId,
        admitted: Vec<cessio_core::chain::BankClient>,
    },
}

/// What a delegation lets its delegate do for the party that granted it.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DelegationScope {
    /// See the party's credits and lists (F1, F4...), nothing more.
    Consultazione,
    /// Also dispose of them: cede, answer, communicate, use in F24, split.
    Disposizione,
}

impl DelegationScope {
    pub const fn as_str(self) -> &'static str {
        match self {
            DelegationScope::Consultazione => "consultazione",
            DelegationScope::Disposizione => "disposizione",
        }
    }

    pub fn parse(s: &str) -> Option<DelegationScope> {
        match s {
            "consultazione" => Some(DelegationScope::Consultazione),
            "disposizione" => Some(DelegationScope::Disposizione),
            _ => None,
        }
    }
}

/// A change of the delegations of a party to a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelegationChange {
    /// Grants `user` a delegation of `party`; a live one of the same pair ends (it is
    /// superseded, not merged), so that one pair has at most one live delegation.
    Grant {
        user: i64,
        party: PartyId,
        scope: DelegationScope,
        /// Last day it holds, inclusive, as a date in Rome; `None`: until revoked.
        until: Option<NaiveDate>,
    },
    /// Ends the live delegation of `party` to `user`, if there is one.
    Revoke { user: i64, party: PartyId },
}

/// The audit entries of delegations, in the operator's register (`operator_events`), with
/// the grantor party as `party` and `{user, scope, until, operation}` as data.
pub const DELEGATION_GRANTED_EVENT: &str = "delegation_granted";
pub const DELEGATION_REVOKED_EVENT: &str = "delegation_revoked";

/// One delegation as recorded: rows are never deleted, a revocation only closes one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub id: i64,
    pub user: i64,
    pub party: PartyId,
    pub scope: DelegationScope,
    /// Last day it holds, inclusive (Europe/Rome); `None`: until revoked.
    pub until: Option<NaiveDate>,
    pub granted_at: DateTime<Utc>,
    /// The actor who granted it; `None` for the rows recorded before actors were kept
    /// with the delegation and not found in the audit log.
    pub granted_by: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

impl Delegation {
    /// Whether it grants anything on `today` (a date in Rome): not revoked, not past its
    /// last day. The store cannot say this, as "today" is the app's clock.
    pub fn live_on(&self, today: NaiveDate) -> bool {
        self.revoked_at.is_none() && self.until.is_none_or(|u| today <= u)
    }
}

/// One mutating request. `at` comes from the app's clock, so tests decide what "now" is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub idempotency_key: IdempotencyKey,
    pub acting_user: String,
    /// The party on whose behalf the user acts, when there is one.
    pub on_behalf_of: Option<PartyId>,
    pub at: DateTime<Utc>,
    pub command: Command,
    /// What ties a retry to the first request. When the caller knows better than the
    /// command (the command may depend on state that the first request changed), it
    /// gives its own fingerprint of the request; otherwise the command is hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_hash: Option<String>,
    /// Made by a delegate of `on_behalf_of`: the writer checks the delegation is live
    /// and allows disposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate: Option<DelegateCheck>,
    /// Rules the writer decides on the state its batch sees, beside those every command
    /// of its kind gets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<WriterCheck>,
}

impl Operation {
    /// Bounded to keep one operation inside one batch's memory and one transaction.
    pub const MAX_MOVEMENTS: usize = 10_000;
    pub const MAX_USER_LEN: usize = 128;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedRata {
    pub id: RataId,
    pub codice_univoco: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCredit {
    pub id: i64,
    pub protocol: String,
    pub rate: Vec<IssuedRata>,
    /// The pending issuance transfers the holder answers, one per rata (empty if granted).
    pub pending: Vec<TransferId>,
}

/// The acknowledged result of an operation. A retry with the same idempotency key gets the
/// same receipt back, with `replayed` set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub operation_id: i64,
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub replayed: bool,
    pub transfers: Vec<TransferId>,
    /// The sum of the amounts the operation's transfers moved.
    #[serde(default)]
    pub amount: Cents,
    pub party: Option<PartyId>,
    pub credit: Option<IssuedCredit>,
}

/// An operation as it was recorded: its row and its entry's place in the log's hash chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationEntry {
    pub id: i64,
    /// The command's kind (`transfer`, `issue_credit`, `split`, ...).
    pub kind: String,
    pub acting_user: String,
    pub on_behalf_of: Option<PartyId>,
    pub at: DateTime<Utc>,
    pub receipt: Receipt,
    /// The log entry that recorded it: its position and its hash (hex), which a later
    /// entry's hash covers (R-HISTORY).
    pub log_seq: i64,
    pub log_hash: String,
}

/// What a receipt of an operation shows: the operation, the transfers it wrote, the
/// pending transfers its answers answered, the credits of the rate they moved and every
/// party they name. Read by [`crate::Store::operation_record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationRecord {
    pub entry: OperationEntry,
    /// In id order.
    pub transfers: Vec<crate::engine::TransferRow>,
    /// The cession or communication each post or void of `transfers` answers, in id order.
    pub answered: Vec<crate::engine::TransferRow>,
    /// The credits (with all their rate) of the rate the transfers moved, in id order.
    pub credits: Vec<Credit>,
    /// The operation's party and every party its transfers and the answered ones name.
    pub parties: Vec<Party>,
}

impl OperationRecord {
    /// The rata with this id, with the credit it belongs to.
    pub fn rata(&self, id: RataId) -> Option<(&Credit, &Rata)> {
        self.credits
            .iter()
            .find_map(|c| c.rate.iter().find(|r| r.id == id).map(|r| (c, r)))
    }

    pub fn party(&self, id: PartyId) -> Option<&Party> {
        self.parties.iter().find(|p| p.id == id)
    }

    /// The pending transfer a post or void answers.
    pub fn answered(&self, pending: TransferId) -> Option<&crate::engine::TransferRow> {
        self.answered.iter().find(|t| t.id == pending)
    }

    /// Whether the operation concerns the party: made for it, or naming it in a transfer
    /// (as cedente, cessionario or holder), its own or one it answered.
    pub fn concerns(&self, party: PartyId) -> bool {
        self.entry.on_behalf_of == Some(party)
            || self
                .transfers
                .iter()
                .chain(&self.answered)
                .any(|t| t.party == Some(party) || t.counterparty == Some(party))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rata {
    pub id: RataId,
    pub credit: i64,
    pub index: u32,
    pub year: RefYear,
    pub amount: Cents,
    pub codice_tributo: String,
    pub codice_univoco: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Credit {
    pub id: i64,
    pub protocol: String,
    pub type_key: String,
    /// The party entitled to the deduction.
    pub beneficiary: PartyId,
    /// The first cessionario or fornitore.
    pub holder: PartyId,
    pub origin: CreditOrigin,
    pub expense_year: u16,
    pub communicated_on: NaiveDate,
    pub tracciabile: bool,
    pub created_at: DateTime<Utc>,
    pub rate: Vec<Rata>,
    /// For the rate of a ten-instalment split (F6): the original rata they replace.
    #[serde(default)]
    pub split_of: Option<RataId>,
    /// The beneficiary declared the no-tax area in the option communication (R-ECO-2018).
    #[serde(default)]
    pub beneficiary_no_tax_area: bool,
}

/// Tuning of the write path. `max_batch == 1` is one transaction per operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteConfig {
    pub max_batch: usize,
    /// Requests waiting for the writer; beyond it callers wait (back-pressure).
    pub queue_capacity: usize,
}

impl Default for WriteConfig {
    fn default() -> Self {
        WriteConfig {
            max_batch: 1024,
            queue_capacity: 16_384,
        }
    }
}

impl WriteConfig {
    pub const fn one_transaction_per_operation() -> Self {
        WriteConfig {
            max_batch: 1,
            queue_capacity: 16_384,
        }
    }
}

/// Counts a freshly opened or verified store reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub parties: u64,
    pub credits: u64,
    pub rate: u64,
    pub accounts: u64,
    pub operations: u64,
    pub transfers: u64,
}

/// What a user may do: act for parties (own and delegated), or operate the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Operator,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// Credentials are stored as argon2 PHC strings, hashed by the app layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub pin_hash: String,
    pub party: Option<PartyId>,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub pin_hash: String,
    pub pin_failures: u32,
    pub party: Option<PartyId>,
    pub role: Role,
}

/// How a pending transfer was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub accepted: bool,
    pub at: DateTime<Utc>,
    /// The party that answered, when recorded: the cessionario, or the sender of a
    /// communication that annulled it.
    #[serde(default)]
    pub by: Option<PartyId>,
}

/// One movement touching a party, with everything F1, F3 and F4 show about it: the
/// transfer as first recorded, its answer if any, and its rata and credit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyEntry {
    pub transfer: TransferId,
    pub at: DateTime<Utc>,
    pub kind: TransferKind,
    /// Recorded as pending (awaiting an answer or F24 outcome) rather than posted at once.
    pub pending: bool,
    pub amount: Cents,
    pub party: Option<PartyId>,
    pub counterparty: Option<PartyId>,
    pub disclose: bool,
    pub answer: Option<Answer>,
    pub rata: RataId,
    pub rata_index: u32,
    pub year: RefYear,
    pub codice_tributo: String,
    pub codice_univoco: String,
    pub credit: i64,
    pub type_key: String,
    pub protocol: String,
    pub tracciabile: bool,
    pub origin: CreditOrigin,
    pub communicated_on: NaiveDate,
}

/// Which side of a movement the party is on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EntryRole {
    #[default]
    Any,
    /// The party is the cessionario (or the fornitore of a communication).
    Received,
    /// The party is the cedente (or the beneficiary of a communication, or the F24 user).
    Sent,
}

/// A selection of a party's movements, so that lists are filtered where the rows are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryQuery {
    pub party: PartyId,
    /// Answers after this instant count as not given (state as of a past time).
    pub until: Option<DateTime<Utc>>,
    pub role: EntryRole,
    /// Only movements still waiting for their answer (F3).
    pub awaiting_answer: bool,
    /// Only communications and cessions (F3, F4), not F24 uses and other movements.
    pub cessions_only: bool,
    pub registered_from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub registered_before: Option<DateTime<Utc>>,
    pub counterparty: Option<PartyId>,
    pub type_key: Option<String>,
    pub year: Option<u16>,
    pub limit: Option<usize>,
    /// Only movements of these rate (all when empty): a cession's lines, F1's changed
    /// holdings.
    pub rate: Vec<RataId>,
    /// Only movements whose cedente (the transfer's `party`) is this one: F4 narrowed to a
    /// cedente reads that cedente's movements, not a bank's whole day.
    pub cedente: Option<PartyId>,
    /// Only movements whose cessionario (the transfer's `counterparty`) is this one.
    pub cessionario: Option<PartyId>,
    /// Only movements registered after this one (ids grow in commit order): where a page
    /// of a list that is read page by page starts.
    pub after: Option<TransferId>,
}

/// A movement with its rata, its credit and its answer, as [`EntryQuery`] selects them.
const ENTRY_JOINS: &str = "FROM transfers t
               JOIN rate r ON r.id = t.rata
               JOIN credits c ON c.id = r.credit
               LEFT JOIN transfers a ON a.pending_id = t.id";

/// A bound value of a generated query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqlValue {
    Int(i64),
    Text(String),
}

impl EntryQuery {
    pub fn of(party: PartyId) -> Self {
        EntryQuery {
            party,
            ..EntryQuery::default()
        }
    }

    /// The conditions of the query and their parameters, with `placeholder(n)` spelling
    /// the n-th parameter (`?n` for SQLite, `$n` for PostgreSQL).
    fn conditions(&self, placeholder: &impl Fn(usize) -> String) -> (Vec<String>, Vec<SqlValue>) {
        let mut params = vec![SqlValue::Int(self.party)];
        let next = |v: SqlValue, params: &mut Vec<SqlValue>| {
            params.push(v);
            placeholder(params.len())
        };
        let p1 = placeholder(1);
        // With a list of rate, or a cedente or cessionario named, the rows are found by rata
        // or by that party: the unary plus keeps SQLite (which has no statistics) from
        // walking a bank's million movements by party instead.
        let narrowed =
            !self.rate.is_empty() || self.cedente.is_some() || self.cessionario.is_some();
        let plus = if narrowed { "+" } else { "" };
        let mut conditions = vec![match self.role {
            EntryRole::Any => format!("({plus}t.party = {p1} OR {plus}t.counterparty = {p1})"),
            EntryRole::Received => format!("{plus}t.counterparty = {p1}"),
            EntryRole::Sent => format!("{plus}t.party = {p1}"),
        }];
        if !self.rate.is_empty() {
            let marks: Vec<String> = self
                .rate
                .iter()
                .map(|r| next(SqlValue::Int(*r), &mut params))
                .collect();
            conditions.push(format!("t.rata IN ({})", marks.join(", ")));
        }
        conditions.push(if self.awaiting_answer {
            "t.phase = 'pending' AND a.id IS NULL".to_string()
        } else {
            "t.phase IN ('posted', 'pending')".to_string()
        });
        if self.cessions_only {
            conditions.push("t.kind IN ('issue', 'cession')".into());
        }
        if let Some(until) = self.until {
            let ph = next(SqlValue::Int(until.timestamp_micros()), &mut params);
            conditions.push(format!("t.at <= {ph}"));
        }
        if let Some(from) = self.registered_from {
            let ph = next(SqlValue::Int(from.timestamp_micros()), &mut params);
            conditions.push(format!("t.at >= {ph}"));
        }
        if let Some(before) = self.registered_before {
            let ph = next(SqlValue::Int(before.timestamp_micros()), &mut params);
            conditions.push(format!("t.at < {ph}"));
        }
        if let Some(c) = self.counterparty {
            let ph = next(SqlValue::Int(c), &mut params);
            conditions.push(match self.role {
                EntryRole::Received => format!("t.party = {ph}"),
                EntryRole::Sent => format!("t.counterparty = {ph}"),
                EntryRole::Any => format!("(t.party = {ph} OR t.counterparty = {ph})"),
            });
        }
        if let Some(k) = &self.type_key {
            let ph = next(SqlValue::Text(k.clone()), &mut params);
            conditions.push(format!("c.type_key = {ph}"));
        }
        if let Some(y) = self.year {
            let ph = next(SqlValue::Int(i64::from(y)), &mut params);
            // Compared as a 64-bit integer: the one integer type both backends bind.
            conditions.push(format!("CAST(r.year AS BIGINT) = {ph}"));
        }
        if let Some(c) = self.cedente {
            let ph = next(SqlValue::Int(c), &mut params);
            conditions.push(format!("t.party = {ph}"));
        }
        if let Some(c) = self.cessionario {
            let ph = next(SqlValue::Int(c), &mut params);
            conditions.push(format!("t.counterparty = {ph}"));
        }
        if let Some(after) = self.after {
            let ph = next(SqlValue::Int(after), &mut params);
            conditions.push(format!("t.id > {ph}"));
        }
        (conditions, params)
    }

    /// The SQL both backends run, with `placeholder(n)` spelling the n-th parameter
    /// (`?n` for SQLite, `$n` for PostgreSQL).
    pub fn sql(&self, placeholder: impl Fn(usize) -> String) -> (String, Vec<SqlValue>) {
        let (conditions, mut params) = self.conditions(&placeholder);
        let next = |v: SqlValue, params: &mut Vec<SqlValue>| {
            params.push(v);
            placeholder(params.len())
        };
        let mut sql = format!(
            "SELECT t.id, t.at, t.kind, t.phase, t.amount, t.party, t.counterparty, t.disclose,
                    a.phase, a.at, r.id, r.idx, r.year, r.codice_tributo, r.codice_univoco,
                    c.id, c.type_key, c.protocol, c.tracciabile, c.origin, c.communicated_on, a.party
               {ENTRY_JOINS}
              WHERE {}
              ORDER BY t.id",
            conditions.join(" AND ")
        );
        if let Some(limit) = self.limit {
            let ph = next(
                SqlValue::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
                &mut params,
            );
            sql.push_str(&format!(" LIMIT {ph}"));
        }
        (sql, params)
    }

    /// How many movements the query selects, counted up to `cap` (so that a count
    /// against a limit never walks further than the limit): one integer column.
    pub fn count_sql(
        &self,
        cap: usize,
        placeholder: impl Fn(usize) -> String,
    ) -> (String, Vec<SqlValue>) {
        let (conditions, mut params) = self.conditions(&placeholder);
        params.push(SqlValue::Int(i64::try_from(cap).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 {ENTRY_JOINS} WHERE {} LIMIT {}) selected",
            conditions.join(" AND "),
            placeholder(params.len())
        );
        (sql, params)
    }
}

/// Where a reader last looked at the register: the last transfer and the last F24 choice
/// recorded. Both ids grow in commit order (one writer at a time holds the ledger head).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChangeMarks {
    pub transfer: i64,
    pub choice: i64,
}

/// What [`crate::Store::holding_changes`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldingChanges {
    /// The rate of the party's holdings moved, or whose F24 choice was recorded, after the
    /// marks asked about (possibly also some a little later: never fewer).
    pub rate: Vec<RataId>,
    /// The marks to ask from next time, read before the changes.
    pub marks: ChangeMarks,
}

/// `verify`: the accounts whose stored `last_transfer` is not the last transfer of the
/// history that moved them (id, stored, from the history), first twenty.
pub const LAST_TRANSFER_CHECK_SQL: &str = "SELECT a.id, a.last_transfer, COALESCE(m.last, 0)
       FROM accounts a
       LEFT JOIN (SELECT account, MAX(id) AS last
                    FROM (SELECT debit AS account, id FROM transfers
                          UNION ALL
                          SELECT credit AS account, id FROM transfers) moved
                   GROUP BY account) m ON m.account = a.id
      WHERE a.last_transfer <> COALESCE(m.last, 0)
      ORDER BY a.id
      LIMIT 20";

/// The `?1`/`$1` parties with the most holdings, most first.
pub fn largest_holders_sql(placeholder: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT party FROM accounts WHERE kind = 'holder' AND party IS NOT NULL
          GROUP BY party ORDER BY COUNT(*) DESC, party LIMIT {}",
        placeholder(1)
    )
}

/// The marks now: the ledger head's last transfer and the last F24 choice.
pub const CHANGE_MARKS_SQL: &str = "SELECT (SELECT last_transfer FROM ledger_head WHERE id = 1), (SELECT COALESCE(MAX(id), 0) FROM f24_choices)";

/// The rate of a party's holdings moved or chosen after the marks: parameters party,
/// transfer mark, choice mark.
pub fn holding_changes_sql(placeholder: impl Fn(usize) -> String) -> String {
    let (p, t, c) = (placeholder(1), placeholder(2), placeholder(3));
    format!(
        "SELECT rata FROM accounts WHERE party = {p} AND kind = 'holder' AND last_transfer > {t}
          UNION
         SELECT rata FROM f24_choices WHERE party = {p} AND id > {c}"
    )
}

/// Where a movement stands, as F1 and F4 count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    Pending,
    Accepted,
    Refused,
    /// Voided by the party that sent it (an annulled communication).
    Annulled,
}

impl EntryState {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(EntryState::Pending),
            "accepted" => Some(EntryState::Accepted),
            "refused" => Some(EntryState::Refused),
            "annulled" => Some(EntryState::Annulled),
            _ => None,
        }
    }
}

/// One sum of F1: a party's movements of one kind, in one state, for one credit type,
/// year and codice tributo, received or sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorTotal {
    pub type_key: String,
    pub year: RefYear,
    pub codice_tributo: String,
    pub received: bool,
    pub kind: TransferKind,
    pub state: EntryState,
    pub amount: Cents,
}

/// F1's sums kept with the ledger (`party_summary`, schema migration 4): one row per party,
/// type, reference year, codice tributo, side (received or sent), kind and state, with the
/// amount of the party's movements of that key as they stand today. Both backends update it in the transaction
/// that writes the transfers (the rows [`crate::engine::projected`] computes), so F1 for the
/// current date reads a few rows whatever the party's history; `verify` recomputes it from
/// the history ([`summary_recompute_sql`]) and compares.
/// `?1`/`$1` is the party.
pub fn summary_totals_sql(placeholder: impl Fn(usize) -> String) -> String {
    let p = placeholder(1);
    format!(
        "SELECT type_key, year, codice_tributo, received, kind, state, amount
           FROM party_summary
          WHERE party = {p} AND amount <> 0"
    )
}

/// The state a movement is in given its answer (`a`, possibly absent), as F1 counts it.
const SUMMARY_STATE: &str = "CASE WHEN t.phase = 'posted' THEN 'accepted'
                     WHEN a.id IS NULL THEN 'pending'
                     WHEN a.phase = 'post_pending' THEN 'accepted'
                     WHEN a.party = t.party THEN 'annulled'
                     ELSE 'refused' END";

/// The two sides of a movement: its party (sent, unless it moved within one party) and
/// its counterparty (received), as F1 counts them.
fn summary_sides(t: &str, filter: &str, state: &str, amount: &str) -> String {
    format!(
        "SELECT {t}.party AS p, CAST(0 AS INTEGER) AS received, {t}.rata AS rata, {t}.kind AS kind, {state} AS state, {amount} AS amount
           {filter} AND {t}.party IS NOT NULL AND ({t}.counterparty IS NULL OR {t}.counterparty <> {t}.party)
         UNION ALL
         SELECT {t}.counterparty, CAST(1 AS INTEGER), {t}.rata, {t}.kind, {state}, {amount}
           {filter} AND {t}.counterparty IS NOT NULL"
    )
}

/// The summary recomputed from the whole history, rows with a zero amount left out:
/// what `verify` compares `party_summary` with.
pub fn summary_recompute_sql() -> String {
    let rows = summary_sides(
        "t",
        "FROM transfers t LEFT JOIN transfers a ON a.pending_id = t.id WHERE t.phase IN ('posted', 'pending')",
        SUMMARY_STATE,
        "t.amount",
    );
    format!(
        "SELECT s.p AS party, c.type_key AS type_key, r.year AS year, r.codice_tributo AS codice_tributo,
                s.received AS received, s.kind AS kind, s.state AS state, CAST(SUM(s.amount) AS BIGINT) AS amount
           FROM ({rows}) s
           JOIN rate r ON r.id = s.rata
           JOIN credits c ON c.id = r.credit
          GROUP BY s.p, c.type_key, r.year, r.codice_tributo, s.received, s.kind, s.state"
    )
}

/// Where the stored summary and the one recomputed from the history differ, a zero amount
/// counting as no row: (key, stored, history), the first hundred in key order. The
/// database groups the two together (one sort, which spills to disk rather than grow), so
/// `verify` holds neither in memory. Not a full outer join: SQLite probes the recomputed
/// side with a scan per stored row.
pub fn summary_diff_sql() -> String {
    let key = "party, type_key, year, codice_tributo, received, kind, state";
    format!(
        "SELECT {key}, CAST(SUM(stored) AS BIGINT), CAST(SUM(history) AS BIGINT)
           FROM (SELECT {key}, amount AS stored, CAST(0 AS BIGINT) AS history FROM party_summary
                 UNION ALL
                 SELECT {key}, CAST(0 AS BIGINT), amount FROM ({recompute}) r) d
          GROUP BY {key}
         HAVING SUM(stored) <> SUM(history)
          ORDER BY {key}
          LIMIT 100",
        recompute = summary_recompute_sql()
    )
}

/// One row of the summary: (party, type, year, codice tributo, received, kind, state).
pub type SummaryKey = (PartyId, String, i64, String, i64, String, String);

/// The current F24 choice of one holding (R-F24-CHOICE), as last recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceRecord {
    pub rata: RataId,
    pub party: PartyId,
    pub choice: F24Choice,
}

/// A holding with something still available, as the year-end close looks at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldingInfo {
    pub account: cessio_core::ledger::Account,
    pub rata: Rata,
    pub type_key: String,
    pub tracciabile: bool,
    /// When the holding last received credit by an accepted cession (R-F24-WINDOW-122).
    pub received_by_cession_at: Option<DateTime<Utc>>,
    /// The day its option communication was sent: for an art. 122 credit, the day of the
    /// beneficiary's cession, whose year bounds every holder's use (R-F24-WINDOW-122).
    pub communicated_on: NaiveDate,
}

/// A selection of holder accounts, by party or across the register (the year-end close),
/// in account id order and in pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldingQuery {
    pub party: Option<PartyId>,
    /// Only rate whose reference year is at most this.
    pub max_year: Option<u16>,
    /// Only holdings with a positive available amount.
    pub only_available: bool,
    /// Only accounts with a greater id (the previous page's last).
    pub after: i64,
    /// At most this many: a page. [`crate::all_holding_infos`] reads every page.
    pub limit: usize,
    /// Only the holding of this rata.
    pub rata: Option<RataId>,
    /// Only holdings of these codici tributo (all when empty): an F24's lines.
    pub codes: Vec<String>,
    /// Only rate of these reference years (all when empty): an F24's lines draw on their
    /// own code and year alone, and a bank holds each code over many years.
    pub years: Vec<u16>,
}

impl HoldingQuery {
    pub fn of(party: PartyId) -> Self {
        HoldingQuery {
            party: Some(party),
            max_year: None,
            only_available: false,
            after: 0,
            limit: 100_000,
            rata: None,
            codes: Vec::new(),
            years: Vec::new(),
        }
    }

    /// The party's holding of one rata, if any.
    pub fn of_rata(party: PartyId, rata: RataId) -> Self {
        HoldingQuery {
            rata: Some(rata),
            ..HoldingQuery::of(party)
        }
    }

    /// The SQL both backends run, with `placeholder(n)` spelling the n-th parameter; the
    /// parameters are, in order: party (0 for any), max year, after, only available (0/1),
    /// limit, rata (0 for any), all 64-bit integers, then the codici tributo, then the
    /// years (64-bit integers). A party's
    /// query names the party outright: behind an `OR` neither planner uses the holder index,
    /// and every account of the register would be read for one party's F5 list.
    pub fn sql(&self, placeholder: impl Fn(usize) -> String) -> String {
        let p: Vec<String> = (1..=6 + self.codes.len() + self.years.len())
            .map(placeholder)
            .collect();
        let party = if self.party.is_some() {
            format!("a.party = {}", p[0])
        } else {
            format!("{} = CAST(0 AS BIGINT)", p[0])
        };
        // Named outright too, so that the holder index finds the one holding.
        let rata = if self.rata.is_some() {
            format!("a.rata = {}", p[5])
        } else {
            format!("{} = CAST(0 AS BIGINT)", p[5])
        };
        let (code_params, year_params) = p[6..].split_at(self.codes.len());
        let codes = if self.codes.is_empty() {
            String::new()
        } else {
            format!("AND r.codice_tributo IN ({})", code_params.join(", "))
        };
        let years = if self.years.is_empty() {
            String::new()
        } else {
            format!("AND CAST(r.year AS BIGINT) IN ({})", year_params.join(", "))
        };
        format!(
            "SELECT a.id, a.rata, a.kind, a.party, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted,
                    r.id, r.credit, r.idx, r.year, r.amount, r.codice_tributo, r.codice_univoco,
                    c.type_key, c.tracciabile,
                    (SELECT MAX(t.at) FROM transfers t
                      WHERE t.rata = a.rata AND t.credit = a.id AND t.kind = 'cession'
                        AND t.phase IN ('pending', 'posted')) AS ceded_at,
                    c.communicated_on
               FROM accounts a
               JOIN rate r ON r.id = a.rata
               JOIN credits c ON c.id = r.credit
              WHERE a.kind = 'holder'
                AND {party}
                AND CAST(r.year AS BIGINT) <= {p2}
                AND a.id > {p3}
                AND ({p4} = CAST(0 AS BIGINT) OR a.credits_posted - a.debits_posted - a.debits_pending > 0)
                AND {rata}
                {codes}
                {years}
              ORDER BY a.id
              LIMIT {p5}",
            p2 = p[1],
            p3 = p[2],
            p4 = p[3],
            p5 = p[4],
        )
    }

    pub fn params(&self) -> Vec<SqlValue> {
        [
            self.party.unwrap_or(0),
            i64::from(self.max_year.unwrap_or(u16::MAX)),
            self.after,
            i64::from(self.only_available),
            i64::try_from(self.limit).unwrap_or(i64::MAX),
            self.rata.unwrap_or(0),
        ]
        .into_iter()
        .map(SqlValue::Int)
        .chain(self.codes.iter().cloned().map(SqlValue::Text))
        .chain(self.years.iter().map(|y| SqlValue::Int(i64::from(*y))))
        .collect()
    }
}

/// F9: one entry to append to the operator's register, which is append-only like the
/// ledger (R-HISTORY): bank clients (R-BANK-CLIENT), suspensions and their end (R-SUSP),
/// risk hits, annulments on request. `kind` names the entry; `data` is its payload, owned
/// by the app layer (the store keeps it as JSON text and never reads inside it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOperatorEvent {
    pub kind: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// The movement the entry is about (a suspended or annulled transfer, a risk hit's).
    pub transfer: Option<TransferId>,
    pub party: Option<PartyId>,
    pub counterparty: Option<PartyId>,
    pub data: serde_json::Value,
}

/// F9: one recorded entry of the operator's register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorEvent {
    pub id: i64,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub transfer: Option<TransferId>,
    pub party: Option<PartyId>,
    pub counterparty: Option<PartyId>,
    pub data: serde_json::Value,
}

/// A selection of the operator's register, filtered where the rows are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorEventQuery {
    /// Entries of these kinds (none: every kind).
    pub kinds: Vec<String>,
    pub transfer: Option<TransferId>,
    /// Entries where this party is the party or the counterparty.
    pub party: Option<PartyId>,
    /// Entries recorded at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Entries recorded after this one (ids grow in commit order): where a reader of a
    /// party's feed left off.
    pub after: Option<i64>,
    /// At most this many rows, oldest first.
    pub limit: Option<usize>,
}

impl OperatorEventQuery {
    /// Bounded: a register read never loads more than this many rows.
    pub const MAX_ROWS: usize = 100_000;

    /// The SQL both backends run, with `placeholder(n)` spelling the n-th parameter.
    pub fn sql(&self, placeholder: impl Fn(usize) -> String) -> (String, Vec<SqlValue>) {
        let mut params = Vec::new();
        let mut next = |v: SqlValue| {
            params.push(v);
            placeholder(params.len())
        };
        let mut conditions = vec!["1 = 1".to_string()];
        if !self.kinds.is_empty() {
            let list: Vec<String> = self
                .kinds
                .iter()
                .map(|k| next(SqlValue::Text(k.clone())))
                .collect();
            conditions.push(format!("kind IN ({})", list.join(", ")));
        }
        if let Some(t) = self.transfer {
            conditions.push(format!("transfer = {}", next(SqlValue::Int(t))));
        }
        if let Some(p) = self.party {
            let a = next(SqlValue::Int(p));
            let b = next(SqlValue::Int(p));
            conditions.push(format!("(party = {a} OR counterparty = {b})"));
        }
        if let Some(s) = self.since {
            conditions.push(format!(
                "at >= {}",
                next(SqlValue::Int(s.timestamp_micros()))
            ));
        }
        if let Some(a) = self.after {
            conditions.push(format!("id > {}", next(SqlValue::Int(a))));
        }
        let limit = self.limit.unwrap_or(Self::MAX_ROWS).min(Self::MAX_ROWS);
        let ph = next(SqlValue::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        (
            format!(
                "SELECT id, kind, at, actor, transfer, party, counterparty, data
                   FROM operator_events WHERE {} ORDER BY id LIMIT {ph}",
                conditions.join(" AND ")
            ),
            params,
        )
    }
}
