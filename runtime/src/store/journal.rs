//! The journal: batched appends with seq checks, the last seq, and reading back.

use std::sync::OnceLock;

use sqlx::FromRow;

use super::open::BeginWrite;
use super::{JournalEntry, Store, StoreError, seq_from_db, seq_to_db};

/// The highest seq in the journal or among the snapshots (0 if both are empty).
pub(super) const LAST_SEQ_SQL: &str = "SELECT COALESCE(MAX(s), 0) FROM \
     (SELECT MAX(seq) AS s FROM journal UNION ALL SELECT MAX(seq) AS s FROM snapshots) AS both_tables";

const JOURNAL_AFTER_SQL: &str = "SELECT seq, at_ms, payload FROM journal WHERE seq > $1 ORDER BY seq";

/// The most rows one INSERT statement carries (3 binds per row plus one: far below both
/// backends' bind limits). Bigger batches are split into chunks inside one transaction.
const MAX_CHUNK: usize = 1024;

#[derive(FromRow)]
struct JournalRow {
    seq: i64,
    at_ms: i64,
    payload: Vec<u8>,
}

impl TryFrom<JournalRow> for JournalEntry {
    type Error = StoreError;
    fn try_from(r: JournalRow) -> Result<Self, StoreError> {
        Ok(JournalEntry {
            seq: seq_from_db(r.seq)?,
            at_ms: r.at_ms,
            payload: r.payload,
        })
    }
}

/// Checks the batch is internally consecutive (before touching the database).
fn check_consecutive(entries: &[JournalEntry]) -> Result<(), StoreError> {
    for (index, pair) in entries.windows(2).enumerate() {
        let (prev, next) = (pair[0].seq, pair[1].seq);
        if prev.checked_add(1) != Some(next) {
            return Err(StoreError::NotConsecutive {
                index: index + 1,
                prev,
                next,
            });
        }
    }
    Ok(())
}

/// The statement size (rows) used for a chunk of `len` rows: the next power of two, so
/// only 11 distinct statements exist and each stays prepared in every connection's
/// statement cache. The unused rows are bound as NULL and filtered out.
fn padded_rows(len: usize) -> usize {
    len.next_power_of_two().min(MAX_CHUNK)
}

/// The conditional multi-row insert for `rows` rows (a power of two up to `MAX_CHUNK`):
/// it inserts the non-NULL rows only if the store's last seq equals `$1`, i.e. only if they
/// continue the journal, all or nothing. One statement checks and writes, so a batch that
/// fits a chunk costs one round trip to the database, and its own implicit transaction.
/// (`column1`.. are the column names of a VALUES list on both SQLite and PostgreSQL.)
fn insert_sql(rows: usize) -> &'static str {
    static SQL: OnceLock<Vec<&'static str>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        (0..=MAX_CHUNK.trailing_zeros())
            .map(|shift| {
                let n = 1usize << shift;
                let mut s = String::from(
                    "INSERT INTO journal (seq, at_ms, payload) SELECT column1, column2, column3 FROM (VALUES ",
                );
                for r in 0..n {
                    if r > 0 {
                        s.push_str(", ");
                    }
                    let b = 1 + r * 3;
                    s.push_str(&format!("(${}, ${}, ${})", b + 1, b + 2, b + 3));
                }
                s.push_str(") AS v WHERE column1 IS NOT NULL AND (");
                s.push_str(LAST_SEQ_SQL);
                s.push_str(") = $1");
                // Built once for a fixed set of sizes and kept for the process's lifetime.
                &*s.leak()
            })
            .collect()
    });
    assert!(
        rows.is_power_of_two() && rows <= MAX_CHUNK,
        "unexpected chunk size {rows}"
    );
    all[rows.trailing_zeros() as usize]
}

