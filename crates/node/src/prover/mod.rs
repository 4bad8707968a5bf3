//! NodeProver: runs each assignment through its states, recording every step in the job store:
//!
//! ```text
//! assigned ─fetch (cache, verified)─▶ fetched ─execute, compare with the network─▶ executed
//!   ─prove in a slot (EDF), verify own proof, write the file─▶ proved ─FulfillProof─▶ submitted
//!   ─accepted─▶ done            any unrecoverable error ─FailFulfillment(reason)─▶ failed
//! ```
//!
//! Every job runs as its own task, so the next job's fetch and execution (bounded by
//! `proving.prefetch`) overlap the proof holding the slot. A job stops when its request closes,
//! when it can no longer make its deadline, or when the node shuts down and it could not finish
//! in time. A restarted node resumes every unfinished job from its last recorded state; a job in
//! `submitted` asks the network first, so a proof is never accepted twice.

pub mod slots;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use provernet_artifacts::public_url;
use provernet_types::{Address, ArtifactId, RequestId, field, proto};
use provernet_zkvm::{
    ProgramId, ProofBundle, ProofMode, ProveJob, PublicOutputs, ZkVm, prove_async,
};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use crate::{
    ResourceManager,
    bidder::run::ProverCommand,
    context::{NodeContext, now_secs},
    monitor::NodeMonitorMetrics,
    store::{Job, JobState},
};
pub use slots::{Slot, Slots};

/// A job's program and inputs bytes.
type Files = (Arc<[u8]>, Arc<[u8]>);

/// Attempts at FulfillProof on transient errors.
const SUBMIT_ATTEMPTS: u32 = 5;

/// Why a job stopped short of `done`.
#[derive(Debug)]
enum Stop {
    /// The network closed the request: nothing to report.
    Closed(String),
    /// Unrecoverable: reported to the network with FailFulfillment.
    Fail(String),
    /// The job store failed: leave the job where it is for the next start.
    Store(String),
}

/// A job the prover is running.
struct Active {
    cancel: CancellationToken,
    /// Set when the request closed, saying why.
    closed: Arc<Mutex<Option<String>>>,
}

/// The node's prover.
pub struct NodeProver {
    ctx: Arc<NodeContext>,
    slots: Slots,
    prefetch: Arc<Semaphore>,
    active: Mutex<HashMap<RequestId, Active>>,
    tasks: TaskTracker,
    finished: tokio::sync::broadcast::Sender<(RequestId, JobState)>,
}

impl NodeProver {
    /// A prover over the context's resources.
    pub fn new(ctx: Arc<NodeContext>) -> Arc<Self> {
        let slots = Slots::new(ResourceManager::new(ctx.resources));
        let prefetch = Arc::new(Semaphore::new(ctx.config.proving.prefetch.max(1)));
        let (finished, _) = tokio::sync::broadcast::channel(256);
        Arc::new(Self {
            ctx,
            slots,
            prefetch,
            active: Mutex::default(),
            tasks: TaskTracker::new(),
            finished,
        })
    }

    /// The proving slots.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// Jobs as they end, with their final state (done or failed).
    pub fn finished(&self) -> tokio::sync::broadcast::Receiver<(RequestId, JobState)> {
        self.finished.subscribe()
    }

    /// Request ids of the jobs running.
    pub fn active(&self) -> Vec<RequestId> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Active>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resumes unfinished jobs, then follows the bidder's commands until shutdown; then lets
    /// in-flight jobs finish if they can make their deadline and fails the others.
    pub async fn run(self: Arc<Self>, mut commands: mpsc::UnboundedReceiver<ProverCommand>) {
        match self.ctx.store.unfinished().await {
            Ok(jobs) => {
                for job in jobs {
                    tracing::info!(id = %job.id, state = %job.state, "resuming job");
                    self.ctx.book().jobs.insert(job.id, self.ctx.request_cost(&job.request));
                    self.start(job);
                }
            }
            Err(e) => tracing::error!("cannot read unfinished jobs: {e}"),
        }
        loop {
            let command = tokio::select! {
                () = self.ctx.shutdown.cancelled() => break,
                c = commands.recv() => c,
            };
            match command {
                Some(ProverCommand::Assigned(request)) => self.assigned(*request).await,
                Some(ProverCommand::Closed(id, why)) => self.close(&id, &why),
                None => break,
            }
        }
        self.wind_down().await;
    }

