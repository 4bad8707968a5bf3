//! Starting and stopping a node: NodeContext first, then the prover (resuming unfinished
//! jobs), the bidder and the monitor; on shutdown the bidder stops at once, the prover lets
//! in-flight proofs finish if they can make their deadline, and the job store is flushed last.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::{
    NodeConfig, bidder,
    clock::{Clock, NetworkTime, SystemClock},
    context::NodeContext,
    error::NodeError,
    monitor::{
        BidStatus, ConfigReload, JobStatus, Monitor, NodeHealth, NodeStatus, economics::StakeAtRisk,
    },
    prover::NodeProver,
};

/// How often `/status` is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// A running node.
pub struct NodeHandle {
    /// The node's shared state.
    pub context: Arc<NodeContext>,
    /// The prover.
    pub prover: Arc<NodeProver>,
    /// Where `/metrics`, `/health/*` and `/status` are served, if a listener was given.
    pub monitor_addr: Option<SocketAddr>,
    /// Whether the network's request stream is connected (true once `launch` returns).
    pub subscribed: watch::Receiver<bool>,
    /// Ends when the node has shut down (after `shutdown` is cancelled).
    pub join: JoinHandle<()>,
    /// The NodeMonitor, if a listener was given: its alert thresholds reload.
    monitor: Option<Arc<Monitor>>,
}

impl NodeHandle {
    /// What reloads this node's config, for a task of its own (a signal or file watcher).
    pub fn reloader(&self) -> Reloader {
        Reloader { context: self.context.clone(), monitor: self.monitor.clone() }
    }
}

/// Reloads a running node's config ([`NodeHandle::reloader`]).
#[derive(Debug, Clone)]
pub struct Reloader {
    context: Arc<NodeContext>,
    monitor: Option<Arc<Monitor>>,
}

impl Reloader {
    /// Reloads the config from what reading it again gave (the file, the environment and the
    /// flags, as at start): the pricing, bidding limits, throughput and alert thresholds of a
    /// valid config take effect for the decisions from now on. A config that cannot be read,
    /// is invalid, or changes a setting only a restart can change is refused with the reason,
    /// and the config in force is kept. Logged, and shown at `/status`.
    pub fn reload(&self, read: Result<NodeConfig, String>) -> ConfigReload {
        let at = self.context.now();
        let outcome = read.and_then(|new| {
            let thresholds = new.monitor.clone();
            let changed = self.context.reload(new).map_err(|e| e.to_string())?;
            if let Some(monitor) = &self.monitor {
                monitor.set_config(thresholds);
            }
            Ok(changed)
        });
        let reload = match outcome {
            Ok(changed) => {
                if changed.is_empty() {
                    tracing::info!("config reloaded: nothing changed");
                } else {
                    tracing::info!(changed = %changed.join(", "), "config reloaded");
                }
                ConfigReload { at, changed, refused: None }
            }
            Err(reason) => {
                tracing::warn!("config reload refused, the running config is kept: {reason}");
                ConfigReload { at, changed: Vec::new(), refused: Some(reason) }
            }
        };
        self.context.health.record_reload(reload.clone());
        reload
    }
}

