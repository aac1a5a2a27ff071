//! Where the engine writes its controller inputs so that a management-server
//! crash is a real recovery: the restarted controller is rebuilt from the
//! latest snapshot plus the journal after it, and must hash equal to the state
//! it had when it crashed.
//!
//! `MemoryJournal` keeps the serialized bytes in memory (tests, fuzzing);
//! `stratus_runtime::StoreJournal` puts them in the durable Store (SQLite or
//! PostgreSQL) through the same trait. The trait does no I/O itself.

use super::{Controller, Input};

/// A sink for inputs and snapshots, and the source of recovery.
pub trait InputJournal: Send {
    /// Records input number `seq` (1, 2, ...) applied at `at_ms`. It may be
    /// buffered until `flush`.
    fn append(&mut self, seq: u64, at_ms: u64, input: &Input) -> Result<(), String>;
    /// Makes every appended input durable. Called before any effect of those
    /// inputs leaves the process (write-ahead).
    fn flush(&mut self) -> Result<(), String> {
        Ok(())
    }
    /// Records a snapshot of the controller after input `seq`.
    fn snapshot(&mut self, seq: u64, ctl: &Controller) -> Result<(), String>;
    /// Rebuilds the controller: latest snapshot, then every later input.
    /// Returns the controller and the last sequence number applied.
    fn recover(&mut self) -> Result<(Controller, u64), String>;
}

/// Serialized snapshot and inputs kept in memory.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    snapshot: Option<(u64, Vec<u8>)>,
    entries: Vec<(u64, u64, Vec<u8>)>,
}

impl MemoryJournal {
    pub fn new() -> MemoryJournal {
        MemoryJournal::default()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl InputJournal for MemoryJournal {
    fn append(&mut self, seq: u64, at_ms: u64, input: &Input) -> Result<(), String> {
        self.entries.push((seq, at_ms, input.to_bytes()));
        Ok(())
    }

    fn snapshot(&mut self, seq: u64, ctl: &Controller) -> Result<(), String> {
        self.snapshot = Some((seq, ctl.state_bytes()));
        self.entries.retain(|(s, _, _)| *s > seq);
        Ok(())
    }

    fn recover(&mut self) -> Result<(Controller, u64), String> {
        let (seq, bytes) = self.snapshot.as_ref().ok_or("no snapshot to recover from")?;
        let mut ctl = Controller::from_state_bytes(bytes)?;
        ctl.set_logging(false);
        let mut last = *seq;
        for (s, at, bytes) in &self.entries {
            let input = Input::from_bytes(bytes).map_err(|e| format!("journal entry {s}: {e}"))?;
            replay(&mut ctl, *at, input);
            last = *s;
        }
        ctl.set_logging(true);
        Ok((ctl, last))
    }
}

/// Applies one journaled input during recovery; its effects already left the
/// process before the crash (or were lost with it), so they are dropped.
pub fn replay(ctl: &mut Controller, at_ms: u64, input: Input) {
    ctl.apply(crate::units::Millis(at_ms), input);
    ctl.take_effects();
    ctl.take_log();
}
