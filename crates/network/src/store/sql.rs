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
//! load() ──SELECT key, data (open requests only) + their bids──▶ decode, check key ──▶ Snapshot
//! request(id) / request_keys(query) + requests(ids) ──▶ the history, page by page
//! ```
//!
//! The schema lives in `migrations/sqlite` and `migrations/postgres` (the same today, kept
//! apart so either engine's DDL may change alone) and is applied by [`SqlStore::open`].

use std::{future::Future, str::FromStr, sync::Arc, time::Duration};

use std::collections::HashMap;

use futures::TryStreamExt;
use provernet_types::{ArtifactId, RequestId};
use serde::de::DeserializeOwned;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type,
    migrate::Migrator,
    postgres::{PgPool, PgPoolOptions},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

use super::{
    error::{Result, StoreError, redact_url},
    journal::{self, Followed},
    rows::{Rows, program_key, status_key},
    upsert::{commit_postgres, commit_sqlite},
};
use crate::market::{
    Account, Bid, Changes, LedgerTotals, NewBid, Program, Prover, Request, RequestQuery, Snapshot,
    Status,
};

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
    /// The leader's epoch every commit checks (hot standby, [`crate::leader`]); none for a
    /// store that does not lead a network (SQLite, tools, tests).
    fence: Option<i64>,
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
        Self::open_inner(url, true)
    }

    /// Opens the PostgreSQL database at `url` as it is, changing nothing (no migrations): for a
    /// standby, which reads what the leader writes ([`crate::leader`]).
    ///
    /// # Errors
    /// [`StoreError::Open`] if the URL is not PostgreSQL's or the database cannot be reached.
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see `load`")]
    pub fn open_follower(url: &str) -> impl Future<Output = Result<SqlStore>> + Send + '_ {
        async move {
            if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
                return Err(StoreError::Open {
                    url: redact_url(url),
                    source: Arc::new(sqlx::Error::Configuration(
                        "only a network on PostgreSQL has standbys".into(),
                    )),
                });
            }
            Self::open_inner(url, false).await
        }
    }

    async fn open_inner(url: &str, migrate: bool) -> Result<SqlStore> {
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
            while let Some(rows) = upgrade_batch(&pool).await? {
                commit_sqlite(&pool, rows).await?;
            }
            AnyPool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .acquire_timeout(POOL_ACQUIRE_TIMEOUT)
                .connect(url)
                .await
                .map_err(open_err)?;
            if migrate {
                // sqlx takes an advisory lock for this, so replicas starting together are safe.
                POSTGRES_MIGRATOR.run(&pool).await.map_err(migrate_err)?;
                while let Some(rows) = upgrade_batch(&pool).await? {
                    commit_postgres(&pool, rows, None, None).await?;
                }
            }
            AnyPool::Postgres(pool)
        } else {
            return Err(open_err(sqlx::Error::Configuration(
                "unsupported database URL: use sqlite://path/to/file.db, sqlite::memory: or \
                 postgres://user:password@host/database"
                    .into(),
            )));
        };
        tracing::debug!(target: "provernet::store", url = %redacted, "database opened");
        Ok(SqlStore { pool, url: redacted, fence: None })
    }

    /// This store, committing only while the network's leader epoch is `epoch`: a commit
    /// after another process has taken over fails with [`StoreError::Deposed`].
    pub fn fenced(mut self, epoch: i64) -> Self {
        self.fence = Some(epoch);
        self
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

    /// Reads everything the market holds in memory: accounts, provers, programs, the ledger
    /// (with the counts of closed requests), and the open requests with their bids. Nothing it
    /// reads grows with the history (but for a database from before the counts were kept: see
    /// [`LedgerTotals::closed_requests`]).
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
            match &self.pool {
                AnyPool::Sqlite(_) if rows.is_empty() => Ok(()),
                AnyPool::Sqlite(pool) => commit_sqlite(pool, rows).await,
                _ if batch.iter().all(Changes::is_empty) => Ok(()),
                AnyPool::Postgres(pool) => {
                    // Standbys follow the journal (events included), so it is written even for
                    // a batch of events alone.
                    let journal = journal::encode(batch)?;
                    commit_postgres(pool, rows, self.fence, Some(journal)).await
                }
            }
        }
    }

    /// The last journal row's seq (0: none), to read before [`Self::load`] when following: the
    /// rows after it are the changes the snapshot may lack ([`journal`]). Always 0 on SQLite.
    ///
    /// # Errors
    /// A database error.
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see `load`")]
    pub fn journal_head(&self) -> impl Future<Output = Result<i64>> + Send + '_ {
        async move {
            match &self.pool {
                AnyPool::Sqlite(_) => Ok(0),
                AnyPool::Postgres(pool) => journal::head(pool).await,
            }
        }
    }

    /// The leader's commits after journal row `after`, at most `limit` of them, oldest first;
    /// [`Followed::Lost`] if some were deleted before they were read. Nothing on SQLite.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a row does not decode; a database error otherwise.
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see `load`")]
    pub fn journal_after(
        &self,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Followed>> + Send + '_ {
        async move {
            match &self.pool {
                AnyPool::Sqlite(_) => Ok(Followed::Entries(Vec::new())),
                AnyPool::Postgres(pool) => journal::after(pool, after, limit).await,
            }
        }
    }

    /// A request by id, with its bids, open or closed: the store's last durable state.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if its row does not decode; a database error otherwise.
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see `load`")]
    pub fn request<'a>(
        &'a self,
        id: &'a RequestId,
    ) -> impl Future<Output = Result<Option<Request>>> + Send + 'a {
        async move { Ok(self.requests(std::slice::from_ref(id)).await?.pop()) }
    }

    /// The requests of `ids` that exist, with their bids, in the order of `ids`.
    ///
    /// # Errors
    /// As [`SqlStore::request`].
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see `load`")]
    pub fn requests<'a>(
        &'a self,
        ids: &'a [RequestId],
    ) -> impl Future<Output = Result<Vec<Request>>> + Send + 'a {
        async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
            let mut found = match &self.pool {
                AnyPool::Sqlite(pool) => requests_by_key(pool, &keys).await?,
                AnyPool::Postgres(pool) => requests_by_key(pool, &keys).await?,
            };
            Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
        }
    }

    /// The `(created_at, id)` of the first `limit` requests that `query` matches, oldest first:
    /// a page's keys, read through the indexes without decoding a request.
    ///
    /// # Errors
    /// A database error.
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see `load`")]
    pub fn request_keys<'a>(
        &'a self,
        query: &'a RequestQuery,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(u64, RequestId)>>> + Send + 'a {
        async move {
            let (sql, args) = keys_sql(query, limit);
            match &self.pool {
                AnyPool::Sqlite(pool) => keys_from(pool, &sql, args).await,
                AnyPool::Postgres(pool) => keys_from(pool, &sql, args).await,
            }
        }
    }

    /// How many requests closed in each closed status before `before` (unix seconds), in
    /// status order. It reads an index entry per closed request.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a status that is not one; a database error otherwise.
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see `load`")]
    pub fn closed_counts(
        &self,
        before: u64,
    ) -> impl Future<Output = Result<Vec<(Status, u64)>>> + Send + '_ {
        async move {
            match &self.pool {
                AnyPool::Sqlite(pool) => closed_counts_from(pool, before).await,
                AnyPool::Postgres(pool) => closed_counts_from(pool, before).await,
            }
        }
    }

    /// Closed requests whose proof the network still keeps and that closed before `cutoff`
    /// (unix seconds), oldest first, at most `limit`: what the proof retention deletes next.
    ///
    /// # Errors
    /// As [`SqlStore::request`].
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see `load`")]
    pub fn expired_proofs(
        &self,
        cutoff: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Request>>> + Send + '_ {
        async move {
            let sql = format!(
                "SELECT closed_at, id FROM requests WHERE proof_artifact IS NOT NULL \
                 AND closed_at < $1 ORDER BY closed_at, id LIMIT {limit}"
            );
            let keys = match &self.pool {
                AnyPool::Sqlite(pool) => keys_from(pool, &sql, vec![int(cutoff)]).await?,
                AnyPool::Postgres(pool) => keys_from(pool, &sql, vec![int(cutoff)]).await?,
            };
            let ids: Vec<RequestId> = keys.into_iter().map(|(_, id)| id).collect();
            self.requests(&ids).await
        }
    }

    /// Whether a request that closed at or after `cutoff` still keeps `artifact` as its proof
    /// (the same bytes proven twice share one artifact).
    ///
    /// # Errors
    /// A database error.
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see `load`")]
    pub fn proof_kept_since<'a>(
        &'a self,
        artifact: &'a ArtifactId,
        cutoff: u64,
    ) -> impl Future<Output = Result<bool>> + Send + 'a {
        async move {
            let sql = "SELECT closed_at, id FROM requests WHERE proof_artifact = $1 \
                       AND closed_at >= $2 LIMIT 1";
            let args = || vec![Arg::Text(artifact.to_string()), int(cutoff)];
            let found = match &self.pool {
                AnyPool::Sqlite(pool) => keys_from(pool, sql, args()).await?,
                AnyPool::Postgres(pool) => keys_from(pool, sql, args()).await?,
            };
            Ok(!found.is_empty())
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
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
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
    let mut requests = load_table(
        pool,
        "requests",
        "SELECT id, data FROM requests WHERE status IN ('Requested', 'Assigned') \
         ORDER BY created_at, id",
        |r: &Request| r.id.to_string(),
    )
    .await?;
    let mut bids = bids_from(
        pool,
        "SELECT b.request_id, b.seq, b.prover, b.price_per_pgu, b.at_ms FROM bids b \
         JOIN requests r ON r.id = b.request_id WHERE r.status IN ('Requested', 'Assigned') \
         ORDER BY b.request_id, b.seq",
        Vec::new(),
    )
    .await?;
    for request in &mut requests {
        request.bids = bids.remove(&request.id).unwrap_or_default();
    }
    let mut ledger =
        load_table(pool, "ledger", "SELECT '1', data FROM ledger", |_: &LedgerTotals| {
            "1".to_owned()
        })
        .await?
        .pop()
        .unwrap_or_default();
    if ledger.closed_requests.is_none() {
        // Kept in the ledger since the history left memory; counted here once for a database
        // from before (instant for a new one), then kept up to date by the market.
        let counts = closed_counts_from(pool, u64::MAX).await?;
        if !counts.is_empty() {
            ledger.closed_requests = Some(
                counts
                    .into_iter()
                    .map(|(status, n)| (crate::market::status_name(status).to_owned(), n))
                    .collect(),
            );
        }
    }
    Ok(Snapshot { accounts, provers, programs, requests, ledger })
}

