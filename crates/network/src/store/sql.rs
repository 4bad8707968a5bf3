//! [`SqlStore`]: the market's entities in SQLite (the default) or PostgreSQL, through sqlx.
//!
//! Each table keys an entity by its identity as `0x`-prefixed hex and holds it whole as JSON in
//! `data`, plus a few plain columns copied out of it for operators' SQL queries (for example
//! `SELECT id FROM requests WHERE status = 'Assigned'`). The JSON is authoritative.
//!
//! ```text
//! commit(&[Changes]) ──rows::Rows: last version of each key, JSON + columns──▶
//!   upsert: one transaction of INSERT … ON CONFLICT (key) DO UPDATE
//!   (SQLite: a statement per row; PostgreSQL: a statement per table, UNNEST of arrays)
//! load() ──SELECT key, data──▶ decode JSON, check key ──▶ Snapshot
//! ```
//!
//! The schema lives in `migrations/sqlite` and `migrations/postgres` (the same today, kept
//! apart so either engine's DDL may change alone) and is applied by [`SqlStore::open`].

use std::{future::Future, str::FromStr, sync::Arc, time::Duration};

use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use sqlx::{
    ColumnIndex, Database, Decode, Executor, IntoArguments, Pool, Type,
    migrate::Migrator,
    postgres::{PgPool, PgPoolOptions},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

use super::{
    Changes, LedgerTotals, Snapshot,
    error::{Result, StoreError, redact_url},
    rows::{Rows, program_key},
    upsert::{commit_postgres, commit_sqlite},
};
use crate::market::{Account, Program, Prover, Request};

/// How long a SQLite connection waits for another connection's lock before failing with
/// [`StoreError::Busy`]: long enough to ride out a checkpoint or an operator's query.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an operation waits for a free pooled connection before [`StoreError::PoolTimeout`].
pub const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in a file SQLite pool: one writer (the store writer) and readers for loads and
/// operators' tools; SQLite admits one writer at a time, so more would only wait.
const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// Connections in a PostgreSQL pool.
const POSTGRES_MAX_CONNECTIONS: u32 = 8;

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database engine a [`SqlStore`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: a file, or memory (for tests).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

#[derive(Debug, Clone)]
enum AnyPool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The market's persistent store on SQLite or PostgreSQL. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// The URL it was opened from, password redacted.
    url: Arc<str>,
}

impl SqlStore {
    /// Opens the database at `url` and applies any pending schema migrations.
    ///
    /// URLs:
    /// - `sqlite://path/to/file.db` (or `sqlite:path`): created, with its folder, if missing.
    ///   WAL journal and `synchronous=NORMAL`: a commit survives a crash of the process, but a
    ///   power loss or OS crash may roll back the last commits (never corrupting the file).
    ///   Busy timeout [`SQLITE_BUSY_TIMEOUT`].
    /// - `sqlite::memory:`: a private in-memory database for tests (one connection, gone when
    ///   the store is dropped).
    /// - `postgres://user:password@host:port/database` (or `postgresql://`).
    ///
    /// # Errors
    /// [`StoreError::Open`] if the URL is not one of these or the database cannot be reached,
    /// [`StoreError::Migrate`] if the schema cannot be brought up to date.
    pub fn open(url: &str) -> impl Future<Output = Result<SqlStore>> + Send + '_ {
        // `Send` spelled out: see `load`.
        Self::open_inner(url)
    }

    async fn open_inner(url: &str) -> Result<SqlStore> {
        let redacted: Arc<str> = redact_url(url).into();
        let open_err = |source: sqlx::Error| StoreError::Open {
            url: redacted.to_string(),
            source: Arc::new(source),
        };
        let migrate_err = |source: sqlx::migrate::MigrateError| StoreError::Migrate {
            url: redacted.to_string(),
            source: Arc::new(source),
        };
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url).map_err(open_err)?;
            if !is_sqlite_memory(url) {
                // "Create if missing" includes the folder it goes in.
                if let Some(dir) =
                    options.get_filename().parent().filter(|d| !d.as_os_str().is_empty())
                {
                    tokio::fs::create_dir_all(dir).await.map_err(|err| open_err(err.into()))?;
                }
            }
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true);
            let pool_options = SqlitePoolOptions::new().acquire_timeout(POOL_ACQUIRE_TIMEOUT);
            let pool_options = if is_sqlite_memory(url) {
                // Every connection would see its own empty database (or, with a shared cache,
                // table locks that ignore the busy timeout): keep exactly one, for ever.
                pool_options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                pool_options.max_connections(SQLITE_MAX_CONNECTIONS)
            };
            let pool = pool_options.connect_with(options).await.map_err(open_err)?;
            SQLITE_MIGRATOR.run(&pool).await.map_err(migrate_err)?;
            AnyPool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
                .connect(url)
                .await
                .map_err(open_err)?;
            // sqlx takes an advisory lock for this, so replicas starting together are safe.
            POSTGRES_MIGRATOR.run(&pool).await.map_err(migrate_err)?;
            AnyPool::Postgres(pool)
        } else {
            return Err(open_err(sqlx::Error::Configuration(
                "unsupported database URL: use sqlite://path/to/file.db, sqlite::memory: or \
                 postgres://user:password@host/database"
                    .into(),
            )));
        };
        tracing::debug!(target: "provernet::store", url = %redacted, "database opened");
        Ok(SqlStore { pool, url: redacted })
    }

    /// Which engine this store uses.
    pub fn backend(&self) -> Backend {
        match self.pool {
            AnyPool::Sqlite(_) => Backend::Sqlite,
            AnyPool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL the store was opened from, with any password replaced by `***`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Reads everything the market holds.
    ///
    /// Rows come back in key order (requests by `created_at`, then id). Every row's JSON is
    /// decoded and its key checked against the row's key.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] or [`StoreError::KeyMismatch`] naming the table and key of a
    /// row that does not decode; a database error otherwise.
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see the comment")]
    pub fn load(&self) -> impl Future<Output = Result<Snapshot>> + Send + '_ {
        // The `Send` bound is spelled out so that it is proven here, for the concrete pools:
        // callers in other crates cannot prove it through the generic helpers' higher-ranked
        // bounds (rust-lang/rust#96865 and friends).
        async move {
            match &self.pool {
                AnyPool::Sqlite(pool) => load_from(pool).await,
                AnyPool::Postgres(pool) => load_from(pool).await,
            }
        }
    }

    /// Writes every entity of every [`Changes`] in `batch` in one transaction: all of it or,
    /// on error, none of it.
    ///
    /// Each entity is upserted by its key; when several `Changes` hold the same key, the
    /// latest in `batch` wins (only that version is written).
    ///
    /// # Errors
    /// [`StoreError::Encode`] if an entity cannot be written (nothing is); a database error
    /// if the transaction fails (it is rolled back).
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see the comment")]
    pub fn commit<'a>(
        &'a self,
        batch: &'a [Changes],
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        // `Send` spelled out: see `load`.
        async move {
            let rows = Rows::encode(batch)?;
            if rows.is_empty() {
                return Ok(());
            }
            match &self.pool {
                AnyPool::Sqlite(pool) => commit_sqlite(pool, rows).await,
                AnyPool::Postgres(pool) => commit_postgres(pool, rows).await,
            }
        }
    }

    /// Closes every pooled connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        match &self.pool {
            AnyPool::Sqlite(pool) => pool.close().await,
            AnyPool::Postgres(pool) => pool.close().await,
        }
    }
}

