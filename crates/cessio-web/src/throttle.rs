//! Login throttling: one-minute windows of failed attempts per client address and per
//! client address with username, counted in the database (`cessio_store::sessions`), so
//! that every process serving the register counts the same attempts.
//!
//! An attempt is counted when it starts (so that concurrent attempts cannot all slip under
//! the limit) and forgiven when it succeeds: offices behind one address, or a program that
//! signs in often, are never throttled for signing in correctly.
//!
//! Keyed this way, a flood from one client is stopped whatever usernames it tries, and a
//! stranger guessing `banca`'s password exhausts only its own window for that name: the
//! owner, signing in from elsewhere, is never locked out. (A window per username alone would
//! let anyone lock any owner out, which is what this replaces.)
//!
//! A window opens at a key's first attempt and lasts [`WINDOW`]; a full window refuses
//! until it is over, then the next attempt opens a new one. (A log of every attempt's time
//! would give a sliding window, at a row per attempt; a counter per key is one row, and at
//! worst lets twice the limit through around the moment one window ends and the next
//! opens.) Each attempt is a write (an upsert per key), which is small beside the password
//! hash a login costs. The rows are bounded: every tenth of `max_entries` new windows, the
//! expired windows go and then the oldest beyond nine tenths of it.
//!
//! A refusal is remembered in the process until its window is over, so that a client
//! hammering a full window is answered from memory: a flood costs the database one
//! statement per key and window, not one per request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cessio_store::{LoginAttempt, Store, StoreError};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// The window every limit counts in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Refusals remembered in the process at most (each a key and an instant).
const REFUSALS_KEPT: usize = 10_000;

/// Limits and memory bound of the login throttle.
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Attempts on one username from one client within [`WINDOW`].
    pub per_client_and_user: usize,
    /// Attempts from one client, whatever the usernames, within [`WINDOW`].
    pub per_client: usize,
    /// Windows kept at most; past it the expired go first, then the oldest.
    pub max_entries: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_client_and_user: 10,
            per_client: 30,
            max_entries: 100_000,
        }
    }
}

/// A client as the throttle counts it: an IPv4 address, or an IPv6 /64 (one subscriber's
/// allocation, which a single attacker can otherwise rotate through at will).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Client {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Client::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Client::V6(prefix)
                }
            },
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Client {
    fn key(self) -> String {
        match self {
            Client::V4(a) => format!("4:{}", hex(&a)),
            Client::V6(p) => format!("6:{}", hex(&p)),
        }
    }
}