/// The closed requests by status that closed before `before` (unix seconds).
async fn closed_counts_from<DB>(pool: &Pool<DB>, before: u64) -> Result<Vec<(Status, u64)>>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let mut closed = Vec::new();
    let mut rows = bound::<DB>(
        "SELECT status, COUNT(*) FROM requests \
         WHERE status IN ('Fulfilled', 'Unfulfillable', 'Cancelled') AND closed_at < $1 \
         GROUP BY status ORDER BY status",
        vec![int(before)],
    )
    .fetch(pool);
    while let Some(row) = rows.try_next().await? {
        use sqlx::Row as _;
        let name: String = row.try_get(0)?;
        let count: i64 = row.try_get(1)?;
        let status: Status = serde_json::from_value(serde_json::Value::String(name.clone()))
            .map_err(|err| StoreError::Corrupt {
                table: "requests",
                key: format!("status {name:?}"),
                source: Arc::new(err),
            })?;
        closed.push((status, u64::try_from(count).unwrap_or(0)));
    }
    Ok(closed)
}

/// A value bound to a placeholder of a built query.
enum Arg {
    Text(String),
    Int(i64),
}

/// A query's values bound, in order, to `sql`'s `$1`, `$2`, ...
fn bound<'q, DB>(
    sql: &'q str,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    String: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
{
    let mut query = sqlx::query(sql);
    for arg in args {
        query = match arg {
            Arg::Text(text) => query.bind(text),
            Arg::Int(int) => query.bind(int),
        };
    }
    query
}

