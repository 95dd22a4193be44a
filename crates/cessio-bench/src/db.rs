//! Opening the register a tool works on, by the same flags and variables as `cessio`.

use std::sync::Arc;

use anyhow::{Context, Result};
use cessio_app::App;
use cessio_core::catalogue::Catalogue;
use cessio_core::time::SystemClock;
use cessio_store::{BackendKind, Store, WriteConfig};
use cessio_store_postgres::PgStore;
use cessio_store_sqlite::SqliteStore;

/// Where the register is: the URL's scheme picks the backend.
#[derive(clap::Args, Debug)]
pub struct DbArgs {
    #[arg(
        long,
        env = "CESSIO_DATABASE_URL",
        default_value = "sqlite://cessio.db"
    )]
    pub database_url: String,
    /// PostgreSQL schema to work in (default: the connection's search_path).
    #[arg(long, env = "CESSIO_DATABASE_SCHEMA")]
    pub schema: Option<String>,
}

impl DbArgs {
    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        open(
            &self.database_url,
            self.schema.as_deref(),
            WriteConfig::default(),
        )
        .await
    }
}

pub async fn open(url: &str, schema: Option<&str>, config: WriteConfig) -> Result<Arc<dyn Store>> {
    Ok(match cessio_store::backend_kind(url)? {
        BackendKind::Sqlite => Arc::new(SqliteStore::open_url(url, config)?),
        BackendKind::Postgres => Arc::new(PgStore::connect(url, schema, config).await?),
    })
}

/// The app on `store`, on the system clock and the built-in catalogue.
pub fn app(store: Arc<dyn Store>) -> Result<App> {
    let catalogue = Catalogue::builtin().context("loading catalogue/types.toml")?;
    Ok(App::new(store, Arc::new(SystemClock), Arc::new(catalogue)))
}

/// Drops a benchmark's PostgreSQL schema, which it made its own.
pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await?;
    Ok(())
}
