//! The persistence contract of Cessio.
//!
//! This crate owns the [`Store`] trait that the app layer calls, the operations it accepts,
//! the batch engine both backends share ([`engine`]), the verifier ([`verify`]) and the
//! contract test suite every backend must pass ([`contract`], behind the `testing`
//! feature). Backends (`cessio-store-sqlite`, `cessio-store-postgres`) only move rows.
//!
//! Architecture invariant: nothing above this layer writes SQL, and nothing in this crate
//! does I/O itself.

use async_trait::async_trait;
use cessio_core::cf::CodiceFiscale;
use cessio_core::ledger::{Account, LedgerError, PartyId, RataId, TransferId};
use chrono::{DateTime, NaiveDate, Utc};

pub mod engine;
pub mod feed;
pub mod id_map;
pub mod jobs;
pub mod log;
pub mod model;
pub mod paths;
pub mod projections;
pub mod queue;
pub mod rows;
pub mod sessions;
pub mod sql;
pub mod stream;
pub mod summary_days;
pub mod verify;
pub mod webhooks;

#[cfg(feature = "testing")]
pub mod contract;

pub use model::*;
pub use sessions::{LoginAttempt, NewSession, SecretKey, SessionLimits, StoredSession};
pub use stream::{
    EntrySender, EntryStream, STREAM_BATCH, STREAM_STALL, STREAMS, StreamSlots, entry_stream,
};
pub use verify::{Problem, VerifyReport};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(
        "La chiave di idempotenza '{key}' è già stata usata per una richiesta diversa: usare una chiave nuova per ogni nuova operazione"
    )]
    IdempotencyConflict { key: String },
    #[error("Chiave di idempotenza non valida: {reason}")]
    InvalidIdempotencyKey { reason: String },
    #[error("Soggetto sconosciuto: {party}")]
    UnknownParty { party: PartyId },
    #[error("Rata sconosciuta: {rata}")]
    UnknownRata { rata: RataId },
    #[error("Il soggetto {party} non detiene la rata {rata}")]
    NoHolding { rata: RataId, party: PartyId },
    #[error("Il codice fiscale {cf} è già registrato")]
    PartyExists { cf: String },
    #[error("Il nome utente '{username}' è già in uso")]
    UserExists { username: String },
    #[error("Utente sconosciuto: {user}")]
    UnknownUser { user: i64 },
    /// A rule decided by the writer on the state the batch sees.
    #[error("{detail}")]
    Rule {
        rule: &'static str,
        code: &'static str,
        detail: String,
    },
    #[error("Operazione non valida: {reason}")]
    InvalidOperation { reason: String },
    #[error(
        "Indirizzo del database non valido '{url}': {reason} (usare sqlite://percorso oppure postgres://utente@host:porta/database)"
    )]
    BadUrl { url: String, reason: String },
    #[error("Database non raggiungibile: {reason}")]
    Unavailable { reason: String },
    #[error("Errore del database: {reason}")]
    Backend { reason: String },
}

impl StoreError {
    /// Stable machine-readable code, as the API exposes it.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Ledger(e) => e.code(),
            StoreError::IdempotencyConflict { .. } => "idempotency_conflict",
            StoreError::InvalidIdempotencyKey { .. } => "idempotency_key_invalid",
            StoreError::UnknownParty { .. } => "party_unknown",
            StoreError::UnknownRata { .. } => "rata_unknown",
            StoreError::NoHolding { .. } => "no_holding",
            StoreError::PartyExists { .. } => "party_exists",
            StoreError::UserExists { .. } => "user_exists",
            StoreError::UnknownUser { .. } => "user_unknown",
            StoreError::Rule { code, .. } => code,
            StoreError::InvalidOperation { .. } => "invalid_operation",
            StoreError::BadUrl { .. } => "database_url_invalid",
            StoreError::Unavailable { .. } => "database_unavailable",
            StoreError::Backend { .. } => "database_error",
        }
    }

    pub fn backend(e: impl std::fmt::Display) -> Self {
        StoreError::Backend {
            reason: e.to_string(),
        }
    }
}