/// A u64 as a BIGINT, saturating (the stored values all fit; a query's bound may not).
fn int(value: u64) -> Arg {
    Arg::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

/// The SQL of [`SqlStore::request_keys`]: one condition per filter `query` sets, each served
/// by an index ordered as pages are (`…, created_at, id`).
fn keys_sql(query: &RequestQuery, limit: usize) -> (String, Vec<Arg>) {
    let mut sql = String::from("SELECT created_at, id FROM requests WHERE TRUE");
    let mut args = Vec::new();
    let mut push = |sql: &mut String, condition: &str, values: Vec<Arg>| {
        let mut condition = condition.to_owned();
        for value in values {
            args.push(value);
            condition = condition.replacen('?', &format!("${}", args.len()), 1);
        }
        sql.push_str(" AND ");
        sql.push_str(&condition);
    };
    // An empty set matches nothing: `IN (NULL)` is never true.
    let list = |n: usize| if n == 0 { "NULL".to_owned() } else { vec!["?"; n].join(", ") };
    if let Some(statuses) = &query.statuses {
        let values = statuses.iter().map(|s| Arg::Text(status_key(*s))).collect::<Vec<_>>();
        push(&mut sql, &format!("status IN ({})", list(values.len())), values);
    }
    if let Some(executions) = &query.executions {
        let values = executions.iter().map(|e| Arg::Text((*e).to_owned())).collect::<Vec<_>>();
        push(&mut sql, &format!("execution IN ({})", list(values.len())), values);
    }
    if let Some(modes) = &query.proof_modes {
        let values = modes.iter().map(|m| Arg::Text(m.clone())).collect::<Vec<_>>();
        push(&mut sql, &format!("proof_mode IN ({})", list(values.len())), values);
    }
    if let Some(version) = &query.zkvm_version {
        push(&mut sql, "zkvm_version = ?", vec![Arg::Text(version.clone())]);
    }
    if let Some(requester) = &query.requester {
        push(&mut sql, "requester = ?", vec![Arg::Text(requester.to_string())]);
    }
    if let Some(prover) = &query.prover {
        push(&mut sql, "prover = ?", vec![Arg::Text(prover.to_string())]);
    }
    if let Some(prover) = &query.not_bid_by {
        push(
            &mut sql,
            "NOT EXISTS (SELECT 1 FROM bids WHERE bids.request_id = requests.id AND bids.prover = ?)",
            vec![Arg::Text(prover.to_string())],
        );
    }
    if let Some(program_id) = &query.program_id {
        push(&mut sql, "program_id = ?", vec![Arg::Text(program_key(program_id))]);
    }
    if let Some(deadline) = query.min_deadline {
        push(&mut sql, "deadline >= ?", vec![int(deadline)]);
    }
    if let Some(from) = query.created_from {
        push(&mut sql, "created_at >= ?", vec![int(from)]);
    }
    if let Some(to) = query.created_to {
        push(&mut sql, "created_at <= ?", vec![int(to)]);
    }
    if let Some((created_at, id)) = &query.after {
        push(
            &mut sql,
            "(created_at, id) > (?, ?)",
            vec![int(*created_at), Arg::Text(id.to_string())],
        );
    }
    sql.push_str(&format!(" ORDER BY created_at, id LIMIT {limit}"));
    (sql, args)
}

async fn keys_from<DB>(pool: &Pool<DB>, sql: &str, args: Vec<Arg>) -> Result<Vec<(u64, RequestId)>>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    use sqlx::Row as _;

    let mut keys = Vec::new();
    let mut rows = bound::<DB>(sql, args).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let created_at: i64 = row.try_get(0)?;
        let id: String = row.try_get(1)?;
        let id = id.parse::<RequestId>().map_err(|err| StoreError::Corrupt {
            table: "requests",
            key: id.clone(),
            source: Arc::new(serde_json::Error::io(std::io::Error::other(err.to_string()))),
        })?;
        keys.push((u64::try_from(created_at).unwrap_or(0), id));
    }
    Ok(keys)
}

