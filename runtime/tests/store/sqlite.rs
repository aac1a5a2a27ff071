//! The shared bodies on a real SQLite file (and in memory), plus SQLite-only checks:
//! durability across reopen and across a process exit, and bad URLs.

use std::process::Command;

use stratus_runtime::store::{GroupCommit, Store, StoreError};
use tempfile::TempDir;

use crate::common;

/// A fresh store in its own temporary directory (kept alive by the returned `TempDir`).
async fn fresh() -> (TempDir, String, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.url_kind(), "sqlite");
    (dir, url, store)
}

#[tokio::test]
async fn journal_roundtrip() {
    let (_dir, _, store) = fresh().await;
    common::journal_roundtrip(&store).await;
}

#[tokio::test]
async fn refuses_gaps_and_duplicates() {
    let (_dir, _, store) = fresh().await;
    common::refuses_gaps_and_duplicates(&store).await;
}

#[tokio::test]
async fn snapshots_truncate_and_fall_back() {
    let (_dir, _, store) = fresh().await;
    common::snapshots_truncate_and_fall_back(&store).await;
}

#[tokio::test]
async fn snapshot_ahead_of_journal() {
    let (_dir, _, store) = fresh().await;
    common::snapshot_ahead_of_journal(&store).await;
}

#[tokio::test]
async fn meta_upsert() {
    let (_dir, _, store) = fresh().await;
    common::meta_upsert(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_many_producers() {
    let (_dir, _, store) = fresh().await;
    common::group_commit_many_producers(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_direct_appends() {
    let (_dir, _, store) = fresh().await;
    common::racing_direct_appends(&store).await;
}

#[tokio::test]
async fn group_commit_resumes_and_resyncs() {
    let (_dir, _, store) = fresh().await;
    common::group_commit_resumes_and_resyncs(&store).await;
}

#[tokio::test]
async fn file_is_wal_and_synchronous_full() {
    let (_dir, _, store) = fresh().await;
    let Store::Sqlite(pool) = &store else {
        panic!("sqlite store")
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(pool).await.unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
}

#[tokio::test]
async fn reopen_after_close_and_after_drop() {
    let (dir, url, store) = fresh().await;
    common::write_some(&store).await;
    store.close().await;
    assert!(store.last_seq().await.is_err(), "a closed store refuses calls");

    let store = Store::open(&url).await.unwrap();
    common::check_written(&store, 6).await;
    store.append(&common::entries(7..=7)).await.unwrap();
    // Dropped without close: what was committed is still there.
    drop(store);
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), 7);
    store.close().await;
    drop(dir);
}

/// Run as a child process by `acknowledged_writes_survive_process_exit`: writes, then
/// exits the process at once, without closing anything. In a normal test run (no env var)
/// it does nothing.
#[tokio::test]
async fn child_writes_then_exits() {
    let Ok(url) = std::env::var("STRATUS_STORE_CHILD_URL") else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    common::write_some(&store).await;
    let group = GroupCommit::spawn(store.clone(), 16);
    for i in 0..50 {
        assert_eq!(group.append(i, vec![7; 100]).await.unwrap(), 7 + i as u64);
    }
    std::process::exit(0);
}

#[test]
fn acknowledged_writes_survive_process_exit() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("child.db").display());
    // Its output is captured so the child's test-harness lines don't mix into ours.
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["sqlite::child_writes_then_exits", "--exact", "--test-threads=1"])
        .env("STRATUS_STORE_CHILD_URL", &url)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "child failed: {}\n{}\n{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(&url).await.unwrap();
        assert_eq!(store.last_seq().await.unwrap(), 56);
        let journal = store.journal_after(6).await.unwrap();
        assert_eq!(journal.len(), 50);
        assert!(journal.iter().all(|e| e.payload == vec![7; 100]));
        common::check_written(&store, 56).await;
        store.close().await;
    });
}

#[tokio::test]
async fn in_memory_store_works_and_is_private() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    assert_eq!(store.url_kind(), "sqlite");
    common::journal_roundtrip(&store).await;
    let other = Store::open("sqlite::memory:").await.unwrap();
    common::refuses_gaps_and_duplicates(&other).await;
    common::snapshots_truncate_and_fall_back(&Store::open("sqlite::memory:").await.unwrap()).await;
    common::meta_upsert(&Store::open("sqlite::memory:").await.unwrap()).await;
    assert_eq!(
        store.last_seq().await.unwrap(),
        4006,
        "stores opened later did not touch this one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_group_commit() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    common::group_commit_many_producers(&store).await;
}

#[tokio::test]
async fn bad_urls_give_clear_errors() {
    let err = Store::open("mysql://root:pw@localhost/db").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("mysql://root:***@localhost/db") && !msg.contains("pw@"),
        "{msg}"
    );

    let err = Store::open("").await.unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("no/such/dir/store.db").display());
    let err = Store::open(&missing).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir/store.db"), "{err}");

    let err = Store::open("postgres://stratus:hunter2@127.0.0.1:1/nope")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("postgres://stratus:***@127.0.0.1:1/nope"), "{msg}");
    assert!(
        !msg.contains("hunter2") && !format!("{err:?}").contains("hunter2"),
        "{msg}"
    );

    let err = Store::open("postgres://stratus:hunter2@127.0.0.1:notaport/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
