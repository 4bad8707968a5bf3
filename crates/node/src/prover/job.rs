//! One job's task: performs the core's actions for the job, records each step in the job store,
//! and feeds what happened back to the core.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use provernet_zkvm::{ProofBundle, ProveJob, PublicOutputs, ZkVm, prove_async};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    JobError, NodeProver,
    retry::{confirm, retry},
};
use crate::{
    core::{Action, Confirmation, Event, GiveUp, ProofTiming, Work},
    driver::{Files, RequestState},
    monitor::{
        JobResult,
        economics::{Entry, proving_cost},
    },
    pool::{Coordinator, PoolError, PoolTask},
    store::{Job, JobState},
};

/// Attempts at FulfillProof on transient errors.
const SUBMIT_ATTEMPTS: u32 = 5;
/// Attempts at reading a submitted request's status on transient errors (with the backoff's
/// 10 s cap, about three minutes: a network restart).
const CONFIRM_ATTEMPTS: u32 = 22;

impl NodeProver {
    /// Performs the core's actions for `job` until it is done, given up or stopped.
    pub(super) async fn run_job(
        self: Arc<Self>,
        mut job: Job,
        mut action_rx: mpsc::UnboundedReceiver<Action>,
        cancel: CancellationToken,
    ) {
        let id = job.id;
        let mut files: Option<Files> = None;
        while let Some(action) = action_rx.recv().await {
            let step = match action {
                Action::Fetch { .. } => self.fetch(&mut job, &cancel).await.map(|loaded| {
                    files = Some(loaded);
                    Event::Fetched { id }
                }),
                Action::Execute { .. } => match &files {
                    Some(files) => self.execute(&mut job, files.clone(), &cancel).await,
                    None => Err(lost_files()),
                }
                .map(|()| Event::Executed { id }),
                Action::Prove { until, .. } => match files.take() {
                    Some(files) => self.prove(&mut job, files, until, &cancel).await,
                    None => Err(lost_files()),
                }
                .map(|()| Event::Proved { id }),
                Action::Submit { .. } => self.submit(&mut job, &cancel).await,
                Action::Confirm { .. } => {
                    let prover = self.ctx.prover;
                    let driver = &self.ctx.driver;
                    confirm(prover, CONFIRM_ATTEMPTS, &cancel, || driver.request(&id))
                        .await
                        .map(|status| Event::Confirmed { id, status })
                        .map_err(|e| {
                            // The proof may have landed: never fail it on a read that could not
                            // be made; the next start asks again.
                            if e.is_retryable() { JobError::Unconfirmed(Box::new(e)) } else { e }
                        })
                }
                Action::Done { .. } => {
                    self.done(&mut job).await;
                    return;
                }
                Action::GiveUp { reason, .. } => {
                    self.give_up(&job, &reason).await;
                    return;
                }
                Action::Stop { why, .. } => {
                    tracing::info!("request closed ({why}); job stopped");
                    let _ = self
                        .ctx
                        .store
                        .set_state(&id, JobState::Failed, Some(&why), self.ctx.now())
                        .await;
                    self.ctx.health.metrics().job_ended(JobResult::Closed);
                    self.finish(id, JobState::Failed);
                    return;
                }
                Action::Bid { .. } | Action::Skip { .. } | Action::Resolved { .. } => continue,
            };
            match step {
                Ok(event) => {
                    if let Event::Accepted { paid, .. }
                    | Event::Confirmed { status: Confirmation::Fulfilled(paid), .. } = &event
                    {
                        self.ctx.health.record_economics(self.ctx.now(), Entry::Paid(paid.get()));
                    }
                    self.dispatch(self.ctx.apply(event))
                }
                Err(e) if e.keeps_job() => {
                    tracing::error!("the job resumes at the next start: {e}");
                    self.dispatch(self.ctx.apply(Event::Dropped { id }));
                    self.finish(id, job.state);
                    return;
                }
                Err(e) => {
                    self.dispatch(self.ctx.apply(Event::Failed { id, reason: e.to_string() }))
                }
            }
        }
    }

    async fn advance(&self, job: &mut Job, state: JobState) -> Result<(), JobError> {
        self.ctx.store.set_state(&job.id, state, None, self.ctx.now()).await?;
        tracing::debug!(%state, "job state");
        job.state = state;
        Ok(())
    }

    async fn done(&self, job: &mut Job) {
        if let Err(e) = self.advance(job, JobState::Done).await {
            tracing::error!("job store failed; the job resumes at the next start: {e}");
            self.finish(job.id, job.state);
            return;
        }
        self.ctx.health.record_job_success();
        self.ctx.health.metrics().job_ended(JobResult::Done);
        self.finish(job.id, JobState::Done);
    }

