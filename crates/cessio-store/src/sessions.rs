//! What the web layer keeps between requests, in the database rather than in a process:
//! browser sessions, strong logins (OpenID Connect) between the redirect and the return,
//! and the login throttle's counters. Any process serving the register sees the same
//! state, so a load balancer needs no sticky sessions and a restart signs no one out.
//!
//! The store keeps only the SHA-256 of a cookie's value ([`SecretKey`]): reading the
//! database does not give away a live session. What a session or a login in progress
//! carries (`data`) is the web layer's own JSON; the store does not read it.
//!
//! Every row expires. Reads ignore expired rows, so they need not be deleted at once;
//! [`crate::Store::sweep_expired`] deletes them, and the caps bound the rows in between:
//! sessions per user (the least recently used go first), sessions in all and logins in
//! progress in all (new ones are refused: no one is signed out by someone else's logins),
//! and the throttle's windows ([`crate::Store::trim_login_attempts`]).
//!
//! The SQL is written once here for both backends, with `placeholder(n)` spelling the
//! n-th parameter (`?n` on SQLite, `$n` on PostgreSQL); times are microseconds since the
//! epoch, as in the rest of the schema.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// A secret sent to a browser (a session cookie, a strong login's cookie) as the store
/// keys it: the SHA-256 of the value, in hex. The only way in is [`SecretKey::of`], so the
/// value itself cannot reach the database by mistake.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn of(secret: &str) -> Self {
        SecretKey(cessio_core::ledger::hash_to_hex(&Sha256::digest(
            secret.as_bytes(),
        )))
    }

    /// The hash, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Even the hash names a live session to whoever can query the table.
        f.write_str("SecretKey(..)")
    }
}

/// A session to record at sign-in.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub key: SecretKey,
    pub user: i64,
    /// The web layer's JSON (who signed in, the form token).
    pub data: String,
    pub at: DateTime<Utc>,
    /// When it ends unless used again ([`crate::Store::touch_session`]).
    pub expires_at: DateTime<Utc>,
}

/// How many sessions may be live at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// Per user: a new sign-in past it ends the user's least recently used session.
    pub per_user: usize,
    /// In all: past it new sign-ins are refused until sessions expire or end.
    pub total: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            per_user: 20,
            total: 200_000,
        }
    }
}

/// A live session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSession {
    pub user: i64,
    pub data: String,
    /// The message left for the next page, if any (the web layer's JSON).
    pub notice: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// One login attempt as the throttle's counter took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginAttempt {
    /// Counted: the key's window (started at `window_start`) now holds `attempts`.
    Counted {
        window_start: DateTime<Utc>,
        attempts: u32,
    },
    /// The key's window is full: nothing was counted.
    Refused { window_start: DateTime<Utc> },
}

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or_default()
}

/// Records a session unless `total` live ones exist: key, user, data, at, expires, total.
/// Returns a row when recorded.
pub fn create_session_sql(placeholder: impl Fn(usize) -> String) -> String {
    let p: Vec<String> = (1..=6).map(placeholder).collect();
    format!(
        "INSERT INTO web_sessions (token_hash, user_id, data, created_at, expires_at)
         SELECT CAST({} AS TEXT), CAST({} AS BIGINT), CAST({} AS TEXT), CAST({} AS BIGINT), CAST({} AS BIGINT)
          WHERE (SELECT COUNT(*) FROM web_sessions WHERE expires_at > {}) < {}
         RETURNING id",
        p[0], p[1], p[2], p[3], p[4], p[3], p[5]
    )
}

/// Ends the user's sessions past the `per_user` most recently used: user, per_user.
pub fn evict_sessions_sql(placeholder: impl Fn(usize) -> String) -> String {
    let (u, n) = (placeholder(1), placeholder(2));
    // LIMIT is required before OFFSET on SQLite; no user holds 2^62 sessions.
    format!(
        "DELETE FROM web_sessions WHERE id IN (
           SELECT id FROM web_sessions WHERE user_id = {u}
            ORDER BY expires_at DESC, id DESC LIMIT 4611686018427387904 OFFSET {n})"
    )
}

/// A live session: key, now.
pub fn session_sql(placeholder: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT user_id, data, notice, expires_at FROM web_sessions WHERE token_hash = {} AND expires_at > {}",
        placeholder(1),
        placeholder(2)
    )
}

/// Moves a live session's end later (never earlier): key, now, expires.
pub fn touch_session_sql(placeholder: impl Fn(usize) -> String) -> String {
    let (k, now, e) = (placeholder(1), placeholder(2), placeholder(3));
    format!(
        "UPDATE web_sessions SET expires_at = {e} WHERE token_hash = {k} AND expires_at > {now} AND expires_at < {e}"
    )
}

