//! The write queue both backends' writers serve: requests wait here (bounded: callers wait
//! when it is full), a writer takes every waiting request as one batch, and each caller is
//! answered only after the batch's transaction ended.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::{Operation, Receipt, StoreError};

#[derive(Debug)]
pub struct Job {
    pub op: Operation,
    pub reply: oneshot::Sender<Result<Receipt, StoreError>>,
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
    queue.send(Job { op, reply }).await.map_err(|_| stopped())?;
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

pub fn operations(batch: &[Job]) -> Vec<Operation> {
    batch.iter().map(|j| j.op.clone()).collect()
}

/// Answers every caller of a batch: each its own result, or the batch's error if the
/// transaction did not commit (then nothing of the batch was applied).
pub fn answer(
    batch: Vec<Job>,
    outcome: Result<Vec<Result<Receipt, StoreError>>, StoreError>,
    stats: &WriteStats,
) {
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats
        .operations
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    match outcome {
        Ok(results) => {
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "batch rolled back");
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}
