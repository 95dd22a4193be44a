//! Cessio's use cases: one function per user action, as the web layer and the CLI call them.
//!
//! Architecture invariant: authorisation, the PIN and every SPEC rule are checked here (or in
//! core, called from here), once; callers translate requests and responses and hold no
//! rules. Time comes from the injected clock; nothing here reads the wall clock.
//!
//! The store is private: what the server's probes and metrics and the command line need of
//! it is an app function too (`health.rs`). One exception, named for it:
//! `App::web_sessions_store` hands the web layer the register's database for its own state
//! (sessions, strong logins in progress, the login throttle), never a ledger read or write.
//! With `App::with_read_replica`, F1 and F4 (and its export) read a replica; every read
//! that guards a write (F2's cedible list, F3's selection, the PIN, idempotency) stays on
//! the primary, so a replica's lag can delay what a list shows but never lets a write rest
//! on a stale read.
//!
//! The rules that can race are decided by the store's writer (`cessio_store::engine`).
//! Those still decided here, on reads taken before the write, rest on what the holder's
//! own concurrent requests do not change: the §5 path (R-CHAIN, R-ONCE, R-BANK-CLIENT,
//! R-PA, R-ECO-2018) on how the holder received the rata and on registry facts; F5's rules
//! (R-F24-WINDOW-121/122, R-BAN-100K/1500) on dates and the operator's debt positions. R-SEIZE is a ledger movement: a
//! seized amount is not available.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use cessio_core::catalogue::Catalogue;
use cessio_core::cf::CodiceFiscale;
use cessio_core::law::LawTable;
use cessio_core::ledger::PartyId;
use cessio_core::opt_stop::OptStopTable;
use cessio_core::time::{Clock, rome_date};
use cessio_store::{
    Command, DelegateCheck, DelegationScope, IdempotencyKey, NewParty, NewUser, Operation, Party,
    PartyKind, Receipt, Role, Store, User,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod chain;
mod delegation;
mod error;
mod events;
pub mod f24;
pub mod functions;
mod health;
mod jobs;
mod list_pages;
mod monitor_cache;
mod movements;
mod operator;
mod paging;
pub mod receipts;
pub mod reduction;
pub mod rent;
mod replica;
pub mod split;
mod webhooks;

pub use chain::*;
pub use delegation::*;
pub use error::AppError;
pub use events::{Event, EventKind, EventPage, EventsFrom, POLL, WAIT_MAX};
pub use f24::*;
pub use functions::*;
pub use health::{Check, Readiness};
pub use jobs::{
    ANSWER_JOB_MAX_ROWS, ANSWER_PART, AnswerJobRow, BulkJob, BulkJobKind, BulkJobRow, BulkJobState,
    IMPORT_PART, JOB_LEASE,
};
pub use movements::*;
pub use operator::*;
pub use paging::{PAGE_DEFAULT, PAGE_MAX, Page, PageRequest};
pub use receipts::*;
pub use reduction::*;
pub use rent::*;
pub use replica::{ConnectReplica, ReplicaPolicy, ReplicaStatus};
pub use split::*;
pub use webhooks::{
    Attempt, BACKOFF_MAX, EVENTS_PER_DELIVERY, IDLE_POLL, URL_MAX_CHARS as WEBHOOK_URL_MAX_CHARS,
    WebhookCreated, WebhookView, backoff,
};

/// Limits and thresholds that are configuration, not law.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Wrong PINs before the PIN locks (SPEC §2: "a small number").
    pub pin_max_failures: u32,
    /// F9 risk rules' thresholds (see `cessio_core::risk::RiskConfig` for the defaults).
    pub risk: cessio_core::risk::RiskConfig,
    /// F9: a communication with a risk hit is suspended at once for this many days (at
    /// most the R-SUSP limit); `None`: hits are only recorded for the operator.
    pub risk_auto_suspend_days: Option<u32>,
    /// F1 keeps the cedibilità of the holdings of the parties looked at, up to this many
    /// holdings in all (about 40 bytes each); 0 recomputes every request.
    pub monitor_cache_holdings: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            pin_max_failures: 5,
            risk: cessio_core::risk::RiskConfig::default(),
            risk_auto_suspend_days: None,
            monitor_cache_holdings: 2_000_000,
        }
    }
}

