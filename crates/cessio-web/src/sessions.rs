//! Browser sessions and strong logins in progress, kept through the store
//! (`cessio_store::sessions`) so that every process serving the register knows them: behind
//! a load balancer any process answers any request, and a restart signs no one out.
//!
//! The cookie carries 256 random bits; the store keeps their SHA-256 only. A session ends
//! after [`WebState::session_idle`] unused (wall-clock time, not the register's clock,
//! which tests and demos may fix in the past), at sign-out, or when its user signs in
//! more than `SessionLimits::per_user` times elsewhere (the least recently used goes).
//! Past `SessionLimits::total` live sessions a new sign-in is refused as busy rather than
//! sign anyone out.
//!
//! Using a session moves its end only when at least [`touch_every`] has passed since the
//! last move: a page view is a read, not a write, and a session may end up to that much
//! (at most a minute) before its idle time is quite over.
//!
//! The caps (`SessionLimits`) default to 20 live sessions per user and 200,000 in all,
//! with at most `STRONG_LOGINS_IN_PROGRESS` strong logins in progress. Sign-out deletes the
//! row, so every process refuses the cookie from the next request. Expired sessions,
//! strong logins and throttle windows are deleted by a sweep that sign-ins start, at most
//! once a minute per process.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cessio_app::{AppError, Principal};
use cessio_store::{NewSession, SecretKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{WebState, random_token, ui};

/// Expired rows are deleted by a sweep that runs at most this often, started by sign-ins.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// A strong login not completed within this time must start again.
pub(crate) const STRONG_LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
/// Strong logins in progress at once; beyond this new ones are refused rather than let
/// anonymous requests grow the database.
const STRONG_LOGINS_IN_PROGRESS: usize = 10_000;

/// What a session holds besides its notice (the store keeps it as JSON).
#[derive(Serialize, Deserialize)]
struct SessionData {
    principal: Principal,
    /// The synchronizer token every form of this session carries (CSRF).
    csrf: String,
}

/// A live session as a request sees it.
#[derive(Debug)]
pub(crate) struct LiveSession {
    pub principal: Principal,
    pub csrf: String,
    /// A message waits for the next page.
    pub notice: bool,
}

/// When the last sweep ran, shared by the clones of one [`WebState`].
#[derive(Debug)]
pub(crate) struct Sweeper(Mutex<Instant>);

impl Default for Sweeper {
    fn default() -> Self {
        Sweeper(Mutex::new(Instant::now()))
    }
}

/// How long after its last move a session's end is moved again.
pub(crate) fn touch_every(idle: Duration) -> Duration {
    (idle / 10).min(Duration::from_secs(60))
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl WebState {
    /// A new session under a new random id: a login never reuses an id the browser
    /// already had (no session fixation).
    pub(crate) async fn new_session(&self, principal: Principal) -> Result<String, AppError> {
        self.sweep_if_due();
        let id = random_token();
        let at = now();
        let data = serde_json::to_string(&SessionData {
            principal: principal.clone(),
            csrf: random_token(),
        })
        .map_err(|e| AppError::Store(cessio_store::StoreError::backend(e)))?;
        let created = self
            .app
            .web_sessions_store()
            .create_session(
                NewSession {
                    key: SecretKey::of(&id),
                    user: principal.user_id,
                    data,
                    at,
                    expires_at: later(at, self.session_idle),
                },
                self.session_limits,
            )
            .await?;
        if !created {
            tracing::warn!("sign-in refused: the live sessions' cap is reached");
            return Err(AppError::Busy);
        }
        Ok(id)
    }

    /// The live session under `id`, its end moved later when due.
    pub(crate) async fn live_session(&self, id: &str) -> Result<Option<LiveSession>, AppError> {
        let key = SecretKey::of(id);
        let at = now();
        let Some(stored) = self.app.web_sessions_store().session(&key, at).await? else {
            return Ok(None);
        };
        let Ok(data) = serde_json::from_str::<SessionData>(&stored.data) else {
            // Written by another version of the server: signing in again is the way out.
            return Ok(None);
        };
        let left = (stored.expires_at - at).to_std().unwrap_or_default();
        if left + touch_every(self.session_idle) < self.session_idle {
            self.app
                .web_sessions_store()
                .touch_session(&key, at, later(at, self.session_idle))
                .await?;
        }
        Ok(Some(LiveSession {
            principal: data.principal,
            csrf: data.csrf,
            notice: stored.notice.is_some(),
        }))
    }

    /// Who is signed in under `id`, if the session is live. A store that cannot answer
    /// counts as no session for the pages that only adapt to one (the login page, the guide).
    pub(crate) async fn session(&self, id: &str) -> Option<Principal> {
        match self.live_session(id).await {
            Ok(s) => s.map(|s| s.principal),
            Err(e) => {
                tracing::warn!(error = %e, "session lookup failed");
                None
            }
        }
    }

    pub(crate) async fn end_session(&self, id: &str) -> Result<(), AppError> {
        self.app
            .web_sessions_store()
            .end_session(&SecretKey::of(id))
            .await?;
        Ok(())
    }

    /// Leaves a message for the next page the session shows.
    pub(crate) async fn leave_notice(&self, id: &str, notice: &ui::Notice) {
        let stored = serde_json::to_string(notice).ok();
        if let Err(e) = self
            .app
            .web_sessions_store()
            .set_session_notice(&SecretKey::of(id), stored, now())
            .await
        {
            // The operation itself is done: only its confirmation is not shown.
            tracing::warn!(error = %e, "notice not kept");
        }
    }

    /// Takes the message left for this page, once.
    pub(crate) async fn take_notice(&self, id: &str) -> Option<ui::Notice> {
        match self
            .app
            .web_sessions_store()
            .take_session_notice(&SecretKey::of(id), now())
            .await
        {
            Ok(n) => n.and_then(|n| serde_json::from_str(&n).ok()),
            Err(e) => {
                tracing::warn!(error = %e, "notice not read");
                None
            }
        }
    }

    /// Records a strong login in progress under a new random id (its cookie); `None`
    /// when too many are in progress.
    pub(crate) async fn start_strong_login(
        &self,
        pending: &ui::PendingStrongLogin,
    ) -> Result<Option<String>, AppError> {
        self.sweep_if_due();
        let id = random_token();
        let data = serde_json::to_string(pending)
            .map_err(|e| AppError::Store(cessio_store::StoreError::backend(e)))?;
        let at = now();
        let started = self
            .app
            .web_sessions_store()
            .start_login_flow(
                &SecretKey::of(&id),
                data,
                later(at, STRONG_LOGIN_TTL),
                at,
                STRONG_LOGINS_IN_PROGRESS,
            )
            .await?;
        Ok(started.then_some(id))
    }

    /// Takes the strong login in progress under `id`, once, unless it has expired.
    pub(crate) async fn take_strong_login(
        &self,
        id: &str,
    ) -> Result<Option<ui::PendingStrongLogin>, AppError> {
        let data = self
            .app
            .web_sessions_store()
            .take_login_flow(&SecretKey::of(id), now())
            .await?;
        Ok(data.and_then(|d| serde_json::from_str(&d).ok()))
    }

    /// Deletes expired sessions, strong logins and throttle windows, in the background, at
    /// most every [`SWEEP_EVERY`] per process (any process's sweep serves all).
    fn sweep_if_due(&self) {
        {
            let Ok(mut last) = self.sweeper.0.lock() else {
                return;
            };
            if last.elapsed() < SWEEP_EVERY {
                return;
            }
            *last = Instant::now();
        }
        let store = self.app.web_sessions_store();
        let throttle = self.login_throttle.clone();
        tokio::spawn(async move {
            match store.sweep_expired(now()).await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "expired sessions swept"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweeping expired sessions failed"),
            }
            throttle.trim().await;
        });
    }
}
