//! The durable Store: an append-only journal of opaque inputs, the newest two state
//! snapshots, and a small key-value `meta` table, on SQLite or PostgreSQL.
//!
//! The Store never sees the core's types: journal and snapshot payloads are bytes the
//! caller encodes. Seqs are assigned by the caller (or by [`GroupCommit`]) and must be
//! strictly consecutive; a snapshot with seq `n` covers every journal entry with seq `<= n`.
//!
//! All SQL is checked at run time (`sqlx::query`/`query_as` + `FromRow`), never by the
//! compile-time macros, so building needs no database. The same SQL text serves both
//! backends (`$N` placeholders, `ON CONFLICT` upserts); only how a write transaction takes
//! its lock differs.

use sqlx::{PgPool, SqlitePool};

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend `$store` is.
/// The body is type-checked once per backend, so it may only use SQL both accept.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}

pub mod bench;
mod error;
mod group;
mod journal;
mod meta;
mod open;
mod snapshot;

pub use bench::{JournalBench, bench_journal};
pub use error::{StoreError, redact_url};
pub use group::{GroupCommit, GroupCommitStats};

/// A handle on an open store. Cloning is cheap (the pools are reference-counted) and every
/// clone talks to the same database.
#[derive(Debug, Clone)]
pub enum Store {
    /// A SQLite file (WAL, `synchronous=FULL`) or a single-connection in-memory database.
    Sqlite(SqlitePool),
    /// A PostgreSQL database.
    Postgres(PgPool),
}

/// One journal entry: an opaque input with the seq the caller gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Position in the journal; strictly consecutive, starting at 1.
    pub seq: u64,
    /// When the input was accepted, milliseconds since the Unix epoch (caller's clock).
    pub at_ms: i64,
    /// The encoded input.
    pub payload: Vec<u8>,
}

/// A state snapshot covering every journal entry with seq `<= seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last journal seq folded into this state.
    pub seq: u64,
    /// The caller's hash of the state, to check a restore.
    pub state_hash: String,
    /// When the snapshot was taken, milliseconds since the Unix epoch.
    pub taken_at_ms: i64,
    /// The encoded state.
    pub payload: Vec<u8>,
}

impl Store {
    /// Opens (creating if needed) the store at `url` and runs its schema migrations.
    ///
    /// Accepted URLs: `sqlite://path/file.db` (file created if missing; WAL journal,
    /// `synchronous=FULL`, 5 s busy timeout), `sqlite::memory:` (one connection, so it stays
    /// one database), `postgres://user:pass@host:port/db` (also `postgresql://`).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        open::open(url).await
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn url_kind(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Appends `entries` in one transaction (all or nothing).
    ///
    /// Refused, with nothing written, unless the first seq is `last_seq() + 1` and the seqs
    /// are consecutive. An empty batch is a no-op. Returns once the transaction committed.
    pub async fn append(&self, entries: &[JournalEntry]) -> Result<(), StoreError> {
        journal::append(self, entries).await
    }

    /// The highest seq recorded in the journal or the latest snapshot; 0 for an empty store.
    pub async fn last_seq(&self) -> Result<u64, StoreError> {
        journal::last_seq(self).await
    }

    /// The stored journal entries with seq `> seq`, ascending.
    pub async fn journal_after(&self, seq: u64) -> Result<Vec<JournalEntry>, StoreError> {
        journal::journal_after(self, seq).await
    }

    /// Stores a snapshot (replacing one with the same seq), keeps only the newest two, and
    /// then deletes the journal entries covered by the older kept one, so that if the newest
    /// snapshot turns out bad the older one plus the journal still rebuild the state.
    ///
    /// Refused if a snapshot with a higher seq is already stored.
    pub async fn put_snapshot(&self, s: &Snapshot) -> Result<(), StoreError> {
        snapshot::put_snapshot(self, s).await
    }

    /// The snapshot with the highest seq, if any.
    pub async fn latest_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        snapshot::latest_snapshot(self).await
    }

    /// `(seq, state_hash)` of the stored snapshots, newest first.
    pub async fn snapshots(&self) -> Result<Vec<(u64, String)>, StoreError> {
        snapshot::snapshots(self).await
    }

    /// The snapshot with exactly this seq, if stored.
    pub async fn load_snapshot(&self, seq: u64) -> Result<Option<Snapshot>, StoreError> {
        snapshot::load_snapshot(self, seq).await
    }

    /// Inserts or replaces a small value under `key`.
    pub async fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        meta::put_meta(self, key, value).await
    }

    /// The value stored under `key`, if any.
    pub async fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        meta::get_meta(self, key).await
    }

    /// Deletes the value under `key` (nothing if absent).
    pub async fn delete_meta(&self, key: &str) -> Result<(), StoreError> {
        meta::delete_meta(self, key).await
    }

    /// Every `(key, value)` whose key starts with `prefix`, by key.
    pub async fn list_meta(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        meta::list_meta(self, prefix).await
    }

    /// Closes every connection of this store (all clones included) and waits until they are
    /// closed. Later calls on any clone fail.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

/// Converts a seq for a signed 64-bit column.
pub(crate) fn seq_to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::SeqOutOfRange(seq))
}

/// Converts a seq read back from the database.
pub(crate) fn seq_from_db(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative seq {seq} in the database")))
}
