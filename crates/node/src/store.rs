//! The node's job store: every assignment's state and proof, so a restarted node resumes where
//! it stopped and never submits twice; every bid decision, for `provernet node status`; and
//! the node's throughput and memory estimates (self-calibration).
//!
//! Two engines, the same statements: a SQLite file in the data folder (the default, for a node
//! that proves on its own machine) or, for the coordinator of a proving pool
//! (`[cluster] database_url`), the pool's PostgreSQL, so the node's whole state lives beside
//! its task queue and a node started on another machine with the same key and database
//! carries on where the last one stopped. The tables are `node_jobs`, `node_bids`,
//! `node_estimates` and `node_proofs` (prefixed, as the network's own tables may share the
//! database). `node_estimates` holds one row per version, mode and program (`''`: every
//! program); a store from before it keeps its per-version `node_calibration`, whose rows are
//! read as each version's default mode until that has a row of its own.
//!
//! A job's row holds the network's record of its request (the `ProofRequest` message of the
//! API it came from, as the node last read it, and that API's name) and the job's own state.
//! Its proof is stored before the state says `proved`, and deleted once the job is final.
//!
//! PostgreSQL is a server that can restart under the node: a statement that finds the
//! connection gone is tried again for [`OUTAGE`] before it fails (a failed store write leaves
//! its job for the next start).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

pub use crate::core::JobState;
use crate::{
    config::NetworkApi,
    core::{CalibrationKey, Estimate, MemoryUse, Throughput},
    driver::RequestRecord,
};
use provernet_types::{Amount, RequestId};
use sqlx::{
    postgres::{PgPool, PgPoolOptions},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

/// How long a PostgreSQL statement is tried again while the server is away (a restart).
pub const OUTAGE: Duration = Duration::from_secs(60);

/// Pause between tries of a statement while the server is away.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Why the job store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or written.
    #[error("job store: {0}")]
    Database(#[from] sqlx::Error),
    /// Unfinished jobs were taken under another network API than the one configured.
    #[error(
        "[PN-JOBS-OTHER-API] {jobs} unfinished jobs were taken under the {api} API: finish them \
         with network.api = \"{api}\" (or move the data folder aside)"
    )]
    OtherApi {
        /// The API they were taken under.
        api: String,
        /// How many.
        jobs: u64,
    },
    /// A proof file kept by an older version of the store cannot be read.
    #[error("proof file {path}: {source}")]
    ProofFile {
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// A row holds something this version cannot read.
    #[error("job store row for {id} is corrupt: {reason}")]
    Corrupt {
        /// The request id of the row.
        id: String,
        /// What was wrong.
        reason: String,
    },
}

/// One assignment and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The request.
    pub id: RequestId,
    /// The network's record of the request, as last read.
    pub request: RequestRecord,
    /// The job's state.
    pub state: JobState,
    /// The price won, per PGU.
    pub price_per_pgu: Amount,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix seconds of the last change.
    pub updated_at: u64,
}

impl Job {
    /// The request's PGUs as the network's executor measured them.
    pub fn pgus(&self) -> u64 {
        self.request.pgus()
    }

    /// Unix seconds by which the proof must be accepted.
    pub fn deadline(&self) -> u64 {
        self.request.deadline()
    }
}

/// A bid decision as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BidRecord {
    /// The request.
    pub id: RequestId,
    /// Unix seconds of the decision.
    pub at: u64,
    /// The price bid per PGU; none when skipped.
    pub price_per_pgu: Option<Amount>,
    /// The request's PGUs.
    pub pgus: u64,
    /// `bid`, `won`, `lost`, `expired`, `failed`, or `skipped`.
    pub outcome: String,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
}

/// The engine a store is on.
#[derive(Debug, Clone)]
enum Engine {
    Sqlite {
        pool: SqlitePool,
        /// Where stores made before proofs moved into the database kept them as files.
        legacy_proofs: PathBuf,
    },
    Postgres(PgPool),
}

/// The job store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct JobStore {
    engine: Engine,
}

/// Runs `$statement` (an expression on `$db`, the engine's pool, giving a
/// `Result<_, sqlx::Error>` of the same type on both engines) on the store's engine; on
/// PostgreSQL, again while the connection is gone, for up to [`OUTAGE`].
macro_rules! on_engine {
    ($store:expr, |$db:ident| $statement:expr) => {
        match &$store.engine {
            Engine::Sqlite { pool: $db, .. } => $statement,
            Engine::Postgres($db) => {
                ride_out("the job store", OUTAGE, RETRY_PAUSE, is_outage, || async { $statement })
                    .await
            }
        }
    };
}