/// Starts a node with `config` and returns once it follows the network's request stream; it
/// runs until `shutdown` is cancelled. With `monitor`, the NodeMonitor serves on it from the
/// start (so `/health/live` answers while the node connects) until the node has stopped.
///
/// # Errors
/// [`NodeError`] if the context cannot be built (key, store, network, registration).
pub async fn launch(
    config: NodeConfig,
    monitor: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<NodeHandle, NodeError> {
    launch_with_clock(config, monitor, shutdown, Arc::new(NetworkTime::new(Arc::new(SystemClock))))
        .await
}

/// [`launch`] on `clock`: the time the node's decisions are taken at.
///
/// # Errors
/// As [`launch`].
pub async fn launch_with_clock(
    config: NodeConfig,
    monitor: Option<TcpListener>,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
) -> Result<NodeHandle, NodeError> {
    config.validate()?;
    let health = Arc::new(NodeHealth::default());
    let monitor_stop = CancellationToken::new();
    let mut monitor_addr = None;
    let mut monitor_tasks = Vec::new();
    let mut node_monitor = None;
    if let Some(listener) = monitor {
        monitor_addr = listener.local_addr().ok();
        let monitor =
            Arc::new(Monitor::new(health.clone(), config.monitor.clone(), config.data_dir.clone()));
        node_monitor = Some(monitor.clone());
        monitor_tasks.push(monitor.spawn(monitor_stop.clone()));
        let stop = monitor_stop.clone();
        monitor_tasks.push(tokio::spawn(async move {
            if let Err(e) = crate::monitor::http::serve(listener, monitor, stop).await {
                tracing::error!("monitor endpoint failed: {e}");
            }
        }));
    }
    let ctx = match NodeContext::build(config, health, shutdown, clock).await {
        Ok(ctx) => ctx,
        Err(e) => {
            monitor_stop.cancel();
            return Err(e);
        }
    };
    let (commands, receiver) = mpsc::unbounded_channel();
    let pool =
        ctx.pool.clone().map(|pool| tokio::spawn(watch_pool(ctx.clone(), pool, commands.clone())));
    let prover = NodeProver::new(ctx.clone());
    let proving = tokio::spawn(prover.clone().run(receiver));
    let (subscribed_tx, mut subscribed) = watch::channel(false);
    let bidding = tokio::spawn(bidder::run::run(ctx.clone(), commands, subscribed_tx));
    let status = tokio::spawn(publish_status(ctx.clone()));
    let stake = tokio::spawn(watch_stake(ctx.clone()));
    let clock = tokio::spawn(watch_clock(ctx.clone()));
    // Up means subscribed: every request published from now on is seen.
    tokio::select! {
        () = ctx.shutdown.cancelled() => {}
        _ = subscribed.wait_for(|up| *up) => {}
    }
    ctx.health.set_ready(true);
    tracing::info!(
        prover = %ctx.prover,
        operator = %ctx.operator.address(),
        network = ctx.driver.url(),
        api = %ctx.driver.api(),
        versions = ?ctx.versions,
        slots = ctx.core().slots(),
        "node up"
    );
    let join = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = bidding.await;
            let _ = proving.await;
            status.abort();
            stake.abort();
            clock.abort();
            if let Some(pool) = pool {
                pool.abort();
            }
            ctx.health.set_ready(false);
            ctx.store.close().await;
            monitor_stop.cancel();
            for task in monitor_tasks {
                let _ = task.await;
            }
            tracing::info!("node stopped");
        })
    };
    Ok(NodeHandle { context: ctx, prover, monitor_addr, subscribed, join, monitor: node_monitor })
}

/// How often the network's clock is read again (a machine's clock drifts).
const CLOCK_EVERY: Duration = Duration::from_secs(60);

/// Reads the network's clock every [`CLOCK_EVERY`], so the node keeps deciding by the
/// network's time (an API that does not tell it leaves the machine's clock as it is).
async fn watch_clock(ctx: Arc<NodeContext>) {
    let mut tick = tokio::time::interval(CLOCK_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Some(now) = ctx.driver.network_time().await {
            ctx.clock.observe_network(now);
        }
    }
}

/// How often the prover's stake is read for the economics.
const STAKE_EVERY: Duration = Duration::from_secs(15);

/// Reads the prover's stake every [`STAKE_EVERY`], for the stake and collateral at risk; stops
/// on an API that cannot tell. A failed read keeps the last one (logged at DEBUG: the request
/// stream's health is what the alerts watch).
async fn watch_stake(ctx: Arc<NodeContext>) {
    let mut tick = tokio::time::interval(STAKE_EVERY);
    loop {
        tick.tick().await;
        match ctx.driver.stake().await {
            Ok(Some(stake)) => ctx.health.set_stake(StakeAtRisk {
                stake: stake.total.to_string(),
                collateral: stake.total.get().saturating_sub(stake.free.get()).to_string(),
                at: ctx.now(),
            }),
            Ok(None) => return,
            Err(e) => tracing::debug!("cannot read the prover's stake: {e}"),
        }
    }
}