/// The requests stored under `keys`, with their bids, by id.
async fn requests_by_key<DB>(
    pool: &Pool<DB>,
    keys: &[String],
) -> Result<HashMap<RequestId, Request>>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    use sqlx::Row as _;

    let placeholders = (1..=keys.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let args = || keys.iter().map(|k| Arg::Text(k.clone())).collect::<Vec<_>>();
    let sql = format!("SELECT id, data FROM requests WHERE id IN ({placeholders})");
    let mut found = HashMap::with_capacity(keys.len());
    let mut rows = bound::<DB>(&sql, args()).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let key: String = row.try_get(0)?;
        let data: String = row.try_get(1)?;
        let request = decode_request(&key, &data)?;
        found.insert(request.id, request);
    }
    drop(rows);
    let sql = format!(
        "SELECT request_id, seq, prover, price_per_pgu, at_ms FROM bids \
         WHERE request_id IN ({placeholders}) ORDER BY request_id, seq"
    );
    for (id, bids) in bids_from(pool, &sql, args()).await? {
        if let Some(request) = found.get_mut(&id) {
            request.bids = bids;
        }
    }
    Ok(found)
}

/// A `requests` row's JSON, decoded and its key checked.
fn decode_request(key: &str, data: &str) -> Result<Request> {
    let request: Request = serde_json::from_str(data).map_err(|err| StoreError::Corrupt {
        table: "requests",
        key: key.to_owned(),
        source: Arc::new(err),
    })?;
    let found = request.id.to_string();
    if found != key {
        return Err(StoreError::KeyMismatch { table: "requests", key: key.to_owned(), found });
    }
    Ok(request)
}

