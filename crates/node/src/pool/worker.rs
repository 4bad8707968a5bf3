//! The `provernet worker` process: it registers with the node's pool, heartbeats, claims the
//! tasks it can hold (earliest deadline first, several at once as its cores and memory allow),
//! fetches their program and inputs (verified by content id, through its own bounded cache),
//! proves, verifies its own proof, and hands it back.
//!
//! ```text
//! start: connect ─▶ the node's pool_meta (waits for it) ─▶ secret and versions checked ─▶ register
//! loop:  claim while a slot and memory are free ─▶ fetch (cache or pool_blobs, blake3 checked)
//!        ─▶ prove ─▶ verify ─▶ hand back with the secret's MAC (only if the claim is still ours)
//! heartbeat (a third of the lease): extends the leases of the claims it holds; a claim no longer
//!        ours (abandoned, or taken back after a lost lease) stops its proof
//! shutdown: no more claims; proofs in flight finish and are handed back; then `stopped`
//! ```

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use provernet_artifacts::ArtifactCache;
use provernet_types::{ArtifactId, RequestId};
use provernet_zkvm::{ProofBundle, ProofMode, ProveJob, ZkVm, ZkVmRegistry, prove_async};
use sqlx::{PgPool, Row, postgres::PgListener};
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{ClusterSecret, DONE_CHANNEL, PoolError, QUEUED_CHANNEL, bounded, connect};
use crate::{ResourceManager, Resources, core::Throughput};

/// How often the worker looks for work when no notification came.
const POLL: Duration = Duration::from_secs(1);

/// How long a statement that must land (a hand-back) is retried while the database is away.
const MUST_LAND: Duration = Duration::from_secs(60);

/// How a worker is set up.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Its id in the pool (unique per worker; a restarted worker keeps it).
    pub id: String,
    /// The host it runs on, for the operator.
    pub host: String,
    /// The pool's database.
    pub database_url: String,
    /// The node's cluster secret.
    pub secret: ClusterSecret,
    /// The versions to prove; empty: every version the build and the node share.
    pub versions: Vec<String>,
    /// What the machine offers for proving.
    pub resources: Resources,
    /// Its throughput per version at start, PGUs per second (measured, or from
    /// `provernet calibrate`); each proof refines it.
    pub pgus_per_second: BTreeMap<String, f64>,
    /// Where its artifact cache lives, and how large it may grow, bytes.
    pub cache_dir: PathBuf,
    /// The cache's bound, bytes.
    pub cache_bytes: u64,
}

/// A claimed task.
#[derive(Debug, Clone)]
struct Claim {
    id: RequestId,
    version: String,
    mode: ProofMode,
    program: ArtifactId,
    inputs: ArtifactId,
    gas_limit: u64,
    pgus: u64,
    memory_bytes: u64,
    attempt: u32,
    /// Stops its proof when the heartbeat finds the claim is no longer ours.
    cancel: CancellationToken,
}

/// A task being proven here: stopped when the claim is no longer ours.
struct Held {
    cancel: CancellationToken,
    claimed_at: Instant,
}

/// A registered worker, ready to run.
pub struct Worker {
    config: WorkerConfig,
    db: PgPool,
    backends: ZkVmRegistry,
    cache: ArtifactCache,
    versions: Vec<String>,
    lease: Duration,
    held: Mutex<HashMap<RequestId, Held>>,
    rates: Mutex<BTreeMap<String, Throughput>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("id", &self.config.id).finish_non_exhaustive()
    }
}

