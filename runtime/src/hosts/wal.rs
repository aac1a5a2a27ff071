//! Write-ahead for the gateway: every controller input is applied at once (the
//! controller is deterministic, so the state in memory is a function of the
//! inputs) but what it produced — driver calls, timers, the caller's answer —
//! is *held* until the input is durable in the Store. One writer task takes
//! every input that arrived while the previous write was in flight and commits
//! them in one transaction (group commit). A crash loses only inputs nothing
//! outside the process has seen a consequence of.
//!
//! Every `snapshot_every` inputs the writer clones the controller exactly at
//! the end of the batch it takes, and once that batch is durable a background
//! task serializes and hashes the clone (`spawn_blocking`) and stores it.
//!
//! Without a Store (simulations, turmoil tests) every input is durable at once
//! and nothing is written.
//!
//! Both keep a [`Checkpoint`]: the last known-good state and every input
//! applied since, in memory, to rebuild the controller when handling an
//! input panics (`rebuild`).

use super::Shared;
use crate::recover::encode_snapshot;
use crate::store::{JournalEntry, Store};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stratus_core::controller::effects::Effect;
use stratus_core::controller::{Controller, Reply};
use tokio::sync::{Notify, oneshot};

/// What one input left to do once it is durable.
pub(crate) struct Held {
    pub seq: u64,
    pub effects: Vec<Effect>,
    pub answer: Option<Answer>,
}

pub(crate) enum Answer {
    /// The input's synchronous answer (a job id, a refusal).
    Reply(oneshot::Sender<Reply>, Reply),
    /// Someone waiting until everything up to `seq` is durable.
    Barrier(oneshot::Sender<u64>),
}

/// Counters of the write-ahead path, for operators and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurabilityStats {
    /// Inputs applied to the controller (its journal seq; includes recovered ones).
    pub applied: u64,
    /// Inputs known durable.
    pub durable: u64,
    /// Journal transactions committed by this process.
    pub transactions: u64,
    /// Inputs they carried.
    pub entries: u64,
    /// The largest batch.
    pub largest_batch: u64,
    /// Appends retried after an error.
    pub retries: u64,
    /// The slowest commit, ms.
    pub max_commit_ms: u64,
    /// Total time in commits, ms.
    pub commit_ms: u64,
    /// Snapshots stored by this process.
    pub snapshots: u64,
    /// Seq of the newest stored snapshot.
    pub snapshot_seq: u64,
    /// The slowest snapshot (serialize + hash + store), ms.
    pub max_snapshot_ms: u64,
    /// How long the clone for the newest snapshot held the state lock, µs.
    pub last_clone_us: u64,
}

/// A state to rebuild the controller from.
pub(crate) enum Base {
    /// The newest snapshot's bytes (durable gateway: rebuilding decodes them,
    /// exactly as recovery from the Store would).
    Bytes(Vec<u8>),
    /// A clone (no Store: nothing is serialized).
    Ctl(Box<Controller>),
}

/// The controller's last known-good state in memory: the state after input
/// `seq`, and every input applied after it, in order: the batches the writer
/// took (in flight or durable), then `Wal::buf`.
pub(crate) struct Checkpoint {
    pub seq: u64,
    pub base: Base,
    pub taken: VecDeque<Arc<Vec<JournalEntry>>>,
}

impl Checkpoint {
    /// A newer base (a snapshot, or a clone without a Store): the inputs it
    /// covers are no longer needed.
    pub fn advance(&mut self, seq: u64, base: Base) {
        if seq <= self.seq {
            return;
        }
        self.seq = seq;
        self.base = base;
        while self
            .taken
            .front()
            .is_some_and(|b| b.last().is_none_or(|e| e.seq <= seq))
        {
            self.taken.pop_front();
        }
    }
}

pub(crate) struct Wal {
    pub applied: u64,
    pub durable: u64,
    /// Applied, not yet taken by the writer (without a Store: since the checkpoint).
    pub buf: Vec<JournalEntry>,
    pub checkpoint: Checkpoint,
    pub held: VecDeque<Held>,
    /// No Store: inputs are durable as soon as they are applied.
    pub sync: bool,
    pub snapshot_every: u64,
    snapshot_busy: bool,
    releasing: bool,
    pub wake: Arc<Notify>,
    pub stats: DurabilityStats,
}

impl Wal {
    /// `seq`: the last input already in the Store (or 0); `base`: the state after it.
    pub fn new(seq: u64, sync: bool, snapshot_every: u64, snapshot_seq: u64, base: Base) -> Wal {
        Wal {
            applied: seq,
            durable: seq,
            buf: Vec::new(),
            checkpoint: Checkpoint {
                seq,
                base,
                taken: VecDeque::new(),
            },
            held: VecDeque::new(),
            sync,
            snapshot_every: snapshot_every.max(1),
            snapshot_busy: false,
            releasing: false,
            wake: Arc::new(Notify::new()),
            stats: DurabilityStats {
                applied: seq,
                durable: seq,
                snapshot_seq,
                ..Default::default()
            },
        }
    }

    /// Starts releasing held outputs; false if a release is already running
    /// further up the stack (it will pick up what is added now).
    pub fn begin_release(&mut self) -> bool {
        !std::mem::replace(&mut self.releasing, true)
    }

    pub fn end_release(&mut self) {
        self.releasing = false;
    }

