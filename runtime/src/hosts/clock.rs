//! The gateway's clock: what time the controller is handed.
//!
//! The controller's time is epoch milliseconds, so deadlines it stores (timeouts,
//! reservations, expunge dates) keep their meaning across a restart. In
//! production that is the system clock; simulations (turmoil, paused tokio
//! clocks) use tokio's clock since the gateway started plus a fixed epoch, so
//! simulated time stays simulated.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Where epoch milliseconds come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// `SystemTime` since the Unix epoch (production).
    #[default]
    System,
    /// tokio's clock since `serve` started, plus `epoch_ms` (simulations and
    /// tests: turmoil and paused clocks move it).
    Tokio { epoch_ms: u64 },
}

/// The system clock in epoch milliseconds.
pub fn system_epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running clock: the choice plus the instant the gateway started.
#[derive(Debug)]
pub(crate) struct RunClock {
    pub kind: Clock,
    started: OnceLock<Instant>,
}

impl RunClock {
    pub fn new(kind: Clock) -> RunClock {
        RunClock {
            kind,
            started: OnceLock::new(),
        }
    }

    /// Marks the start (inside the runtime that serves, for tokio's clock).
    pub fn start(&self) {
        let _ = self.started.set(Instant::now());
    }

    /// Epoch milliseconds now.
    pub fn now_ms(&self) -> u64 {
        match self.kind {
            Clock::System => system_epoch_ms(),
            Clock::Tokio { epoch_ms } => epoch_ms + self.started.get().map_or(0, |s| s.elapsed().as_millis() as u64),
        }
    }

    /// How long until epoch millisecond `at` (zero if it is past).
    pub fn until(&self, at: u64) -> Duration {
        Duration::from_millis(at.saturating_sub(self.now_ms()))
    }
}
