//! Opening a store from its URL: connection options, pools, migrations, and how a write
//! transaction takes the store's write lock on each backend.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::{Store, StoreError, redact_url};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a SQLite connection waits for another writer's lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per file-backed SQLite pool: one writer at a time (WAL) plus readers.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Connections per PostgreSQL pool.
const POSTGRES_MAX_CONNECTIONS: u32 = 8;
/// How long to wait for a pooled connection (or to connect) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn open(url: &str) -> Result<Store, StoreError> {
    let shown = redact_url(url);
    if url.starts_with("sqlite:") {
        open_sqlite(url, shown).await
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        open_postgres(url, shown).await
    } else {
        Err(StoreError::UnsupportedUrl { url: shown })
    }
}

async fn open_sqlite(url: &str, shown: String) -> Result<Store, StoreError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
        url: shown.clone(),
        source,
    })?;
    let in_memory = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .starts_with(":memory:");
    let options = options
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        // FULL: in WAL mode every commit syncs the WAL, so a committed append survives a
        // power loss, not only a process crash (NORMAL would only guarantee the latter).
        .synchronous(SqliteSynchronous::Full);
    let pool_options = SqlitePoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
    let (options, pool_options) = if in_memory {
        // An in-memory database lives as long as its connection: keep exactly one, forever.
        let pool_options = pool_options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
        (options, pool_options)
    } else {
        let options = options.journal_mode(SqliteJournalMode::Wal);
        (options, pool_options.max_connections(SQLITE_MAX_CONNECTIONS))
    };
    let pool = pool_options
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Open {
            url: shown.clone(),
            source,
        })?;
    SQLITE_MIGRATIONS
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate {
            url: shown.clone(),
            source,
        })?;
    tracing::info!(url = %shown, in_memory, "opened sqlite store");
    Ok(Store::Sqlite(pool))
}

async fn open_postgres(url: &str, shown: String) -> Result<Store, StoreError> {
    let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
        url: shown.clone(),
        source,
    })?;
    // One direct connection first: the pool retries a refused connection until its
    // acquire timeout and then reports only "timed out", while this fails at once with the
    // real cause (refused, bad password, no such database). It also runs the migrations.
    let mut probe = options.connect().await.map_err(|source| StoreError::Open {
        url: shown.clone(),
        source,
    })?;
    POSTGRES_MIGRATIONS
        .run(&mut probe)
        .await
        .map_err(|source| StoreError::Migrate {
            url: shown.clone(),
            source,
        })?;
    probe.close().await.map_err(|source| StoreError::Open {
        url: shown.clone(),
        source,
    })?;
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Open {
            url: shown.clone(),
            source,
        })?;
    tracing::info!(url = %shown, "opened postgres store");
    Ok(Store::Postgres(pool))
}

/// Starting a transaction that holds the store's write lock until it ends, so the
/// "read last seq, then write" steps of `append` and `put_snapshot` cannot interleave.
pub(super) trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        // IMMEDIATE takes SQLite's single write lock now (waiting up to busy_timeout),
        // instead of failing with SQLITE_BUSY when a read transaction later upgrades.
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        // Conflicts with itself but not with plain reads: writers queue, readers don't.
        sqlx::query("LOCK TABLE journal IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}
