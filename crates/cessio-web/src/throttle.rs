//! Login throttling: sliding one-minute windows of failed attempts per client address and
//! per client address with username, in bounded memory.
//!
//! An attempt is counted when it starts (so that concurrent attempts cannot all slip under
//! the limit) and forgiven when it succeeds: offices behind one address, or a program that
//! signs in often, are never throttled for signing in correctly.
//!
//! Keyed this way, a flood from one client is stopped whatever usernames it tries, and a
//! stranger guessing `banca`'s password exhausts only its own window for that name: the
//! owner, signing in from elsewhere, is never locked out. (A window per username alone would
//! let anyone lock any owner out, which is what this replaces.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The window every limit counts in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Limits and memory bound of the login throttle.
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Attempts on one username from one client within [`WINDOW`].
    pub per_client_and_user: usize,
    /// Attempts from one client, whatever the usernames, within [`WINDOW`].
    pub per_client: usize,
    /// Windows kept at most; past it the expired go first, then arbitrary ones.
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

/// A username is kept as 128 bits of its digest: a 1 MiB username costs what a short one does.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Key {
    Client(Client),
    ClientUser(Client, [u8; 16]),
}

fn user_digest(username: &str) -> [u8; 16] {
    let d = Sha256::digest(username.trim().to_lowercase().as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

#[derive(Debug)]
pub struct LoginThrottle {
    limits: LoginLimits,
    windows: Mutex<HashMap<Key, Vec<Instant>>>,
}

impl LoginThrottle {
    pub fn new(limits: LoginLimits) -> Self {
        LoginThrottle {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Records an attempt and allows it, or refuses it with the time until the oldest
    /// attempt in the full window expires. A refused attempt is not recorded, so a client
    /// that keeps trying is let in again as soon as its window has room.
    pub fn allow(&self, client: IpAddr, username: &str) -> Result<(), Duration> {
        let client = Client::from(client);
        let keys = [
            (Key::Client(client), self.limits.per_client),
            (
                Key::ClientUser(client, user_digest(username)),
                self.limits.per_client_and_user,
            ),
        ];
        let Ok(mut windows) = self.windows.lock() else {
            return Err(WINDOW);
        };
        let now = Instant::now();
        for (key, limit) in keys {
            if let Some(hits) = windows.get_mut(&key) {
                hits.retain(|t| now.duration_since(*t) < WINDOW);
                if hits.len() >= limit {
                    let oldest = hits.first().copied().unwrap_or(now);
                    return Err(WINDOW.saturating_sub(now.duration_since(oldest)));
                }
            }
        }
        for (key, _) in keys {
            if !windows.contains_key(&key) && windows.len() >= self.limits.max_entries {
                make_room(&mut windows, now, self.limits.max_entries);
            }
            windows.entry(key).or_default().push(now);
        }
        Ok(())
    }

    /// Forgets the attempt [`allow`](Self::allow) counted, once it has succeeded.
    pub fn forgive(&self, client: IpAddr, username: &str) {
        let client = Client::from(client);
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        for key in [
            Key::Client(client),
            Key::ClientUser(client, user_digest(username)),
        ] {
            if let Some(hits) = windows.get_mut(&key) {
                hits.pop();
                if hits.is_empty() {
                    windows.remove(&key);
                }
            }
        }
    }

    /// Windows kept now (for tests and metrics).
    pub fn entries(&self) -> usize {
        self.windows.lock().map_or(0, |w| w.len())
    }
}

/// Drops the expired windows; if none had expired, drops an arbitrary tenth, so that a
/// distributed flood costs a few attempts' accuracy, never unbounded memory.
fn make_room(windows: &mut HashMap<Key, Vec<Instant>>, now: Instant, max_entries: usize) {
    windows.retain(|_, hits| hits.last().is_some_and(|t| now.duration_since(*t) < WINDOW));
    if windows.len() >= max_entries {
        let drop: Vec<Key> = windows
            .keys()
            .take(windows.len() / 10 + 1)
            .copied()
            .collect();
        for k in drop {
            windows.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn a_stranger_cannot_lock_the_owner_out() {
        let t = LoginThrottle::new(LoginLimits::default());
        for _ in 0..10 {
            assert!(t.allow(ip("203.0.113.9"), "banca").is_ok());
        }
        assert!(t.allow(ip("203.0.113.9"), "banca").is_err());
        assert!(t.allow(ip("198.51.100.4"), "banca").is_ok());
    }

    #[test]
    fn successful_logins_are_not_counted() {
        let t = LoginThrottle::new(LoginLimits::default());
        for _ in 0..100 {
            assert!(t.allow(ip("203.0.113.9"), "studio").is_ok());
            t.forgive(ip("203.0.113.9"), "studio");
        }
        assert_eq!(t.entries(), 0);
    }

    #[test]
    fn one_client_is_limited_whatever_the_usernames() {
        let t = LoginThrottle::new(LoginLimits::default());
        let refused = (0..100)
            .filter(|i| t.allow(ip("203.0.113.9"), &format!("u{i}")).is_err())
            .count();
        assert_eq!(refused, 70);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix() {
        let t = LoginThrottle::new(LoginLimits::default());
        for i in 1..=30 {
            assert!(
                t.allow(ip(&format!("2001:db8::{i:x}")), &format!("u{i}"))
                    .is_ok()
            );
        }
        assert!(t.allow(ip("2001:db8::ffff"), "y").is_err());
        assert!(t.allow(ip("2001:db8:0:1::1"), "y").is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_many_keys() {
        let limits = LoginLimits {
            max_entries: 1_000,
            ..LoginLimits::default()
        };
        let t = LoginThrottle::new(limits);
        for i in 0..20_000u32 {
            let [a, b, c, d] = i.to_be_bytes();
            let _ = t.allow(IpAddr::from([10, a ^ b, c, d]), &"x".repeat(1 << 10));
        }
        assert!(t.entries() <= 1_002, "{} windows kept", t.entries());
    }
}