/// How often the proving pool's workers are read.
const POOL_EVERY: Duration = Duration::from_secs(1);
/// How often the pool's long-finished tasks and unused blobs are dropped.
const POOL_PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// Reads the pool's workers every [`POOL_EVERY`]: the core bids and schedules by what the live
/// ones offer (a worker that stops heartbeating shrinks capacity at its lease's end), jobs its
/// new slots start go to the prover, and `/status` shows each worker.
async fn watch_pool(
    ctx: Arc<NodeContext>,
    pool: Arc<crate::pool::Coordinator>,
    commands: mpsc::UnboundedSender<crate::prover::ProverCommand>,
) {
    let mut tick = tokio::time::interval(POOL_EVERY);
    let mut pruned = tokio::time::Instant::now();
    let mut lost: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    loop {
        tick.tick().await;
        let workers = match pool.workers().await {
            Ok(workers) => workers,
            Err(e) => {
                // Capacity stays as last read: the workers prove on while the database is away.
                tracing::warn!("cannot read the proving pool's workers: {e}");
                continue;
            }
        };
        for w in &workers {
            match (w.state.as_str(), lost.contains(&w.id)) {
                ("lost", false) => {
                    tracing::warn!(worker = %w.id, secs = w.heartbeat_age_secs, "proving pool worker lost: no heartbeat within the lease");
                    lost.insert(w.id.clone());
                }
                ("lost", true) => {}
                (_, true) => {
                    tracing::info!(worker = %w.id, state = %w.state, "proving pool worker back");
                    lost.remove(&w.id);
                }
                _ => {}
            }
        }
        let capacity = crate::pool::coordinator::capacity(&workers);
        ctx.health.set_pool(workers);
        let actions = ctx.core().set_pool(capacity);
        for action in actions {
            let _ = commands.send(crate::prover::ProverCommand::Act(action));
        }
        if pruned.elapsed() >= POOL_PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            if let Err(e) = pool.prune().await {
                tracing::warn!("cannot prune the proving pool: {e}");
            }
        }
    }
}

/// Refreshes the status `/status` serves, and the deadline-at-risk count.
async fn publish_status(ctx: Arc<NodeContext>) {
    let mut tick = tokio::time::interval(STATUS_EVERY);
    loop {
        tick.tick().await;
        let jobs = ctx.store.recent_jobs(20).await.unwrap_or_default();
        let bids = ctx.store.recent_bids(20).await.unwrap_or_default();
        // Before the core's lock: the hour's window may be long to add up.
        let economics = ctx.health.economics(ctx.now());
        let core = ctx.core();
        ctx.health.set_jobs_at_risk(core.at_risk(ctx.now()) as u32);
        let book = core.book();
        let status = NodeStatus {
            prover: ctx.prover.to_string(),
            operator: ctx.operator.address().to_string(),
            network_url: ctx.driver.url().to_owned(),
            clock_offset_secs: ctx.clock.offset_secs(),
            network_api: ctx.driver.api().to_string(),
            limitations: ctx.driver.limitations().iter().map(|l| (*l).to_owned()).collect(),
            versions: ctx.versions.clone(),
            started_at: ctx.started_at,
            bidding: core.bidding() && !ctx.shutdown.is_cancelled(),
            committed_pgus: book.committed_pgus(),
            slots: core.slots(),
            proving: core.proving(),
            won: book.won,
            lost: book.lost,
            expired: book.expired,
            skipped: book.skipped,
            earnings: book.earnings.to_string(),
            calibration: core
                .calibration()
                .into_iter()
                .map(|mut c| {
                    // The backends are the context's: the core knows only throughput.
                    c.configured_memory_per_pgu_bytes =
                        ctx.configured_memory_per_pgu(&c.version, c.mode);
                    c
                })
                .collect(),
            economics,
            pool: ctx.health.pool(),
            jobs: jobs
                .iter()
                .map(|j| JobStatus {
                    request_id: j.id.to_string(),
                    state: j.state.to_string(),
                    pgus: j.pgus(),
                    price_per_pgu: j.price_per_pgu.to_string(),
                    deadline: j.deadline(),
                    updated_at: j.updated_at,
                    error: j.error.clone(),
                })
                .collect(),
            recent_bids: bids
                .iter()
                .map(|b| BidStatus {
                    request_id: b.id.to_string(),
                    at: b.at,
                    price_per_pgu: b.price_per_pgu.map(|p| p.to_string()),
                    outcome: match &b.reason {
                        Some(reason) => format!("{}: {reason}", b.outcome),
                        None => b.outcome.clone(),
                    },
                })
                .collect(),
        };
        drop(core);
        ctx.health.publish_status(status);
    }
}