    async fn give_up(&self, job: &Job, reason: &GiveUp) {
        let reason = reason.to_string();
        tracing::warn!("job failed: {reason}");
        self.ctx.health.record_job_failure();
        self.ctx.health.metrics().job_ended(JobResult::Failed);
        // A won job given up is a miss: its collateral is the network's.
        let forfeited = self.ctx.driver.forfeit(&job.request).await.map(|a| a.get());
        self.ctx.health.record_economics(self.ctx.now(), Entry::DeadlineMissed { forfeited });
        let now = self.ctx.now();
        let _ = self.ctx.store.set_state(&job.id, JobState::Failed, Some(&reason), now).await;
        let reported = self.ctx.driver.fail(&job.id, &reason).await;
        if let Err(e) = reported {
            tracing::warn!("cannot report the failure to the network: {e}");
        }
        self.finish(job.id, JobState::Failed);
    }

    /// Program and inputs, as the network's driver fetches and checks them.
    async fn fetch(&self, job: &mut Job, cancel: &CancellationToken) -> Result<Files, JobError> {
        let files = tokio::select! {
            () = cancel.cancelled() => return Err(JobError::Cancelled("fetching")),
            f = self.ctx.driver.fetch(&job.request) => f?,
        };
        if job.state == JobState::Assigned {
            self.advance(job, JobState::Fetched).await?;
        }
        Ok(files)
    }

    fn backend(&self, job: &Job) -> Result<Arc<dyn ZkVm>, JobError> {
        self.ctx
            .backends
            .get(&job.request.zkvm_version())
            .map_err(|e| JobError::Backend { step: "backend lookup", reason: e.to_string() })
    }

    /// Executes and checks PGUs, and outputs where the network publishes them, against the
    /// network's execution.
    async fn execute(
        &self,
        job: &mut Job,
        (program, inputs): Files,
        cancel: &CancellationToken,
    ) -> Result<(), JobError> {
        let backend = self.backend(job)?;
        let gas = job.request.gas_limit();
        let run = tokio::task::spawn_blocking(move || backend.execute(&program, &inputs, gas));
        let failed = |reason: String| JobError::Backend { step: "execution", reason };
        let execution = tokio::select! {
            () = cancel.cancelled() => return Err(JobError::Cancelled("executing")),
            r = run => r.map_err(|e| failed(format!("panicked: {e}")))?.map_err(|e| failed(e.to_string()))?,
        };
        if execution.pgus != job.request.pgus() {
            return Err(JobError::Mismatch(format!(
                "execution measured {} PGUs, the network {}: the artifacts differ",
                execution.pgus,
                job.request.pgus()
            )));
        }
        if job.request.expected_outputs().is_some_and(|o| execution.outputs.0 != o) {
            return Err(JobError::Mismatch(
                "execution's public outputs differ from the network's".into(),
            ));
        }
        self.advance(job, JobState::Executed).await
    }

    /// Proves in the slot the core gave (in-process, or by a worker of the node's pool),
    /// abandoned at `until`; verifies the proof and writes it.
    async fn prove(
        &self,
        job: &mut Job,
        (program, inputs): Files,
        until: u64,
        cancel: &CancellationToken,
    ) -> Result<(), JobError> {
        let backend = self.backend(job)?;
        let mode = job.request.mode(backend.proof_modes()).map_err(JobError::Malformed)?;
        let bundle = match self.ctx.pool.clone() {
            Some(pool) => {
                let files = (program, inputs);
                self.prove_in_pool(&pool, job, &files, &backend, mode, until, cancel).await?
            }
            None => {
                let bundle =
                    self.prove_here(job, program, inputs.clone(), mode, until, cancel).await?;
                // Never submit a proof that would be refused.
                self.verify(job, &backend, &inputs, &bundle)
                    .await
                    .map_err(|reason| JobError::Backend { step: "own verification", reason })?;
                bundle
            }
        };
        self.ctx.store.put_proof(&job.id, &bundle.encode()).await?;
        self.advance(job, JobState::Proved).await?;
        if let Some(pool) = &self.ctx.pool
            && let Err(e) = pool.taken(&job.id).await
        {
            tracing::warn!("the pool keeps the finished task until it is pruned: {e}");
        }
        Ok(())
    }

