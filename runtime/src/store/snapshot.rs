//! Snapshots: store with retention of the newest two and journal truncation, read back.

use sqlx::FromRow;

use super::open::BeginWrite;
use super::{Snapshot, Store, StoreError, seq_from_db, seq_to_db};

/// How many snapshots are kept. The journal is truncated up to the oldest kept one, so a
/// bad newest snapshot can still be replaced by the older one plus the journal after it.
const KEEP_SNAPSHOTS: i64 = 2;

const LATEST_SEQ_SQL: &str = "SELECT MAX(seq) FROM snapshots";
const UPSERT_SQL: &str = "INSERT INTO snapshots (seq, state_hash, taken_at_ms, payload) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (seq) DO UPDATE SET state_hash = excluded.state_hash, \
     taken_at_ms = excluded.taken_at_ms, payload = excluded.payload";
const PRUNE_SQL: &str = "DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT $1)";
/// The seq of the `KEEP_SNAPSHOTS`-th newest snapshot (bound as an offset), i.e. the oldest
/// kept one after pruning; no row while fewer are stored.
const OLDEST_KEPT_SQL: &str = "SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 1 OFFSET $1";
const TRUNCATE_SQL: &str = "DELETE FROM journal WHERE seq <= $1";
const LIST_SQL: &str = "SELECT seq, state_hash FROM snapshots ORDER BY seq DESC";
const LATEST_SQL: &str = "SELECT seq, state_hash, taken_at_ms, payload FROM snapshots ORDER BY seq DESC LIMIT 1";
const LOAD_SQL: &str = "SELECT seq, state_hash, taken_at_ms, payload FROM snapshots WHERE seq = $1";

#[derive(FromRow)]
struct SnapshotRow {
    seq: i64,
    state_hash: String,
    taken_at_ms: i64,
    payload: Vec<u8>,
}

impl TryFrom<SnapshotRow> for Snapshot {
    type Error = StoreError;
    fn try_from(r: SnapshotRow) -> Result<Self, StoreError> {
        Ok(Snapshot {
            seq: seq_from_db(r.seq)?,
            state_hash: r.state_hash,
            taken_at_ms: r.taken_at_ms,
            payload: r.payload,
        })
    }
}

pub(super) async fn put_snapshot(store: &Store, s: &Snapshot) -> Result<(), StoreError> {
    let seq = seq_to_db(s.seq)?;
    let truncated_to: Option<i64> = with_pool!(store, |pool| {
        let mut tx = pool
            .begin_write()
            .await
            .map_err(StoreError::db("put_snapshot: begin"))?;
        let latest: Option<i64> = sqlx::query_scalar(LATEST_SEQ_SQL)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("put_snapshot: read latest"))?;
        if let Some(latest) = latest
            && latest > seq
        {
            return Err(StoreError::SnapshotOutOfOrder {
                latest: seq_from_db(latest)?,
                got: s.seq,
            });
        }
        sqlx::query(UPSERT_SQL)
            .bind(seq)
            .bind(s.state_hash.as_str())
            .bind(s.taken_at_ms)
            .bind(s.payload.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("put_snapshot: insert"))?;
        sqlx::query(PRUNE_SQL)
            .bind(KEEP_SNAPSHOTS)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("put_snapshot: prune snapshots"))?;
        let oldest_kept: Option<i64> = sqlx::query_scalar(OLDEST_KEPT_SQL)
            .bind(KEEP_SNAPSHOTS - 1)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("put_snapshot: read oldest kept"))?;
        if let Some(upto) = oldest_kept {
            sqlx::query(TRUNCATE_SQL)
                .bind(upto)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("put_snapshot: truncate journal"))?;
        }
        tx.commit().await.map_err(StoreError::db("put_snapshot: commit"))?;
        Ok(oldest_kept)
    })?;
    tracing::debug!(seq = s.seq, truncated_to, "snapshot stored");
    Ok(())
}

pub(super) async fn latest_snapshot(store: &Store) -> Result<Option<Snapshot>, StoreError> {
    let row: Option<SnapshotRow> = with_pool!(store, |pool| sqlx::query_as(LATEST_SQL).fetch_optional(pool).await)
        .map_err(StoreError::db("latest_snapshot"))?;
    row.map(Snapshot::try_from).transpose()
}

pub(super) async fn snapshots(store: &Store) -> Result<Vec<(u64, String)>, StoreError> {
    let rows: Vec<(i64, String)> = with_pool!(store, |pool| sqlx::query_as(LIST_SQL).fetch_all(pool).await)
        .map_err(StoreError::db("snapshots"))?;
    rows.into_iter()
        .map(|(seq, hash)| Ok((seq_from_db(seq)?, hash)))
        .collect()
}

pub(super) async fn load_snapshot(store: &Store, seq: u64) -> Result<Option<Snapshot>, StoreError> {
    let Ok(seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    let row: Option<SnapshotRow> = with_pool!(store, |pool| sqlx::query_as(LOAD_SQL)
        .bind(seq)
        .fetch_optional(pool)
        .await)
    .map_err(StoreError::db("load_snapshot"))?;
    row.map(Snapshot::try_from).transpose()
}
