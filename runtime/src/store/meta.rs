//! The small key-value `meta` table (CA keys, secrets, settings).

use super::{Store, StoreError};

const PUT_SQL: &str =
    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
const GET_SQL: &str = "SELECT value FROM meta WHERE key = $1";

pub(super) async fn put_meta(store: &Store, key: &str, value: &[u8]) -> Result<(), StoreError> {
    with_pool!(store, |pool| sqlx::query(PUT_SQL)
        .bind(key)
        .bind(value)
        .execute(pool)
        .await
        .map(drop))
    .map_err(StoreError::db("put_meta"))?;
    Ok(())
}

pub(super) async fn get_meta(store: &Store, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    with_pool!(store, |pool| sqlx::query_scalar(GET_SQL)
        .bind(key)
        .fetch_optional(pool)
        .await)
    .map_err(StoreError::db("get_meta"))
}
