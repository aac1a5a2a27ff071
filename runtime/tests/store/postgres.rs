//! The shared bodies on a real PostgreSQL server, from `STRATUS_TEST_POSTGRES_URL`.
//!
//! Each test gets its own schema (created through an admin connection, selected for the
//! Store with `options=-c search_path=...`, dropped at the end), so tests run in parallel
//! and repeatedly against the same database.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::PgPool;
use stratus_runtime::store::Store;

use crate::common;

const ENV: &str = "STRATUS_TEST_POSTGRES_URL";

/// A fresh schema in the test database and a Store opened inside it.
struct PgSchema {
    admin: PgPool,
    schema: String,
    url: String,
}

impl PgSchema {
    /// `None` (after saying so) when the env var is unset.
    async fn create(test: &str) -> Option<PgSchema> {
        let Ok(base) = std::env::var(ENV) else {
            assert!(
                std::env::var_os("STRATUS_CI").is_none(),
                "STRATUS_CI is set but {ENV} is not"
            );
            eprintln!("postgres store tests skipped: {ENV} unset");
            return None;
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "t_{}_{}_{}_{nanos}",
            &test[..test.len().min(30)],
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = PgPool::connect(&base)
            .await
            .expect("connect to STRATUS_TEST_POSTGRES_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(PgSchema { admin, schema, url })
    }

    async fn open(&self) -> Store {
        let store = Store::open(&self.url).await.unwrap();
        assert_eq!(store.url_kind(), "postgres");
        store
    }

    async fn drop_schema(self, store: Store) {
        store.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{}\" CASCADE", self.schema)))
            .execute(&self.admin)
            .await
            .unwrap();
        self.admin.close().await;
    }
}

/// Runs a shared body on a fresh schema.
macro_rules! pg_test {
    ($name:ident $(, $flavor:tt)?) => {
        #[tokio::test$($flavor)?]
        async fn $name() {
            let Some(db) = PgSchema::create(stringify!($name)).await else { return };
            let store = db.open().await;
            common::$name(&store).await;
            db.drop_schema(store).await;
        }
    };
}

pg_test!(journal_roundtrip);
pg_test!(refuses_gaps_and_duplicates);
pg_test!(snapshots_truncate_and_fall_back);
pg_test!(snapshot_ahead_of_journal);
pg_test!(meta_upsert);
pg_test!(
    group_commit_many_producers,
    (flavor = "multi_thread", worker_threads = 2)
);
pg_test!(group_commit_resumes_and_resyncs);
pg_test!(racing_direct_appends, (flavor = "multi_thread", worker_threads = 4));

#[tokio::test]
async fn reopen_after_close() {
    let Some(db) = PgSchema::create("reopen_after_close").await else {
        return;
    };
    let store = db.open().await;
    common::write_some(&store).await;
    store.close().await;
    let store = db.open().await;
    common::check_written(&store, 6).await;
    db.drop_schema(store).await;
}

#[tokio::test]
async fn tables_live_in_the_test_schema() {
    let Some(db) = PgSchema::create("tables_live_in_the_test_schema").await else {
        return;
    };
    let store = db.open().await;
    let Store::Postgres(pool) = &store else {
        panic!("postgres store")
    };
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(schema, db.schema);
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1 \
         AND table_name IN ('journal', 'snapshots', 'meta')",
    )
    .bind(&db.schema)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(tables, 3);
    db.drop_schema(store).await;
}
