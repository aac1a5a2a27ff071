//! Stratus simulation: synthetic datacenters and workloads built on
//! `stratus-core`, for benchmarks, load tests and demos. Everything here is
//! deterministic (seeded `DetRng`, no OS randomness, no wall clock).

#[cfg(feature = "agent")]
pub mod agent_host;
#[cfg(feature = "agent")]
pub mod agent_world;
pub mod backend;
pub mod census;
pub mod engine;
#[cfg(feature = "agent")]
pub mod fleet;
#[cfg(feature = "agent")]
mod fleet_io;
pub mod fuzz;
pub mod host_fault;
pub mod invariants;
mod sim_host;
/// The input journal (trait and in-memory form) lives in the core.
pub use stratus_core::controller::journal;
pub mod html;
pub mod outcome;
pub mod report;
mod retry;
pub mod runner;
pub mod scenario;
pub mod series;
mod story_run;
pub mod synth;
pub mod synth_inputs;
pub mod timeline;
pub mod whatif_input;
pub mod world;
pub mod world_ha;
mod world_mirror;