/// Runs `statement` again, `pause` apart, while its error is one that `retry` says may pass
/// and `patience` has not run out since the first try (a database restarting); `what` names
/// the database's user in the log.
pub(crate) async fn ride_out<F, Fut, T>(
    what: &str,
    patience: Duration,
    pause: Duration,
    retry: fn(&sqlx::Error) -> bool,
    statement: F,
) -> Result<T, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let until = tokio::time::Instant::now() + patience;
    loop {
        match statement().await {
            Err(e) if retry(&e) && tokio::time::Instant::now() < until => {
                tracing::warn!("{what}'s database is away, retrying: {e}");
                tokio::time::sleep(pause).await;
            }
            done => return done,
        }
    }
}

/// Whether `e` says the PostgreSQL connection is gone or the server is restarting, rather than
/// that the statement is wrong.
fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P01-03: the server shutting down or starting up.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// A job row's columns, named: a SQLite store migrated by `ALTER TABLE` has them in another
/// order than a new one.
const JOB_COLUMNS: &str = "request_id, request, state, price_per_pgu, error, updated_at, api";

/// A job row as read.
type JobRow = (String, Vec<u8>, String, String, Option<String>, i64, String);

/// A bid row as read.
type BidRow = (String, i64, Option<String>, i64, String, Option<String>);

