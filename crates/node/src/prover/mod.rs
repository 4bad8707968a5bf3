//! NodeProver: the driver that performs the [`core`](crate::core)'s job actions and feeds back
//! what happened, recording every step in the job store:
//!
//! ```text
//! assigned ─Fetch (cache, verified)─▶ fetched ─Execute, compare with the network─▶ executed
//!   ─Prove in the slot the core gave, verify own proof, write the file─▶ proved ─Submit─▶
//!   submitted ─accepted─▶ done            GiveUp: FailFulfillment(reason) ─▶ failed
//! ```
//!
//! Every job runs as its own task with an inbox of the core's actions for it, so the next job's
//! fetch and execution (prefetch permits are the core's) overlap the proof holding the slot. A
//! job stops when the core says so: its request closed (Stop), it can no longer make its
//! deadline or a step failed for good (GiveUp), or the node shuts down and it could not finish
//! in time. A restarted node resumes every unfinished job from its last recorded state; a job in
//! `submitted` asks the network first (retrying transient failures), so a proof is never
//! accepted twice.
//!
//! Layout:
//! - [`job`]: one job's task: performs its actions (fetch, execute, prove, submit, confirm).
//! - [`retry`]: network calls that retry transient failures; the check of a submitted job.
//! - [`memory`]: a proof's peak memory, for self-calibration.
//! - [`error`]: [`JobError`], retryable or not.

pub mod error;
mod job;
pub mod memory;
pub mod retry;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

pub use error::JobError;
use provernet_types::RequestId;
use tokio::sync::{broadcast, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use crate::{
    context::NodeContext,
    core::{Action, Event},
    driver::RequestRecord,
    store::{Job, JobState},
};

/// Finished jobs kept for slow readers of [`NodeProver::finished`].
const FINISHED_CHANNEL_CAPACITY: usize = 256;

/// What the bidder tells the prover.
#[derive(Debug, Clone)]
pub enum ProverCommand {
    /// A request was assigned to this prover: the network's record of it.
    Assigned(Box<RequestRecord>),
    /// An action of the core for one of the prover's jobs.
    Act(Action),
}

/// A job's task as the prover reaches it.
struct JobHandle {
    /// The core's actions for the job; read by the job's task.
    action_tx: mpsc::UnboundedSender<Action>,
    /// Stops the step in flight when the core stops or gives up the job.
    cancel: CancellationToken,
}

/// The node's prover.
pub struct NodeProver {
    ctx: Arc<NodeContext>,
    jobs: Mutex<HashMap<RequestId, JobHandle>>,
    tasks: TaskTracker,
    finished: broadcast::Sender<(RequestId, JobState)>,
}

impl NodeProver {
    /// A prover for the context's node.
    pub fn new(ctx: Arc<NodeContext>) -> Arc<Self> {
        let (finished, _) = broadcast::channel(FINISHED_CHANNEL_CAPACITY);
        Arc::new(Self { ctx, jobs: Mutex::default(), tasks: TaskTracker::new(), finished })
    }

    /// Jobs as they end, with their final state (done or failed).
    pub fn finished(&self) -> broadcast::Receiver<(RequestId, JobState)> {
        self.finished.subscribe()
    }

    /// Request ids of the jobs running.
    pub fn active(&self) -> Vec<RequestId> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, JobHandle>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resumes unfinished jobs, then follows the bidder's commands until shutdown; then gives up
    /// in-flight jobs that cannot make their deadline and waits for the others.
    pub async fn run(self: Arc<Self>, mut commands: mpsc::UnboundedReceiver<ProverCommand>) {
        match self.ctx.store.unfinished().await {
            Ok(jobs) => {
                for job in jobs {
                    tracing::info!(id = %job.id, state = %job.state, "resuming job");
                    self.receive(job);
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
                Some(ProverCommand::Act(action)) => self.dispatch(vec![action]),
                None => break,
            }
        }
        self.dispatch(self.ctx.apply(Event::ShuttingDown));
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn assigned(self: &Arc<Self>, request: RequestRecord) {
        let Ok(id) = request.id() else { return };
        if self.lock().contains_key(&id) {
            return;
        }
        let price = request.winning_price();
        match self.ctx.store.insert_job(&request, price, self.ctx.now()).await {
            Ok(job) => self.receive(job),
            Err(e) => tracing::error!(%id, "cannot record an assignment: {e}"),
        }
    }

    /// Hands `job` to the core, with a task to perform its actions (none for a finished job).
    fn receive(self: &Arc<Self>, job: Job) {
        let id = job.id;
        let event = Event::JobReceived {
            id,
            work: self.ctx.work(&job.request),
            deadline: job.deadline(),
            state: job.state,
        };
        if !job.state.is_final() {
            let (action_tx, action_rx) = mpsc::unbounded_channel();
            let cancel = CancellationToken::new();
            {
                let mut jobs = self.lock();
                if jobs.contains_key(&id) {
                    return;
                }
                jobs.insert(id, JobHandle { action_tx, cancel: cancel.clone() });
            }
            let span = tracing::info_span!("job", request = %id);
            let this = self.clone();
            self.tasks
                .spawn(async move { this.run_job(job, action_rx, cancel).await }.instrument(span));
        }
        self.dispatch(self.ctx.apply(event));
    }

    /// Sends each action to its job's task; a Stop or GiveUp also stops the step in flight.
    fn dispatch(&self, actions: Vec<Action>) {
        let jobs = self.lock();
        for action in actions {
            let Some(id) = action.job() else {
                tracing::debug!(?action, "not a job's action");
                continue;
            };
            let Some(handle) = jobs.get(&id) else { continue };
            if matches!(action, Action::Stop { .. } | Action::GiveUp { .. }) {
                handle.cancel.cancel();
            }
            let _ = handle.action_tx.send(action);
        }
    }

    /// The job's task has ended in `state`.
    fn finish(&self, id: RequestId, state: JobState) {
        self.lock().remove(&id);
        let _ = self.finished.send((id, state));
    }
}
