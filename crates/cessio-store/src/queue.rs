//! The write queue both backends' writers serve: requests wait here (bounded: callers wait
//! when it is full), a writer takes every waiting request as one batch, and each caller is
//! answered only after the batch's transaction ended.
//!
//! Answering only after the commit is what makes an acknowledged operation durable (WAL
//! fsync with `synchronous=FULL` on SQLite, `synchronous_commit` on PostgreSQL); the
//! binary's `tests/crash.rs` kills a writer mid-stream to hold it to that. The batch size
//! and the queue's bound are `WriteConfig`'s `max_batch` and `queue_capacity`.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::{Operation, Receipt, StoreError};

#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "writes are the queue's traffic and pings are rare: boxing the operation would cost every write an allocation to save a ping's bytes"
)]
pub enum Job {
    /// An operation to apply.
    Write {
        op: Operation,
        reply: oneshot::Sender<Result<Receipt, StoreError>>,
    },
    /// Readiness: answered like the operations of the batch it is taken with, after that
    /// batch's transaction ended (a batch of pings alone opens and commits a transaction
    /// that writes nothing), so an answer says the writer takes requests and its
    /// connection can commit.
    Ping {
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

impl Job {
    /// Answers the job with an error that came before any transaction (the writer could
    /// not start).
    pub fn fail(self, e: StoreError) {
        match self {
            Job::Write { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Job::Ping { reply } => {
                let _ = reply.send(Err(e));
            }
        }
    }
}

/// Counters of the write path, so tests and benchmarks can see batching happen.
#[derive(Debug, Default)]
pub struct WriteStats {
    pub batches: AtomicU64,
    pub operations: AtomicU64,
}

impl WriteStats {
    /// (batches, operations) so far.
    pub fn snapshot(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.operations.load(Ordering::Relaxed),
        )
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable {
        reason: "il processo di scrittura si è fermato".into(),
    }
}

/// Queues an operation and waits for its outcome.
pub async fn submit(queue: &mpsc::Sender<Job>, op: Operation) -> Result<Receipt, StoreError> {
    let (reply, rx) = oneshot::channel();
    queue
        .send(Job::Write { op, reply })
        .await
        .map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())?
}

/// Queues a ping and waits until the writer has ended the transaction it was taken with.
/// The caller bounds the wait: a writer that is stuck, or reconnecting to its database,
/// answers late or never.
pub async fn ping(queue: &mpsc::Sender<Job>) -> Result<(), StoreError> {
    let (reply, rx) = oneshot::channel();
    queue
        .send(Job::Ping { reply })
        .await
        .map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())?
}

/// `first` and whatever else is already waiting, up to `max`.
pub fn take_batch(rx: &mut mpsc::Receiver<Job>, first: Job, max: usize) -> Vec<Job> {
    let mut batch = Vec::with_capacity(max.min(1024));
    batch.push(first);
    while batch.len() < max {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// The operations of a batch, in queue order (its pings carry none).
pub fn operations(batch: &[Job]) -> Vec<Operation> {
    batch
        .iter()
        .filter_map(|j| match j {
            Job::Write { op, .. } => Some(op.clone()),
            Job::Ping { .. } => None,
        })
        .collect()
}

/// Answers every caller of a batch: each its own result, or the batch's error if the
/// transaction did not commit (then nothing of the batch was applied). Pings are answered
/// with the transaction's outcome. A batch of pings alone is not counted in the stats:
/// they count the write path's work.
pub fn answer(
    batch: Vec<Job>,
    outcome: Result<Vec<Result<Receipt, StoreError>>, StoreError>,
    stats: &WriteStats,
) {
    let writes = batch
        .iter()
        .filter(|j| matches!(j, Job::Write { .. }))
        .count() as u64;
    if writes > 0 {
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.operations.fetch_add(writes, Ordering::Relaxed);
    }
    match outcome {
        Ok(results) => {
            let mut results = results.into_iter();
            for job in batch {
                match job {
                    Job::Write { reply, .. } => {
                        let result = results.next().unwrap_or_else(|| {
                            Err(StoreError::backend(
                                "esito mancante per un'operazione del lotto",
                            ))
                        });
                        let _ = reply.send(result);
                    }
                    Job::Ping { reply } => {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "batch rolled back");
            for job in batch {
                job.fail(e.clone());
            }
        }
    }
}
