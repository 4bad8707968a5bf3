//! The node's job store (SQLite): every assignment's state, so a restarted node resumes where it
//! stopped and never submits twice, and every bid decision, for `provernet node status`.
//!
//! A job's row holds the network's record of its request (the `ProofRequest` message of the API
//! it came from, as the node last read it, and that API's name) and the job's own state; the proof itself is a file beside the database,
//! written before the state says `proved`.

use std::path::Path;

pub use crate::core::JobState;
use crate::{config::NetworkApi, core::Throughput, driver::RequestRecord};
use provernet_types::{Amount, RequestId};
use sqlx::{
    Row,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

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

/// The job store.
#[derive(Debug, Clone)]
pub struct JobStore {
    pool: SqlitePool,
}

/// A job row's columns, named: a store migrated by `ALTER TABLE` has them in another order
/// than a new one, and a connection may have read the table before the migration.
const JOB_COLUMNS: &str = "request_id, request, state, price_per_pgu, error, updated_at, api";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    request_id TEXT PRIMARY KEY,
    request BLOB NOT NULL,
    state TEXT NOT NULL,
    price_per_pgu TEXT NOT NULL,
    error TEXT,
    updated_at INTEGER NOT NULL,
    api TEXT NOT NULL DEFAULT 'provernet'
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state);
CREATE TABLE IF NOT EXISTS bids (
    request_id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    price_per_pgu TEXT,
    pgus INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS bids_by_time ON bids (at);
CREATE TABLE IF NOT EXISTS calibration (
    version TEXT PRIMARY KEY,
    samples INTEGER NOT NULL,
    pgus_per_second REAL NOT NULL,
    variance REAL NOT NULL,
    updated_at INTEGER NOT NULL
);
";

impl JobStore {
    /// Opens (creating if needed) the store at `path`.
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
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        // Stores made before the Succinct API hold provernet records only.
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info('jobs')")
            .fetch_all(&pool)
            .await?;
        if !columns.iter().any(|c| c == "api") {
            sqlx::query("ALTER TABLE jobs ADD COLUMN api TEXT NOT NULL DEFAULT 'provernet'")
                .execute(&pool)
                .await?;
        }
        Ok(Self { pool })
    }

    /// Checks that no unfinished job was taken under another API than `api`: such a job could
    /// neither be finished nor given up on this network, and would be lost.
    ///
    /// # Errors
    /// [`StoreError::OtherApi`] naming the API and how many jobs; [`StoreError::Database`].
    pub async fn check_api(&self, api: NetworkApi) -> Result<(), StoreError> {
        let other: Option<(String, i64)> = sqlx::query_as(
            "SELECT api, COUNT(*) FROM jobs WHERE state NOT IN ('done', 'failed') AND api <> ?
             GROUP BY api LIMIT 1",
        )
        .bind(api.as_str())
        .fetch_optional(&self.pool)
        .await?;
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
        sqlx::query(
            "INSERT INTO jobs (request_id, request, state, price_per_pgu, error, updated_at, api)
             VALUES (?, ?, ?, ?, NULL, ?, ?) ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(request.encode())
        .bind(JobState::Assigned.as_str())
        .bind(price_per_pgu.to_string())
        .bind(now as i64)
        .bind(request.api().as_str())
        .execute(&self.pool)
        .await?;
        self.job(&id).await?.ok_or_else(|| StoreError::Corrupt {
            id: id.to_string(),
            reason: "vanished after insert".into(),
        })
    }

    /// Moves job `id` to `state`, recording `error` for a failure.
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
        sqlx::query("UPDATE jobs SET state = ?, error = ?, updated_at = ? WHERE request_id = ?")
            .bind(state.as_str())
            .bind(error)
            .bind(now as i64)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Job `id`, if recorded.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn job(&self, id: &RequestId) -> Result<Option<Job>, StoreError> {
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE request_id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| job_from_row(&r)).transpose()
    }

    /// Every job not yet done or failed, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn unfinished(&self) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state NOT IN ('done', 'failed') \
             ORDER BY updated_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// The `limit` most recently changed jobs.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn recent_jobs(&self, limit: u32) -> Result<Vec<Job>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs ORDER BY updated_at DESC LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Records (or updates) the decision on a request.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn record_bid(&self, bid: &BidRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bids (request_id, at, price_per_pgu, pgus, outcome, reason)
             VALUES (?, ?, ?, ?, ?, ?)
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The `limit` most recent bid decisions, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn recent_bids(&self, limit: u32) -> Result<Vec<BidRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM bids ORDER BY at DESC, rowid DESC LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("request_id")?;
                let corrupt = |reason: String| StoreError::Corrupt { id: id.clone(), reason };
                let price: Option<String> = r.try_get("price_per_pgu")?;
                Ok(BidRecord {
                    id: id
                        .parse()
                        .map_err(|e: provernet_types::Hex32Error| corrupt(e.to_string()))?,
                    at: r.try_get::<i64, _>("at")? as u64,
                    price_per_pgu: price
                        .map(|p| p.parse::<Amount>())
                        .transpose()
                        .map_err(|e| corrupt(e.to_string()))?,
                    pgus: r.try_get::<i64, _>("pgus")? as u64,
                    outcome: r.try_get("outcome")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Keeps `version`'s throughput estimate (self-calibration) for the next start.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn save_calibration(
        &self,
        version: &str,
        measured: &Throughput,
        now: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO calibration (version, samples, pgus_per_second, variance, updated_at)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (version) DO UPDATE SET samples = excluded.samples,
                 pgus_per_second = excluded.pgus_per_second, variance = excluded.variance,
                 updated_at = excluded.updated_at",
        )
        .bind(version)
        .bind(i64::try_from(measured.samples).unwrap_or(i64::MAX))
        .bind(measured.pgus_per_second)
        .bind(measured.variance)
        .bind(i64::try_from(now).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every version's kept throughput estimate. A row that is not a usable estimate (edited
    /// by hand, say) is left out: the node learns again.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn calibration(&self) -> Result<Vec<(String, Throughput)>, StoreError> {
        let rows: Vec<(String, i64, f64, f64)> =
            sqlx::query_as("SELECT version, samples, pgus_per_second, variance FROM calibration")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter(|(_, samples, rate, variance)| {
                *samples > 0
                    && rate.is_finite()
                    && *rate > 0.0
                    && variance.is_finite()
                    && *variance >= 0.0
            })
            .map(|(version, samples, pgus_per_second, variance)| {
                (version, Throughput { samples: samples as u64, pgus_per_second, variance })
            })
            .collect())
    }

    /// Closes the database after every write is flushed.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn job_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Job, StoreError> {
    let id: String = row.try_get("request_id")?;
    let corrupt = |reason: String| StoreError::Corrupt { id: id.clone(), reason };
    let request: Vec<u8> = row.try_get("request")?;
    let api: NetworkApi = row.try_get::<String, _>("api")?.parse().map_err(&corrupt)?;
    let state: String = row.try_get("state")?;
    let price: String = row.try_get("price_per_pgu")?;
    Ok(Job {
        id: id.parse().map_err(|e: provernet_types::Hex32Error| corrupt(e.to_string()))?,
        request: RequestRecord::decode(api, &request).map_err(|e| corrupt(e.to_string()))?,
        state: state.parse().map_err(corrupt)?,
        price_per_pgu: price
            .parse()
            .map_err(|e: provernet_types::AmountError| corrupt(e.to_string()))?,
        error: row.try_get("error")?,
        updated_at: row.try_get::<i64, _>("updated_at")? as u64,
    })
}

