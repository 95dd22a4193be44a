//! Opening the register a tool works on: by the same flags and variables as `cessio`,
//! whose code it is.

pub use cessio::register::{DbArgs, open};

use anyhow::Result;

/// Drops a benchmark's PostgreSQL schema, which it made its own.
pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await?;
    Ok(())
}