fn is_sqlite_memory(url: &str) -> bool {
    url == "sqlite::memory:" || url.starts_with("sqlite::memory:?") || url.contains("mode=memory")
}

// ---------------------------------------------------------------------------------------------
// Loading: the same SQL for both engines, through one generic path.

async fn load_from<DB>(pool: &Pool<DB>) -> Result<Snapshot>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let accounts = load_table(
        pool,
        "accounts",
        "SELECT address, data FROM accounts ORDER BY address",
        |a: &Account| a.address.to_string(),
    )
    .await?;
    let provers = load_table(
        pool,
        "provers",
        "SELECT owner, data FROM provers ORDER BY owner",
        |p: &Prover| p.owner.to_string(),
    )
    .await?;
    let programs = load_table(
        pool,
        "programs",
        "SELECT program_id, data FROM programs ORDER BY program_id",
        |p: &Program| program_key(&p.program_id),
    )
    .await?;
    let requests = load_table(
        pool,
        "requests",
        "SELECT id, data FROM requests ORDER BY created_at, id",
        |r: &Request| r.id.to_string(),
    )
    .await?;
    let ledger = load_table(pool, "ledger", "SELECT '1', data FROM ledger", |_: &LedgerTotals| {
        "1".to_owned()
    })
    .await?
    .pop()
    .unwrap_or_default();
    Ok(Snapshot { accounts, provers, programs, requests, ledger })
}

/// Every row of `sql` (which selects a key and a JSON `data`), decoded, streamed so that the
/// raw rows and the entities are never all in memory at once.
async fn load_table<DB, T>(
    pool: &Pool<DB>,
    table: &'static str,
    sql: &'static str,
    key_of: impl Fn(&T) -> String,
) -> Result<Vec<T>>
where
    DB: Database,
    T: DeserializeOwned,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    use sqlx::Row as _;

    let mut out = Vec::new();
    let mut rows = sqlx::query(sql).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let key: String = row.try_get(0)?;
        let data: String = row.try_get(1)?;
        let entity: T = serde_json::from_str(&data).map_err(|err| StoreError::Corrupt {
            table,
            key: key.clone(),
            source: Arc::new(err),
        })?;
        let found = key_of(&entity);
        if found != key {
            return Err(StoreError::KeyMismatch { table, key, found });
        }
        out.push(entity);
    }
    Ok(out)
}