#[cfg(test)]
mod tests {
    use provernet_types::{proto, succinct::proto::types as sproto};

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

    #[tokio::test]
    async fn a_store_from_before_the_api_column_reads_as_provernet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        {
            let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
            let pool = SqlitePool::connect_with(options).await.unwrap();
            sqlx::raw_sql(
                "CREATE TABLE jobs (request_id TEXT PRIMARY KEY, request BLOB NOT NULL,
                     state TEXT NOT NULL, price_per_pgu TEXT NOT NULL, error TEXT,
                     updated_at INTEGER NOT NULL)",
            )
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query("INSERT INTO jobs VALUES (?, ?, 'proved', '7', NULL, 10)")
                .bind(request(1).id().unwrap().to_string())
                .bind(request(1).encode())
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        let store = JobStore::open(&path).await.unwrap();
        let open = store.unfinished().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].request, request(1));
        store.check_api(NetworkApi::Provernet).await.unwrap();
        let err = store.check_api(NetworkApi::Succinct).await.unwrap_err().to_string();
        assert!(err.contains("PN-JOBS-OTHER-API") && err.contains("provernet"), "{err}");
    }

    #[tokio::test]
    async fn a_succinct_job_round_trips_and_holds_its_api() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(&dir.path().join("jobs.db")).await.unwrap();
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

    #[tokio::test]
    async fn jobs_survive_a_reopen_and_insert_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let store = JobStore::open(&path).await.unwrap();
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

        let store = JobStore::open(&path).await.unwrap();
        let open = store.unfinished().await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].id, open[0].state), (a.id, JobState::Proved));
        let failed = store.job(&b.id).await.unwrap().unwrap();
        assert_eq!(failed.error.as_deref(), Some("no"));
        assert_eq!(store.recent_jobs(10).await.unwrap()[0].id, b.id);
    }

    #[tokio::test]
    async fn bids_are_recorded_and_their_outcome_updated() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(&dir.path().join("jobs.db")).await.unwrap();
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
        assert_eq!(store.recent_bids(10).await.unwrap(), vec![skipped, bid]);
    }

    #[tokio::test]
    async fn a_corrupt_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(&dir.path().join("jobs.db")).await.unwrap();
        let job = store.insert_job(&request(1), Amount::new(7), 10).await.unwrap();
        sqlx::query("UPDATE jobs SET state = 'weird'").execute(&store.pool).await.unwrap();
        let err = store.job(&job.id).await.unwrap_err().to_string();
        assert!(err.contains(&job.id.to_string()) && err.contains("weird"), "{err}");
    }

    #[tokio::test]
    async fn calibration_survives_a_reopen_and_a_bad_row_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let store = JobStore::open(&path).await.unwrap();
        let measured = Throughput { samples: 7, pgus_per_second: 4_321.5, variance: 12.25 };
        store.save_calibration("miden-0.23", &Throughput::default(), 1).await.unwrap();
        store.save_calibration("miden-0.23", &measured, 2).await.unwrap();
        sqlx::query("INSERT INTO calibration VALUES ('sp1-v6', 3, -1.0, 0.0, 3)")
            .execute(&store.pool)
            .await
            .unwrap();
        store.close().await;
        let store = JobStore::open(&path).await.unwrap();
        assert_eq!(store.calibration().await.unwrap(), [("miden-0.23".to_owned(), measured)]);
    }
}