/// Leaves (or clears) a live session's notice: key, notice, now.
pub fn set_notice_sql(placeholder: impl Fn(usize) -> String) -> String {
    format!(
        "UPDATE web_sessions SET notice = {} WHERE token_hash = {} AND expires_at > {}",
        placeholder(2),
        placeholder(1),
        placeholder(3)
    )
}

/// Ends a session: key.
pub fn end_session_sql(placeholder: impl Fn(usize) -> String) -> String {
    format!(
        "DELETE FROM web_sessions WHERE token_hash = {}",
        placeholder(1)
    )
}

/// Records a login in progress unless `cap` live ones exist: key, data, expires, now, cap.
pub fn start_login_flow_sql(placeholder: impl Fn(usize) -> String) -> String {
    let p: Vec<String> = (1..=5).map(placeholder).collect();
    format!(
        "INSERT INTO login_flows (key_hash, data, expires_at)
         SELECT CAST({} AS TEXT), CAST({} AS TEXT), CAST({} AS BIGINT)
          WHERE (SELECT COUNT(*) FROM login_flows WHERE expires_at > {}) < {}
         RETURNING expires_at",
        p[0], p[1], p[2], p[3], p[4]
    )
}

/// Takes a login in progress, once: key. Returns its data and end.
pub fn take_login_flow_sql(placeholder: impl Fn(usize) -> String) -> String {
    format!(
        "DELETE FROM login_flows WHERE key_hash = {} RETURNING data, expires_at",
        placeholder(1)
    )
}

/// Deletes what has expired: sessions and logins in progress ended by `now` (1st).
pub fn sweep_sql(placeholder: impl Fn(usize) -> String) -> [String; 2] {
    let now = placeholder(1);
    [
        format!("DELETE FROM web_sessions WHERE expires_at <= {now}"),
        format!("DELETE FROM login_flows WHERE expires_at <= {now}"),
    ]
}

/// Counts an attempt under a key unless its live window is full: key, now, windows
/// started at or before this have expired, limit. Returns the window's start and count
/// when counted.
pub fn count_attempt_sql(placeholder: impl Fn(usize) -> String) -> String {
    let (k, now, old, limit) = (
        placeholder(1),
        placeholder(2),
        placeholder(3),
        placeholder(4),
    );
    // Every SET expression reads the row as it was, on both backends.
    format!(
        "INSERT INTO login_attempts AS a (key, window_start, attempts) VALUES ({k}, {now}, 1)
         ON CONFLICT (key) DO UPDATE SET
           attempts = CASE WHEN a.window_start <= {old} THEN 1 ELSE a.attempts + 1 END,
           window_start = CASE WHEN a.window_start <= {old} THEN {now} ELSE a.window_start END
         WHERE a.window_start <= {old} OR a.attempts < {limit}
         RETURNING window_start, attempts"
    )
}

/// The start of a key's window: key.
pub fn attempt_window_sql(placeholder: impl Fn(usize) -> String) -> String {
    format!(
        "SELECT window_start FROM login_attempts WHERE key = {}",
        placeholder(1)
    )
}

/// Takes back one attempt counted in the window that started then: key, window start.
pub fn uncount_attempt_sql(placeholder: impl Fn(usize) -> String) -> String {
    format!(
        "UPDATE login_attempts SET attempts = attempts - 1 WHERE key = {} AND window_start = {} AND attempts > 0",
        placeholder(1),
        placeholder(2)
    )
}

/// Forgives one attempt under each of `keys` keys (a login that succeeded), in two
/// statements run in order: windows left empty (or expired) go, the others lose one.
/// The keys, then expired-at-or-before.
pub fn forgive_attempts_sql(placeholder: impl Fn(usize) -> String, keys: usize) -> [String; 2] {
    let list = (1..=keys).map(&placeholder).collect::<Vec<_>>().join(", ");
    let old = placeholder(keys + 1);
    [
        format!(
            "DELETE FROM login_attempts WHERE key IN ({list}) AND (attempts <= 1 OR window_start <= {old})"
        ),
        format!("UPDATE login_attempts SET attempts = attempts - 1 WHERE key IN ({list})"),
    ]
}

/// Trimming the throttle's windows: the expired go (1st: expired at or before), then the
/// oldest beyond what is kept (1st: how many to drop), and the count of what is left.
pub fn trim_attempts_sql(placeholder: impl Fn(usize) -> String) -> [String; 3] {
    let p = placeholder(1);
    [
        format!("DELETE FROM login_attempts WHERE window_start <= {p}"),
        format!(
            "DELETE FROM login_attempts WHERE key IN (SELECT key FROM login_attempts ORDER BY window_start, key LIMIT {p})"
        ),
        "SELECT COUNT(*) FROM login_attempts".to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_hash_never_the_secret() {
        let k = SecretKey::of("abc");
        assert_eq!(
            k.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!format!("{k:?}").contains("ba78"));
    }
}
