//! What Cessio's tests share, written once: a seeded random generator ([`SplitMix64`]),
//! knobs read from the environment ([`env_or`]), the PostgreSQL test database
//! ([`postgres_url`]), synthetic codici fiscali ([`entity_cf`]) and a small HTTP/1.1 client
//! ([`http`]). Only tests depend on it.

pub mod http;
mod rng;

pub use rng::SplitMix64;

use cessio_core::cf::CodiceFiscale;

/// The value of the environment variable `name` parsed as `T`, or `default` when it is
/// unset or does not parse: how the long runs are scaled up from the command line.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The PostgreSQL database of the tests (`CESSIO_TEST_DATABASE_URL`), or `None` when it is
/// not set, said on standard error. In CI the PostgreSQL halves may not be skipped.
pub fn postgres_url() -> Option<String> {
    match std::env::var("CESSIO_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CESSIO_TEST_DATABASE_URL must be set in CI: the PostgreSQL tests may not be skipped"
            );
            // Written to stderr itself, which the test harness does not capture (it captures
            // `eprintln!`): the PostgreSQL halves never pass in silence. Once per test binary.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped: the PostgreSQL half of these tests (CESSIO_TEST_DATABASE_URL is not set)"
                );
            });
            None
        }
    }
}

/// A valid 11-digit codice fiscale for test party `n` (1 ≤ n < 10,000,000).
///
/// # Panics
/// When `n` is out of that range: a test asked for a party no codice can name.
pub fn entity_cf(n: u32) -> CodiceFiscale {
    CodiceFiscale::synthetic_entity(n)
        .unwrap_or_else(|| panic!("no synthetic codice fiscale for party {n}"))
}