/// Runs the conditional insert of one chunk on an executor; yields the rows inserted
/// (either the chunk's length or 0). A macro, not a function, so that the same text serves
/// both backends' executors (pool or transaction) without spelling out sqlx's trait bounds.
macro_rules! insert_chunk {
    ($executor:expr, $chunk:expr) => {{
        let chunk: &[JournalEntry] = $chunk;
        let rows = padded_rows(chunk.len());
        // Seqs are in range: checked by the caller for the largest seq of the batch.
        let mut q = sqlx::query(insert_sql(rows)).bind(chunk[0].seq as i64 - 1);
        for e in chunk {
            q = q
                .bind(Some(e.seq as i64))
                .bind(Some(e.at_ms))
                .bind(Some(e.payload.as_slice()));
        }
        for _ in chunk.len()..rows {
            q = q.bind(None::<i64>).bind(None::<i64>).bind(None::<&[u8]>);
        }
        q.execute($executor).await.map(|done| done.rows_affected())
    }};
}

/// The error for a batch the database refused to take: a seq mismatch (which the insert's
/// condition or, on a race, the primary key caught), or the database error itself.
async fn refused(store: &Store, got: u64, error: Option<sqlx::Error>) -> StoreError {
    match error {
        Some(e) if !matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation()) => StoreError::Db {
            op: "append: insert",
            source: e,
        },
        _ => match last_seq(store).await {
            Ok(last) => StoreError::SeqMismatch {
                expected: last + 1,
                got,
            },
            Err(e) => e,
        },
    }
}

pub(super) async fn append(store: &Store, entries: &[JournalEntry]) -> Result<(), StoreError> {
    let Some(first) = entries.first() else {
        return Ok(());
    };
    check_consecutive(entries)?;
    // Every seq must fit the column (the first minus one is at least -1); the last is largest.
    seq_to_db(entries[entries.len() - 1].seq)?;
    let got = first.seq;
    let want = entries.len() as u64;
    let outcome: Result<bool, sqlx::Error> = with_pool!(store, |pool| {
        if entries.len() <= MAX_CHUNK {
            // One statement: atomic and durable on its own (autocommit).
            insert_chunk!(pool, entries).map(|inserted| inserted == want)
        } else {
            async {
                let mut tx = pool.begin_write().await?;
                for chunk in entries.chunks(MAX_CHUNK) {
                    if insert_chunk!(&mut *tx, chunk)? != chunk.len() as u64 {
                        return Ok(false); // dropping `tx` rolls the earlier chunks back
                    }
                }
                tx.commit().await?;
                Ok(true)
            }
            .await
        }
    });
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => Err(refused(store, got, None).await),
        Err(e) => Err(refused(store, got, Some(e)).await),
    }
}

pub(super) async fn last_seq(store: &Store) -> Result<u64, StoreError> {
    let last: i64 = with_pool!(store, |pool| sqlx::query_scalar(LAST_SEQ_SQL).fetch_one(pool).await)
        .map_err(StoreError::db("last_seq"))?;
    seq_from_db(last)
}

pub(super) async fn journal_after(store: &Store, seq: u64) -> Result<Vec<JournalEntry>, StoreError> {
    // Seqs beyond i64::MAX cannot be stored, so nothing lies after them.
    let Ok(after) = i64::try_from(seq) else {
        return Ok(Vec::new());
    };
    let rows: Vec<JournalRow> = with_pool!(store, |pool| {
        sqlx::query_as(JOURNAL_AFTER_SQL).bind(after).fetch_all(pool).await
    })
    .map_err(StoreError::db("journal_after"))?;
    rows.into_iter().map(JournalEntry::try_from).collect()
}

#[cfg(test)]
mod tests {
    use super::{MAX_CHUNK, insert_sql, padded_rows};

    #[test]
    fn chunks_pad_to_powers_of_two() {
        assert_eq!(padded_rows(1), 1);
        assert_eq!(padded_rows(3), 4);
        assert_eq!(padded_rows(64), 64);
        assert_eq!(padded_rows(65), 128);
        assert_eq!(padded_rows(MAX_CHUNK), MAX_CHUNK);
    }

    #[test]
    fn insert_sql_binds_the_expected_last_seq_then_three_per_row() {
        let one = insert_sql(1);
        assert!(one.contains("FROM (VALUES ($2, $3, $4)) AS v WHERE"), "{one}");
        assert!(one.ends_with(") = $1"), "{one}");
        assert!(insert_sql(2).contains("($2, $3, $4), ($5, $6, $7))"));
        let last = 1 + 3 * MAX_CHUNK;
        assert!(insert_sql(MAX_CHUNK).contains(&format!("${last})")));
    }
}