const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS node_jobs (
    request_id TEXT PRIMARY KEY,
    request BLOB NOT NULL,
    state TEXT NOT NULL,
    price_per_pgu TEXT NOT NULL,
    error TEXT,
    updated_at INTEGER NOT NULL,
    api TEXT NOT NULL DEFAULT 'provernet'
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON node_jobs (state);
CREATE TABLE IF NOT EXISTS node_bids (
    request_id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    price_per_pgu TEXT,
    pgus INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS bids_by_time ON node_bids (at);
CREATE TABLE IF NOT EXISTS node_calibration (
    version TEXT PRIMARY KEY,
    samples INTEGER NOT NULL,
    pgus_per_second REAL NOT NULL,
    variance REAL NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS node_estimates (
    version TEXT NOT NULL,
    mode TEXT NOT NULL,
    program TEXT NOT NULL,
    samples INTEGER NOT NULL,
    pgus_per_second REAL NOT NULL,
    variance REAL NOT NULL,
    memory_samples INTEGER NOT NULL,
    bytes_per_pgu REAL NOT NULL,
    memory_variance REAL NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (version, mode, program)
);
CREATE TABLE IF NOT EXISTS node_proofs (
    request_id TEXT PRIMARY KEY,
    bundle BLOB NOT NULL
);
";

/// The same tables on PostgreSQL. `node_bids.rowid` stands for SQLite's implicit rowid, so
/// both engines order bids of the same second by when they were first recorded.
const POSTGRES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS node_jobs (
    request_id TEXT PRIMARY KEY,
    request BYTEA NOT NULL,
    state TEXT NOT NULL,
    price_per_pgu TEXT NOT NULL,
    error TEXT,
    updated_at BIGINT NOT NULL,
    api TEXT NOT NULL DEFAULT 'provernet'
);
CREATE INDEX IF NOT EXISTS node_jobs_by_state ON node_jobs (state);
CREATE TABLE IF NOT EXISTS node_bids (
    request_id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    price_per_pgu TEXT,
    pgus BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    rowid BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS node_bids_by_time ON node_bids (at);
CREATE TABLE IF NOT EXISTS node_calibration (
    version TEXT PRIMARY KEY,
    samples BIGINT NOT NULL,
    pgus_per_second DOUBLE PRECISION NOT NULL,
    variance DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS node_estimates (
    version TEXT NOT NULL,
    mode TEXT NOT NULL,
    program TEXT NOT NULL,
    samples BIGINT NOT NULL,
    pgus_per_second DOUBLE PRECISION NOT NULL,
    variance DOUBLE PRECISION NOT NULL,
    memory_samples BIGINT NOT NULL,
    bytes_per_pgu DOUBLE PRECISION NOT NULL,
    memory_variance DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (version, mode, program)
);
CREATE TABLE IF NOT EXISTS node_proofs (
    request_id TEXT PRIMARY KEY,
    bundle BYTEA NOT NULL
);
";

/// The advisory lock PostgreSQL's schema is created under, so two processes starting together
/// do not race on `CREATE TABLE IF NOT EXISTS`.
const POSTGRES_SCHEMA_LOCK: i64 = 0x7072_6f76_6e65_7402;

impl JobStore {
    /// Opens (creating if needed) the SQLite store at `path`.
    ///
    /// # Errors
    /// [`StoreError::Database`] if the file cannot be opened or the schema created.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Every state change is a commit a restart relies on.
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        let mut tx = pool.begin().await?;
        // Stores made before the tables were prefixed (to share a PostgreSQL with the network).
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut *tx)
                .await?;
        for old in ["jobs", "bids", "calibration"] {
            let new = format!("node_{old}");
            if tables.iter().any(|t| t == old) && !tables.contains(&new) {
                sqlx::raw_sql(&format!("ALTER TABLE {old} RENAME TO {new}"))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::raw_sql(SQLITE_SCHEMA).execute(&mut *tx).await?;
        // Stores made before the Succinct API hold provernet records only.
        let columns: Vec<String> =
            sqlx::query_scalar("SELECT name FROM pragma_table_info('node_jobs')")
                .fetch_all(&mut *tx)
                .await?;
        if !columns.iter().any(|c| c == "api") {
            sqlx::query("ALTER TABLE node_jobs ADD COLUMN api TEXT NOT NULL DEFAULT 'provernet'")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let folder = path.parent().unwrap_or(Path::new("."));
        Ok(Self { engine: Engine::Sqlite { pool, legacy_proofs: folder.join("proofs") } })
    }

    /// Connects to the PostgreSQL at `url` (`postgres://…`), creating the tables if need be.
    ///
    /// # Errors
    /// [`StoreError::Database`] if the server cannot be reached or the schema created.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(POSTGRES_SCHEMA_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(POSTGRES_SCHEMA).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Self { engine: Engine::Postgres(pool) })
    }

    /// Checks that no unfinished job was taken under another API than `api`: such a job could
    /// neither be finished nor given up on this network, and would be lost.
    ///
    /// # Errors
    /// [`StoreError::OtherApi`] naming the API and how many jobs; [`StoreError::Database`].
    pub async fn check_api(&self, api: NetworkApi) -> Result<(), StoreError> {
        let other: Option<(String, i64)> = on_engine!(self, |db| sqlx::query_as(
            "SELECT api, COUNT(*) FROM node_jobs WHERE state NOT IN ('done', 'failed')
             AND api <> $1 GROUP BY api LIMIT 1",
        )
        .bind(api.as_str())
        .fetch_optional(db)
        .await)?;
        match other {
            Some((other, jobs)) => Err(StoreError::OtherApi { api: other, jobs: jobs as u64 }),
            None => Ok(()),
        }
    }

    /// Records a new assignment, unless one is recorded already; returns the stored job.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn insert_job(
        &self,
        request: &RequestRecord,
        price_per_pgu: Amount,
        now: u64,
    ) -> Result<Job, StoreError> {
        let id = request.id().map_err(|e| StoreError::Corrupt {
            id: "(the request's id)".into(),
            reason: e.to_string(),
        })?;
        let encoded = request.encode();
        on_engine!(self, |db| sqlx::query(
            "INSERT INTO node_jobs (request_id, request, state, price_per_pgu, error, updated_at,
                 api)
             VALUES ($1, $2, $3, $4, NULL, $5, $6) ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(&encoded)
        .bind(JobState::Assigned.as_str())
        .bind(price_per_pgu.to_string())
        .bind(now as i64)
        .bind(request.api().as_str())
        .execute(db)
        .await
        .map(drop))?;
        self.job(&id).await?.ok_or_else(|| StoreError::Corrupt {
            id: id.to_string(),
            reason: "vanished after insert".into(),
        })
    }

    /// Moves job `id` to `state`, recording `error` for a failure. A final state deletes the
    /// job's proof: it is the network's record now.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn set_state(
        &self,
        id: &RequestId,
        state: JobState,
        error: Option<&str>,
        now: u64,
    ) -> Result<(), StoreError> {
        on_engine!(self, |db| sqlx::query(
            "UPDATE node_jobs SET state = $1, error = $2, updated_at = $3 WHERE request_id = $4"
        )
        .bind(state.as_str())
        .bind(error)
        .bind(now as i64)
        .bind(id.to_string())
        .execute(db)
        .await
        .map(drop))?;
        if state.is_final() {
            on_engine!(self, |db| sqlx::query("DELETE FROM node_proofs WHERE request_id = $1")
                .bind(id.to_string())
                .execute(db)
                .await
                .map(drop))?;
        }
        Ok(())
    }

    /// Job `id`, if recorded.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn job(&self, id: &RequestId) -> Result<Option<Job>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM node_jobs WHERE request_id = $1");
        let row: Option<JobRow> = on_engine!(self, |db| sqlx::query_as(&sql)
            .bind(id.to_string())
            .fetch_optional(db)
            .await)?;
        row.map(job_from_row).transpose()
    }

    /// Every job not yet done or failed, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn unfinished(&self) -> Result<Vec<Job>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM node_jobs WHERE state NOT IN ('done', 'failed') \
             ORDER BY updated_at"
        );
        let rows: Vec<JobRow> = on_engine!(self, |db| sqlx::query_as(&sql).fetch_all(db).await)?;
        rows.into_iter().map(job_from_row).collect()
    }

    /// The `limit` most recently changed jobs.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn recent_jobs(&self, limit: u32) -> Result<Vec<Job>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM node_jobs ORDER BY updated_at DESC LIMIT $1");
        let rows: Vec<JobRow> =
            on_engine!(self, |db| sqlx::query_as(&sql).bind(i64::from(limit)).fetch_all(db).await)?;
        rows.into_iter().map(job_from_row).collect()
    }

    /// Keeps job `id`'s proof bundle, replacing any kept before.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn put_proof(&self, id: &RequestId, bundle: &[u8]) -> Result<(), StoreError> {
        on_engine!(self, |db| sqlx::query(
            "INSERT INTO node_proofs (request_id, bundle) VALUES ($1, $2)
             ON CONFLICT (request_id) DO UPDATE SET bundle = excluded.bundle",
        )
        .bind(id.to_string())
        .bind(bundle)
        .execute(db)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Job `id`'s proof bundle, if one is kept.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn proof(&self, id: &RequestId) -> Result<Option<Vec<u8>>, StoreError> {
        let kept: Option<Vec<u8>> = on_engine!(self, |db| sqlx::query_scalar(
            "SELECT bundle FROM node_proofs WHERE request_id = $1"
        )
        .bind(id.to_string())
        .fetch_optional(db)
        .await)?;
        match (kept, &self.engine) {
            (Some(bundle), _) => Ok(Some(bundle)),
            // A proof made before proofs moved into the database.
            (None, Engine::Sqlite { legacy_proofs, .. }) => {
                let path = legacy_proofs.join(format!("{id}.proof"));
                match tokio::fs::read(&path).await {
                    Ok(bundle) => Ok(Some(bundle)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StoreError::ProofFile { path, source }),
                }
            }
            (None, Engine::Postgres(_)) => Ok(None),
        }
    }

    /// Records (or updates) the decision on a request.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_bid(&self, bid: &BidRecord) -> Result<(), StoreError> {
        on_engine!(self, |db| sqlx::query(
            "INSERT INTO node_bids (request_id, at, price_per_pgu, pgus, outcome, reason)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (request_id) DO UPDATE SET outcome = excluded.outcome,
                 reason = excluded.reason
             -- A bid's answer can come after its auction's outcome: never undo the outcome.
             WHERE excluded.outcome <> 'bid'",
        )
        .bind(bid.id.to_string())
        .bind(bid.at as i64)
        .bind(bid.price_per_pgu.map(|p| p.to_string()))
        .bind(bid.pgus as i64)
        .bind(&bid.outcome)
        .bind(&bid.reason)
        .execute(db)
        .await
        .map(drop))?;
        Ok(())
    }

    /// The `limit` most recent bid decisions, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn recent_bids(&self, limit: u32) -> Result<Vec<BidRecord>, StoreError> {
        let rows: Vec<BidRow> = on_engine!(self, |db| sqlx::query_as(
            "SELECT request_id, at, price_per_pgu, pgus, outcome, reason FROM node_bids
             ORDER BY at DESC, rowid DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(db)
        .await)?;
        rows.into_iter()
            .map(|(id, at, price, pgus, outcome, reason)| {
                let corrupt = |reason: String| StoreError::Corrupt { id: id.clone(), reason };
                Ok(BidRecord {
                    id: id
                        .parse()
                        .map_err(|e: provernet_types::Hex32Error| corrupt(e.to_string()))?,
                    at: at as u64,
                    price_per_pgu: price
                        .map(|p| p.parse::<Amount>())
                        .transpose()
                        .map_err(|e| corrupt(e.to_string()))?,
                    pgus: pgus as u64,
                    outcome,
                    reason,
                })
            })
            .collect()
    }

    /// Keeps the estimate under `key` (self-calibration) for the next start.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn save_calibration(
        &self,
        key: &CalibrationKey,
        estimate: &Estimate,
        now: u64,
    ) -> Result<(), StoreError> {
        let (t, m) = (&estimate.throughput, &estimate.memory);
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        on_engine!(self, |db| sqlx::query(
            "INSERT INTO node_estimates (version, mode, program, samples, pgus_per_second,
                 variance, memory_samples, bytes_per_pgu, memory_variance, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (version, mode, program) DO UPDATE SET samples = excluded.samples,
                 pgus_per_second = excluded.pgus_per_second, variance = excluded.variance,
                 memory_samples = excluded.memory_samples,
                 bytes_per_pgu = excluded.bytes_per_pgu,
                 memory_variance = excluded.memory_variance, updated_at = excluded.updated_at",
        )
        .bind(&key.version)
        .bind(key.mode.as_str())
        .bind(key.program.map(|p| p.to_string()).unwrap_or_default())
        .bind(count(t.samples))
        .bind(t.pgus_per_second)
        .bind(t.variance)
        .bind(count(m.samples))
        .bind(m.bytes_per_pgu)
        .bind(m.variance)
        .bind(count(now))
        .execute(db)
        .await
        .map(drop))?;
        Ok(())
    }

    /// Every kept estimate: `node_estimates`' rows, and a store from before it per-version
    /// rows (each its version's default mode, where that has no row of its own). A row that is
    /// not a usable estimate (edited by hand, say) is left out: the node learns again.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn calibration(&self) -> Result<Vec<(CalibrationKey, Estimate)>, StoreError> {
        let rows: Vec<EstimateRow> = on_engine!(self, |db| sqlx::query_as(
            "SELECT version, mode, program, samples, pgus_per_second, variance, memory_samples,
                 bytes_per_pgu, memory_variance FROM node_estimates
             UNION ALL
             SELECT version, 'default', '', samples, pgus_per_second, variance, 0, 0.0, 0.0
                 FROM node_calibration c WHERE NOT EXISTS (SELECT 1 FROM node_estimates e
                     WHERE e.version = c.version AND e.mode = 'default' AND e.program = '')",
        )
        .fetch_all(db)
        .await)?;
        Ok(rows.into_iter().filter_map(estimate_from_row).collect())
    }

    /// Closes the database after every write is flushed.
    pub async fn close(&self) {
        match &self.engine {
            Engine::Sqlite { pool, .. } => pool.close().await,
            Engine::Postgres(pool) => pool.close().await,
        }
    }
}

