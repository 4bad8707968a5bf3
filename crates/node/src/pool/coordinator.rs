//! The node's side of the proving pool: it sets the pool up, queues a task where it would prove
//! in-process, takes the proof back (or the reason there is none), rejects a proof its own
//! verification refuses, abandons a task whose request closed, and reads the live workers as
//! the capacity the bidder sees.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use provernet_types::{ArtifactId, RequestId};
use provernet_zkvm::ProofMode;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row, postgres::PgListener};
use tokio::sync::Notify;

use super::{ClusterSecret, DONE_CHANNEL, PoolError, QUEUED_CHANNEL, bounded, connect};
pub use crate::core::{PoolCapacity, VersionCapacity};

/// How often a waiter reads its task when no notification came (a lost notification, a
/// reconnecting listener).
const POLL: Duration = Duration::from_secs(1);

/// Seconds without a heartbeat after which a lost worker is taken as gone (no longer alerted).
const GONE_SECS: f64 = 3_600.0;

/// How long finished, failed and abandoned tasks, and blobs no task names, are kept.
const KEEP_SECS: i64 = 24 * 3_600;

/// A task as the node queues it: what to prove, and by when.
#[derive(Debug, Clone, Copy)]
pub struct PoolTask<'a> {
    /// The request.
    pub id: RequestId,
    /// Its zkVM version.
    pub version: &'a str,
    /// The proof mode asked for.
    pub mode: ProofMode,
    /// The program's bytes.
    pub program: &'a [u8],
    /// The inputs' bytes.
    pub inputs: &'a [u8],
    /// The request's gas limit.
    pub gas_limit: u64,
    /// Its PGUs.
    pub pgus: u64,
    /// Memory its proof holds, bytes (a worker claims only what fits its free memory).
    pub memory_bytes: u64,
    /// Unix seconds by which the proof must be accepted (the pool's order: earliest first).
    pub deadline: u64,
}

/// A proof a worker handed back, its MAC checked.
#[derive(Debug, Clone)]
pub struct HandedBack {
    /// The worker that proved it.
    pub worker: String,
    /// The attempt it answers (1 for the first claim).
    pub attempt: u32,
    /// The encoded proof bundle.
    pub bundle: Vec<u8>,
    /// The worker's proving seconds.
    pub secs: f64,
}

/// One worker as the node sees it, for `/status` and the pool's capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Its id.
    pub id: String,
    /// The host it said it runs on.
    pub host: String,
    /// `live`, `lost` (no heartbeat within the lease), `gone` (none for an hour: no longer
    /// alerted on), `stopped`, or `refused` (its registration does not carry the cluster
    /// secret's MAC).
    pub state: String,
    /// The versions it proves.
    pub versions: Vec<String>,
    /// Its cores, proving slots, memory (bytes) and GPUs.
    pub cores: u32,
    /// Proofs it runs at once.
    pub slots: u32,
    /// Its proving memory, bytes.
    pub memory_bytes: u64,
    /// Its GPUs.
    pub gpus: u32,
    /// Its measured throughput per version, PGUs per second.
    pub pgus_per_second: BTreeMap<String, f64>,
    /// Seconds since its last heartbeat (by the database's clock).
    pub heartbeat_age_secs: f64,
    /// The requests whose tasks it holds.
    pub tasks: Vec<String>,
    /// Proofs it handed back.
    pub proved: u64,
    /// Tasks it gave back failed, or whose proof was rejected.
    pub failed: u64,
}

impl WorkerStatus {
    /// Whether it counts toward the pool's capacity.
    pub fn is_live(&self) -> bool {
        self.state == "live"
    }
}

/// What the live workers offer.
pub fn capacity(workers: &[WorkerStatus]) -> PoolCapacity {
    let mut pool = PoolCapacity::default();
    for worker in workers.iter().filter(|w| w.is_live()) {
        pool.workers += 1;
        pool.slots += worker.slots as usize;
        pool.memory_bytes = pool.memory_bytes.saturating_add(worker.memory_bytes);
        for version in &worker.versions {
            let entry = pool.versions.entry(version.clone()).or_default();
            entry.workers += 1;
            entry.largest_memory_bytes = entry.largest_memory_bytes.max(worker.memory_bytes);
            entry.pgus_per_second += worker.pgus_per_second.get(version).copied().unwrap_or(0.0);
        }
    }
    pool
}