    /// Proves on this machine, and feeds the time to self-calibration.
    async fn prove_here(
        &self,
        job: &Job,
        program: std::sync::Arc<[u8]>,
        inputs: std::sync::Arc<[u8]>,
        mode: provernet_zkvm::ProofMode,
        until: u64,
        cancel: &CancellationToken,
    ) -> Result<ProofBundle, JobError> {
        let backend = self.backend(job)?;
        let gas_limit = job.request.gas_limit();
        let prove_job = ProveJob { program, inputs, gas_limit, mode };
        let proving_at_start = self.ctx.core().proving();
        let memory = super::memory::PeakMemory::start();
        let started = Instant::now();
        let left = Duration::from_secs(until.saturating_sub(self.ctx.now()));
        let proof_cancel = cancel.child_token();
        let proving =
            prove_async(backend.clone(), prove_job, proof_cancel.clone(), Arc::new(|_| {}));
        let proof = tokio::select! {
            p = proving => p,
            () = tokio::time::sleep(left) => {
                proof_cancel.cancel();
                return Err(JobError::DeadlinePassed);
            }
        };
        let proof =
            proof.map_err(|e| JobError::Backend { step: "proving", reason: e.to_string() })?;
        let elapsed = started.elapsed().as_secs_f64();
        let peak_memory_bytes = memory.finish();
        self.ctx.health.metrics().proof_done(job.pgus(), elapsed);
        tracing::info!(pgus = job.pgus(), secs = format!("{elapsed:.2}"), "proved");
        let timing = ProofTiming {
            version: backend.version().to_owned(),
            mode,
            program: Some(proof.program_id),
            pgus: job.pgus(),
            secs: elapsed,
            concurrency: 1.0,
            peak_memory_bytes,
        };
        self.calibrate(timing, proving_at_start).await;
        Ok(ProofBundle::new(backend.version(), proof))
    }