/// An estimate row as read.
type EstimateRow = (String, String, String, i64, f64, f64, i64, f64, f64);

/// The estimate a row holds, if it is one.
fn estimate_from_row(
    (version, mode, program, samples, rate, variance, memory_samples, bytes, memory_variance): EstimateRow,
) -> Option<(CalibrationKey, Estimate)> {
    let mode = mode.parse().ok()?;
    let program = if program.is_empty() { None } else { Some(program.parse().ok()?) };
    let throughput = Throughput {
        samples: u64::try_from(samples).ok().filter(|n| *n > 0)?,
        pgus_per_second: rate,
        variance,
    };
    let memory = MemoryUse {
        samples: u64::try_from(memory_samples).ok()?,
        bytes_per_pgu: bytes,
        variance: memory_variance,
    };
    (throughput.is_valid() && memory.is_valid())
        .then_some((CalibrationKey { version, mode, program }, Estimate { throughput, memory }))
}

fn job_from_row(
    (id, request, state, price, error, updated_at, api): JobRow,
) -> Result<Job, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { id: id.clone(), reason };
    let api: NetworkApi = api.parse().map_err(&corrupt)?;
    Ok(Job {
        id: id.parse().map_err(|e: provernet_types::Hex32Error| corrupt(e.to_string()))?,
        request: RequestRecord::decode(api, &request).map_err(|e| corrupt(e.to_string()))?,
        state: state.parse().map_err(corrupt)?,
        price_per_pgu: price
            .parse()
            .map_err(|e: provernet_types::AmountError| corrupt(e.to_string()))?,
        error,
        updated_at: updated_at as u64,
    })
}