/// The node's handle on the pool.
#[derive(Debug)]
pub struct Coordinator {
    db: PgPool,
    secret: ClusterSecret,
    lease_secs: u32,
    max_attempts: u32,
    /// Woken when a worker hands back or gives back a task.
    done: Arc<Notify>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl Coordinator {
    /// Connects to the pool's database, creates its tables if need be, and publishes the node's
    /// identity, versions, secret digest and queue rules for workers to check.
    ///
    /// # Errors
    /// [`PoolError::Database`] if the database cannot be reached or set up.
    pub async fn open(
        url: &str,
        secret: ClusterSecret,
        node: &str,
        versions: &[String],
        lease_secs: u32,
        max_attempts: u32,
    ) -> Result<Self, PoolError> {
        let db = connect(url).await?;
        sqlx::query(
            "INSERT INTO pool_meta (id, node, secret_digest, versions, lease_secs, max_attempts)
             VALUES (1, $1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET node = EXCLUDED.node,
                 secret_digest = EXCLUDED.secret_digest, versions = EXCLUDED.versions,
                 lease_secs = EXCLUDED.lease_secs, max_attempts = EXCLUDED.max_attempts,
                 updated_at = now()",
        )
        .bind(node)
        .bind(secret.digest().to_vec())
        .bind(versions)
        .bind(lease_secs as i32)
        .bind(max_attempts as i32)
        .execute(&db)
        .await?;
        let done = Arc::new(Notify::new());
        let mut listen = PgListener::connect_with(&db).await?;
        listen.listen(DONE_CHANNEL).await?;
        let wake = done.clone();
        let listener = tokio::spawn(async move {
            loop {
                match listen.recv().await {
                    Ok(_) => wake.notify_waiters(),
                    // It reconnects at the next recv; waiters poll meanwhile.
                    Err(e) => {
                        tracing::warn!("proving pool: notifications interrupted: {e}");
                        tokio::time::sleep(POLL).await;
                    }
                }
            }
        });
        Ok(Self { db, secret, lease_secs, max_attempts, done, listener })
    }

    /// The lease a claim holds without a heartbeat, seconds.
    pub fn lease_secs(&self) -> u32 {
        self.lease_secs
    }

    /// Queues `task` (its program and inputs stored by content id). Queueing a request that
    /// has a task already keeps that task (a restarted node finds its proof there), and
    /// re-opens one that was abandoned.
    ///
    /// # Errors
    /// [`PoolError::Database`].
    pub async fn enqueue(&self, task: &PoolTask<'_>) -> Result<(), PoolError> {
        let program = self.put_blob(task.program).await?;
        let inputs = self.put_blob(task.inputs).await?;
        sqlx::query(
            "INSERT INTO pool_tasks (request_id, version, mode, program, inputs, gas_limit, pgus,
                 memory_bytes, deadline, state, max_attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $10)
             ON CONFLICT (request_id) DO UPDATE SET deadline = EXCLUDED.deadline,
                 state = CASE WHEN pool_tasks.state = 'abandoned' THEN 'queued'
                              ELSE pool_tasks.state END,
                 updated_at = now()",
        )
        .bind(task.id.as_bytes().to_vec())
        .bind(task.version)
        .bind(task.mode.as_str())
        .bind(program.as_bytes().to_vec())
        .bind(inputs.as_bytes().to_vec())
        .bind(task.gas_limit as i64)
        .bind(task.pgus as i64)
        .bind(task.memory_bytes.min(i64::MAX as u64) as i64)
        .bind(task.deadline as i64)
        .bind(self.max_attempts as i32)
        .execute(&self.db)
        .await?;
        self.announce(QUEUED_CHANNEL).await
    }

    async fn put_blob(&self, bytes: &[u8]) -> Result<ArtifactId, PoolError> {
        let id = ArtifactId::of(bytes);
        // A blob a worker found corrupt is written again (the content id says what is right).
        sqlx::query(
            "INSERT INTO pool_blobs (id, bytes) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET bytes = EXCLUDED.bytes
             WHERE pool_blobs.bytes IS DISTINCT FROM EXCLUDED.bytes",
        )
        .bind(id.as_bytes().to_vec())
        .bind(bytes)
        .execute(&self.db)
        .await?;
        Ok(id)
    }

    async fn announce(&self, channel: &str) -> Result<(), PoolError> {
        sqlx::query("SELECT pg_notify($1, '')").bind(channel).execute(&self.db).await?;
        Ok(())
    }

    /// Waits until a worker hands back a proof of `task` whose MAC holds; the database being
    /// away is waited out (the caller bounds the wait by the request's deadline).
    ///
    /// # Errors
    /// [`PoolError::Task`] when the task failed for good (its attempts are spent), was
    /// abandoned or is gone.
    pub async fn proof(&self, task: &PoolTask<'_>) -> Result<HandedBack, PoolError> {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.read(task).await {
                Ok(Some(handed)) => return Ok(handed),
                Ok(None) => {}
                Err(PoolError::Database(e)) => {
                    tracing::warn!("proving pool unreachable; waiting for it: {e}");
                }
                Err(e) => return Err(e),
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One look at `task`: its proof if handed back, nothing yet, or why there will be none.
    async fn read(&self, task: &PoolTask<'_>) -> Result<Option<HandedBack>, PoolError> {
        let id = task.id.as_bytes().to_vec();
        let row = sqlx::query(
            "SELECT state, worker_id, attempts, max_attempts, proof, proof_mac, prove_secs,
                    last_error, blob_fault, COALESCE(lease_until < now(), false) AS expired
             FROM pool_tasks WHERE request_id = $1",
        )
        .bind(&id)
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else {
            return Err(PoolError::Task("the task is gone from the pool".into()));
        };
        let state: String = row.try_get("state")?;
        let attempts: i32 = row.try_get("attempts")?;
        let max_attempts: i32 = row.try_get("max_attempts")?;
        let last_error: Option<String> = row.try_get("last_error")?;
        let last = || last_error.clone().unwrap_or_else(|| "no error recorded".into());
        match state.as_str() {
            "proved" => {
                let worker: String =
                    row.try_get::<Option<String>, _>("worker_id")?.unwrap_or_default();
                let bundle: Vec<u8> =
                    row.try_get::<Option<Vec<u8>>, _>("proof")?.unwrap_or_default();
                let mac: Vec<u8> =
                    row.try_get::<Option<Vec<u8>>, _>("proof_mac")?.unwrap_or_default();
                let attempt = attempts.max(0) as u32;
                if !self.secret.verify_hand_back(&task.id, attempt, &bundle, &mac) {
                    let reason = "its proof does not carry the cluster secret's MAC";
                    self.reject(&task.id, &worker, attempt, reason).await?;
                    return Ok(None);
                }
                let secs: f64 = row.try_get::<Option<f64>, _>("prove_secs")?.unwrap_or(0.0);
                Ok(Some(HandedBack { worker, attempt, bundle, secs }))
            }
            "failed" => {
                Err(PoolError::Task(format!("failed after {attempts} attempts: {}", last())))
            }
            "abandoned" => Err(PoolError::Task("the task was abandoned".into())),
            "queued" | "claimed" => {
                if row.try_get::<bool, _>("blob_fault")? {
                    tracing::warn!(
                        "a worker found the task's artifacts corrupt: writing them again"
                    );
                    self.put_blob(task.program).await?;
                    self.put_blob(task.inputs).await?;
                    sqlx::query("UPDATE pool_tasks SET blob_fault = false WHERE request_id = $1")
                        .bind(&id)
                        .execute(&self.db)
                        .await?;
                    self.announce(QUEUED_CHANNEL).await?;
                }
                let expired: bool = row.try_get("expired")?;
                if attempts >= max_attempts && (state == "queued" || expired) {
                    sqlx::query(
                        "UPDATE pool_tasks SET state = 'failed', updated_at = now()
                         WHERE request_id = $1 AND attempts = $2 AND state = $3",
                    )
                    .bind(&id)
                    .bind(attempts)
                    .bind(&state)
                    .execute(&self.db)
                    .await?;
                    return Err(PoolError::Task(format!(
                        "its {attempts} attempts are spent; the last: {}",
                        last()
                    )));
                }
                Ok(None)
            }
            other => Err(PoolError::Corrupt(format!("task state {other:?}"))),
        }
    }

    /// Puts a handed-back task back in the queue because its proof was refused (`reason`):
    /// `worker` will not get it again, and the refusal counts against it.
    ///
    /// # Errors
    /// [`PoolError::Database`].
    pub async fn reject(
        &self,
        id: &RequestId,
        worker: &str,
        attempt: u32,
        reason: &str,
    ) -> Result<(), PoolError> {
        tracing::warn!(worker, "proof from the pool refused: {reason}; queued again");
        let requeued = sqlx::query(
            "UPDATE pool_tasks SET state = 'queued', worker_id = NULL, proof = NULL,
                 proof_mac = NULL, lease_until = NULL, excluded = array_append(excluded, $2),
                 last_error = $3, updated_at = now()
             WHERE request_id = $1 AND state = 'proved' AND attempts = $4",
        )
        .bind(id.as_bytes().to_vec())
        .bind(worker)
        .bind(bounded(&format!("worker {worker}'s proof was refused: {reason}")))
        .bind(attempt as i32)
        .execute(&self.db)
        .await?;
        if requeued.rows_affected() > 0 {
            sqlx::query("UPDATE pool_workers SET failed = failed + 1 WHERE id = $1")
                .bind(worker)
                .execute(&self.db)
                .await?;
        }
        self.announce(QUEUED_CHANNEL).await
    }

    /// Abandons the task of a request that closed or was given up: no worker claims it again,
    /// and the one proving it stops at its next heartbeat.
    ///
    /// # Errors
    /// [`PoolError::Database`].
    pub async fn abandon(&self, id: &RequestId) -> Result<(), PoolError> {
        sqlx::query(
            "UPDATE pool_tasks SET state = 'abandoned', updated_at = now()
             WHERE request_id = $1 AND state IN ('queued', 'claimed')",
        )
        .bind(id.as_bytes().to_vec())
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Forgets the task of a request whose proof the node has written down.
    ///
    /// # Errors
    /// [`PoolError::Database`].
    pub async fn taken(&self, id: &RequestId) -> Result<(), PoolError> {
        sqlx::query("DELETE FROM pool_tasks WHERE request_id = $1")
            .bind(id.as_bytes().to_vec())
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Drops what is long finished: failed and abandoned tasks, and blobs no task names.
    ///
    /// # Errors
    /// [`PoolError::Database`].
    pub async fn prune(&self) -> Result<(), PoolError> {
        sqlx::query(
            "DELETE FROM pool_tasks WHERE state IN ('failed', 'abandoned')
             AND updated_at < now() - make_interval(secs => $1)",
        )
        .bind(KEEP_SECS as f64)
        .execute(&self.db)
        .await?;
        sqlx::query(
            "DELETE FROM pool_blobs b WHERE created_at < now() - make_interval(secs => $1)
             AND NOT EXISTS (SELECT 1 FROM pool_tasks t WHERE t.program = b.id OR t.inputs = b.id)",
        )
        .bind(KEEP_SECS as f64)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Every worker that registered, with where it stands.
    ///
    /// # Errors
    /// [`PoolError::Database`].
    pub async fn workers(&self) -> Result<Vec<WorkerStatus>, PoolError> {
        let rows = sqlx::query(
            "SELECT w.id, w.host, w.auth, w.versions, w.cores, w.slots, w.memory_bytes, w.gpus,
                    w.rates, w.stopped, w.proved, w.failed,
                    EXTRACT(EPOCH FROM now() - w.heartbeat_at)::float8 AS age,
                    ARRAY(SELECT encode(t.request_id, 'hex') FROM pool_tasks t
                          WHERE t.worker_id = w.id AND t.state = 'claimed'
                          ORDER BY t.deadline) AS tasks
             FROM pool_workers w ORDER BY w.id",
        )
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(|row| self.worker(row)).collect()
    }

    fn worker(&self, row: &sqlx::postgres::PgRow) -> Result<WorkerStatus, PoolError> {
        let id: String = row.try_get("id")?;
        let auth: Vec<u8> = row.try_get("auth")?;
        let age: f64 = row.try_get("age")?;
        let rates: String = row.try_get("rates")?;
        let pgus_per_second: BTreeMap<String, f64> = serde_json::from_str(&rates)
            .map_err(|e| PoolError::Corrupt(format!("worker {id}'s rates: {e}")))?;
        let state = if auth != self.secret.registration_mac(&id) {
            "refused"
        } else if row.try_get::<bool, _>("stopped")? {
            "stopped"
        } else if age > GONE_SECS {
            "gone"
        } else if age > f64::from(self.lease_secs) {
            "lost"
        } else {
            "live"
        };
        let count = |name: &str| row.try_get::<i32, _>(name).map(|n| n.max(0) as u32);
        let total = |name: &str| row.try_get::<i64, _>(name).map(|n| n.max(0) as u64);
        Ok(WorkerStatus {
            host: row.try_get("host")?,
            state: state.to_owned(),
            versions: row.try_get("versions")?,
            cores: count("cores")?,
            slots: count("slots")?,
            memory_bytes: total("memory_bytes")?,
            gpus: count("gpus")?,
            pgus_per_second,
            heartbeat_age_secs: age.max(0.0),
            tasks: row.try_get("tasks")?,
            proved: total("proved")?,
            failed: total("failed")?,
            id,
        })
    }
}
