//! What the binary's PostgreSQL tests share: the server to use, and cleaning up after.

#![allow(dead_code, reason = "each test file uses part of it")]
#![expect(clippy::unwrap_used, reason = "tests")]

#[allow(unused_imports, reason = "each test file uses part of it")]
pub use cessio_test_support::postgres_url;

/// Drops a test's own schema once it is done.
pub async fn drop_schema(url: &str, schema: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .unwrap();
}

/// Opens the register at `url` (`sqlite://…` or a PostgreSQL URL, in `schema`) as the
/// binary would.
pub async fn open_store(
    url: &str,
    schema: Option<&str>,
) -> std::sync::Arc<dyn cessio_store::Store> {
    use cessio_store::WriteConfig;
    if url.starts_with("sqlite://") {
        std::sync::Arc::new(
            cessio_store_sqlite::SqliteStore::open_url(url, WriteConfig::default()).unwrap(),
        )
    } else {
        std::sync::Arc::new(
            cessio_store_postgres::PgStore::connect(url, schema, WriteConfig::default())
                .await
                .unwrap(),
        )
    }
}

/// A fresh demo register served by the `cessio` binary on a free port, with the clock the
/// journeys are written for; stopped when dropped.
pub struct DemoServer {
    child: std::process::Child,
    pub url: String,
}

impl DemoServer {
    pub fn start(db: &std::path::Path) -> DemoServer {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cessio"))
            .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
            .args(["--database-url", &format!("sqlite://{}", db.display())])
            .args(["--clock", "2025-02-03T10:00:00"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Dropped (and so killed) should the server not come up.
        let mut server = DemoServer {
            child,
            url: String::new(),
        };
        let mut lines = BufReader::new(stdout).lines();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        server.url = loop {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not start"
            );
            let line = lines
                .next()
                .expect("the server exited before listening")
                .unwrap();
            if let Some(rest) = line.strip_prefix("Cessio in ascolto su ") {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_string();
            }
        };
        // Keep draining the server's output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        server
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