#[cfg(test)]
mod tests {
    use provernet_types::{proto, succinct::proto::types as sproto};
    use provernet_zkvm::{ProgramId, ProofMode};

    use super::*;

    fn request(n: u8) -> RequestRecord {
        RequestRecord::Provernet(Box::new(proto::ProofRequest {
            request_id: vec![n; 32],
            pgus: 1024,
            body: Some(proto::RequestProofBody { deadline: 500, ..Default::default() }),
            ..Default::default()
        }))
    }

    fn succinct(n: u8) -> RequestRecord {
        RequestRecord::Succinct(Box::new(sproto::ProofRequest {
            request_id: vec![n; 32],
            gas_used: Some(2048),
            deadline: 600,
            ..Default::default()
        }))
    }

    /// Where a test's store lives: a SQLite file in a temporary folder, or a schema of its own
    /// in the PostgreSQL at `PROVERNET_TEST_POSTGRES_URL`.
    enum Place {
        Sqlite(tempfile::TempDir),
        Postgres(String),
    }

    impl Place {
        fn sqlite() -> Self {
            Self::Sqlite(tempfile::tempdir().unwrap())
        }

        /// A fresh schema, so tests run side by side and leave nothing for the next run.
        async fn postgres() -> Self {
            use provernet_network::test_utils::postgres;
            Self::Postgres(postgres::fresh_schema_at(&postgres::server_url(), "jobs_test").await)
        }