impl Worker {
    /// Connects, waits for the node to have set the pool up, checks the secret and versions
    /// against the node's, and registers.
    ///
    /// # Errors
    /// [`PoolError::UnknownVersion`] for a version the build cannot prove,
    /// [`PoolError::WrongSecret`], [`PoolError::NoCommonVersion`], or the database's error.
    pub async fn register(
        config: WorkerConfig,
        backends: ZkVmRegistry,
        shutdown: &CancellationToken,
    ) -> Result<Self, PoolError> {
        for version in &config.versions {
            if !backends.supports(version) {
                let known = backends.versions().join(", ");
                return Err(PoolError::UnknownVersion { version: version.clone(), known });
            }
        }
        let db = connect(&config.database_url).await?;
        let (digest, node_versions, lease_secs) = loop {
            let meta = sqlx::query(
                "SELECT secret_digest, versions, lease_secs FROM pool_meta WHERE id = 1",
            )
            .fetch_optional(&db)
            .await?;
            if let Some(row) = meta {
                let digest: Vec<u8> = row.try_get("secret_digest")?;
                let versions: Vec<String> = row.try_get("versions")?;
                let lease: i32 = row.try_get("lease_secs")?;
                break (digest, versions, lease.max(1) as u64);
            }
            tracing::info!("waiting for the node to set up the pool at this database");
            tokio::select! {
                () = shutdown.cancelled() => return Err(PoolError::Task("stopped while waiting for the node".into())),
                () = tokio::time::sleep(POLL) => {}
            }
        };
        if digest != config.secret.digest() {
            return Err(PoolError::WrongSecret);
        }
        let mine =
            if config.versions.is_empty() { backends.versions() } else { config.versions.clone() };
        let versions: Vec<String> =
            mine.iter().filter(|v| node_versions.contains(v)).cloned().collect();
        if versions.is_empty() {
            return Err(PoolError::NoCommonVersion {
                worker: mine.join(", "),
                node: node_versions.join(", "),
            });
        }
        let cache = ArtifactCache::open(&config.cache_dir, config.cache_bytes)
            .await
            .map_err(|e| PoolError::Task(format!("artifact cache: {e}")))?;
        let rates = config
            .pgus_per_second
            .iter()
            .filter(|(v, _)| versions.contains(v))
            .map(|(v, rate)| {
                let mut t = Throughput::default();
                t.observe(*rate);
                (v.clone(), t)
            })
            .collect();
        let worker = Self {
            db,
            backends,
            cache,
            versions,
            lease: Duration::from_secs(lease_secs),
            held: Mutex::default(),
            rates: Mutex::new(rates),
            config,
        };
        worker.upsert().await?;
        // Claims a previous run of this worker held are not ours any more: back to the queue.
        sqlx::query(
            "UPDATE pool_tasks SET state = 'queued', worker_id = NULL, lease_until = NULL,
                 last_error = 'its worker restarted', updated_at = now()
             WHERE worker_id = $1 AND state = 'claimed'",
        )
        .bind(&worker.config.id)
        .execute(&worker.db)
        .await?;
        tracing::info!(
            id = %worker.config.id,
            versions = %worker.versions.join(", "),
            slots = ResourceManager::new(worker.config.resources).slots(),
            "registered with the pool"
        );
        Ok(worker)
    }

    /// The versions it proves for this node.
    pub fn versions(&self) -> &[String] {
        &self.versions
    }

