//! Stratus core: the pure, deterministic heart of the platform.
//!
//! No I/O, no async runtime, no wall clock, no unseeded randomness: every
//! decision is a function of (state, request, settings, logical time, seed).

pub mod allocator;
pub mod arena;
pub mod capacity;
pub mod cloud;
pub mod controller;
pub mod error;
pub mod ids;
pub mod inventory;
pub mod rng;
pub mod serde_util;
pub mod settings;
pub mod units;
pub mod vm;
pub mod whatif;

pub use cloud::Cloud;
pub use error::{CoreError, CoreResult};
pub use uuid;