        async fn open(&self) -> JobStore {
            match self {
                Self::Sqlite(dir) => JobStore::open(&dir.path().join("jobs.db")).await.unwrap(),
                Self::Postgres(url) => JobStore::connect(url).await.unwrap(),
            }
        }
    }

    /// Runs `sql` on the store's database, as an operator's hand would.
    async fn raw(store: &JobStore, sql: &str) {
        on_engine!(store, |db| sqlx::raw_sql(sql).execute(db).await.map(drop)).unwrap();
    }

    /// Each named check, as a test on SQLite and an `#[ignore]`d one on PostgreSQL.
    macro_rules! on_both_engines {
        ($($check:ident),* $(,)?) => {
            mod sqlite {
                $(#[tokio::test]
                async fn $check() {
                    super::$check(&super::Place::sqlite()).await;
                })*
            }
            mod postgres {
                $(#[tokio::test]
                #[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test -p provernet-node --lib store:: -- --ignored"]
                async fn $check() {
                    super::$check(&super::Place::postgres().await).await;
                })*
            }
        };
    }

    on_both_engines!(
        a_succinct_job_round_trips_and_holds_its_api,
        jobs_survive_a_reopen_and_insert_is_idempotent,
        a_proof_is_kept_until_its_job_is_final,
        bids_are_recorded_and_their_outcome_updated,
        a_corrupt_row_is_named,
        calibration_survives_a_reopen_and_a_bad_row_is_left_out,
    );

    async fn a_succinct_job_round_trips_and_holds_its_api(place: &Place) {
        let store = place.open().await;
        let job = store.insert_job(&succinct(4), Amount::new(3), 10).await.unwrap();
        assert_eq!(job.request, succinct(4));
        assert_eq!((job.pgus(), job.deadline()), (2048, 600));
        store.check_api(NetworkApi::Succinct).await.unwrap();
        let err = store.check_api(NetworkApi::Provernet).await.unwrap_err().to_string();
        assert!(err.contains("1 unfinished jobs") && err.contains("succinct"), "{err}");
        // Finished jobs of another API are history, not a reason to refuse to start.
        store.set_state(&job.id, JobState::Done, None, 11).await.unwrap();
        store.check_api(NetworkApi::Provernet).await.unwrap();
    }

