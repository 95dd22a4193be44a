//! What the tool's PostgreSQL tests share: the server to use, and cleaning up after.

#![allow(dead_code, reason = "each test file uses part of it")]
#![expect(clippy::unwrap_used, reason = "tests")]

/// The PostgreSQL server of `CESSIO_TEST_DATABASE_URL`; `None` (the test skips, saying so)
/// only outside CI, where the suite must run.
pub fn postgres_url() -> Option<String> {
    match std::env::var("CESSIO_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CESSIO_TEST_DATABASE_URL must be set in CI"
            );
            eprintln!("skipped: CESSIO_TEST_DATABASE_URL is not set");
            None
        }
    }
}

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
