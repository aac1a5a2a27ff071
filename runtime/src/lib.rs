//! Stratus management-server runtime.
//!
//! For now this is the durable [`store::Store`]: a journal of opaque inputs with group
//! commit, the newest two state snapshots, and a small key-value table, on SQLite or
//! PostgreSQL. See `runtime/README.md` for the schema and the durability choices.

pub mod journal;
pub mod store;

pub use journal::StoreJournal;

pub use store::{GroupCommit, GroupCommitStats, JournalEntry, Snapshot, Store, StoreError};
