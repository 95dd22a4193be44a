//! The register a command works on, as its flags name it, and the app on it at the clock
//! they give: what every command that reads or writes the register shares.

use std::sync::Arc;

use anyhow::{Context, Result};
use cessio_app::App;
use cessio_core::catalogue::Catalogue;
use cessio_core::time::{Clock, FixedClock, SystemClock, rome_local_to_utc};
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

/// The register at `url` (the scheme picks the backend), its writer set up by `config`.
pub async fn open(url: &str, schema: Option<&str>, config: WriteConfig) -> Result<Arc<dyn Store>> {
    Ok(match cessio_store::backend_kind(url)? {
        BackendKind::Sqlite => Arc::new(SqliteStore::open_url(url, config)?),
        BackendKind::Postgres => Arc::new(PgStore::connect(url, schema, config).await?),
    })
}

/// A Rome wall-clock time with or without seconds.
pub fn parse_local_time(s: &str) -> Result<chrono::NaiveDateTime, String> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .map_err(|_| format!("«{s}» is not a local time: write 2024-04-15T10:00"))
}

/// The app on `store`, at the fixed Rome time `clock` names or else the system's.
pub fn app_for(store: Arc<dyn Store>, clock: Option<chrono::NaiveDateTime>) -> Result<App> {
    let clock: Arc<dyn Clock> = match clock {
        Some(local) => Arc::new(FixedClock::new(
            rome_local_to_utc(local).context("--clock: that local time does not exist in Rome")?,
        )),
        None => Arc::new(SystemClock),
    };
    let catalogue = Catalogue::builtin().context("loading catalogue/types.toml")?;
    Ok(App::new(store, clock, Arc::new(catalogue)))
}