/// How the user proved who they are. A strong identity (SPID/CIE) needs no PIN for
/// dispositive operations; a password or a programmatic token does (SPEC §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    Password,
    Strong,
    Token,
}

/// An authenticated user, as every function receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "User")]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// The user's own party, if it has one.
    pub party: Option<PartyId>,
    /// How the user signed in: password, SPID/CIE (`strong`) or token.
    pub method: LoginMethod,
}

impl Principal {
    fn from_user(u: &User, method: LoginMethod) -> Self {
        Principal {
            user_id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            party: u.party,
            method,
        }
    }

    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }

    /// Names the actor in the history: "username" plus the way it signed in.
    pub fn actor(&self) -> String {
        format!("{}#{}", self.username, self.user_id)
    }
}

/// The application: the store, the clock, the catalogue and the settings. Cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    /// Private: callers (the web layer, the command line) go through the app's functions,
    /// which hold the rules; tests reach it with the `testing` feature ([`App::store`]).
    store: Arc<dyn Store>,
    /// A streaming replica of the store that F1 Monitoraggio and F4 Lista movimenti (and
    /// its export) read while it keeps up (`with_read_replica`, `replica.rs`).
    replica: Option<Arc<replica::ReadReplica>>,
    pub clock: Arc<dyn Clock>,
    pub catalogue: Arc<Catalogue>,
    /// The law as data (`catalogue/rules.toml`): R-CHAIN, R-BANK-CLIENT, R-PA, R-SUSP...
    pub law: Arc<LawTable>,
    /// R-OPT-STOP's exceptions (`catalogue/opt_stop.toml`).
    pub opt_stop: Arc<OptStopTable>,
    pub settings: Settings,
    /// F1's kept cedibilità of the parties' holdings (see `monitor_cache`).
    monitor_cache: Arc<monitor_cache::MonitorCache>,
    /// The cedenti's histories for the amount risk rule, kept between cessions.
    sent_kept: Arc<std::sync::Mutex<operator::risk::KeptHistories>>,
    /// Password and PIN hashing run on blocking threads, this many at once: Argon2 is
    /// deliberately expensive, and on the async workers a login flood would stall every
    /// other request (`/healthz` included).
    hashing: Arc<tokio::sync::Semaphore>,
    /// Tests hold a user's next write between its decision and the writer, to run a
    /// competing request in that window ([`App::hold_next_submit`]).
    #[cfg(feature = "testing")]
    submit_gates: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<SubmitGate>>>>,
}

/// A write held between its decision and the writer (tests only).
#[cfg(feature = "testing")]
#[derive(Debug, Default)]
pub struct SubmitGate {
    arrived: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[cfg(feature = "testing")]
impl SubmitGate {
    /// Waits until the held request has decided and reached the gate.
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    /// Lets it go on to the writer.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

/// How long a password or PIN check waits for a hashing thread before the request is
/// refused as busy (`AppError::Busy`), rather than queueing without bound.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Hashing threads by default: half the cores, at least one, so that a login flood
/// leaves the other half to everything else.
fn default_hashing_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

fn hash_secret(secret: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut rand_core::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::invalid("password", e.to_string()))
}

fn secret_matches(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new user's name: what a login form and an audit line can carry unambiguously.
pub fn check_username(username: &str) -> Result<(), AppError> {
    if username.is_empty()
        || username.len() > 64
        || !username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
    {
        return Err(AppError::invalid(
            "username",
            "da 1 a 64 caratteri tra lettere, cifre e . _ - @",
        ));
    }
    Ok(())
}

/// A new password: at least 12 characters (it is stored only as an Argon2 hash).
pub fn check_password(password: &str) -> Result<(), AppError> {
    if password.chars().count() < 12 {
        return Err(AppError::invalid("password", "almeno 12 caratteri"));
    }
    Ok(())
}

/// A new PIN: 6 to 12 digits (stored only as an Argon2 hash).
pub fn check_pin_format(pin: &str) -> Result<(), AppError> {
    if pin.len() < 6 || pin.len() > 12 || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::invalid("pin", "da 6 a 12 cifre"));
    }
    Ok(())
}

