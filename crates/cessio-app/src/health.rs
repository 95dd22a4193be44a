//! The register's own health, as the server's probes and metrics and the command line ask
//! for it: whether the writer and the database answer (readiness), what the register holds
//! (from the ledger head, never by counting tables) and the full verification.

use std::time::Duration;

use cessio_store::{Counts, StoreError, VerifyReport};

use crate::{App, AppError};

/// How one part of the register answered a readiness check.
#[derive(Debug)]
pub enum Check {
    Ok,
    /// It answered with an error (the database refused the connection, the writer has
    /// stopped...).
    Failed(StoreError),
    /// It did not answer in time (a writer stuck in a batch or reconnecting, a database
    /// that accepts connections and then says nothing).
    TimedOut(Duration),
}

impl Check {
    pub fn is_ok(&self) -> bool {
        matches!(self, Check::Ok)
    }

    async fn of(within: Duration, check: impl Future<Output = Result<(), StoreError>>) -> Self {
        match tokio::time::timeout(within, check).await {
            Ok(Ok(())) => Check::Ok,
            Ok(Err(e)) => Check::Failed(e),
            Err(_) => Check::TimedOut(within),
        }
    }
}

/// Whether the register can serve: its writer takes requests and commits, and the
/// database answers reads. The read replica's answer is reported but does not count: F1
/// and F4 read the primary while it is away.
#[derive(Debug)]
pub struct Readiness {
    pub writer: Check,
    pub database: Check,
    /// `None` without a read replica.
    pub replica: Option<Check>,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.writer.is_ok() && self.database.is_ok()
    }

    /// Whether a part's failure makes the register not ready.
    pub fn required(part: &str) -> bool {
        part != "replica"
    }

    /// Each part by name, in a fixed order.
    pub fn parts(&self) -> impl Iterator<Item = (&'static str, &Check)> {
        [
            ("writer", Some(&self.writer)),
            ("database", Some(&self.database)),
        ]
        .into_iter()
        .chain([("replica", self.replica.as_ref())])
        .filter_map(|(name, check)| check.map(|c| (name, c)))
    }
}

impl App {
    /// Asks the writer and the database (and the replica) at once, each given `within`:
    /// a probe must answer in bounded time even when what it probes does not.
    pub async fn readiness(&self, within: Duration) -> Readiness {
        let replica = async {
            match &self.replica {
                None => None,
                Some(r) => Some(
                    Check::of(within, async {
                        match r.store() {
                            Some(store) => store.head_counts().await.map(|_| ()),
                            None => Err(cessio_store::StoreError::Unavailable {
                                reason: "replica non ancora raggiunta".into(),
                            }),
                        }
                    })
                    .await,
                ),
            }
        };
        let (writer, database, replica) = tokio::join!(
            Check::of(within, self.store.ping_writer()),
            Check::of(within, async { self.store.head_counts().await.map(|_| ()) }),
            replica,
        );
        Readiness {
            writer,
            database,
            replica,
        }
    }

    /// What the register holds, from the ledger head: one row read, however large the
    /// register (`/metrics` asks on every scrape).
    pub async fn ledger_counts(&self) -> Result<Counts, AppError> {
        Ok(self.store.head_counts().await?)
    }

    /// Recomputes every balance from the history and checks R-CONSERVE and the hash
    /// chain: reads the whole register, for the command line and checks, not for requests.
    pub async fn verify(&self) -> Result<VerifyReport, AppError> {
        Ok(self.store.verify().await?)
    }
}
