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

const DELETE_SQL: &str = "DELETE FROM meta WHERE key = $1";

pub(super) async fn delete_meta(store: &Store, key: &str) -> Result<(), StoreError> {
    with_pool!(store, |pool| sqlx::query(DELETE_SQL)
        .bind(key)
        .execute(pool)
        .await
        .map(drop))
    .map_err(StoreError::db("delete_meta"))?;
    Ok(())
}

/// `substr` with an `int4` length: both dialects have it, and it does not depend on the
/// database's collation (a range on `key` would, on PostgreSQL).
const LIST_SQL: &str = "SELECT key, value FROM meta WHERE substr(key, 1, $2) = $1 ORDER BY key";

pub(super) async fn list_meta(store: &Store, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let len = i32::try_from(prefix.chars().count()).map_err(|_| StoreError::Corrupt("meta prefix too long".into()))?;
    with_pool!(store, |pool| sqlx::query_as(LIST_SQL)
        .bind(prefix)
        .bind(len)
        .fetch_all(pool)
        .await)
    .map_err(StoreError::db("list_meta"))
}