/// The bids `sql` selects (request_id, seq, prover, price_per_pgu, at_ms, in seq order), by
/// request.
async fn bids_from<DB>(
    pool: &Pool<DB>,
    sql: &str,
    args: Vec<Arg>,
) -> Result<HashMap<RequestId, Vec<Bid>>>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    use sqlx::Row as _;

    let mut bids: HashMap<RequestId, Vec<Bid>> = HashMap::new();
    let mut rows = bound::<DB>(sql, args).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        let key: String = row.try_get(0)?;
        let seq: i64 = row.try_get(1)?;
        let prover: String = row.try_get(2)?;
        let price: String = row.try_get(3)?;
        let at_ms: i64 = row.try_get(4)?;
        let corrupt = |what: &str| StoreError::Corrupt {
            table: "bids",
            key: format!("{key} #{seq}"),
            source: Arc::new(serde_json::Error::io(std::io::Error::other(what.to_owned()))),
        };
        let id = key.parse::<RequestId>().map_err(|_| corrupt("request_id is not a request id"))?;
        let bid = Bid {
            prover: prover.parse().map_err(|_| corrupt("prover is not an address"))?,
            price_per_pgu: price.parse().map_err(|_| corrupt("price_per_pgu is not an amount"))?,
            at_ms: u64::try_from(at_ms).map_err(|_| corrupt("at_ms is negative"))?,
        };
        bids.entry(id).or_default().push(bid);
    }
    Ok(bids)
}

/// Rows written before the history left memory, converted per batch.
const UPGRADE_BATCH: i64 = 1_000;

/// The next batch of rows from before migration 0002, brought up to date: the new columns
/// filled from `data`, each request's bids moved out of its JSON into `bids`; `None` once every
/// row is converted. Each batch is committed as one transaction, so a process killed midway
/// leaves converted and unconverted rows only, and the next start carries on.
async fn upgrade_batch<DB>(pool: &Pool<DB>) -> Result<Option<Rows>>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    use sqlx::Row as _;

    let rows = bound::<DB>(
        "SELECT id, data FROM requests WHERE execution IS NULL LIMIT $1",
        vec![Arg::Int(UPGRADE_BATCH)],
    )
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut changes = Changes::default();
    for row in &rows {
        let key: String = row.try_get(0)?;
        let data: String = row.try_get(1)?;
        let request = decode_request(&key, &data)?;
        changes.bids.extend(request.bids.iter().enumerate().map(|(index, bid)| NewBid {
            request: request.id,
            index: index as u32,
            bid: bid.clone(),
        }));
        changes.requests.push(request);
    }
    tracing::info!(target: "provernet::store", requests = changes.requests.len(), "requests brought up to the current schema");
    let mut encoded = Rows::encode(std::slice::from_ref(&changes))?;
    encoded.every_column = true;
    Ok(Some(encoded))
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
