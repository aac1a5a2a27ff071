//! What the controller asks of its runtime: driver calls (in the driver
//! vocabulary of `stratus-wire`, which real drivers, host agents and the
//! simulated datacenter all speak) and timers.

use crate::ids::*;
use crate::units::Millis;
use serde::{Deserialize, Serialize};

/// The driver vocabulary lives in `stratus-wire` (it crosses to drivers and
/// host agents); re-exported so `effects::{DriverCall, …}` keeps working.
pub use stratus_wire::driver::{
    DiskBus, DiskDetail, DiskFormat, DomainDevices, DomainSpec, DriverCall, DriverResult, Mac, NicDetail, NicModel,
    OpId,
};
pub use stratus_wire::error::{DriverError, ErrorKind};

/// What the controller asks the runtime to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    Call {
        op: OpId,
        call: DriverCall,
    },
    /// Deliver `Input::Timer(timer)` at `at`.
    Timer {
        at: Millis,
        timer: Timer,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Timer {
    /// A driver operation got no answer in time.
    OpTimeout(OpId),
    /// Expunge a destroyed VM once `expunge.delay` passed.
    Expunge(VmId),
    /// The periodic reconciler: host checks, HA retries, maintenance (every
    /// `ping.interval`). Carries the chain's epoch: a restart starts a new chain.
    Tick(u64),
    /// Retry a saga's failed undo call after its backoff.
    SagaRetry(super::SagaId),
}