/// A username is kept as 128 bits of its digest: a 1 MiB username costs what a short one
/// does, and the table names no one.
fn user_digest(username: &str) -> [u8; 16] {
    let d = Sha256::digest(username.trim().to_lowercase().as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The two keys of an attempt with their limits: the client's, then the client's with
/// the username.
fn keys(limits: &LoginLimits, client: IpAddr, username: &str) -> [(String, usize); 2] {
    let client = Client::from(client).key();
    let with_user = format!("{client}:{}", hex(&user_digest(username)));
    [
        (client, limits.per_client),
        (with_user, limits.per_client_and_user),
    ]
}

fn ago(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[derive(Debug)]
pub struct LoginThrottle {
    limits: LoginLimits,
    store: Arc<dyn Store>,
    /// Windows this process opened since it last trimmed.
    opened: AtomicUsize,
    /// Keys whose window was found full, with when it is over.
    refused: Mutex<HashMap<String, Instant>>,
}

impl LoginThrottle {
    pub fn new(store: Arc<dyn Store>, limits: LoginLimits) -> Self {
        LoginThrottle {
            limits,
            store,
            opened: AtomicUsize::new(0),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// Records an attempt and allows it, or refuses it with the time until the full
    /// window is over. A refused attempt is not recorded, so a client that keeps trying is
    /// let in again as soon as its window is over.
    pub async fn allow(
        &self,
        client: IpAddr,
        username: &str,
    ) -> Result<Result<(), Duration>, StoreError> {
        let keys = keys(&self.limits, client, username);
        if let Some(wait) = self.still_refused(&keys) {
            return Ok(Err(wait));
        }
        let now = Utc::now();
        let expired = ago(now, WINDOW);
        let mut counted: Vec<(String, DateTime<Utc>)> = Vec::with_capacity(2);
        for (key, limit) in keys {
            let limit = u32::try_from(limit).unwrap_or(u32::MAX);
            match self
                .store
                .count_login_attempt(&key, limit, now, expired)
                .await?
            {
                LoginAttempt::Counted {
                    window_start,
                    attempts,
                } => {
                    if attempts == 1 {
                        self.opened_one().await;
                    }
                    counted.push((key, window_start));
                }
                LoginAttempt::Refused { window_start } => {
                    // Refused by this key: the attempt does not count under the others.
                    for (key, start) in &counted {
                        self.store.uncount_login_attempt(key, *start).await?;
                    }
                    let over =
                        window_start + chrono::Duration::from_std(WINDOW).unwrap_or_default();
                    let wait = (over - now).to_std().unwrap_or_default();
                    self.remember_refusal(key, wait);
                    return Ok(Err(wait));
                }
            }
        }
        Ok(Ok(()))
    }

    /// The wait left on a refusal remembered for one of the keys, if any.
    fn still_refused(&self, keys: &[(String, usize)]) -> Option<Duration> {
        let refused = self.refused.lock().ok()?;
        let now = Instant::now();
        keys.iter()
            .filter_map(|(k, _)| refused.get(k))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max()
    }

    fn remember_refusal(&self, key: String, wait: Duration) {
        let Ok(mut refused) = self.refused.lock() else {
            return;
        };
        if refused.len() >= REFUSALS_KEPT {
            let now = Instant::now();
            refused.retain(|_, until| *until > now);
            if refused.len() >= REFUSALS_KEPT {
                // Forgetting only sends those clients back to the database.
                refused.clear();
            }
        }
        refused.insert(key, Instant::now() + wait);
    }

    /// Forgets the attempt [`allow`](Self::allow) counted, once it has succeeded.
    pub async fn forgive(&self, client: IpAddr, username: &str) -> Result<(), StoreError> {
        let keys: Vec<String> = keys(&self.limits, client, username)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        self.store
            .forgive_login_attempts(&keys, ago(Utc::now(), WINDOW))
            .await
    }

    /// Windows kept now, the expired dropped first (for tests and metrics).
    pub async fn entries(&self) -> usize {
        self.store
            .trim_login_attempts(ago(Utc::now(), WINDOW), usize::MAX)
            .await
            .unwrap_or(0)
    }

    /// Drops the expired windows, then the oldest beyond nine tenths of the bound.
    pub async fn trim(&self) {
        let keep = self.limits.max_entries - self.limits.max_entries / 10;
        if let Err(e) = self
            .store
            .trim_login_attempts(ago(Utc::now(), WINDOW), keep)
            .await
        {
            tracing::warn!(error = %e, "trimming the login throttle failed");
        }
    }

    /// Every tenth of the bound in new windows, the table is trimmed: a distributed flood
    /// costs a few attempts' accuracy, never unbounded rows.
    async fn opened_one(&self) {
        let every = (self.limits.max_entries / 10).max(1);
        if self.opened.fetch_add(1, Ordering::Relaxed) + 1 >= every {
            self.opened.store(0, Ordering::Relaxed);
            self.trim().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    /// A throttle on a fresh SQLite store (the contract suite runs the same statements on
    /// PostgreSQL).
    fn throttle(limits: LoginLimits) -> LoginThrottle {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cessio-throttle-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("t{n}.db"));
        let _ = std::fs::remove_file(&path);
        let store =
            cessio_store_sqlite::SqliteStore::open(&path, cessio_store::WriteConfig::default())
                .map_err(|e| e.to_string());
        match store {
            Ok(s) => LoginThrottle::new(Arc::new(s), limits),
            Err(e) => panic!("test store: {e}"),
        }
    }

    async fn allowed(t: &LoginThrottle, client: &str, user: &str) -> bool {
        matches!(t.allow(ip(client), user).await, Ok(Ok(())))
    }

    #[tokio::test]
    async fn a_stranger_cannot_lock_the_owner_out() {
        let t = throttle(LoginLimits::default());
        for _ in 0..10 {
            assert!(allowed(&t, "203.0.113.9", "banca").await);
        }
        assert!(!allowed(&t, "203.0.113.9", "banca").await);
        assert!(allowed(&t, "198.51.100.4", "banca").await);
    }

    #[tokio::test]
    async fn successful_logins_are_not_counted() {
        let t = throttle(LoginLimits::default());
        for _ in 0..100 {
            assert!(allowed(&t, "203.0.113.9", "studio").await);
            assert!(t.forgive(ip("203.0.113.9"), "studio").await.is_ok());
        }
        assert_eq!(t.entries().await, 0);
    }

    #[tokio::test]
    async fn one_client_is_limited_whatever_the_usernames() {
        let t = throttle(LoginLimits::default());
        let mut refused = 0;
        for i in 0..100 {
            refused += usize::from(!allowed(&t, "203.0.113.9", &format!("u{i}")).await);
        }
        assert_eq!(refused, 70);
    }

    #[tokio::test]
    async fn a_refusal_says_how_long_to_wait() {
        let t = throttle(LoginLimits::default());
        for _ in 0..10 {
            assert!(allowed(&t, "203.0.113.9", "banca").await);
        }
        let wait = t.allow(ip("203.0.113.9"), "banca").await;
        assert!(
            matches!(wait, Ok(Err(w)) if w > Duration::from_secs(50) && w <= WINDOW),
            "{wait:?}"
        );
    }

    #[tokio::test]
    async fn ipv6_clients_are_counted_by_their_64_prefix() {
        let t = throttle(LoginLimits::default());
        for i in 1..=30 {
            assert!(allowed(&t, &format!("2001:db8::{i:x}"), &format!("u{i}")).await);
        }
        assert!(!allowed(&t, "2001:db8::ffff", "y").await);
        assert!(allowed(&t, "2001:db8:0:1::1", "y").await);
    }

    /// Each attempt is a durable write on SQLite (synchronous=FULL), so the flood here is
    /// smaller than the bound's default; the bound works the same at any size.
    #[tokio::test]
    async fn rows_stay_bounded_under_many_keys() {
        let limits = LoginLimits {
            max_entries: 100,
            ..LoginLimits::default()
        };
        let t = throttle(limits);
        let mut most = 0;
        for i in 0..1_000u32 {
            let [_, _, c, d] = i.to_be_bytes();
            let _ = t
                .allow(IpAddr::from([10, 0, c, d]), &"x".repeat(1 << 10))
                .await;
            if i % 25 == 0 {
                most = most.max(t.entries().await);
            }
        }
        most = most.max(t.entries().await);
        assert!(most <= 100, "{most} windows kept");
    }
}