    async fn jobs_survive_a_reopen_and_insert_is_idempotent(place: &Place) {
        let store = place.open().await;
        let a = store.insert_job(&request(1), Amount::new(7), 10).await.unwrap();
        assert_eq!(a.state, JobState::Assigned);
        assert_eq!((a.pgus(), a.deadline()), (1024, 500));
        store.set_state(&a.id, JobState::Proved, None, 11).await.unwrap();
        // A second assignment event for the same request keeps the progress made.
        let again = store.insert_job(&request(1), Amount::new(7), 12).await.unwrap();
        assert_eq!(again.state, JobState::Proved);
        let b = store.insert_job(&request(2), Amount::new(9), 13).await.unwrap();
        store.set_state(&b.id, JobState::Failed, Some("no"), 14).await.unwrap();
        store.close().await;

        let store = place.open().await;
        let open = store.unfinished().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].id, open[0].state), (a.id, JobState::Proved));
        let failed = store.job(&b.id).await.unwrap().unwrap();
        assert_eq!(failed.error.as_deref(), Some("no"));
        assert_eq!(store.recent_jobs(10).await.unwrap()[0].id, b.id);
    }

    async fn a_proof_is_kept_until_its_job_is_final(place: &Place) {
        let store = place.open().await;
        let job = store.insert_job(&request(1), Amount::new(7), 10).await.unwrap();
        assert_eq!(store.proof(&job.id).await.unwrap(), None);
        store.put_proof(&job.id, b"first").await.unwrap();
        // A proof made again (a restart between proving and recording `proved`) replaces it.
        store.put_proof(&job.id, b"second").await.unwrap();
        store.set_state(&job.id, JobState::Proved, None, 11).await.unwrap();
        store.close().await;
        let store = place.open().await;
        assert_eq!(store.proof(&job.id).await.unwrap().as_deref(), Some(&b"second"[..]));
        store.set_state(&job.id, JobState::Done, None, 12).await.unwrap();
        assert_eq!(store.proof(&job.id).await.unwrap(), None);
    }

    async fn bids_are_recorded_and_their_outcome_updated(place: &Place) {
        let store = place.open().await;
        let id = RequestId::from_slice(&[3; 32]).unwrap();
        let mut bid = BidRecord {
            id,
            at: 5,
            price_per_pgu: Some(Amount::new(4)),
            pgus: 10,
            outcome: "bid".into(),
            reason: None,
        };
        store.record_bid(&bid).await.unwrap();
        bid.outcome = "won".into();
        store.record_bid(&bid).await.unwrap();
        // The bid's own answer arriving after the outcome does not undo it.
        let late = BidRecord { outcome: "bid".into(), ..bid.clone() };
        store.record_bid(&late).await.unwrap();
        let skipped = BidRecord {
            id: RequestId::from_slice(&[4; 32]).unwrap(),
            at: 6,
            price_per_pgu: None,
            outcome: "skipped".into(),
            reason: Some("unsupported zkvm version x".into()),
            ..bid.clone()
        };
        store.record_bid(&skipped).await.unwrap();
        // Decisions of the same second, newest first.
        let same_second =
            BidRecord { id: RequestId::from_slice(&[1; 32]).unwrap(), ..skipped.clone() };
        store.record_bid(&same_second).await.unwrap();
        assert_eq!(store.recent_bids(10).await.unwrap(), vec![same_second, skipped, bid]);
    }

    async fn a_corrupt_row_is_named(place: &Place) {
        let store = place.open().await;
        let job = store.insert_job(&request(1), Amount::new(7), 10).await.unwrap();
        raw(&store, "UPDATE node_jobs SET state = 'weird'").await;
        let err = store.job(&job.id).await.unwrap_err().to_string();
        assert!(err.contains(&job.id.to_string()) && err.contains("weird"), "{err}");
    }

    async fn calibration_survives_a_reopen_and_a_bad_row_is_left_out(place: &Place) {
        let store = place.open().await;
        let throughput = Throughput { samples: 7, pgus_per_second: 4_321.5, variance: 12.25 };
        let memory = MemoryUse { samples: 3, bytes_per_pgu: 9_876.5, variance: 4.0 };
        let measured = Estimate { throughput, memory };
        let version = CalibrationKey::of("miden-0.23", ProofMode::Default);
        let program = version.with_program(ProgramId::from_bytes([7; 32]));
        store.save_calibration(&version, &Estimate::default(), 1).await.unwrap();
        store.save_calibration(&version, &measured, 2).await.unwrap();
        let compressed = CalibrationKey::of("sp1-v6", ProofMode::Compressed);
        let only_throughput = Estimate { throughput, ..Estimate::default() };
        store.save_calibration(&compressed, &only_throughput, 2).await.unwrap();
        store.save_calibration(&program, &measured, 2).await.unwrap();
        raw(
            &store,
            "INSERT INTO node_estimates VALUES ('sp1-v6', 'default', '', 3, -1.0, 0.0, 0, 0.0, 0.0, 3);
             INSERT INTO node_estimates VALUES ('sp1-v6', 'weird', '', 3, 1.0, 0.0, 0, 0.0, 0.0, 3);
             INSERT INTO node_estimates VALUES ('sp1-v6', 'core', 'x', 3, 1.0, 0.0, 0, 0.0, 0.0, 3);",
        )
        .await;
        store.close().await;
        let store = place.open().await;
        let mut kept = store.calibration().await.unwrap();
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            kept,
            [(version, measured), (program, measured), (compressed, only_throughput)],
            "sorted by version, mode, program"
        );
    }

    #[tokio::test]
    async fn a_store_from_before_estimates_by_mode_and_program_keeps_its_per_version_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let old = Throughput { samples: 9, pgus_per_second: 1_234.0, variance: 1.0 };
        {
            let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
            let pool = SqlitePool::connect_with(options).await.unwrap();
            sqlx::raw_sql(
                "CREATE TABLE calibration (version TEXT PRIMARY KEY, samples INTEGER NOT NULL,
                     pgus_per_second REAL NOT NULL, variance REAL NOT NULL,
                     updated_at INTEGER NOT NULL);
                 INSERT INTO calibration VALUES ('miden-0.23', 9, 1234.0, 1.0, 5);
                 INSERT INTO calibration VALUES ('sp1-v6', 2, 50.0, 0.0, 5);",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = JobStore::open(&path).await.unwrap();
        let mut kept = store.calibration().await.unwrap();
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        let miden = CalibrationKey::of("miden-0.23", ProofMode::Default);
        let sp1 = CalibrationKey::of("sp1-v6", ProofMode::Default);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert_eq!(kept[0], (miden.clone(), Estimate { throughput: old, ..Estimate::default() }));
        assert_eq!(kept[1].0, sp1);
        // Once the version's default mode is measured again, its new row is the one read.
        let new = Estimate {
            throughput: Throughput { samples: 10, ..old },
            memory: MemoryUse::default(),
        };
        store.save_calibration(&miden, &new, 6).await.unwrap();
        let kept = store.calibration().await.unwrap();
        assert_eq!(kept.iter().filter(|(k, _)| *k == miden).collect::<Vec<_>>(), [&(miden, new)]);
    }

    #[tokio::test]
    async fn a_store_from_before_the_prefix_and_the_api_column_reads_as_provernet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let proved = request(1).id().unwrap();
        {
            let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
            let pool = SqlitePool::connect_with(options).await.unwrap();
            sqlx::raw_sql(
                "CREATE TABLE jobs (request_id TEXT PRIMARY KEY, request BLOB NOT NULL,
                     state TEXT NOT NULL, price_per_pgu TEXT NOT NULL, error TEXT,
                     updated_at INTEGER NOT NULL);
                 CREATE TABLE bids (request_id TEXT PRIMARY KEY, at INTEGER NOT NULL,
                     price_per_pgu TEXT, pgus INTEGER NOT NULL, outcome TEXT NOT NULL,
                     reason TEXT);",
            )
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query("INSERT INTO jobs VALUES (?, ?, 'proved', '7', NULL, 10)")
                .bind(proved.to_string())
                .bind(request(1).encode())
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query("INSERT INTO bids VALUES (?, 9, '7', 1024, 'won', NULL)")
                .bind(proved.to_string())
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            // Its proof, a file beside the database as that version kept it.
            std::fs::create_dir(dir.path().join("proofs")).unwrap();
            std::fs::write(dir.path().join("proofs").join(format!("{proved}.proof")), b"old")
                .unwrap();
        }
        let store = JobStore::open(&path).await.unwrap();
        let open = store.unfinished().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].request, request(1));
        assert_eq!(store.recent_bids(10).await.unwrap()[0].outcome, "won");
        assert_eq!(store.proof(&proved).await.unwrap().as_deref(), Some(&b"old"[..]));
        store.check_api(NetworkApi::Provernet).await.unwrap();
        let err = store.check_api(NetworkApi::Succinct).await.unwrap_err().to_string();
        assert!(err.contains("PN-JOBS-OTHER-API") && err.contains("provernet"), "{err}");
    }

    #[test]
    fn a_lost_connection_is_an_outage_and_a_wrong_statement_is_not() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(is_outage(&sqlx::Error::Io(io)));
        assert!(is_outage(&sqlx::Error::PoolTimedOut));
        assert!(!is_outage(&sqlx::Error::RowNotFound));
        assert!(!is_outage(&sqlx::Error::ColumnNotFound("x".into())));
    }
}