    /// The next held output that may leave now.
    pub fn next_releasable(&mut self) -> Option<Held> {
        if self.held.front().is_some_and(|h| h.seq <= self.durable) {
            self.held.pop_front()
        } else {
            None
        }
    }

    fn snapshot_due(&self) -> bool {
        !self.snapshot_busy && self.applied >= self.stats.snapshot_seq + self.snapshot_every
    }

    /// Without a Store: every `snapshot_every` inputs the checkpoint becomes a
    /// clone of `ctl` (the state after the last applied input), so the inputs
    /// kept for a rebuild stay few.
    pub fn checkpoint_if_due(&mut self, ctl: &Controller) {
        if self.sync && self.applied >= self.checkpoint.seq + self.snapshot_every {
            self.checkpoint.advance(self.applied, Base::Ctl(Box::new(ctl.clone())));
            self.buf.clear();
        }
    }
}

/// The writer task: commits batches until the gateway halts, or fails for good
/// (the journal no longer matches this process: another writer, or a store that
/// lost data), which stops the gateway.
pub(crate) async fn writer(shared: Arc<Shared>, store: Store) -> Result<(), String> {
    let wake = shared.state().wal.wake.clone();
    loop {
        let taken = {
            let mut st = shared.state();
            if st.wal.buf.is_empty() {
                None
            } else {
                let batch = Arc::new(std::mem::take(&mut st.wal.buf));
                // Kept until a snapshot covers it: a rebuild replays it.
                st.wal.checkpoint.taken.push_back(batch.clone());
                // The controller now is exactly the state after the batch's last input.
                let snap = if st.wal.snapshot_due() {
                    st.wal.snapshot_busy = true;
                    let t = Instant::now();
                    let ctl = st.ctl.clone();
                    st.wal.stats.last_clone_us = t.elapsed().as_micros() as u64;
                    Some((st.wal.applied, ctl))
                } else {
                    None
                };
                Some((batch, snap))
            }
        };
        let Some((batch, snap)) = taken else {
            wake.notified().await;
            continue;
        };
        let t = Instant::now();
        let retries = commit(&store, &batch).await?;
        let ms = t.elapsed().as_millis() as u64;
        let last = batch.last().expect("not empty").seq;
        {
            let mut st = shared.lock();
            let s = &mut st.wal.stats;
            s.transactions += 1;
            s.entries += batch.len() as u64;
            s.largest_batch = s.largest_batch.max(batch.len() as u64);
            s.retries += retries;
            s.max_commit_ms = s.max_commit_ms.max(ms);
            s.commit_ms += ms;
            st.wal.durable = last;
            st.wal.stats.durable = last;
            st.release();
        }
        if let Some((seq, ctl)) = snap {
            let task = tokio::spawn(snapshot(shared.clone(), store.clone(), seq, ctl));
            shared.track(task.abort_handle());
        }
    }
}

/// Appends one batch, retrying while the outcome is unknown. Returns how many
/// retries it took.
async fn commit(store: &Store, batch: &[JournalEntry]) -> Result<u64, String> {
    let (first, last) = (batch[0].seq, batch[batch.len() - 1].seq);
    let mut retries = 0;
    let mut delay = Duration::from_millis(50);
    loop {
        let err = match store.append(batch).await {
            Ok(()) => return Ok(retries),
            Err(e) => e,
        };
        // The commit may have happened with its answer lost: ask where the journal ends.
        match store.last_seq().await {
            Ok(l) if l >= last => return Ok(retries),
            Ok(l) if l + 1 == first => {
                tracing::warn!(error = %err, first, last, "journal append failed; retrying");
            }
            Ok(l) => {
                return Err(format!(
                    "the journal ends at {l}, but this server's next batch starts at {first}: \
                     another writer, or lost data ({err})"
                ));
            }
            Err(_) => {
                tracing::warn!(error = %err, "journal append failed and the store does not answer; retrying");
            }
        }
        retries += 1;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Serializes, hashes and stores a snapshot off the hot path.
async fn snapshot(shared: Arc<Shared>, store: Store, seq: u64, ctl: Controller) {
    let t = Instant::now();
    let at = shared.clock.now_ms();
    let encoded = tokio::task::spawn_blocking(move || encode_snapshot(seq, &ctl, at)).await;
    let (result, bytes) = match encoded {
        Ok(snap) => {
            let stored = store.put_snapshot(&snap).await;
            let r = stored
                .map(|()| (snap.payload.len(), snap.state_hash))
                .map_err(|e| e.to_string());
            (r, Some(snap.payload))
        }
        Err(e) => (Err(format!("snapshot encoding failed: {e}")), None),
    };
    let ms = t.elapsed().as_millis() as u64;
    let mut st = shared.state();
    st.wal.snapshot_busy = false;
    // Good in memory even if the Store refused it.
    if let Some(bytes) = bytes {
        st.wal.checkpoint.advance(seq, Base::Bytes(bytes));
    }
    match result {
        Ok((bytes, hash)) => {
            let s = &mut st.wal.stats;
            s.snapshots += 1;
            s.snapshot_seq = seq;
            s.max_snapshot_ms = s.max_snapshot_ms.max(ms);
            st.event(
                "snapshot.stored",
                format!("seq {seq}"),
                format!("{bytes} bytes, state {hash}, {ms} ms"),
            );
        }
        Err(e) => {
            tracing::warn!(seq, error = %e, "snapshot failed");
            st.event("snapshot.failed", format!("seq {seq}"), e);
        }
    }
}
