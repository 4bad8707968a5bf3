//! NodeMonitor: system and proving metrics, Prometheus `/metrics`, `/health/live`,
//! `/health/ready`, the JSON `/status` that `provernet node status` reads, and alert rules logged
//! at WARN/ERROR with a stable code each.
//!
//! The runtime reports into a shared [`NodeHealth`]; the monitor samples the system, evaluates
//! the alert rules and serves what both say.
//!
//! Layout:
//! - [`service`]: [`Monitor`], the sampler task ([`Monitor::spawn`]) and the [`StatusReport`].
//! - [`system`]: [`SystemSample`]s of CPU, memory and the data disk, through `sysinfo`.
//! - [`alerts`]: the rules ([`evaluate`]) and their stable codes.
//! - [`metrics`]: each node's own Prometheus registry ([`NodeMetrics`]) and metric names.
//! - [`economics`]: revenue, cost, penalties, margin, bids, skips, misses and stake at risk,
//!   over the last hour and since start ([`Economics`]).
//! - [`http`]: [`serve`]: `/metrics`, `/health/live`, `/health/ready`, `/status`.
//!
//! ```text
//! runtime ──set_*/record_*/publish_status──▶ NodeHealth ─┐
//! sysinfo ──every interval_secs──▶ SystemSample ─────────┼─▶ evaluate ─▶ alerts (logged on change)
//!                                                        └─▶ gauges ─▶ /metrics, /status
//! ```
//!
//! Feature flags: none. GPUs are sampled through NVML, opened at run time ([`gpu`]).

pub mod alerts;
pub mod economics;
pub mod gpu;
pub mod http;
pub mod metrics;
pub mod service;
pub mod system;

pub use alerts::{Alert, Severity, evaluate};
pub use economics::{Economics, EconomicsReport};
pub use gpu::{GpuSample, GpuSampler, LostGpu};
pub use http::{ReadyReport, router, serve};
pub use metrics::{JobResult, NodeMetrics};
pub use service::{Monitor, StatusReport};
pub use system::{DiskSample, SystemSample, SystemSampler};

use std::sync::{
    Mutex,
    atomic::{AtomicBool, AtomicU32, Ordering},
};

use serde::{Deserialize, Serialize};

/// What the runtime reports for the monitor: shared by every component, cheap to update.
#[derive(Debug, Default)]
pub struct NodeHealth {
    subscription_up: AtomicBool,
    ready: AtomicBool,
    consecutive_failures: AtomicU32,
    jobs_at_risk: AtomicU32,
    prover_unregistered: AtomicBool,
    status: Mutex<NodeStatus>,
    metrics: NodeMetrics,
    last_reload: Mutex<Option<ConfigReload>>,
    economics: Mutex<Economics>,
    pool: Mutex<Option<Vec<crate::pool::WorkerStatus>>>,
    /// When pool tasks needed another claim (unix seconds, one entry per extra claim).
    pool_retries: Mutex<std::collections::VecDeque<u64>>,
}

impl NodeHealth {
    /// Keeps the latest reading of the proving pool's workers.
    pub fn set_pool(&self, workers: Vec<crate::pool::WorkerStatus>) {
        *self.pool.lock().unwrap_or_else(|e| e.into_inner()) = Some(workers);
    }

    /// A pool task needed `extra` claims beyond its first, seen at unix seconds `now`.
    pub fn record_pool_retries(&self, now: u64, extra: u32) {
        self.metrics.pool_task_retried(extra);
        let mut retries = self.pool_retries.lock().unwrap_or_else(|e| e.into_inner());
        retries.extend(std::iter::repeat_n(now, extra as usize));
    }

    /// Extra claims pool tasks needed in the ten minutes before unix seconds `now`.
    pub fn pool_retries(&self, now: u64) -> u64 {
        let mut retries = self.pool_retries.lock().unwrap_or_else(|e| e.into_inner());
        while retries.front().is_some_and(|at| now.saturating_sub(*at) > 600) {
            retries.pop_front();
        }
        retries.len() as u64
    }

    /// The latest reading of the proving pool's workers, when the node coordinates one.
    pub fn pool(&self) -> Option<Vec<crate::pool::WorkerStatus>> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The node's own metrics registry, which `/metrics` renders.
    pub fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    /// Whether the network's request stream is connected.
    pub fn set_subscription_up(&self, up: bool) {
        self.subscription_up.store(up, Ordering::Relaxed);
    }

