//! Units and the logical clock. The core never reads the wall clock: time is a
//! `Millis` value handed in with each request or event.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Time in the core: epoch milliseconds handed in by its runtime (the
/// simulator's are its scenario epoch plus simulated time).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Millis(pub u64);

/// The epoch simulations start at unless told otherwise: 2023-11-14T22:13:20Z.
pub const SIM_EPOCH_MS: u64 = 1_700_000_000_000;

impl Millis {
    pub fn plus_secs(self, secs: u64) -> Millis {
        Millis(self.0.saturating_add(secs.saturating_mul(1000)))
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;

/// `8.0 GiB`-style rendering used in explanations.
#[derive(Debug)]
pub struct Gib(pub u64);

impl fmt::Display for Gib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} GiB", self.0 as f64 / GIB as f64)
    }
}

/// `12000 MHz`-style rendering.
#[derive(Debug)]
pub struct Mhz(pub u64);

impl fmt::Display for Mhz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} MHz", self.0)
    }
}
