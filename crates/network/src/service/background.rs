//! The network's own work, dispatched: executing new requests ([`executor`]), verifying submitted
//! proofs ([`verifier`]), settling auctions when their period ends and closing requests whose
//! deadline passed — on timers, not polling.

use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap},
    sync::Arc,
    time::{Duration, Instant},
};

use provernet_types::RequestId;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{NetworkState, Work, executor, now_ms, verifier};
use crate::market::{Execution, Outcome, Request, Status};

/// How often the per-state request gauges are refreshed: a scrape interval is seconds.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

/// A timer: fire at a unix millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Settle(RequestId),
    Sweep,
}

/// What the network owes request `r` in its state: executing it, settling its auction, verifying
/// the proof it waits on, and closing it at its deadline; nothing once it is closed. The one
/// decision of follow-up work, taken after each operation for the requests its events are about
/// and by a new leader for every open request.
pub fn follow_up(r: &Request) -> Vec<Work> {
    if r.status.is_closed() {
        return Vec::new();
    }
    let mut work = vec![Work::Sweep(r.spec.deadline * 1000)];
    match (&r.execution, r.status) {
        (Execution::Unexecuted, Status::Requested) => work.push(Work::Execute(r.id)),
        (Execution::Executed { .. }, Status::Requested) => {
            work.push(Work::Settle(r.id, r.auction_end() * 1000))
        }
        (_, Status::Assigned) if r.pending_proof.is_some() => work.push(Work::Verify(r.id)),
        _ => {}
    }
    work
}

/// Runs the executor and the timers until cancelled.
pub struct Background {
    state: Arc<NetworkState>,
    work_rx: mpsc::UnboundedReceiver<Work>,
}

impl Background {
    /// The background tasks of `state`, fed by `work_rx`.
    pub fn new(state: Arc<NetworkState>, work_rx: mpsc::UnboundedReceiver<Work>) -> Self {
        Self { state, work_rx }
    }

    /// Schedules what a restored market still has to do (a restart, or a standby taking the
    /// lead): the [`follow_up`] of every open request.
    pub fn restore(&self) {
        let market = self.state.market();
        for work in market.requests().flat_map(follow_up) {
            self.state.schedule(work);
        }
    }

    /// Runs until `cancel` fires, then ends the subscription streams (see
    /// [`NetworkState::close_streams`]).
    pub async fn run(mut self, cancel: CancellationToken) {
        self.run_timers(cancel).await;
        self.state.close_streams();
    }

    /// Publishes the number of requests in each state as `network_requests{state}` gauges.
    fn record_gauges(&self) {
        let counts = self.state.market().status_counts();
        for state in provernet_types::proto::RequestStatus::ALL.map(|s| s.name()) {
            let n = counts.get(state).copied().unwrap_or(0);
            crate::metrics::requests_in(state, n);
        }
    }

    async fn run_timers(&mut self, cancel: CancellationToken) {
        let mut gauges = tokio::time::interval(GAUGE_INTERVAL);
        let executors = Arc::new(Semaphore::new(self.state.config.executor_concurrency.max(1)));
        let verifiers = Arc::new(Semaphore::new(self.state.config.verifier_concurrency.max(1)));
        let mut timers: BinaryHeap<Reverse<(u64, Timer)>> = BinaryHeap::new();
        // Deadline sweeps armed, by time: every event of a request owes one at its deadline
        // ([`follow_up`]), and one sweep closes every request due.
        let mut sweeps: BTreeSet<u64> = BTreeSet::new();
        loop {
            let next = timers.peek().map(|Reverse((at, _))| *at);
            let sleep = async {
                match next {
                    Some(at) => {
                        let wait = at.saturating_sub(now_ms());
                        tokio::time::sleep_until(
                            (Instant::now() + Duration::from_millis(wait)).into(),
                        )
                        .await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = gauges.tick() => {
                    self.record_gauges();
                    self.state.limits.forget_quiet_accounts();
                }
                work = self.work_rx.recv() => match work {
                    None => return,
                    Some(Work::Execute(id)) => {
                        let (state, queued) = (self.state.clone(), self.state.limits.executions.enter());
                        spawn_in(&executors, queued, async move { executor::execute(&state, id).await });
                    }
                    Some(Work::Verify(id)) => {
                        let (state, queued) = (self.state.clone(), self.state.limits.verifications.enter());
                        spawn_in(&verifiers, queued, async move { verifier::verify(&state, id).await });
                    }
                    Some(Work::Settle(id, at)) => timers.push(Reverse((at, Timer::Settle(id)))),
                    Some(Work::Sweep(at)) => {
                        if sweeps.insert(at) {
                            timers.push(Reverse((at, Timer::Sweep)));
                        }
                    }
                },
                () = sleep => {
                    let now = now_ms();
                    let mut due = Vec::new();
                    while let Some(Reverse((at, timer))) = timers.peek().copied() {
                        if at > now {
                            break;
                        }
                        timers.pop();
                        if timer == Timer::Sweep {
                            sweeps.remove(&at);
                        }
                        due.push((timer, at));
                    }
                    self.fire(due).await;
                }
            }
        }
    }

    /// Fires every due timer in one market operation, so auctions ending in the same instant
    /// share one database commit instead of queueing behind each other's.
    async fn fire(&self, due: Vec<(Timer, u64)>) {
        if due.is_empty() {
            return;
        }
        let result = self
            .state
            .apply(|m, now| {
                let mut all = Outcome::default();
                for (timer, due_ms) in &due {
                    let outcome = match timer {
                        Timer::Settle(id) => {
                            crate::metrics::settled_after(now.saturating_sub(*due_ms) as f64 / 1e3);
                            m.settle(*id, now)
                        }
                        Timer::Sweep => m.sweep(now),
                    };
                    all.merge(outcome);
                }
                Ok((all, ()))
            })
            .await;
        if let Err(e) = result {
            tracing::error!(target: "provernet::network", timers = due.len(), %e, "timers failed");
        }
    }
}

/// Runs `work` once `pool` has a permit, counted in its queue (`queued`) until it ends.
fn spawn_in(
    pool: &Arc<Semaphore>,
    queued: super::limits::QueueGuard,
    work: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let pool = pool.clone();
    tokio::spawn(async move {
        let _queued = queued;
        // Never closed: the semaphore lives as long as the background task.
        let Ok(_permit) = pool.acquire_owned().await else { return };
        work.await;
    });
}
