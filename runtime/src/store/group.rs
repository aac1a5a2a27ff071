//! Group commit: many producers, one writer task, one transaction per batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::{JournalEntry, Store, StoreError};

/// A cloneable handle for appending to the journal from many tasks at once.
///
/// A background tokio task owns the Store handle. It takes every append waiting in its
/// channel (up to `max_batch`), gives them consecutive seqs starting at the store's
/// `last_seq() + 1`, writes them with one [`Store::append`] transaction, and only then
/// answers each waiter. While one batch commits, the next one queues up, so the batch size
/// grows with the load and the commit cost (an fsync) is shared by the whole batch.
///
/// The task ends when every handle is dropped. [`GroupCommit::spawn`] must be called
/// inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    requests: mpsc::Sender<Request>,
    counters: Arc<Counters>,
}

/// Counters of a [`GroupCommit`] since it was spawned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GroupCommitStats {
    /// Committed append transactions (batches).
    pub transactions: u64,
    /// Entries committed through them.
    pub entries: u64,
    /// The largest batch committed.
    pub largest_batch: u64,
    /// Batches that failed (each of their waiters got the error).
    pub failed_batches: u64,
}

#[derive(Debug, Default)]
struct Counters {
    transactions: AtomicU64,
    entries: AtomicU64,
    largest_batch: AtomicU64,
    failed_batches: AtomicU64,
}

#[derive(Debug)]
struct Request {
    at_ms: i64,
    payload: Vec<u8>,
    ack: oneshot::Sender<Result<u64, StoreError>>,
}

impl GroupCommit {
    /// Starts the writer task on the current tokio runtime. `max_batch` (at least 1) caps
    /// the entries per transaction; a few thousand is plenty.
    pub fn spawn(store: Store, max_batch: usize) -> GroupCommit {
        let max_batch = max_batch.max(1);
        // Room for one batch being committed and a full one queued behind it.
        let (requests, rx) = mpsc::channel(max_batch.saturating_mul(2));
        let counters = Arc::new(Counters::default());
        tokio::spawn(writer(store, rx, max_batch, Arc::clone(&counters)));
        GroupCommit { requests, counters }
    }

    /// Appends one input and returns the seq it was given, once its batch is committed
    /// (durable). On error the input was not written.
    pub async fn append(&self, at_ms: i64, payload: Vec<u8>) -> Result<u64, StoreError> {
        let (ack, done) = oneshot::channel();
        self.requests
            .send(Request { at_ms, payload, ack })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    /// The counters so far.
    pub fn stats(&self) -> GroupCommitStats {
        let c = &self.counters;
        GroupCommitStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            entries: c.entries.load(Ordering::Relaxed),
            largest_batch: c.largest_batch.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
        }
    }
}

async fn writer(store: Store, mut rx: mpsc::Receiver<Request>, max_batch: usize, counters: Arc<Counters>) {
    // The seq the next batch starts at; `None` means "ask the store" (at start, and after
    // a failed batch, whose commit outcome may be unknown).
    let mut next_seq: Option<u64> = None;
    let mut requests: Vec<Request> = Vec::with_capacity(max_batch);
    let mut entries: Vec<JournalEntry> = Vec::with_capacity(max_batch);
    loop {
        requests.clear();
        if rx.recv_many(&mut requests, max_batch).await == 0 {
            break; // every handle dropped and the channel drained
        }
        if requests.len() < max_batch {
            // Let the producers just woken by the previous batch's acks queue their next
            // input first: one scheduler pass, and the batch (and the fsync) is shared by
            // them too instead of forming a second, half-sized batch right after this one.
            tokio::task::yield_now().await;
            while requests.len() < max_batch {
                match rx.try_recv() {
                    Ok(r) => requests.push(r),
                    Err(_) => break,
                }
            }
        }
        let first = match next_seq {
            Some(seq) => Ok(seq),
            None => store.last_seq().await.map(|last| last + 1),
        };
        let result = match first {
            Ok(first) => {
                entries.clear();
                entries.extend(requests.iter_mut().zip(first..).map(|(r, seq)| JournalEntry {
                    seq,
                    at_ms: r.at_ms,
                    payload: std::mem::take(&mut r.payload),
                }));
                store.append(&entries).await.map(|()| first)
            }
            Err(e) => Err(e),
        };
        let n = requests.len() as u64;
        match result {
            Ok(first) => {
                next_seq = Some(first + n);
                counters.transactions.fetch_add(1, Ordering::Relaxed);
                counters.entries.fetch_add(n, Ordering::Relaxed);
                counters.largest_batch.fetch_max(n, Ordering::Relaxed);
                for (r, seq) in requests.drain(..).zip(first..) {
                    // A waiter that gave up (dropped its future) is fine: its entry is stored.
                    let _ = r.ack.send(Ok(seq));
                }
            }
            Err(e) => {
                next_seq = None;
                counters.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, batch = n, "group commit batch failed");
                let e = Arc::new(e);
                for r in requests.drain(..) {
                    let _ = r.ack.send(Err(StoreError::GroupCommit(Arc::clone(&e))));
                }
            }
        }
    }
    tracing::debug!("group commit writer stopped");
}