/// Scopes the client's idempotency key to the user, so two users never collide on a key.
pub(crate) fn scoped_key(p: &Principal, key: &str) -> Result<IdempotencyKey, AppError> {
    if key.is_empty() || key.len() > 100 {
        return Err(AppError::invalid(
            "Idempotency-Key",
            "obbligatoria, da 1 a 100 caratteri",
        ));
    }
    IdempotencyKey::parse(&format!("u{}:{key}", p.user_id))
        .map_err(|e| AppError::invalid("Idempotency-Key", e.to_string()))
}

/// What the user asked, as the idempotency record remembers it: the action, the party and
/// the input, not what the request turned into.
pub(crate) fn fingerprint(action: &str, party: Option<PartyId>, input: &impl Serialize) -> String {
    let body = serde_json::to_vec(&(action, party, input)).unwrap_or_default();
    token_digest(&String::from_utf8_lossy(&body))
}

fn token_digest(token: &str) -> String {
    let d: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    cessio_core::ledger::hash_to_hex(&d)
}

/// A fresh idempotency key for an operator's function whose form carries none.
fn operator_key(action: &str) -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    format!("{action}-{}", cessio_core::ledger::hash_to_hex(&bytes))
}

/// A hash that makes failed logins cost the same whether or not the user exists, so that
/// timing does not reveal which usernames are registered.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_secret("not-a-password").unwrap_or_default());

/// The embedded R-OPT-STOP table, checked against the catalogue the app runs with.
fn opt_stop_table(catalogue: &Catalogue) -> OptStopTable {
    // Both embedded files are validated together by a core test; this cannot fail in a
    // build that passed its tests, and a table naming unknown types must not start.
    OptStopTable::builtin()
        .and_then(|t| t.check_catalogue(catalogue).map(|()| t))
        .unwrap_or_else(|e| panic!("catalogue/opt_stop.toml: {e}"))
}