    async fn assigned(self: &Arc<Self>, request: proto::ProofRequest) {
        let Ok(id) = RequestId::from_slice(&request.request_id) else { return };
        if self.lock().contains_key(&id) {
            return;
        }
        let price = field::optional_amount("winning_price_per_pgu", &request.winning_price_per_pgu)
            .ok()
            .flatten()
            .unwrap_or_default();
        match self.ctx.store.insert_job(&request, price, now_secs()).await {
            Ok(job) if !job.state.is_final() => self.start(job),
            Ok(_) => {
                self.ctx.book().jobs.remove(&id);
            }
            Err(e) => tracing::error!(%id, "cannot record an assignment: {e}"),
        }
    }

    /// The request closed: stop its job.
    fn close(&self, id: &RequestId, why: &str) {
        if let Some(active) = self.lock().get(id) {
            *active.closed.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.to_owned());
            active.cancel.cancel();
        }
    }

    fn start(self: &Arc<Self>, job: Job) {
        let cancel = CancellationToken::new();
        let closed = Arc::new(Mutex::new(None));
        {
            let mut active = self.lock();
            if active.contains_key(&job.id) {
                return;
            }
            active.insert(job.id, Active { cancel: cancel.clone(), closed: closed.clone() });
        }
        let span = tracing::info_span!("job", request = %job.id);
        let this = self.clone();
        self.tasks.spawn(async move { this.run_job(job, cancel, closed).await }.instrument(span));
    }

    /// Stops taking work; fails jobs that cannot finish by their deadline, waits for the rest.
    async fn wind_down(&self) {
        let now = now_secs();
        let jobs = self.ctx.store.unfinished().await.unwrap_or_default();
        for job in jobs {
            let hopeless =
                now as f64 + self.ctx.request_cost(&job.request).secs > job.deadline() as f64;
            if hopeless
                && job.state < JobState::Proved
                && let Some(active) = self.lock().get(&job.id)
            {
                *active.closed.lock().unwrap_or_else(|e| e.into_inner()) = None;
                active.cancel.cancel();
            }
        }
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn run_job(
        self: Arc<Self>,
        mut job: Job,
        cancel: CancellationToken,
        closed: Arc<Mutex<Option<String>>>,
    ) {
        let id = job.id;
        let outcome = self.drive(&mut job, &cancel).await;
        let outcome = match outcome {
            Err(Stop::Fail(reason)) if cancel.is_cancelled() => {
                match closed.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                    Some(why) => Err(Stop::Closed(why)),
                    None if self.ctx.shutdown.is_cancelled() => Err(Stop::Fail(format!(
                        "the node is shutting down and cannot finish before the deadline ({reason})"
                    ))),
                    None => Err(Stop::Fail(reason)),
                }
            }
            other => other,
        };
        let now = now_secs();
        let final_state = match &outcome {
            Ok(()) => JobState::Done,
            Err(Stop::Store(_)) => job.state,
            Err(_) => JobState::Failed,
        };
        match outcome {
            Ok(()) => {
                self.ctx.health.record_job_success();
                metrics::counter!("node_jobs_total", "result" => "done").increment(1);
            }
            Err(Stop::Store(e)) => {
                tracing::error!("job store failed; the job resumes at the next start: {e}");
            }
            Err(Stop::Closed(why)) => {
                tracing::info!("request closed ({why}); job stopped");
                let _ = self.ctx.store.set_state(&id, JobState::Failed, Some(&why), now).await;
                metrics::counter!("node_jobs_total", "result" => "closed").increment(1);
            }
            Err(Stop::Fail(reason)) => {
                tracing::warn!("job failed: {reason}");
                self.ctx.health.record_job_failure();
                metrics::counter!("node_jobs_total", "result" => "failed").increment(1);
                let _ = self.ctx.store.set_state(&id, JobState::Failed, Some(&reason), now).await;
                let reported =
                    self.ctx.client.fail(&self.ctx.operator, &self.ctx.prover, &id, &reason).await;
                if let Err(e) = reported {
                    tracing::warn!("cannot report the failure to the network: {e}");
                }
            }
        }
        self.lock().remove(&id);
        self.ctx.book().jobs.remove(&id);
        let _ = self.finished.send((id, final_state));
    }

    /// Runs `job` from its recorded state to `done`.
    async fn drive(&self, job: &mut Job, cancel: &CancellationToken) -> Result<(), Stop> {
        let mut loaded: Option<Files> = None;
        let mut prefetch = None;
        loop {
            match job.state {
                JobState::Assigned | JobState::Fetched | JobState::Executed if loaded.is_none() => {
                    if job.state != JobState::Executed && prefetch.is_none() {
                        prefetch = Some(self.prefetch.clone().acquire_owned().await.ok());
                    }
                    let files = tokio::select! {
                        () = cancel.cancelled() => return Err(Stop::Fail("cancelled while fetching".into())),
                        f = self.fetch(job) => f?,
                    };
                    loaded = Some(files);
                    if job.state == JobState::Assigned {
                        self.advance(job, JobState::Fetched).await?;
                    }
                }
                JobState::Assigned => unreachable_state(job)?,
                JobState::Fetched => {
                    let (program, inputs) = loaded.clone().ok_or_else(|| missing(job))?;
                    self.execute(job, program, inputs, cancel).await?;
                    prefetch = None;
                    self.advance(job, JobState::Executed).await?;
                }
                JobState::Executed => {
                    drop(prefetch.take());
                    let (program, inputs) = loaded.clone().ok_or_else(|| missing(job))?;
                    let bundle = self.prove(job, program, inputs, cancel).await?;
                    write_atomically(&self.proof_path(&job.id), &bundle)
                        .await
                        .map_err(|e| Stop::Store(format!("cannot write the proof: {e}")))?;
                    self.advance(job, JobState::Proved).await?;
                }
                JobState::Proved => {
                    self.advance(job, JobState::Submitted).await?;
                    self.submit(job, cancel).await?;
                    return self.advance(job, JobState::Done).await;
                }
                JobState::Submitted => {
                    // A previous run sent the proof; did it land?
                    let request = self
                        .ctx
                        .client
                        .proof_request(&job.id)
                        .await
                        .map_err(|e| Stop::Fail(format!("cannot read the request: {e}")))?;
                    let status = proto::RequestStatus::try_from(request.status).unwrap_or_default();
                    let ours =
                        Address::from_slice(&request.assigned_prover).ok() == Some(self.ctx.prover);
                    match status {
                        proto::RequestStatus::Fulfilled if ours => {
                            return self.advance(job, JobState::Done).await;
                        }
                        proto::RequestStatus::Assigned if ours => {
                            self.submit(job, cancel).await?;
                            return self.advance(job, JobState::Done).await;
                        }
                        _ => {
                            return Err(Stop::Closed(format!(
                                "request is {} ({})",
                                status.as_str_name(),
                                request.unfulfillable_reason
                            )));
                        }
                    }
                }
                JobState::Done | JobState::Failed => return Ok(()),
            }
        }
    }

    async fn advance(&self, job: &mut Job, state: JobState) -> Result<(), Stop> {
        self.ctx
            .store
            .set_state(&job.id, state, None, now_secs())
            .await
            .map_err(|e| Stop::Store(e.to_string()))?;
        tracing::debug!(%state, "job state");
        job.state = state;
        Ok(())
    }

    fn proof_path(&self, id: &RequestId) -> PathBuf {
        self.ctx.config.data_dir.join("proofs").join(format!("{id}.proof"))
    }

    /// Program and inputs, from the verified cache or the ArtifactStore.
    async fn fetch(&self, job: &Job) -> Result<Files, Stop> {
        let body =
            job.request.body.as_ref().ok_or_else(|| Stop::Fail("request has no body".into()))?;
        let program_id = field::artifact_id("program_artifact_id", &body.program_artifact_id)
            .map_err(|e| Stop::Fail(e.to_string()))?;
        let inputs_id = field::artifact_id("inputs_artifact_id", &body.inputs_artifact_id)
            .map_err(|e| Stop::Fail(e.to_string()))?;
        let base = self.ctx.client.artifact_store_url();
        let program = self.cached(&public_url(base, &program_id), &program_id).await?;
        let inputs_url = if body.inputs_private {
            self.ctx
                .client
                .presign_download(&self.ctx.operator, &job.id, &inputs_id)
                .await
                .map_err(|e| Stop::Fail(format!("cannot get the private inputs' URL: {e}")))?
        } else {
            public_url(base, &inputs_id)
        };
        let inputs = self.cached(&inputs_url, &inputs_id).await?;
        Ok((program, inputs))
    }

    async fn cached(&self, url: &str, id: &ArtifactId) -> Result<Arc<[u8]>, Stop> {
        let path = self
            .ctx
            .cache
            .get_or_download(&self.ctx.artifacts, url, id, None)
            .await
            .map_err(|e| Stop::Fail(format!("artifact {id} refused: {e}")))?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Stop::Fail(format!("cannot read cached artifact {id}: {e}")))?;
        Ok(bytes.into())
    }

    fn backend(&self, job: &Job) -> Result<Arc<dyn ZkVm>, Stop> {
        let version = job.request.body.as_ref().map_or("", |b| b.zkvm_version.as_str());
        self.ctx.backends.get(version).map_err(|e| Stop::Fail(e.to_string()))
    }

    /// Executes and checks PGUs and outputs against the network's execution.
    async fn execute(
        &self,
        job: &Job,
        program: Arc<[u8]>,
        inputs: Arc<[u8]>,
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        let backend = self.backend(job)?;
        let gas = job.request.body.as_ref().map_or(0, |b| b.gas_limit);
        let run = tokio::task::spawn_blocking(move || backend.execute(&program, &inputs, gas));
        let execution = tokio::select! {
            () = cancel.cancelled() => return Err(Stop::Fail("cancelled while executing".into())),
            r = run => r.map_err(|e| Stop::Fail(format!("executor panicked: {e}")))?
                .map_err(|e| Stop::Fail(format!("execution failed: {e}")))?,
        };
        if execution.pgus != job.request.pgus {
            return Err(Stop::Fail(format!(
                "execution measured {} PGUs, the network {}: the artifacts differ",
                execution.pgus, job.request.pgus
            )));
        }
        if execution.outputs.0 != job.request.public_outputs {
            return Err(Stop::Fail("execution's public outputs differ from the network's".into()));
        }
        Ok(())
    }

    /// Proves in a slot, then verifies the proof; returns the encoded bundle.
    async fn prove(
        &self,
        job: &Job,
        program: Arc<[u8]>,
        inputs: Arc<[u8]>,
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, Stop> {
        let backend = self.backend(job)?;
        let body = job.request.body.clone().unwrap_or_default();
        let mode: ProofMode = body
            .proof_mode
            .parse()
            .map_err(|e: provernet_zkvm::ZkVmError| Stop::Fail(e.to_string()))?;
        let cost = self.ctx.job_cost(&body.zkvm_version, mode, job.pgus());
        let deadline = job.deadline();
        let now = now_secs();
        if now as f64 + cost.secs > deadline as f64 {
            return Err(Stop::Fail(format!(
                "cannot make the deadline: ~{:.0} s of work, {} s left",
                cost.secs,
                deadline.saturating_sub(now)
            )));
        }
        let slot = tokio::select! {
            () = cancel.cancelled() => return Err(Stop::Fail("cancelled while waiting for a slot".into())),
            s = self.slots.acquire(cost.memory, deadline) => s,
        };
        let prove_job =
            ProveJob { program, inputs: inputs.clone(), gas_limit: body.gas_limit, mode };
        let started = Instant::now();
        let left = Duration::from_secs(deadline.saturating_sub(now_secs()));
        let proof_cancel = cancel.child_token();
        let proving =
            prove_async(backend.clone(), prove_job, proof_cancel.clone(), Arc::new(|_| {}));
        let proof = tokio::select! {
            p = proving => p,
            () = tokio::time::sleep(left) => {
                proof_cancel.cancel();
                return Err(Stop::Fail("the deadline passed while proving".into()));
            }
        };
        drop(slot);
        let proof = proof.map_err(|e| Stop::Fail(format!("proving failed: {e}")))?;
        let elapsed = started.elapsed().as_secs_f64();
        NodeMonitorMetrics::proof_done(cost.pgus, elapsed);
        tracing::info!(pgus = cost.pgus, secs = format!("{elapsed:.2}"), "proved");
        let program_id = ProgramId::from_slice(&body.program_id)
            .map_err(|e| Stop::Fail(format!("request's program id: {e}")))?;
        let bundle = ProofBundle::new(backend.version(), proof);
        // Never submit a proof that would be refused.
        let verify_backend = backend.clone();
        let outputs = PublicOutputs(job.request.public_outputs.clone());
        let proof_bytes = bundle.proof.clone();
        tokio::task::spawn_blocking(move || {
            verify_backend.verify(&program_id, &inputs, &outputs, &proof_bytes)
        })
        .await
        .map_err(|e| Stop::Fail(format!("verifier panicked: {e}")))?
        .map_err(|e| Stop::Fail(format!("own proof does not verify: {e}")))?;
        Ok(bundle.encode())
    }

    /// Sends the proof, retrying transient failures.
    async fn submit(&self, job: &Job, cancel: &CancellationToken) -> Result<(), Stop> {
        let bundle = tokio::fs::read(self.proof_path(&job.id))
            .await
            .map_err(|e| Stop::Fail(format!("proof file lost: {e}")))?;
        let mut backoff = Duration::from_millis(200);
        for attempt in 1..=SUBMIT_ATTEMPTS {
            let sent = self
                .ctx
                .client
                .fulfill(&self.ctx.operator, &self.ctx.prover, &job.id, bundle.clone())
                .await;
            match sent {
                Ok(_) => {
                    let paid = job.price_per_pgu.checked_mul_u64(job.pgus()).ok();
                    let mut book = self.ctx.book();
                    if let Some(paid) = paid {
                        book.earnings = book.earnings.checked_add(paid).unwrap_or(book.earnings);
                    }
                    tracing::info!("proof accepted");
                    return Ok(());
                }
                Err(e) if e.is_transient() && attempt < SUBMIT_ATTEMPTS => {
                    tracing::warn!("FulfillProof failed (attempt {attempt}): {e}; retrying");
                    tokio::select! {
                        () = cancel.cancelled() => return Err(Stop::Fail("cancelled while submitting".into())),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff *= 2;
                }
                Err(e) => return Err(Stop::Fail(format!("proof refused: {e}"))),
            }
        }
        Err(Stop::Fail("FulfillProof kept failing".into()))
    }
}

fn missing(job: &Job) -> Stop {
    Stop::Fail(format!("job {} lost its artifacts", job.id))
}

fn unreachable_state(job: &Job) -> Result<(), Stop> {
    Err(Stop::Fail(format!("job {} in state {} without artifacts", job.id, job.state)))
}

/// Writes `bytes` to `path` through a temporary sibling, so a crash never leaves half a file.
async fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = tokio::fs::File::create(&tmp).await?;
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&tmp, path).await
}