    /// Queues the proof in the node's pool and takes a worker's back, checked here as the
    /// network will check it; a proof that fails is refused and its task queued again for
    /// another worker. The task is abandoned when the job stops or `until` passes.
    #[allow(clippy::too_many_arguments)]
    async fn prove_in_pool(
        &self,
        pool: &Coordinator,
        job: &Job,
        (program, inputs): &Files,
        backend: &Arc<dyn ZkVm>,
        mode: provernet_zkvm::ProofMode,
        until: u64,
        cancel: &CancellationToken,
    ) -> Result<ProofBundle, JobError> {
        let task = PoolTask {
            id: job.id,
            version: backend.version(),
            mode,
            program,
            inputs,
            gas_limit: job.request.gas_limit(),
            pgus: job.pgus(),
            memory_bytes: backend.proving_memory(job.pgus(), mode),
            deadline: until,
        };
        let left = Duration::from_secs(until.saturating_sub(self.ctx.now()));
        let deadline = tokio::time::Instant::now() + left;
        let failed =
            |e: PoolError| JobError::Backend { step: "proving in the pool", reason: e.to_string() };
        let outcome = async {
            // The database may be restarting: queueing waits for it, as taking the proof does.
            while let Err(e) = pool.enqueue(&task).await {
                tracing::warn!("cannot queue the proof in the pool yet: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            tracing::info!("queued in the proving pool");
            loop {
                let handed = pool.proof(&task).await.map_err(failed)?;
                match self.checked(job, backend, inputs, &handed.bundle).await {
                    Ok(bundle) => return Ok::<_, JobError>((bundle, handed)),
                    Err(reason) => pool
                        .reject(&job.id, &handed.worker, handed.attempt, &reason)
                        .await
                        .map_err(failed)?,
                }
            }
        };
        let (bundle, handed) = tokio::select! {
            r = outcome => r?,
            () = cancel.cancelled() => {
                let _ = pool.abandon(&job.id).await;
                return Err(JobError::Cancelled("proving in the pool"));
            }
            () = tokio::time::sleep_until(deadline) => {
                let _ = pool.abandon(&job.id).await;
                return Err(JobError::DeadlinePassed);
            }
        };
        self.ctx.health.metrics().proof_done(job.pgus(), handed.secs);
        self.ctx.health.record_pool_retries(self.ctx.now(), handed.attempt.saturating_sub(1));
        let cost = proving_cost(self.ctx.config().bidding.cost_per_hour.get(), handed.secs);
        let busy = Entry::Proved { busy_secs: handed.secs, cost };
        self.ctx.health.record_economics(self.ctx.now(), busy);
        tracing::info!(
            worker = %handed.worker,
            attempt = handed.attempt,
            secs = format!("{:.2}", handed.secs),
            "proved by the pool"
        );
        Ok(bundle)
    }

    /// A worker's bundle, if it proves what the job asks and verifies.
    async fn checked(
        &self,
        job: &Job,
        backend: &Arc<dyn ZkVm>,
        inputs: &Arc<[u8]>,
        bytes: &[u8],
    ) -> Result<ProofBundle, String> {
        let bundle = ProofBundle::decode(bytes).map_err(|e| e.to_string())?;
        self.verify(job, backend, inputs, &bundle).await?;
        Ok(bundle)
    }

    /// Whether `bundle` proves what the job asks: its version, the network's program id and
    /// outputs where its record has them (else the proof's own, checked by the network's
    /// verifier against the program it holds), and the backend's verification.
    async fn verify(
        &self,
        job: &Job,
        backend: &Arc<dyn ZkVm>,
        inputs: &Arc<[u8]>,
        bundle: &ProofBundle,
    ) -> Result<(), String> {
        let program_id = job.request.program_id()?.unwrap_or(bundle.program_id);
        let outputs =
            job.request.expected_outputs().map_or_else(|| bundle.outputs.0.clone(), <[u8]>::to_vec);
        bundle.check_claims(backend.version(), &program_id, &outputs).map_err(|e| e.to_string())?;
        let (backend, inputs, proof) = (backend.clone(), inputs.clone(), bundle.proof.clone());
        let outputs = PublicOutputs(outputs);
        tokio::task::spawn_blocking(move || backend.verify(&program_id, &inputs, &outputs, &proof))
            .await
            .map_err(|e| format!("verification panicked: {e}"))?
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Feeds a proof's time and memory to self-calibration, records how far the estimate was
    /// off, and keeps the new estimates (its version and mode's, its program's) in the store.
    /// Concurrency is what the core saw at the proof's start and end (both count this proof).
    async fn calibrate(&self, mut timing: ProofTiming, proving_at_start: usize) {
        let proving_at_end = self.ctx.core().proving();
        timing.concurrency = (proving_at_start.max(1) + proving_at_end.max(1)) as f64 / 2.0;
        let work = Work {
            version: timing.version.clone(),
            mode: timing.mode,
            program: timing.program,
            pgus: timing.pgus,
            memory: 0,
            gpu_memory: 0,
            max_pgus: 0,
        };
        let alone = self.ctx.core().proving_secs(&work);
        if let Some(alone) = alone {
            self.ctx.health.metrics().estimate_error(timing.secs / (alone * timing.concurrency));
        }
        let busy_secs = timing.secs / timing.concurrency;
        let cost = proving_cost(self.ctx.config().bidding.cost_per_hour.get(), busy_secs);
        self.ctx.health.record_economics(self.ctx.now(), Entry::Proved { busy_secs, cost });
        let keys = timing.keys();
        self.ctx.apply(Event::Measured(timing));
        for key in keys {
            let Some(estimate) = self.ctx.core().estimate(&key) else { continue };
            if let Err(e) = self.ctx.store.save_calibration(&key, &estimate, self.ctx.now()).await {
                // The estimate holds in memory; only a restart forgets the last sample.
                tracing::warn!("cannot keep the calibration estimate: {e}");
            }
        }
    }

    /// Sends the proof, retrying transient failures; then waits for the network's verifier and
    /// takes what the network paid from its record.
    async fn submit(&self, job: &mut Job, cancel: &CancellationToken) -> Result<Event, JobError> {
        let bundle = self.ctx.store.proof(&job.id).await?.ok_or(JobError::ProofLost)?;
        if job.state == JobState::Proved {
            self.advance(job, JobState::Submitted).await?;
        }
        let (driver, id) = (&self.ctx.driver, job.id);
        let proof = driver.submission(&job.request, bundle).await?;
        retry("FulfillProof", SUBMIT_ATTEMPTS, cancel, || driver.fulfill(&id, &proof)).await?;
        tracing::info!("proof submitted; waiting for the network's verifier");
        // The verifier's verdict: the request fulfilled (or closed), or the proof rejected.
        let request = tokio::select! {
            () = cancel.cancelled() => return Err(JobError::Cancelled("waiting for the verifier")),
            r = driver.verdict(&id) => {
                r.map_err(|source| JobError::Network { what: "wait for the verifier", source })?
            }
        };
        // What the network paid, base fee included, is its record: never recomputed here.
        let paid = match request.state() {
            RequestState::Fulfilled { paid, .. } => paid,
            RequestState::Assigned(_) => {
                return Err(JobError::Rejected(request.rejection().unwrap_or_default()));
            }
            RequestState::Closed(why) => {
                return Err(JobError::Rejected(format!("the request closed: {why}")));
            }
            RequestState::Requested => {
                return Err(JobError::Rejected("the request is open again".into()));
            }
        };
        tracing::info!("proof accepted");
        Ok(Event::Accepted { id, paid })
    }
}

fn lost_files() -> JobError {
    JobError::Malformed("the job's files were not loaded before this step".into())
}