impl App {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, catalogue: Arc<Catalogue>) -> Self {
        let opt_stop = Arc::new(opt_stop_table(&catalogue));
        App {
            replica: None,
            store,
            clock,
            catalogue,
            law: Arc::new(LawTable::builtin().unwrap_or_else(|e| {
                // The embedded table is validated by a core test; this cannot fail in a build
                // that passed its tests.
                panic!("catalogue/rules.toml: {e}")
            })),
            opt_stop,
            settings: Settings::default(),
            monitor_cache: Arc::default(),
            sent_kept: Arc::default(),
            hashing: Arc::new(tokio::sync::Semaphore::new(default_hashing_threads())),
            #[cfg(feature = "testing")]
            submit_gates: Arc::default(),
        }
    }

    /// Runs a password or PIN hash (or check) on a blocking thread, at most
    /// `default_hashing_threads` at a time; waits at most [`HASHING_WAIT`] for a turn.
    async fn hashing<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let permit = tokio::time::timeout(HASHING_WAIT, self.hashing.clone().acquire_owned())
            .await
            .map_err(|_| AppError::Busy)?
            .map_err(|_| AppError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|_| AppError::Busy)
    }

    async fn secret_matches(&self, secret: &str, phc: &str) -> Result<bool, AppError> {
        let (secret, phc) = (secret.to_string(), phc.to_string());
        self.hashing(move || secret_matches(&secret, &phc)).await
    }

    async fn hash_secret(&self, secret: &str) -> Result<String, AppError> {
        let secret = secret.to_string();
        self.hashing(move || hash_secret(&secret)).await?
    }

    /// The register's database for what the web layer keeps there of its own: browser
    /// sessions, strong logins in progress and the login throttle's windows, so that any
    /// process serving the register answers any request. The web layer calls only those
    /// methods of it; every read and write of the ledger goes through the app.
    pub fn web_sessions_store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// The store under the app, for tests that check what it recorded.
    #[cfg(feature = "testing")]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Builds an operation for the store, scoping the client's idempotency key to the user
    /// so that two users can never collide on a key.
    pub(crate) fn operation(
        &self,
        p: &Principal,
        key: &str,
        on_behalf_of: Option<PartyId>,
        command: Command,
        fingerprint: String,
    ) -> Result<Operation, AppError> {
        self.operation_with_key(p, scoped_key(p, key)?, on_behalf_of, command, fingerprint)
    }

    pub(crate) fn operation_with_key(
        &self,
        p: &Principal,
        idempotency_key: IdempotencyKey,
        on_behalf_of: Option<PartyId>,
        command: Command,
        fingerprint: String,
    ) -> Result<Operation, AppError> {
        let at = self.now();
        // Made by a delegate: the writer checks the delegation again on the state it
        // writes on, so that a revocation committed meanwhile refuses it (R-DELEGA-END).
        let delegate = on_behalf_of
            .filter(|party| !p.is_operator() && p.party != Some(*party))
            .map(|party| DelegateCheck {
                user: p.user_id,
                party,
                on: rome_date(at),
            });
        Ok(Operation {
            idempotency_key,
            acting_user: p.actor(),
            on_behalf_of,
            at,
            command,
            request_hash: Some(fingerprint),
            delegate,
            checks: Vec::new(),
        })
    }

    /// The first answer to a retried request. Checked before anything else, because the
    /// first request changed the state its own checks would now see (a ceded rata is no
    /// longer cedible): a retry must get the original answer, not a refusal.
    pub(crate) async fn replay(
        &self,
        p: &Principal,
        key: &str,
        fingerprint: &str,
    ) -> Result<Option<Receipt>, AppError> {
        self.replay_key(&scoped_key(p, key)?, fingerprint).await
    }

    pub(crate) async fn replay_key(
        &self,
        k: &IdempotencyKey,
        fingerprint: &str,
    ) -> Result<Option<Receipt>, AppError> {
        match self.store.stored_operation(k).await? {
            Some(s) if s.request_hash == fingerprint => Ok(Some(Receipt {
                replayed: true,
                ..s.receipt
            })),
            Some(_) => Err(AppError::Store(
                cessio_store::StoreError::IdempotencyConflict {
                    // The client's key, without the user scope the store keeps it under.
                    key: k
                        .as_str()
                        .split_once(':')
                        .map_or(k.as_str(), |(_, client)| client)
                        .to_string(),
                },
            )),
            None => Ok(None),
        }
    }

    pub(crate) async fn submit(&self, op: Operation) -> Result<Receipt, AppError> {
        #[cfg(feature = "testing")]
        {
            let gate = self
                .submit_gates
                .lock()
                .ok()
                .and_then(|mut g| g.remove(&op.acting_user));
            if let Some(gate) = gate {
                gate.arrived.notify_one();
                gate.release.notified().await;
            }
        }
        let party = op.on_behalf_of;
        let done = self.store.submit(op).await;
        // Marked whatever the outcome: an error may come after the commit.
        self.mark_write(party);
        Ok(done?)
    }

    /// Holds `p`'s next write after it is decided, before the writer sees it, until the
    /// gate is released: the window in which a competing request can change the state it
    /// was decided on.
    #[cfg(feature = "testing")]
    pub fn hold_next_submit(&self, p: &Principal) -> Arc<SubmitGate> {
        let gate = Arc::new(SubmitGate::default());
        if let Ok(mut g) = self.submit_gates.lock() {
            g.insert(p.actor(), gate.clone());
        }
        gate
    }

    // ----- identity -----

    /// Password login. The same error for an unknown user and a wrong password.
    pub async fn login(&self, username: &str, password: &str) -> Result<Principal, AppError> {
        let user = self.store.user_by_name(username).await?;
        let phc = user
            .as_ref()
            .map_or(DUMMY_HASH.as_str(), |u| u.password_hash.as_str());
        let ok = self.secret_matches(password, phc).await?;
        match user {
            Some(u) if ok => Ok(Principal::from_user(&u, LoginMethod::Password)),
            _ => Err(AppError::LoginFailed),
        }
    }

    /// A login already proven by a strong identity provider (SPID/CIE through OpenID
    /// Connect), mapped to a registered user.
    pub async fn login_strong(&self, username: &str) -> Result<Principal, AppError> {
        let user = self
            .store
            .user_by_name(username)
            .await?
            .ok_or(AppError::LoginFailed)?;
        Ok(Principal::from_user(&user, LoginMethod::Strong))
    }

    /// A strong login names a person by codice fiscale: it signs in the one user whose own
    /// party has that code. Several users for one person would make the choice arbitrary,
    /// so that is refused rather than guessed.
    pub async fn login_strong_cf(&self, fiscal_code: &str) -> Result<Principal, AppError> {
        let no_user = || {
            AppError::forbidden(format!(
                "nessuna utenza del registro è associata al codice fiscale {fiscal_code}: chiedere all'Agenzia di abilitarla"
            ))
        };
        let party = match self.party_by_cf(fiscal_code).await {
            Ok(p) => p,
            Err(AppError::CfUnknown { .. }) => return Err(no_user()),
            Err(e) => return Err(e),
        };
        let users = self.store.users_of_party(party.id).await?;
        match users.as_slice() {
            [] => Err(no_user()),
            [user] => Ok(Principal::from_user(user, LoginMethod::Strong)),
            _ => Err(AppError::forbidden(format!(
                "più utenze sono associate al codice fiscale {fiscal_code}: accedere con nome utente e password"
            ))),
        }
    }

    /// Creates a bearer token for programs; the token is shown once, only its digest is kept.
    pub async fn create_token(&self, p: &Principal, name: &str) -> Result<(i64, String), AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::invalid("name", "da 1 a 100 caratteri"));
        }
        let mut bytes = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        let token = format!("cessio_{}", cessio_core::ledger::hash_to_hex(&bytes));
        let id = self
            .store
            .create_token(p.user_id, &token_digest(&token), name, self.now())
            .await?;
        Ok((id, token))
    }

    pub async fn revoke_token(&self, p: &Principal, token: i64) -> Result<(), AppError> {
        if self
            .store
            .revoke_token(p.user_id, token, self.now())
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound { what: "Token" })
        }
    }

    pub async fn principal_for_token(&self, token: &str) -> Result<Principal, AppError> {
        let user = self
            .store
            .token_user(&token_digest(token))
            .await?
            .ok_or(AppError::Unauthenticated)?;
        Ok(Principal::from_user(&user, LoginMethod::Token))
    }

    /// Re-reads the user, so that a session sees role and PIN changes at once.
    pub async fn refresh(&self, p: &Principal) -> Result<Principal, AppError> {
        let u = self
            .store
            .user(p.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        Ok(Principal::from_user(&u, p.method))
    }

    /// The parties this user may act for: its own and those that delegated it (delegations
    /// live today only, read fresh so that a revocation or an end date takes effect at once).
    pub async fn parties_of(&self, p: &Principal) -> Result<Vec<Party>, AppError> {
        let today = self.today_rome();
        let mut ids: Vec<PartyId> = self
            .store
            .delegations(p.user_id)
            .await?
            .into_iter()
            .filter(|d| d.live_on(today))
            .map(|d| d.party)
            .collect();
        if let Some(own) = p.party {
            ids.insert(0, own);
        }
        ids.dedup();
        Ok(self.store.parties(&ids).await?)
    }

    /// Checks that the user may see a party's credits: its own, delegated (either scope,
    /// live today), or an operator.
    pub async fn authorize_view(&self, p: &Principal, party: PartyId) -> Result<(), AppError> {
        if p.is_operator() || p.party == Some(party) {
            return Ok(());
        }
        if self.live_delegation(p, party).await?.is_some() {
            return Ok(());
        }
        // Same answer whether or not the party exists, and for a delegation revoked or past
        // its end: no probing of the registry.
        Err(AppError::not_your_party())
    }

    /// Checks that the user may dispose of a party's credits: its own, or a delegation
    /// live today with scope disposizione (R-DELEGA-SCOPE). Operators change nothing
    /// except through their own audited functions (SPEC §2).
    pub async fn authorize_act(&self, p: &Principal, party: PartyId) -> Result<(), AppError> {
        if p.is_operator() {
            return Err(AppError::forbidden(
                "l'operatore non dispone dei crediti dei soggetti",
            ));
        }
        if p.party == Some(party) {
            return Ok(());
        }
        match self.live_delegation(p, party).await? {
            Some(d) if d.scope == DelegationScope::Disposizione => Ok(()),
            Some(_) => Err(AppError::Rule {
                rule: "R-DELEGA-SCOPE",
                code: "delegation_view_only",
                detail: "La delega ricevuta per questo soggetto è di sola consultazione: per disporre dei crediti serve una delega anche alla disposizione, che concede il titolare".into(),
            }),
            None => Err(AppError::not_your_party()),
        }
    }

    /// The PIN gate of every dispositive operation (SPEC §2). Strong logins pass; others
    /// need the PIN, and wrong PINs count towards the lock.
    pub async fn check_pin(&self, p: &Principal, pin: Option<&str>) -> Result<(), AppError> {
        if p.method == LoginMethod::Strong {
            return Ok(());
        }
        let max = self.settings.pin_max_failures;
        let user = self
            .store
            .user(p.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if user.pin_failures >= max {
            return Err(AppError::PinLocked {
                failures: user.pin_failures,
            });
        }
        let Some(pin) = pin.filter(|s| !s.is_empty()) else {
            return Err(AppError::PinRequired);
        };
        // Only wrong PINs count (SPEC §2), each atomically and never past the lock, so that
        // parallel wrong guesses cannot exceed it; a right PIN is accepted only if the lock
        // has not been reached meanwhile. A program with many requests in flight, all with
        // the right PIN, is therefore never locked out.
        if self.secret_matches(pin, &user.pin_hash).await? {
            return if self.store.pin_succeeded(user.id, max, self.now()).await? {
                Ok(())
            } else {
                Err(AppError::PinLocked { failures: max })
            };
        }
        let Some(failures) = self.store.pin_attempt(user.id, max, self.now()).await? else {
            return Err(AppError::PinLocked { failures: max });
        };
        if failures >= max {
            Err(AppError::PinLocked { failures })
        } else {
            Err(AppError::PinWrong {
                remaining: max - failures,
            })
        }
    }

    fn require_operator(p: &Principal) -> Result<(), AppError> {
        if p.is_operator() {
            Ok(())
        } else {
            Err(AppError::forbidden("funzione riservata all'operatore"))
        }
    }

    /// Creates an operator from the command line (`cessio operator add`, which is how an
    /// empty register gets its first one; the demo and the tests seed theirs the same way).
    /// The checks of [`App::create_user`] apply, and the audit log names the console.
    /// Refused, with nothing written, when a value is malformed or the username is taken.
    pub async fn bootstrap_operator(
        &self,
        username: &str,
        display_name: &str,
        password: &str,
        pin: &str,
    ) -> Result<i64, AppError> {
        self.create_user(
            &Self::console(),
            username,
            display_name,
            password,
            pin,
            None,
            Role::Operator,
        )
        .await
    }

    /// Whether a new user could have this name: well formed and not taken. A later
    /// creation checks both again (two creations at once cannot both have it).
    pub async fn check_new_username(&self, username: &str) -> Result<(), AppError> {
        let username = username.trim();
        check_username(username)?;
        match self.store.user_by_name(username).await? {
            Some(_) => Err(AppError::Store(cessio_store::StoreError::UserExists {
                username: username.to_string(),
            })),
            None => Ok(()),
        }
    }

    /// Whether the register has an operator, the one who can sign in and register the
    /// rest (see [`App::bootstrap_operator`]).
    pub async fn has_operator(&self) -> Result<bool, AppError> {
        Ok(self.store.has_operator().await?)
    }

    /// The principal of the command line on the server: an operator acting as the
    /// platform itself, recorded as `cessio-cli` in the history.
    pub fn console() -> Principal {
        Principal {
            user_id: 0,
            username: "cessio-cli".into(),
            display_name: "Console".into(),
            role: Role::Operator,
            party: None,
            method: LoginMethod::Strong,
        }
    }

    // ----- operator functions (F9 registry) -----

    /// Registers a party (F9). Audited as an operation of the operator.
    pub async fn register_party(
        &self,
        p: &Principal,
        key: &str,
        cf: &str,
        name: &str,
        kind: PartyKind,
    ) -> Result<Party, AppError> {
        Self::require_operator(p)?;
        let fp = fingerprint("register_party", None, &(cf, name, kind));
        let receipt = match self.replay(p, key, &fp).await? {
            Some(r) => r,
            None => {
                let cf = CodiceFiscale::parse(cf)?;
                let command = Command::RegisterParty(NewParty {
                    cf,
                    name: name.to_string(),
                    kind,
                });
                self.submit(self.operation(p, key, None, command, fp)?)
                    .await?
            }
        };
        let id = receipt
            .party
            .ok_or(AppError::NotFound { what: "Soggetto" })?;
        self.store
            .party(id)
            .await?
            .ok_or(AppError::NotFound { what: "Soggetto" })
    }

    /// Creates a user bound to a party (or an operator). Password and PIN are hashed here.
    #[expect(clippy::too_many_arguments, reason = "mirrors the operator's form")]
    pub async fn create_user(
        &self,
        p: &Principal,
        username: &str,
        display_name: &str,
        password: &str,
        pin: &str,
        party_cf: Option<&str>,
        role: Role,
    ) -> Result<i64, AppError> {
        Self::require_operator(p)?;
        let username = username.trim();
        check_username(username)?;
        check_password(password)?;
        check_pin_format(pin)?;
        let party = match party_cf {
            Some(cf) => Some(self.party_by_cf(cf).await?.id),
            None => None,
        };
        if role == Role::User && party.is_none() {
            return Err(AppError::invalid(
                "party",
                "un utente titolare deve essere legato al codice fiscale di un soggetto",
            ));
        }
        Ok(self
            .store
            .create_user(
                NewUser {
                    username: username.to_string(),
                    display_name: display_name.trim().to_string(),
                    password_hash: self.hash_secret(password).await?,
                    pin_hash: self.hash_secret(pin).await?,
                    party,
                    role,
                },
                &p.actor(),
                self.now(),
            )
            .await?)
    }

    /// The operator delegates a user for a party: scope disposizione with no end date, as
    /// before delegations had either. Nothing happens when that delegation is live already.
    pub async fn delegate(
        &self,
        p: &Principal,
        username: &str,
        party_cf: &str,
    ) -> Result<(), AppError> {
        self.delegate_with(p, username, party_cf, DelegationScope::Disposizione, None)
            .await
    }

    /// The operator delegates a user for a party with a scope and an optional last day.
    /// The operator's forms carry no idempotency key: an identical live delegation makes
    /// a repeat a no-op, and anything else is a new grant under a key of its own.
    pub async fn delegate_with(
        &self,
        p: &Principal,
        username: &str,
        party_cf: &str,
        scope: DelegationScope,
        until: Option<chrono::NaiveDate>,
    ) -> Result<(), AppError> {
        Self::require_operator(p)?;
        let user = self.user_named(username).await?;
        let party = self.party_by_cf(party_cf).await?;
        let today = self.today_rome();
        let same = self.store.delegations(user.id).await?.into_iter().any(|d| {
            d.party == party.id && d.live_on(today) && d.scope == scope && d.until == until
        });
        if same {
            return Ok(());
        }
        let key = operator_key("delegate");
        let change = (party.id, username, scope, until);
        self.grant(p, &key, delegation::Pin::OperatorForm, change)
            .await
            .map(|_| ())
    }

    pub async fn revoke_delegation(
        &self,
        p: &Principal,
        username: &str,
        party_cf: &str,
    ) -> Result<(), AppError> {
        Self::require_operator(p)?;
        let party = self.party_by_cf(party_cf).await?;
        let key = operator_key("revoke-delegation");
        self.revoke(p, &key, delegation::Pin::OperatorForm, party.id, username)
            .await
            .map(|_| ())
    }

    pub async fn unlock_pin(&self, p: &Principal, username: &str) -> Result<(), AppError> {
        Self::require_operator(p)?;
        let user = self.user_named(username).await?;
        Ok(self
            .store
            .pin_reset(user.id, Some(&p.actor()), self.now())
            .await?)
    }

    async fn user_named(&self, username: &str) -> Result<User, AppError> {
        self.store
            .user_by_name(username)
            .await?
            .ok_or(AppError::NotFound { what: "Utente" })
    }

    /// R-CF-EXISTS: well formed (R-CF) and registered.
    pub async fn party_by_cf(&self, cf: &str) -> Result<Party, AppError> {
        let cf = CodiceFiscale::parse(cf)?;
        self.store
            .party_by_cf(&cf)
            .await?
            .ok_or_else(|| AppError::CfUnknown {
                cf: cf.as_str().to_string(),
            })
    }
}