    fn rates_json(&self) -> String {
        let rates: BTreeMap<String, f64> = self
            .rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(v, t)| (v.clone(), t.pgus_per_second))
            .collect();
        serde_json::to_string(&rates).unwrap_or_else(|_| "{}".into())
    }

    async fn upsert(&self) -> Result<(), PoolError> {
        let c = &self.config;
        let slots = ResourceManager::new(c.resources).slots();
        sqlx::query(
            "INSERT INTO pool_workers (id, host, auth, versions, cores, slots, memory_bytes, gpus,
                 rates, started_at, heartbeat_at, stopped)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now(), false)
             ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, auth = EXCLUDED.auth,
                 versions = EXCLUDED.versions, cores = EXCLUDED.cores, slots = EXCLUDED.slots,
                 memory_bytes = EXCLUDED.memory_bytes, gpus = EXCLUDED.gpus,
                 rates = EXCLUDED.rates, started_at = now(), heartbeat_at = now(),
                 stopped = false",
        )
        .bind(&c.id)
        .bind(&c.host)
        .bind(c.secret.registration_mac(&c.id).to_vec())
        .bind(&self.versions)
        .bind(c.resources.cores as i32)
        .bind(slots as i32)
        .bind(c.resources.memory_bytes.min(i64::MAX as u64) as i64)
        .bind(c.resources.gpus as i32)
        .bind(self.rates_json())
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Claims and proves until `shutdown`; then takes no more, finishes the proofs in flight,
    /// hands them back and says it stopped.
    ///
    /// # Errors
    /// The database's error if it cannot say it stopped.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), PoolError> {
        let wake = Arc::new(Notify::new());
        let listener = self.listen(wake.clone()).await;
        let heartbeat = tokio::spawn(self.clone().heartbeat());
        let mut resources = ResourceManager::new(self.config.resources);
        let mut proving: JoinSet<u64> = JoinSet::new();
        loop {
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            while resources.running() < resources.slots() && !shutdown.is_cancelled() {
                let free = resources.memory_bytes().saturating_sub(resources.memory_in_use());
                match self.claim(free).await {
                    Ok(Some(claim)) => {
                        resources.start(claim.memory_bytes, 0);
                        let memory = claim.memory_bytes;
                        let span = tracing::info_span!("task", request = %claim.id, attempt = claim.attempt);
                        let this = self.clone();
                        proving.spawn(
                            async move {
                                this.prove(claim).await;
                                memory
                            }
                            .instrument(span),
                        );
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("cannot claim from the pool: {e}");
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled(), if !shutdown.is_cancelled() => {}
                Some(done) = proving.join_next() => {
                    if let Ok(memory) = done {
                        resources.finish(memory, 0);
                    }
                }
                () = &mut notified => {}
                () = tokio::time::sleep(POLL) => {}
            }
            if shutdown.is_cancelled() && proving.is_empty() {
                break;
            }
        }
        heartbeat.abort();
        if let Some(listener) = listener {
            listener.abort();
        }
        sqlx::query("UPDATE pool_workers SET stopped = true WHERE id = $1")
            .bind(&self.config.id)
            .execute(&self.db)
            .await?;
        tracing::info!("stopped");
        Ok(())
    }

    /// Wakes `wake` when the node queues a task; none if notifications cannot be had (the
    /// worker polls).
    async fn listen(&self, wake: Arc<Notify>) -> Option<tokio::task::JoinHandle<()>> {
        let mut listener = match PgListener::connect_with(&self.db).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("no pool notifications ({e}); polling");
                return None;
            }
        };
        if let Err(e) = listener.listen_all([QUEUED_CHANNEL, DONE_CHANNEL]).await {
            tracing::warn!("no pool notifications ({e}); polling");
            return None;
        }
        Some(tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(_) => wake.notify_waiters(),
                    Err(_) => tokio::time::sleep(POLL).await,
                }
            }
        }))
    }

    /// Keeps the worker and its claims alive; stops the proofs of claims no longer its own.
    async fn heartbeat(self: Arc<Self>) {
        let every = (self.lease / 3).max(Duration::from_millis(200));
        loop {
            tokio::time::sleep(every).await;
            let started = Instant::now();
            if let Err(e) = self.beat(started).await {
                tracing::warn!("heartbeat failed (the database is away?): {e}");
            }
        }
    }

    async fn beat(&self, started: Instant) -> Result<(), PoolError> {
        let updated =
            sqlx::query("UPDATE pool_workers SET heartbeat_at = now(), rates = $2 WHERE id = $1")
                .bind(&self.config.id)
                .bind(self.rates_json())
                .execute(&self.db)
                .await?;
        if updated.rows_affected() == 0 {
            self.upsert().await?;
        }
        let ours: Vec<Vec<u8>> = sqlx::query_scalar(
            "UPDATE pool_tasks SET lease_until = now() + make_interval(secs => $2)
             WHERE worker_id = $1 AND state = 'claimed' RETURNING request_id",
        )
        .bind(&self.config.id)
        .bind(self.lease.as_secs_f64())
        .fetch_all(&self.db)
        .await?;
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        for (id, task) in held.iter() {
            if task.claimed_at < started && !ours.iter().any(|o| o.as_slice() == id.as_bytes()) {
                tracing::warn!(request = %id, "the claim is no longer ours (abandoned or taken back): stopping its proof");
                task.cancel.cancel();
            }
        }
        Ok(())
    }

    /// Claims the earliest-deadline task it can hold in `free_memory` bytes, if any.
    async fn claim(&self, free_memory: u64) -> Result<Option<Claim>, PoolError> {
        let row = sqlx::query(
            "UPDATE pool_tasks SET state = 'claimed', worker_id = $1, attempts = attempts + 1,
                 lease_until = now() + make_interval(secs => $4), updated_at = now()
             WHERE request_id = (
                 SELECT request_id FROM pool_tasks
                 WHERE (state = 'queued' OR (state = 'claimed' AND lease_until < now()))
                   AND version = ANY($2) AND memory_bytes <= $3
                   AND NOT ($1 = ANY(excluded)) AND attempts < max_attempts AND NOT blob_fault
                   AND deadline > EXTRACT(EPOCH FROM now())
                 ORDER BY deadline, created_at
                 LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING request_id, version, mode, program, inputs, gas_limit, pgus, memory_bytes,
                 attempts",
        )
        .bind(&self.config.id)
        .bind(&self.versions)
        .bind(free_memory.min(i64::MAX as u64) as i64)
        .bind(self.lease.as_secs_f64())
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let corrupt = |what: &str| PoolError::Corrupt(format!("a task's {what}"));
        let id_bytes: Vec<u8> = row.try_get("request_id")?;
        let id = RequestId::from_slice(&id_bytes).map_err(|_| corrupt("request id"))?;
        let blob = |name: &str| -> Result<ArtifactId, PoolError> {
            let bytes: Vec<u8> = row.try_get(name)?;
            ArtifactId::from_slice(&bytes).map_err(|_| corrupt(name))
        };
        let mode: String = row.try_get("mode")?;
        let claim = Claim {
            id,
            version: row.try_get("version")?,
            mode: mode.parse().map_err(|_| corrupt("mode"))?,
            program: blob("program")?,
            inputs: blob("inputs")?,
            gas_limit: row.try_get::<i64, _>("gas_limit")?.max(0) as u64,
            pgus: row.try_get::<i64, _>("pgus")?.max(0) as u64,
            memory_bytes: row.try_get::<i64, _>("memory_bytes")?.max(0) as u64,
            attempt: row.try_get::<i32, _>("attempts")?.max(0) as u32,
            cancel: CancellationToken::new(),
        };
        let held = Held { cancel: claim.cancel.clone(), claimed_at: Instant::now() };
        self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(id, held);
        tracing::info!(request = %id, pgus = claim.pgus, attempt = claim.attempt, "claimed");
        Ok(Some(claim))
    }

    /// Proves a claim and hands it back, or gives it back with the reason.
    async fn prove(&self, claim: Claim) {
        let outcome = self.proof(&claim).await;
        self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(&claim.id);
        let result = match outcome {
            Ok((bundle, secs)) => self.hand_back(&claim, &bundle, secs).await,
            Err(Failure::Cancelled) => Ok(()),
            Err(Failure::Artifact(reason)) => self.give_back(&claim, &reason, true).await,
            Err(Failure::Proving(reason)) => self.give_back(&claim, &reason, false).await,
        };
        if let Err(e) = result {
            tracing::error!("cannot report the task to the pool (its lease will expire): {e}");
        }
    }

    async fn proof(&self, claim: &Claim) -> Result<(Vec<u8>, f64), Failure> {
        let cancel = &claim.cancel;
        let program = self.blob(&claim.program).await?;
        let inputs = self.blob(&claim.inputs).await?;
        let backend =
            self.backends.get(&claim.version).map_err(|e| Failure::Proving(e.to_string()))?;
        let job = ProveJob {
            program,
            inputs: inputs.clone(),
            gas_limit: claim.gas_limit,
            mode: claim.mode,
        };
        let started = Instant::now();
        let proof = prove_async(backend.clone(), job, cancel.clone(), Arc::new(|_| {}))
            .await
            .map_err(|e| {
                if cancel.is_cancelled() {
                    Failure::Cancelled
                } else {
                    Failure::Proving(e.to_string())
                }
            })?;
        let secs = started.elapsed().as_secs_f64();
        // Never hand back a proof the node would refuse.
        let checked = proof.clone();
        let verifier: Arc<dyn ZkVm> = backend.clone();
        tokio::task::spawn_blocking(move || {
            verifier.verify(&checked.program_id, &inputs, &checked.outputs, &checked.bytes)
        })
        .await
        .map_err(|e| Failure::Proving(format!("own verification panicked: {e}")))?
        .map_err(|e| Failure::Proving(format!("own verification: {e}")))?;
        tracing::info!(pgus = claim.pgus, secs = format!("{secs:.2}"), "proved");
        self.rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(claim.version.clone())
            .or_default()
            .observe(claim.pgus as f64 / secs.max(f64::MIN_POSITIVE));
        Ok((ProofBundle::new(backend.version(), proof).encode(), secs))
    }

    /// The blob `id`: from the cache, else from the pool (checked against its content id, then
    /// cached).
    async fn blob(&self, id: &ArtifactId) -> Result<Arc<[u8]>, Failure> {
        if let Ok(Some(path)) = self.cache.get(id).await
            && let Ok(bytes) = tokio::fs::read(&path).await
            && ArtifactId::of(&bytes) == *id
        {
            return Ok(bytes.into());
        }
        let bytes: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT bytes FROM pool_blobs WHERE id = $1")
                .bind(id.as_bytes().to_vec())
                .fetch_optional(&self.db)
                .await
                .map_err(|e| Failure::Proving(format!("cannot read artifact {id}: {e}")))?;
        let Some(bytes) = bytes else {
            return Err(Failure::Artifact(format!("artifact {id} is missing from the pool")));
        };
        if ArtifactId::of(&bytes) != *id {
            return Err(Failure::Artifact(format!(
                "artifact {id} in the pool is corrupt: its content hashes to {}",
                ArtifactId::of(&bytes)
            )));
        }
        let tmp = self.config.cache_dir.join(format!(".{id}.incoming"));
        if tokio::fs::write(&tmp, &bytes).await.is_ok() {
            if let Err(e) = self.cache.insert_file(id, &tmp).await {
                tracing::debug!("artifact {id} not cached: {e}");
            }
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        Ok(bytes.into())
    }

    /// Hands a proof back, if the claim is still ours.
    async fn hand_back(&self, claim: &Claim, bundle: &[u8], secs: f64) -> Result<(), PoolError> {
        let mac = self.config.secret.hand_back_mac(&claim.id, claim.attempt, bundle);
        let landed = must_land(|| async {
            sqlx::query(
                "UPDATE pool_tasks SET state = 'proved', proof = $4, proof_mac = $5,
                     prove_secs = $6, lease_until = NULL, updated_at = now()
                 WHERE request_id = $1 AND worker_id = $2 AND attempts = $3 AND state = 'claimed'",
            )
            .bind(claim.id.as_bytes().to_vec())
            .bind(&self.config.id)
            .bind(claim.attempt as i32)
            .bind(bundle)
            .bind(mac.to_vec())
            .bind(secs)
            .execute(&self.db)
            .await
        })
        .await?;
        if landed.rows_affected() == 0 {
            tracing::warn!("the claim was taken back before the proof was handed back");
            return Ok(());
        }
        sqlx::query("UPDATE pool_workers SET proved = proved + 1, rates = $2 WHERE id = $1")
            .bind(&self.config.id)
            .bind(self.rates_json())
            .execute(&self.db)
            .await?;
        sqlx::query("SELECT pg_notify($1, '')").bind(DONE_CHANNEL).execute(&self.db).await?;
        tracing::info!("handed back");
        Ok(())
    }

    /// Gives a claim back to the queue with `reason` (its attempt stays counted); a corrupt or
    /// missing artifact asks the node to write it again.
    async fn give_back(
        &self,
        claim: &Claim,
        reason: &str,
        artifact: bool,
    ) -> Result<(), PoolError> {
        tracing::warn!("giving the task back: {reason}");
        must_land(|| async {
            sqlx::query(
                "UPDATE pool_tasks SET state = 'queued', worker_id = NULL, lease_until = NULL,
                     last_error = $4, blob_fault = blob_fault OR $5, updated_at = now()
                 WHERE request_id = $1 AND worker_id = $2 AND attempts = $3 AND state = 'claimed'",
            )
            .bind(claim.id.as_bytes().to_vec())
            .bind(&self.config.id)
            .bind(claim.attempt as i32)
            .bind(bounded(&format!("worker {}: {reason}", self.config.id)))
            .bind(artifact)
            .execute(&self.db)
            .await
        })
        .await?;
        sqlx::query("UPDATE pool_workers SET failed = failed + 1 WHERE id = $1")
            .bind(&self.config.id)
            .execute(&self.db)
            .await?;
        sqlx::query("SELECT pg_notify($1, '')").bind(DONE_CHANNEL).execute(&self.db).await?;
        Ok(())
    }
}

/// Why a claim was not proven.
enum Failure {
    /// The claim is no longer ours.
    Cancelled,
    /// Its program or inputs are missing or corrupt in the pool.
    Artifact(String),
    /// The backend failed, or the proof did not verify.
    Proving(String),
}

/// Runs `statement` until it lands or [`MUST_LAND`] passes (a database restarting).
async fn must_land<F, Fut, T>(statement: F) -> Result<T, PoolError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    Ok(crate::store::ride_out("the pool", MUST_LAND, POLL, |_| true, statement).await?)
}
