//! The Stratus management runtime: what runs the pure controller of
//! `stratus-core` against the real world.
//!
//! - [`store`]: the durable Store: a journal of opaque inputs with group commit, the
//!   newest two state snapshots, and a small key-value table, on SQLite or PostgreSQL
//!   (`runtime/README.md` has the schema and the durability choices).
//! - [`journal`]: the controller's input journal on the Store (write-ahead, snapshots
//!   checked by state hash, recovery = snapshot + replay) for synchronous loops.
//! - [`recover`]: rebuilding the controller from the Store (newest good snapshot + journal).
//! - [`admin`]: the newline-delimited JSON control socket of `stratus manage`.
//! - [`hosts`]: host connections, the management side of the agent protocol
//!   (the gateway): TLS with the management CA, enrollment and hello with
//!   protocol negotiation, heartbeats and VM reports into the controller,
//!   driver calls routed to the right agent, the controller's timers; durable on the
//!   Store (every input journaled before its effects leave, group commit, snapshots,
//!   recovery at start, CA and host secrets kept).

pub mod admin;
pub mod download;
pub mod hosts;
pub mod journal;
pub mod recover;
pub mod store;

pub use journal::StoreJournal;
pub use store::{GroupCommit, GroupCommitStats, JournalEntry, Snapshot, Store, StoreError};
