//! The HTTP layer's shared state and limits: the app, sessions' settings, the login throttle.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use cessio_app::{App, AppError};
use cessio_store::SessionLimits;

use crate::{LoginLimits, LoginThrottle, Metrics, Problem, sessions, ui};

/// Requests bigger than this are refused before they are read (bulk imports go through
/// the CLI or their own endpoint).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Idle browser sessions end after this.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);
/// A request (its body included) not answered within this time gets 408: a slow or stalled
/// client cannot hold a connection and its worker forever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) const SESSION_COOKIE: &str = "cessio_session";

/// Shared state of the HTTP layer: the app, and how this process serves it. Sessions,
/// strong logins in progress and the login throttle's counts are in the store
/// (`sessions.rs`, `throttle.rs`), shared by every process serving the register.
#[derive(Clone, Debug)]
pub struct WebState {
    pub app: App,
    pub(crate) login_throttle: Arc<LoginThrottle>,
    /// Proxies whose `X-Forwarded-For` names the client (the address they forward for);
    /// from anyone else the header is ignored, since a client could write any address.
    pub trusted_proxies: Vec<IpAddr>,
    pub metrics: Arc<Metrics>,
    /// Mark cookies `Secure` (when served over TLS, directly or behind a proxy).
    pub secure_cookies: bool,
    /// A session unused for this long ends ([`SESSION_IDLE`] unless changed).
    pub session_idle: Duration,
    /// Live sessions per user and in all.
    pub session_limits: SessionLimits,
    /// See [`REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// Strong login (SPID/CIE through OpenID Connect), when an issuer is configured.
    pub oidc: Option<Arc<ui::StrongLogin>>,
    pub(crate) sweeper: Arc<sessions::Sweeper>,
}

impl WebState {
    pub fn new(app: App) -> Self {
        WebState {
            login_throttle: Arc::new(LoginThrottle::new(
                app.web_sessions_store(),
                LoginLimits::default(),
            )),
            app,
            trusted_proxies: Vec::new(),
            metrics: Arc::new(Metrics::default()),
            secure_cookies: false,
            session_idle: SESSION_IDLE,
            session_limits: SessionLimits::default(),
            request_timeout: REQUEST_TIMEOUT,
            oidc: None,
            sweeper: Arc::default(),
        }
    }

    /// Replaces the login throttle's limits.
    pub fn with_login_limits(mut self, limits: LoginLimits) -> Self {
        self.login_throttle = Arc::new(LoginThrottle::new(self.app.web_sessions_store(), limits));
        self
    }

    /// Counts a login attempt of `client` on `username`; refuses it, with the seconds to
    /// wait, beyond the throttle's limits. A successful attempt is then forgiven
    /// ([`Self::login_succeeded`]).
    pub(crate) async fn allow_login(
        &self,
        client: IpAddr,
        username: &str,
    ) -> Result<Result<(), u64>, AppError> {
        Ok(self
            .login_throttle
            .allow(client, username)
            .await?
            .map_err(|wait| wait.as_secs().max(1)))
    }

    pub(crate) async fn login_succeeded(&self, client: IpAddr, username: &str) {
        if let Err(e) = self.login_throttle.forgive(client, username).await {
            tracing::warn!(error = %e, "a successful login was not forgiven by the throttle");
        }
    }
}

/// The answer to a login refused by the throttle.
pub(crate) fn too_many_attempts(seconds: u64) -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("Troppi tentativi di accesso: riprovare tra {seconds} secondi"),
    )
    .retry_after(seconds)
}

/// 256 random bits as hex: session ids, CSRF tokens, idempotency keys of forms.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    cessio_core::ledger::hash_to_hex(&bytes)
}
