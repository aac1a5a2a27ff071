//! How a host's storage lease is judged: one clock domain, the management
//! server's. A lease value is opaque and only compared with the previous read
//! of itself.

use crate::ids::PoolIdx;
use crate::units::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What this management server saw of one host's lease on one pool, all in
/// its own clock. The lease value is the host's (a stamp in the host's clock,
/// or a counter): it is never compared with this server's clock, only with
/// the previous read of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseObs {
    /// The value last read (`None`: never renewed).
    pub value: Option<u64>,
    /// When this value was first read (this server's clock, answer received).
    pub first_seen_at: Millis,
    /// When it was last read (this server's clock, answer received).
    pub read_at: Millis,
}

/// How one lease read is judged against the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LeaseVerdict {
    /// No previous read: judged by whether it advances.
    First,
    /// Changed since the previous read, which was answered `since_ms` ago.
    Advanced { since_ms: u64 },
    /// The same value; unchanged for at least `for_ms` by this server's clock.
    Unchanged { for_ms: u64 },
}

/// Records one read of a host's lease on `pool` and judges it against the
/// previous read, in this server's clock only: `now` when the answer came,
/// `sent_at` when it was asked (storage read it no earlier).
pub(super) fn observe_lease(
    leases: &mut BTreeMap<PoolIdx, LeaseObs>,
    pool: PoolIdx,
    value: Option<u64>,
    now: Millis,
    sent_at: Millis,
) -> LeaseVerdict {
    match leases.get_mut(&pool) {
        Some(obs) if obs.value == value => {
            obs.read_at = now;
            // The value was there when first read and still is at a read asked
            // at `sent_at`: unchanged for at least that long.
            LeaseVerdict::Unchanged {
                for_ms: sent_at.0.saturating_sub(obs.first_seen_at.0),
            }
        }
        Some(obs) => {
            let since_ms = now.0.saturating_sub(obs.read_at.0);
            *obs = LeaseObs {
                value,
                first_seen_at: now,
                read_at: now,
            };
            LeaseVerdict::Advanced { since_ms }
        }
        None => {
            leases.insert(
                pool,
                LeaseObs {
                    value,
                    first_seen_at: now,
                    read_at: now,
                },
            );
            LeaseVerdict::First
        }
    }
}
