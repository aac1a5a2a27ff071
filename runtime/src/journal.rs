//! The controller's input journal on the durable Store: inputs are buffered
//! by `append` and written in one transaction by `flush` (group commit), which
//! the caller runs before any effect of those inputs leaves the process.
//! Snapshots carry the state hash that a recovery is checked against.
//!
//! The trait is synchronous (the simulator's engine is a plain loop), so this
//! adapter owns a small current-thread tokio runtime for the Store's calls.

use crate::store::{JournalEntry, Store};
use stratus_core::controller::journal::InputJournal;
use stratus_core::controller::{Controller, Input};

/// An `InputJournal` over a `Store` (SQLite file, in-memory SQLite or PostgreSQL).
pub struct StoreJournal {
    rt: tokio::runtime::Runtime,
    store: Store,
    pending: Vec<JournalEntry>,
    /// Transactions written (journal flushes and snapshots).
    pub transactions: u64,
}

impl std::fmt::Debug for StoreJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreJournal")
            .field("store", &self.store.url_kind())
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl StoreJournal {
    /// Opens the Store at `url` (`sqlite::memory:`, `sqlite://file`, `postgres://...`).
    pub fn open(url: &str) -> Result<StoreJournal, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the store runtime: {e}"))?;
        let store = rt.block_on(Store::open(url)).map_err(|e| e.to_string())?;
        Ok(StoreJournal {
            rt,
            store,
            pending: Vec::new(),
            transactions: 0,
        })
    }

    /// The last durable input, and whether the store holds any state at all.
    pub fn last_seq(&self) -> Result<u64, String> {
        self.rt.block_on(self.store.last_seq()).map_err(|e| e.to_string())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl InputJournal for StoreJournal {
    fn append(&mut self, seq: u64, at_ms: u64, input: &Input) -> Result<(), String> {
        self.pending.push(JournalEntry {
            seq,
            at_ms: at_ms as i64,
            payload: input.to_bytes(),
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.rt
            .block_on(self.store.append(&self.pending))
            .map_err(|e| e.to_string())?;
        self.pending.clear();
        self.transactions += 1;
        Ok(())
    }

    fn snapshot(&mut self, seq: u64, ctl: &Controller) -> Result<(), String> {
        self.flush()?;
        let snap = crate::recover::encode_snapshot(seq, ctl, ctl.now().0);
        self.rt
            .block_on(self.store.put_snapshot(&snap))
            .map_err(|e| e.to_string())?;
        self.transactions += 1;
        Ok(())
    }

    fn recover(&mut self) -> Result<(Controller, u64), String> {
        // What was not flushed never became durable: it is lost with the crash.
        self.pending.clear();
        let r = self
            .rt
            .block_on(crate::recover::recover(&self.store))?
            .ok_or("the store holds no snapshot to recover from")?;
        Ok((r.ctl, r.seq))
    }
}
