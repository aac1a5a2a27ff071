//! Stratus's wire vocabulary: what crosses a process boundary, with a stable
//! serde form both ways. It depends on serde, serde_json, uuid and thiserror
//! only, so every other crate (the pure core, the drivers, the host agent, the
//! management runtime, the simulator) can share it.
//!
//! - [`ids`]: a UUID newtype per entity (`HostId`, `VmId`, …).
//! - [`rng`]: the seeded generator those ids (and every other deterministic
//!   draw: the simulator, reconnect jitter) come from.
//! - [`driver`]: the driver vocabulary: `DriverCall`, `DriverResult`, `OpId`,
//!   `Mac`, `DomainSpec`.
//! - [`error`]: `DriverError` with its `ErrorKind` (did the call happen?).
//! - [`facts`]: `HostFacts`, what a host says about itself.
//! - [`protocol`]: the host agent ↔ management server protocol (JSON lines).
//!
//! The JSON form of every variant is pinned by golden fixtures under
//! `tests/fixtures/` (see `tests/fixtures.rs`).

pub mod driver;
pub mod error;
pub mod facts;
pub mod ids;
pub mod protocol;
pub mod rng;

pub use driver::{
    BridgeKind, DiskBus, DiskDetail, DiskFormat, DomainDevices, DomainSpec, DriverCall, DriverResult, ImageSource, Mac,
    NicDetail, NicModel, OpId, PoolSpec,
};
pub use error::{DriverError, ErrorKind};
pub use facts::HostFacts;
pub use uuid;