    /// Whether the node is ready to take work (store open, network reached).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// A job finished and was accepted: the failure streak ends.
    pub fn record_job_success(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// A job failed.
    pub fn record_job_failure(&self) {
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Jobs whose estimated finish is past their deadline less the safety margin.
    pub fn set_jobs_at_risk(&self, n: u32) {
        self.jobs_at_risk.store(n, Ordering::Relaxed);
    }

    /// Whether the network's last answer to a bid said the prover is not registered.
    pub fn set_prover_unregistered(&self, unregistered: bool) {
        self.prover_unregistered.store(unregistered, Ordering::Relaxed);
    }

    /// Replaces the status `/status` serves.
    pub fn publish_status(&self, status: NodeStatus) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }

    /// The latest status.
    pub fn status(&self) -> NodeStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts `entry` for the economics at unix seconds `now`.
    pub fn record_economics(&self, now: u64, entry: economics::Entry) {
        self.economics.lock().unwrap_or_else(|e| e.into_inner()).record(now, entry);
    }

    /// Keeps the network's latest reading of the prover's stake.
    pub fn set_stake(&self, stake: economics::StakeAtRisk) {
        self.economics.lock().unwrap_or_else(|e| e.into_inner()).set_stake(stake);
    }

    /// The economics over the last hour and since start, at unix seconds `now`.
    pub fn economics(&self, now: u64) -> EconomicsReport {
        self.economics.lock().unwrap_or_else(|e| e.into_inner()).report(now)
    }

    /// A config reload was tried.
    pub fn record_reload(&self, reload: ConfigReload) {
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Some(reload);
    }

    /// The last config reload tried, if any.
    pub fn last_reload(&self) -> Option<ConfigReload> {
        self.last_reload.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The flags and counters, read at once.
    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot {
            subscription_up: self.subscription_up.load(Ordering::Relaxed),
            ready: self.ready.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive_failures.load(Ordering::Relaxed),
            jobs_at_risk: self.jobs_at_risk.load(Ordering::Relaxed),
            prover_unregistered: self.prover_unregistered.load(Ordering::Relaxed),
        }
    }
}

/// A reload of the node's config (SIGHUP, or its file changed), as `/status` shows the last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigReload {
    /// Unix seconds it was tried.
    pub at: u64,
    /// The settings it changed, dotted (`bidding.margin`); empty if refused.
    pub changed: Vec<String>,
    /// Why it was refused (the config in force was kept); none if it took effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// [`NodeHealth`]'s flags and counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSnapshot {
    /// The request stream is connected.
    pub subscription_up: bool,
    /// The node is ready to take work.
    pub ready: bool,
    /// Jobs failed in a row.
    pub consecutive_failures: u32,
    /// Jobs at risk of missing their deadline.
    pub jobs_at_risk: u32,
    /// The network refused the last bid because the prover is not registered.
    #[serde(default)]
    pub prover_unregistered: bool,
}

/// What a running node says about itself at `/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The prover account.
    pub prover: String,
    /// The operator key's address.
    pub operator: String,
    /// The network's URL.
    pub network_url: String,
    /// Seconds the node adds to this machine's clock to read the network's (its deadlines).
    #[serde(default)]
    pub clock_offset_secs: i64,
    /// The API the node speaks to it (`provernet`, `succinct`).
    #[serde(default)]
    pub network_api: String,
    /// What the node cannot know or do on that API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limitations: Vec<String>,
    /// zkVM versions proven.
    pub versions: Vec<String>,
    /// Unix seconds the node started.
    pub started_at: u64,
    /// Whether the node bids on new requests.
    pub bidding: bool,
    /// PGUs bid on or won and not yet proven.
    pub committed_pgus: u64,
    /// Proving slots, and how many are in use.
    pub slots: usize,
    /// Jobs proving now.
    pub proving: usize,
    /// Bids won, lost and expired, and requests skipped, since start.
    pub won: u64,
    /// Bids lost.
    pub lost: u64,
    /// Bids whose request closed unassigned.
    pub expired: u64,
    /// Requests skipped.
    pub skipped: u64,
    /// Paid for accepted proofs since start (ledger units, decimal).
    pub earnings: String,
    /// Revenue, cost, margin, bids, skips, misses and stake at risk, over the last hour and
    /// since start.
    #[serde(default)]
    pub economics: EconomicsReport,
    /// Each version and mode's configured and measured throughput and memory, and its
    /// programs' (self-calibration).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<crate::core::VersionCalibration>,
    /// The proving pool's workers, when the node coordinates one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Vec<crate::pool::WorkerStatus>>,
    /// Active jobs, then the most recent finished ones.
    pub jobs: Vec<JobStatus>,
    /// The most recent bid decisions, newest first.
    pub recent_bids: Vec<BidStatus>,
}

/// One job as `/status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The request id (0x hex).
    pub request_id: String,
    /// assigned, fetched, executed, proved, submitted, done or failed.
    pub state: String,
    /// The job's PGUs.
    pub pgus: u64,
    /// The price won, per PGU.
    pub price_per_pgu: String,
    /// Unix seconds by which the proof must be accepted.
    pub deadline: u64,
    /// Unix seconds of the last change.
    pub updated_at: u64,
    /// Why it failed, for a failed job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One bid decision as `/status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidStatus {
    /// The request id (0x hex).
    pub request_id: String,
    /// Unix seconds of the decision.
    pub at: u64,
    /// The price bid per PGU, or none when skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_per_pgu: Option<String>,
    /// `bid`, `won`, `lost`, `expired`, or `skipped: <reason>`.
    pub outcome: String,
}
