//! Movements handed over as their reader takes them: F4's export of tens of thousands of
//! rows holds one batch in memory at a time, whatever the number of rows.
//!
//! A stream reads from one snapshot on a connection of its own, so a slow download delays
//! no one else's reads. A store runs at most [`STREAMS`] at once (`StreamSlots`), hands
//! rows over in batches of [`STREAM_BATCH`], and ends a stream whose reader has taken
//! nothing for [`STREAM_STALL`]. A stream that ends early is an error, never a shorter list.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::{PartyEntry, StoreError};

/// Streams reading at once per store, each on a connection of its own; more wait for a
/// slot, so that exports cannot open connections without bound.
pub const STREAMS: usize = 4;

/// Movements per batch of a stream.
pub const STREAM_BATCH: usize = 1_000;

/// How long a stream waits for its reader to take a batch before it gives up and frees its
/// connection: a client that stops downloading must not hold a read snapshot (and, on
/// SQLite, the WAL's checkpoint) for ever.
pub const STREAM_STALL: Duration = Duration::from_secs(60);

/// A store's slots for streams: at most [`STREAMS`] read at once; each stream's reading
/// task holds one until it ends.
#[derive(Clone, Debug)]
pub struct StreamSlots(std::sync::Arc<tokio::sync::Semaphore>);

impl Default for StreamSlots {
    fn default() -> Self {
        StreamSlots(std::sync::Arc::new(tokio::sync::Semaphore::new(STREAMS)))
    }
}

impl StreamSlots {
    /// Waits for a free slot.
    pub async fn take(&self) -> Result<tokio::sync::OwnedSemaphorePermit, StoreError> {
        self.0
            .clone()
            .acquire_owned()
            .await
            .map_err(StoreError::backend)
    }
}

#[derive(Debug)]
enum Item {
    Rows(Vec<PartyEntry>),
    End,
}

type Channel = Result<Item, StoreError>;

/// The reading end of a stream: batches in order, then `None`. A stream that stopped
/// before its end (its reader stalled, the database failed) ends with an error, never
/// silently short.
#[derive(Debug)]
pub struct EntryStream {
    rx: mpsc::Receiver<Channel>,
    ended: bool,
}

/// The writing end, owned by the backend's reading task.
#[derive(Debug)]
pub struct EntrySender {
    tx: mpsc::Sender<Channel>,
    batch: Vec<PartyEntry>,
    size: usize,
}

/// A stream whose batches hold at most `size` movements. One batch waits in the channel
/// while the next is read.
pub fn entry_stream(size: usize) -> (EntrySender, EntryStream) {
    let (tx, rx) = mpsc::channel(1);
    (
        EntrySender {
            tx,
            batch: Vec::with_capacity(size),
            size: size.max(1),
        },
        EntryStream { rx, ended: false },
    )
}

impl EntryStream {
    /// The next batch; `None` once every movement has been handed over.
    pub async fn next(&mut self) -> Option<Result<Vec<PartyEntry>, StoreError>> {
        if self.ended {
            return None;
        }
        match self.rx.recv().await {
            Some(Ok(Item::Rows(rows))) => Some(Ok(rows)),
            Some(Ok(Item::End)) => {
                self.ended = true;
                None
            }
            Some(Err(e)) => {
                self.ended = true;
                Some(Err(e))
            }
            None => {
                self.ended = true;
                Some(Err(StoreError::Unavailable {
                    reason: "la lettura dei movimenti si è interrotta prima della fine".into(),
                }))
            }
        }
    }
}

impl EntrySender {
    /// Adds a movement, handing the batch over when full. False when the reader is gone
    /// or has not taken a batch for [`STREAM_STALL`]: the backend stops reading.
    pub async fn push(&mut self, entry: PartyEntry) -> bool {
        self.batch.push(entry);
        if self.batch.len() < self.size {
            return true;
        }
        let rows = std::mem::replace(&mut self.batch, Vec::with_capacity(self.size));
        self.send(Ok(Item::Rows(rows))).await
    }

    /// Hands over the last batch and the end.
    pub async fn finish(mut self) {
        if !self.batch.is_empty() {
            let rows = std::mem::take(&mut self.batch);
            if !self.send(Ok(Item::Rows(rows))).await {
                return;
            }
        }
        self.send(Ok(Item::End)).await;
    }

    /// Ends the stream with an error (the rows already handed over stay handed over).
    pub async fn fail(self, error: StoreError) {
        self.send(Err(error)).await;
    }

    /// [`push`](Self::push) from a blocking thread (SQLite's reads run on one).
    pub fn blocking_push(&mut self, handle: &tokio::runtime::Handle, entry: PartyEntry) -> bool {
        handle.block_on(self.push(entry))
    }

    /// [`finish`](Self::finish) from a blocking thread.
    pub fn blocking_finish(self, handle: &tokio::runtime::Handle) {
        handle.block_on(self.finish());
    }

    /// [`fail`](Self::fail) from a blocking thread.
    pub fn blocking_fail(self, handle: &tokio::runtime::Handle, error: StoreError) {
        handle.block_on(self.fail(error));
    }

    async fn send(&self, item: Channel) -> bool {
        matches!(
            tokio::time::timeout(STREAM_STALL, self.tx.send(item)).await,
            Ok(Ok(()))
        )
    }
}
