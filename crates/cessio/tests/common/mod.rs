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