/// The one store interface. Every mutation goes through [`Store::submit`]; reads are
/// separate methods that never block the writer.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;

    /// Applies one operation durably and returns its receipt only after its transaction
    /// committed. Concurrent calls are grouped into one transaction per batch.
    async fn submit(&self, op: Operation) -> Result<Receipt, StoreError>;

    /// (transactions committed or rolled back by the writer, operations they carried):
    /// fewer transactions than operations is group commit at work.
    fn write_stats(&self) -> (u64, u64);

    async fn party(&self, id: PartyId) -> Result<Option<Party>, StoreError>;

    async fn party_by_cf(&self, cf: &CodiceFiscale) -> Result<Option<Party>, StoreError>;

    async fn credit(&self, id: i64) -> Result<Option<Credit>, StoreError>;

    async fn account(&self, rata: RataId, r: AccountRef) -> Result<Option<Account>, StoreError>;

    /// Every holder account of a party (its holdings), ordered by rata.
    async fn holdings(&self, party: PartyId) -> Result<Vec<Account>, StoreError>;

    /// A party's holdings of the rate in `rate`, ordered by rata: a cession needs its own
    /// lines, F1 the holdings that changed, not the hundreds of thousands a bank holds.
    async fn holdings_in(
        &self,
        party: PartyId,
        rate: &[RataId],
    ) -> Result<Vec<Account>, StoreError>;

    /// The rate of `party`'s holdings that moved, or whose F24 choice was recorded, after
    /// `since`; and the marks to ask from next time.
    async fn holding_changes(
        &self,
        party: PartyId,
        since: ChangeMarks,
    ) -> Result<HoldingChanges, StoreError>;

    /// The `n` parties with the most holdings, most first: whose F1 a server prepares at
    /// start.
    async fn largest_holders(&self, n: usize) -> Result<Vec<PartyId>, StoreError>;

    /// The history of a rata, oldest first (R-HISTORY).
    async fn history(&self, rata: RataId) -> Result<Vec<engine::TransferRow>, StoreError>;

    /// The histories of several rate in one read: rows by rata, then oldest first. A list
    /// of a party's holdings replays each one's history; one query per holding would make
    /// the list cost a round trip per rata.
    async fn histories(&self, rate: &[RataId]) -> Result<Vec<engine::TransferRow>, StoreError>;

    /// Each of these rate with its credit (the credit's `rate` left empty), in rata order;
    /// an unknown id is left out. Two reads by primary key: a list of a bank's holdings
    /// needs each holding's codes and its credit's facts, not its movements.
    async fn rate_with_credits(&self, rate: &[RataId]) -> Result<Vec<(Rata, Credit)>, StoreError>;

    /// The kept §5 paths of these holder accounts (`paths`), in account order; an
    /// account without a row (it received the rata neither by an option nor by a cession,
    /// and was never seized) is left out.
    async fn holding_paths(
        &self,
        accounts: &[cessio_core::ledger::AccountId],
    ) -> Result<Vec<(cessio_core::ledger::AccountId, paths::HoldingPath)>, StoreError>;

    /// The movements `party` sent as cedente after transfer `after`, communications and
    /// cessions, answered or waiting: (id, amount), in no particular order. F9's amount rule compares
    /// with the cedente's history; transfers are appended in id order and never change, so
    /// a history read up to an id is extended exactly by what comes after it.
    async fn sent_amounts(
        &self,
        party: PartyId,
        after: TransferId,
    ) -> Result<Vec<(TransferId, cessio_core::money::Cents)>, StoreError>;

    /// One movement of the history by id (F9: the communication an operator names).
    async fn transfer(
        &self,
        id: cessio_core::ledger::TransferId,
    ) -> Result<Option<engine::TransferRow>, StoreError>;

    /// The receipt recorded under an idempotency key, if any.
    async fn receipt(&self, key: &IdempotencyKey) -> Result<Option<Receipt>, StoreError> {
        Ok(self.stored_operation(key).await?.map(|s| s.receipt))
    }

    /// The request hash and receipt recorded under an idempotency key, if any.
    async fn stored_operation(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<engine::StoredOperation>, StoreError>;

    /// Rows of each table, counted: reads every row (11 million transfers on the 0.1
    /// national register), so for checks and reports, never for a request path.
    async fn counts(&self) -> Result<Counts, StoreError>;

    /// What the register holds, from the ledger head's counters: one indexed row, however
    /// large the register. Ids are taken in sequence from the head and no row of these
    /// tables is ever deleted, so each counter equals its table's row count. Read on a read
    /// connection, it is also readiness's check that the database answers.
    async fn head_counts(&self) -> Result<Counts, StoreError>;

    /// Readiness of the writes: the writer takes a request from its queue and its
    /// connection ends a transaction (which writes nothing). Callers bound the wait.
    async fn ping_writer(&self) -> Result<(), StoreError>;

    /// How far into the database's write-ahead log what it shows reaches, in bytes: a
    /// primary's written position, a streaming standby's replayed one. Comparing the two
    /// says how far behind a read replica is. `None` where the backend has no such log
    /// shared with replicas (SQLite).
    async fn wal_position(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    async fn parties(&self, ids: &[PartyId]) -> Result<Vec<Party>, StoreError>;

    /// Every movement where the party is cedente or cessionario (or user of an F24), as
    /// recorded up to `until` (answers after it are ignored), oldest first.
    async fn party_entries(
        &self,
        party: PartyId,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<PartyEntry>, StoreError> {
        self.find_entries(&EntryQuery {
            until,
            ..EntryQuery::of(party)
        })
        .await
    }

    /// F1's sums for a party today, or as of the end of a past Rome day (answers after it
    /// count as not given).
    async fn monitor_totals(
        &self,
        party: PartyId,
        as_of: Option<NaiveDate>,
    ) -> Result<Vec<MonitorTotal>, StoreError>;

    /// The party's movements that a query selects, oldest first.
    async fn find_entries(&self, query: &EntryQuery) -> Result<Vec<PartyEntry>, StoreError>;

    /// How many movements a query selects, counted up to `cap`.
    async fn count_entries(&self, query: &EntryQuery, cap: usize) -> Result<usize, StoreError>;

    /// What [`find_entries`](Store::find_entries) selects, oldest first, handed over in
    /// batches as the stream's reader takes them, from one snapshot read on a connection
    /// of the stream's own (a slow reader delays no one else's reads). Errors of setting
    /// it up come back at once; later ones end the stream.
    async fn stream_entries(&self, query: EntryQuery) -> Result<EntryStream, StoreError>;

    /// Creates a user; the action is recorded in the audit log under `actor`.
    async fn create_user(
        &self,
        user: NewUser,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    async fn user(&self, id: i64) -> Result<Option<User>, StoreError>;

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError>;

    /// The users whose own party this is, in creation order (a strong identity names a
    /// person by codice fiscale, not by username).
    async fn users_of_party(&self, party: PartyId) -> Result<Vec<User>, StoreError>;

    /// Whether any user has the operator's role: without one, nobody can register the
    /// rest, and `cessio serve` says how to create the first.
    async fn has_operator(&self) -> Result<bool, StoreError>;

    /// Counts one wrong PIN and returns the failures so far, atomically.
    async fn pin_failed(&self, user: i64, at: DateTime<Utc>) -> Result<u32, StoreError>;

    /// Counts one wrong PIN unless `max` failures are already counted, atomically, and
    /// returns the new count (`None` when the PIN is locked). Parallel wrong guesses
    /// therefore cannot exceed `max`.
    async fn pin_attempt(
        &self,
        user: i64,
        max: u32,
        at: DateTime<Utc>,
    ) -> Result<Option<u32>, StoreError>;

    /// After a right PIN: clears the failures unless `max` are counted by now (a lock that
    /// parallel wrong guesses reached meanwhile wins), atomically. False when locked.
    async fn pin_succeeded(
        &self,
        user: i64,
        max: u32,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Clears the failures: after a right PIN, or an operator's audited unlock.
    async fn pin_reset(
        &self,
        user: i64,
        actor: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The user's delegations that are not revoked, expired ones included (whether a day
    /// is past a delegation's end is for the app's clock to say), by party. Delegations are
    /// granted and revoked through [`Store::submit`] (`Command::Delegation`).
    async fn delegations(&self, user: i64) -> Result<Vec<Delegation>, StoreError>;

    /// The delegations a party granted, live and past, newest first, at most `limit`.
    async fn party_delegations(
        &self,
        party: PartyId,
        limit: usize,
    ) -> Result<Vec<Delegation>, StoreError>;

    async fn create_token(
        &self,
        user: i64,
        token_hash: &str,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// The user of a live token.
    async fn token_user(&self, token_hash: &str) -> Result<Option<User>, StoreError>;

    async fn revoke_token(
        &self,
        user: i64,
        token: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Recomputes every balance from the history and checks R-CONSERVE and the hash chain.
    async fn verify(&self) -> Result<VerifyReport, StoreError>;

    /// Refreshes the planner's statistics after a bulk load, which autovacuum would only
    /// catch up with later: until then the planner guesses table sizes. Nothing to do where
    /// the backend keeps none (SQLite here plans without statistics).
    async fn refresh_statistics(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// F9 registry: sets or clears a party's deceased flag, recorded in the audit log
    /// under `actor`. Unknown party: [`StoreError::UnknownParty`].
    async fn set_deceased(
        &self,
        party: PartyId,
        deceased: bool,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// F9: appends one entry to the operator's register (append-only); returns its id.
    async fn append_operator_event(&self, event: NewOperatorEvent) -> Result<i64, StoreError>;

    /// F9: the entries of the operator's register a query selects, oldest first.
    async fn operator_events(
        &self,
        query: &OperatorEventQuery,
    ) -> Result<Vec<OperatorEvent>, StoreError>;

    /// The movements that concern a party registered after transfer `after`, oldest first,
    /// at most `limit` ([`feed`]).
    async fn party_feed(
        &self,
        party: PartyId,
        after: TransferId,
        limit: usize,
    ) -> Result<Vec<feed::FeedRow>, StoreError>;

    /// Where a party's feed ends now: (its last transfer, the last entry of the
    /// operator's register about its suspensions), 0 for none.
    async fn party_feed_end(&self, party: PartyId) -> Result<(TransferId, i64), StoreError>;

    /// The movements `ids` as the feed reads them, in id order (unknown ids are left out).
    async fn feed_rows(&self, ids: &[TransferId]) -> Result<Vec<feed::FeedRow>, StoreError>;

    /// The history rows an operation recorded, in id order (an F24 reservation's lines).
    async fn operation_transfers(
        &self,
        operation: i64,
    ) -> Result<Vec<engine::TransferRow>, StoreError>;

    /// An operation's row and its log entry's position and hash.
    async fn operation_entry(&self, id: i64) -> Result<Option<OperationEntry>, StoreError>;

    /// The credit a rata belongs to.
    async fn credit_of_rata(&self, rata: RataId) -> Result<Option<Credit>, StoreError>;

    /// An operation with everything its receipt shows ([`OperationRecord`]), or `None` for
    /// an id no operation has. Several small reads, each indexed: a receipt is asked for
    /// one operation at a time, and its rows are at most [`Operation::MAX_MOVEMENTS`].
    async fn operation_record(&self, id: i64) -> Result<Option<OperationRecord>, StoreError> {
        let Some(entry) = self.operation_entry(id).await? else {
            return Ok(None);
        };
        let transfers = self.operation_transfers(id).await?;
        let mut answered = Vec::new();
        for pending in transfers.iter().filter_map(|t| t.pending_id) {
            if let Some(t) = self.transfer(pending).await? {
                answered.push(t);
            }
        }
        answered.sort_by_key(|t| t.id);
        answered.dedup_by_key(|t| t.id);
        let mut credits: Vec<Credit> = Vec::new();
        let mut rate: Vec<RataId> = transfers.iter().map(|t| t.rata).collect();
        rate.sort_unstable();
        rate.dedup();
        for rata in rate {
            if credits.iter().any(|c| c.rate.iter().any(|r| r.id == rata)) {
                continue;
            }
            if let Some(c) = self.credit_of_rata(rata).await? {
                credits.push(c);
            }
        }
        if let Some(issued) = &entry.receipt.credit
            && !credits.iter().any(|c| c.id == issued.id)
            && let Some(c) = self.credit(issued.id).await?
        {
            credits.push(c);
        }
        credits.sort_by_key(|c| c.id);
        let mut ids: Vec<PartyId> = transfers
            .iter()
            .chain(&answered)
            .flat_map(|t| [t.party, t.counterparty])
            .chain([entry.on_behalf_of, entry.receipt.party])
            .flatten()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let parties = self.parties(&ids).await?;
        Ok(Some(OperationRecord {
            entry,
            transfers,
            answered,
            credits,
            parties,
        }))
    }

    /// The last recorded F24 choice of each of the party's holdings that has one.
    async fn f24_choices(&self, party: PartyId) -> Result<Vec<ChoiceRecord>, StoreError>;

    /// The party's overdue-debt position as last recorded by the operator.
    async fn debt_position(
        &self,
        party: PartyId,
    ) -> Result<Option<cessio_core::debt::DebtPosition>, StoreError>;

    /// Holder accounts with what F5 and the close of the year need to know about them
    /// (rata, type, last cession received), as a [`HoldingQuery`] selects them.
    async fn holding_infos(&self, query: &HoldingQuery) -> Result<Vec<HoldingInfo>, StoreError>;

    /// The credits created by splitting a rata (F6), oldest first.
    async fn splits_of(&self, rata: RataId) -> Result<Vec<i64>, StoreError>;

    /// Records a browser session and ends the user's least recently used ones beyond
    /// `limits.per_user`. False, and nothing recorded, when `limits.total` sessions are live.
    async fn create_session(
        &self,
        session: NewSession,
        limits: SessionLimits,
    ) -> Result<bool, StoreError>;

    /// A session live at `now` (an expired one is as good as ended).
    async fn session(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredSession>, StoreError>;

    /// Moves a live session's end to `expires_at` (never earlier). False when it is not live.
    async fn touch_session(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Leaves a message in a live session for the next page (or clears it with `None`).
    async fn set_session_notice(
        &self,
        key: &SecretKey,
        notice: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Takes the message a live session holds: a second take finds none.
    async fn take_session_notice(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;

    /// Ends a session (sign-out). False when there was none.
    async fn end_session(&self, key: &SecretKey) -> Result<bool, StoreError>;

    /// Records a strong login between the redirect to the provider and its return, unless
    /// `cap` are in progress (false, nothing recorded).
    async fn start_login_flow(
        &self,
        key: &SecretKey,
        data: String,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        cap: usize,
    ) -> Result<bool, StoreError>;

    /// Takes a strong login in progress, once, if it has not expired by `now`.
    async fn take_login_flow(
        &self,
        key: &SecretKey,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;

    /// Counts a login attempt under a throttle key unless its window holds `limit`
    /// attempts; a window started at or before `expired` is over and starts afresh at `now`.
    async fn count_login_attempt(
        &self,
        key: &str,
        limit: u32,
        now: DateTime<Utc>,
        expired: DateTime<Utc>,
    ) -> Result<LoginAttempt, StoreError>;

    /// Takes back an attempt [`count_login_attempt`](Store::count_login_attempt) counted in
    /// the window that started at `window_start` (another key refused the login).
    async fn uncount_login_attempt(
        &self,
        key: &str,
        window_start: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Forgives one attempt under each key (the login succeeded); an emptied window goes.
    async fn forgive_login_attempts(
        &self,
        keys: &[String],
        expired: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Deletes the throttle's windows started at or before `expired`, then the oldest beyond
    /// `keep`; returns how many are left.
    async fn trim_login_attempts(
        &self,
        expired: DateTime<Utc>,
        keep: usize,
    ) -> Result<usize, StoreError>;

    /// Deletes the sessions and strong logins in progress that ended by `now`; returns how
    /// many rows went.
    async fn sweep_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Records a webhook subscription and returns its id; `None` when the party already
    /// has [`webhooks::MAX_PER_PARTY`] live ones.
    async fn create_webhook(&self, hook: webhooks::NewWebhook) -> Result<Option<i64>, StoreError>;

    /// A party's webhook subscriptions, the live ones first, newest first.
    async fn webhooks_of(&self, party: PartyId) -> Result<Vec<webhooks::Webhook>, StoreError>;

    /// Ends a live subscription of the party; false when there is none with that id.
    async fn revoke_webhook(
        &self,
        party: PartyId,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Leases to the caller, until `lease_until`, at most `limit` live subscriptions due by
    /// `now` that no one else holds, and returns them.
    async fn claim_due_webhooks(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<webhooks::Webhook>, StoreError>;

    /// Records how a delivery went and releases the subscription's lease.
    async fn record_delivery(
        &self,
        id: i64,
        at: DateTime<Utc>,
        outcome: &webhooks::Delivery,
    ) -> Result<(), StoreError>;

    /// Records a bulk job, or returns the owner's unfinished job of the same content (queued
    /// again if it had failed): see [`jobs`].
    async fn submit_job(&self, job: jobs::NewJob) -> Result<jobs::Job, StoreError>;

    /// A job, whoever's.
    async fn job(&self, id: i64) -> Result<Option<jobs::Job>, StoreError>;

    /// An owner's jobs, newest first, at most `limit`.
    async fn jobs_of(&self, owner: &str, limit: usize) -> Result<Vec<jobs::Job>, StoreError>;

    /// Leases to the caller, until `lease_until`, the oldest job that waits (or whose
    /// runner's lease ran out by `now`), or only job `only`; returns it with its file.
    async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        only: Option<i64>,
    ) -> Result<Option<(jobs::Job, Vec<u8>)>, StoreError>;

    /// Saves a part of a job's work at once: its rows' outcomes and the job's progress from
    /// `done_before` rows to `done_before + part.rows.len()`, extending the lease. False,
    /// saving nothing, when the job is no longer where the caller left it (another runner
    /// took it over).
    async fn save_job_part(
        &self,
        id: i64,
        done_before: i64,
        part: jobs::JobPart,
        at: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Ends a job, done or failed.
    async fn finish_job(
        &self,
        id: i64,
        state: jobs::JobState,
        error: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A job's row outcomes after line `after`, in line order, at most `limit`.
    async fn job_rows(
        &self,
        id: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<jobs::JobRow>, StoreError>;
}

/// How a database URL names its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

/// Picks the backend from the URL scheme, so that a typo is an error before any
/// connection is tried.
pub fn backend_kind(url: &str) -> Result<BackendKind, StoreError> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    match scheme {
        Some("sqlite") => Ok(BackendKind::Sqlite),
        Some("postgres" | "postgresql") => Ok(BackendKind::Postgres),
        Some(other) => Err(StoreError::BadUrl {
            url: url.to_string(),
            reason: format!("schema '{other}' non supportato"),
        }),
        None => Err(StoreError::BadUrl {
            url: url.to_string(),
            reason: "manca lo schema".into(),
        }),
    }
}

/// The path of a `sqlite://` URL (`sqlite://cessio.db`, `sqlite:///var/lib/cessio.db`,
/// `sqlite::memory:` is not accepted: the store must be durable).
pub fn sqlite_path(url: &str) -> Result<&str, StoreError> {
    let path = url
        .strip_prefix("sqlite://")
        .ok_or_else(|| StoreError::BadUrl {
            url: url.to_string(),
            reason: "non è un indirizzo sqlite://".into(),
        })?;
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() {
        return Err(StoreError::BadUrl {
            url: url.to_string(),
            reason: "manca il percorso del file".into(),
        });
    }
    Ok(path)
}

/// Every holding a query selects, read a page of `query.limit` at a time: a bank holds
/// hundreds of thousands of rate, more than one page.
pub async fn all_holding_infos(
    store: &dyn Store,
    mut query: HoldingQuery,
) -> Result<Vec<HoldingInfo>, StoreError> {
    query.limit = query.limit.max(1);
    let mut all = Vec::new();
    loop {
        let page = store.holding_infos(&query).await?;
        let full = page.len() == query.limit;
        match page.last() {
            Some(last) => query.after = last.account.id,
            None => return Ok(all),
        }
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_scheme_picks_backend() {
        assert_eq!(backend_kind("sqlite://x.db"), Ok(BackendKind::Sqlite));
        assert_eq!(
            backend_kind("postgres://postgres@127.0.0.1/test"),
            Ok(BackendKind::Postgres)
        );
        assert_eq!(
            backend_kind("mysql://x").map_err(|e| e.code()),
            Err("database_url_invalid")
        );
        assert_eq!(
            backend_kind("cessio.db").map_err(|e| e.code()),
            Err("database_url_invalid")
        );
        assert_eq!(sqlite_path("sqlite://a/b.db"), Ok("a/b.db"));
        assert_eq!(sqlite_path("sqlite:///tmp/b.db"), Ok("/tmp/b.db"));
        assert!(sqlite_path("sqlite://").is_err());
    }
}
