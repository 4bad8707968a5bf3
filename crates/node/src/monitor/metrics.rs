//! One node's metrics, in a Prometheus registry of its own ([`NodeMetrics`]): several nodes in
//! one process (the devnet) each export only what they did. Scopes `node.monitor`,
//! `node.prover`, `node.bidder`. Every metric has HELP text and its unit in its name; latencies
//! are histograms with buckets ([`provernet_types::LATENCY_BUCKETS_SECONDS`]), so they aggregate
//! across nodes; no label carries an id.
//!
//! System (set by the sampler every `interval_secs`):
//! - `node_cpu_usage_percent`, `node_memory_used_bytes`, `node_memory_total_bytes`,
//!   `node_disk_free_bytes`, `node_disk_total_bytes`, `node_alerts_active`,
//!   `node_alert_active{code}` (0 or 1 for every alert code), and per GPU (labels `gpu` index
//!   and `model`) `node_gpu_*`.
//!
//! Proving and bidding (from [`NodeStatus`] and [`HealthSnapshot`], at each sample and scrape):
//! - `node_ready`, `node_subscription_up` (0 or 1);
//! - `node_prover_slots`, `node_prover_jobs_proving`, `node_prover_jobs_queued` (active jobs not
//!   proving: the queue depth), `node_prover_jobs_at_risk`, `node_prover_consecutive_failures`;
//! - `node_bidder_committed_pgus`;
//! - economics since start: `node_cost_total` (busy time at `cost_per_hour`), `node_margin`
//!   (paid less cost and penalties), `node_deadline_misses_total`, `node_penalties_total`
//!   (collateral the misses forfeited; provernet API only), and the prover's `node_stake` and
//!   `node_collateral_locked` (provernet API only) — ledger units;
//! - self-calibration per version and mode (labels `version`, `mode`): throughput
//!   `node_prover_configured_pgus_per_second` against `node_prover_measured_pgus_per_second`
//!   (`node_prover_calibration_samples`, `node_prover_calibration_in_use`,
//!   `node_prover_calibrated_programs`: programs going by their own), and memory
//!   `node_prover_configured_memory_per_pgu_bytes` against
//!   `node_prover_measured_memory_per_pgu_bytes` (`node_prover_memory_calibration_samples`,
//!   `node_prover_memory_calibration_in_use`); no program id is a label;
//! - counters since start: `node_bidder_bids_won_total`, `node_bidder_bids_lost_total`,
//!   `node_bidder_bids_expired_total`, `node_bidder_requests_skipped_total`,
//!   `node_earnings_total` (ledger units). Win rate = won / (won + lost).
//!
//! A proving pool's workers (when the node coordinates one; from [`NodeStatus`]):
//! `node_pool_workers{state}`, and per worker (label `worker`, the operator's name for it)
//! `node_pool_worker_up`, `node_pool_worker_heartbeat_age_seconds`, `node_pool_worker_tasks`,
//! `node_pool_worker_pgus_per_second{version}`; `node_pool_task_retries_total` as tasks end.
//!
//! Recorded as they happen:
//! - `node_prover_pgus_total` and the histogram `node_prover_proof_duration_seconds`: PGUs/s is
//!   `rate(node_prover_pgus_total[5m])`, or `node_prover_pgus_total /
//!   node_prover_proof_duration_seconds_sum` for throughput while proving;
//! - `node_jobs_total{result}` (done, failed, closed), `node_skips_total{reason}`,
//!   `node_bids_total{outcome}` (bid, refused) and the histogram `node_bid_latency_seconds`
//!   (request seen to bid accepted).

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use provernet_types::LATENCY_BUCKETS_SECONDS;

use super::{
    HealthSnapshot, NodeStatus,
    alerts::{Alert, CODES},
    system::SystemSample,
};

/// CPU usage of all cores, percent.
pub const CPU_USAGE_PERCENT: &str = "node_cpu_usage_percent";
/// Memory in use (total − available), bytes.
pub const MEMORY_USED_BYTES: &str = "node_memory_used_bytes";
/// Physical memory, bytes.
pub const MEMORY_TOTAL_BYTES: &str = "node_memory_total_bytes";
/// Writable free space on the data disk, bytes.
pub const DISK_FREE_BYTES: &str = "node_disk_free_bytes";
/// Size of the data disk, bytes.
pub const DISK_TOTAL_BYTES: &str = "node_disk_total_bytes";
/// Alerts active now.
pub const ALERTS_ACTIVE: &str = "node_alerts_active";
/// 1 while the alert with this `code` label is active, else 0 (every code, always exported):
/// Prometheus's rules mirror the node's own evaluation, thresholds from `node.toml` included.
pub const ALERT_ACTIVE: &str = "node_alert_active";
/// GPUs sampled (labels: none).
pub const GPUS: &str = "node_gpus";
/// A GPU's utilisation, percent (labels: `gpu` index, `model`).
pub const GPU_UTILISATION_PERCENT: &str = "node_gpu_utilisation_percent";
/// A GPU's memory in use, bytes (labels: `gpu`, `model`).
pub const GPU_MEMORY_USED_BYTES: &str = "node_gpu_memory_used_bytes";
/// A GPU's memory, bytes (labels: `gpu`, `model`).
pub const GPU_MEMORY_TOTAL_BYTES: &str = "node_gpu_memory_total_bytes";
/// A GPU's die temperature, °C (labels: `gpu`, `model`).
pub const GPU_TEMPERATURE_CELSIUS: &str = "node_gpu_temperature_celsius";
/// A GPU's power draw, watts (labels: `gpu`, `model`).
pub const GPU_POWER_WATTS: &str = "node_gpu_power_watts";
/// Compute processes on a GPU (labels: `gpu`, `model`).
pub const GPU_PROCESSES: &str = "node_gpu_processes";
/// 1 when the node is ready to take work.
pub const READY: &str = "node_ready";
/// 1 when the request stream is connected.
pub const SUBSCRIPTION_UP: &str = "node_subscription_up";
/// Proving slots.
pub const PROVER_SLOTS: &str = "node_prover_slots";
/// Jobs proving now.
pub const PROVER_JOBS_PROVING: &str = "node_prover_jobs_proving";
/// Active jobs waiting for a slot (fetching, executing or queued).
pub const PROVER_JOBS_QUEUED: &str = "node_prover_jobs_queued";
/// Jobs at risk of missing their deadline.
pub const PROVER_JOBS_AT_RISK: &str = "node_prover_jobs_at_risk";
/// Jobs failed in a row.
pub const PROVER_CONSECUTIVE_FAILURES: &str = "node_prover_consecutive_failures";
/// PGUs bid on or won and not yet proven.
pub const BIDDER_COMMITTED_PGUS: &str = "node_bidder_committed_pgus";
/// Bids won since start.
pub const BIDDER_BIDS_WON_TOTAL: &str = "node_bidder_bids_won_total";
/// Bids lost since start.
pub const BIDDER_BIDS_LOST_TOTAL: &str = "node_bidder_bids_lost_total";
/// Bids whose request closed unassigned, since start.
pub const BIDDER_BIDS_EXPIRED_TOTAL: &str = "node_bidder_bids_expired_total";
/// Requests skipped since start.
pub const BIDDER_REQUESTS_SKIPPED_TOTAL: &str = "node_bidder_requests_skipped_total";
/// Paid for accepted proofs since start, ledger units.
pub const EARNINGS_TOTAL: &str = "node_earnings_total";
/// PGUs proven since start.
pub const PROVER_PGUS_TOTAL: &str = "node_prover_pgus_total";
/// Time one proof took; its `_sum` is the time spent proving, summed over slots.
pub const PROVER_PROOF_DURATION_SECONDS: &str = "node_prover_proof_duration_seconds";
/// Jobs ended, by result (label `result`: done, failed, closed).
pub const JOBS_TOTAL: &str = "node_jobs_total";
/// Requests skipped, by reason (label `reason`).
pub const SKIPS_TOTAL: &str = "node_skips_total";
/// Bids sent, by outcome (label `outcome`: bid, refused).
pub const BIDS_TOTAL: &str = "node_bids_total";
/// Time from seeing a request to the network accepting the node's bid.
pub const BID_LATENCY_SECONDS: &str = "node_bid_latency_seconds";
/// Proving cost since start: `cost_per_hour` for the time the machine was busy, ledger units.
pub const COST_TOTAL: &str = "node_cost_total";
/// Paid less proving cost and penalties since start, ledger units (negative at a loss).
pub const MARGIN: &str = "node_margin";
/// Won jobs given up or late since start (each forfeits its collateral).
pub const DEADLINE_MISSES_TOTAL: &str = "node_deadline_misses_total";
/// Collateral forfeited by deadline misses since start, ledger units.
pub const PENALTIES_TOTAL: &str = "node_penalties_total";
/// The prover's stake, ledger units.
pub const STAKE: &str = "node_stake";
/// The prover's stake locked as collateral for its assigned requests, ledger units.
pub const COLLATERAL_LOCKED: &str = "node_collateral_locked";
/// Throughput the config gives, PGUs per second (labels `version`, `mode`).
pub const CONFIGURED_PGUS_PER_SECOND: &str = "node_prover_configured_pgus_per_second";
/// Throughput measured from the node's proofs, PGUs per second (labels `version`, `mode`).
pub const MEASURED_PGUS_PER_SECOND: &str = "node_prover_measured_pgus_per_second";
/// Proofs behind the measured throughput (labels `version`, `mode`).
pub const CALIBRATION_SAMPLES: &str = "node_prover_calibration_samples";
/// 1 when the node prices and schedules with the measured throughput (labels `version`,
/// `mode`).
pub const CALIBRATION_IN_USE: &str = "node_prover_calibration_in_use";
/// Programs priced and scheduled by their own measured throughput (labels `version`, `mode`).
pub const CALIBRATED_PROGRAMS: &str = "node_prover_calibrated_programs";
/// Memory per PGU the backend's model gives at the largest job, bytes (labels `version`,
/// `mode`).
pub const CONFIGURED_MEMORY_PER_PGU_BYTES: &str = "node_prover_configured_memory_per_pgu_bytes";
/// Peak memory per PGU measured from the node's proofs, bytes (labels `version`, `mode`).
pub const MEASURED_MEMORY_PER_PGU_BYTES: &str = "node_prover_measured_memory_per_pgu_bytes";
/// Proofs behind the measured memory per PGU (labels `version`, `mode`).
pub const MEMORY_CALIBRATION_SAMPLES: &str = "node_prover_memory_calibration_samples";
/// 1 when memory admission goes by the measured memory per PGU (labels `version`, `mode`).
pub const MEMORY_CALIBRATION_IN_USE: &str = "node_prover_memory_calibration_in_use";
/// A finished proof's actual proving seconds over the estimate the node held for it.
pub const ESTIMATE_ERROR_RATIO: &str = "node_prover_estimate_error_ratio";

/// Workers of the node's proving pool, by state (label `state`: live, lost, gone, stopped,
/// refused).
pub const POOL_WORKERS: &str = "node_pool_workers";
/// Extra claims the pool's tasks needed (a lost lease, a refused or failed proof), since start.
pub const POOL_TASK_RETRIES_TOTAL: &str = "node_pool_task_retries_total";
/// A pool worker's age of its last heartbeat, seconds (label `worker`: the operator's name).
pub const POOL_WORKER_HEARTBEAT_AGE_SECONDS: &str = "node_pool_worker_heartbeat_age_seconds";
/// Tasks a pool worker holds (label `worker`).
pub const POOL_WORKER_TASKS: &str = "node_pool_worker_tasks";
/// A pool worker's measured throughput, PGUs per second (labels `worker`, `version`).
pub const POOL_WORKER_PGUS_PER_SECOND: &str = "node_pool_worker_pgus_per_second";
/// 1 while a pool worker is live (label `worker`).
pub const POOL_WORKER_UP: &str = "node_pool_worker_up";

/// Buckets of [`ESTIMATE_ERROR_RATIO`]: 1 is a perfect estimate; 2, a proof twice as slow.
const RATIO_BUCKETS: &[f64] = &[0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0];

/// How a job ended, as `node_jobs_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResult {
    /// Proven, submitted and accepted.
    Done,
    /// Given up.
    Failed,
    /// Its request closed first.
    Closed,
}

impl JobResult {
    fn label(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Closed => "closed",
        }
    }
}

/// Where recorded metrics say they came from (the Prometheus recorder ignores it).
static METADATA: Metadata<'static> = Metadata::new("provernet::monitor", Level::INFO, None);

/// One node's metrics: a Prometheus registry of its own, and the handle `/metrics` renders.
/// Cheap to clone; clones record into the same registry.
#[derive(Debug, Clone)]
pub struct NodeMetrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    /// A new, empty registry with every metric described.
    pub fn new() -> Self {
        // Both bucket lists are fixed and non-empty, so this cannot fail; if it ever did, the
        // histograms would render as summaries rather than the node not starting.
        let builder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS_SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(ESTIMATE_ERROR_RATIO.into()), RATIO_BUCKETS)
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let metrics = Self { handle: recorder.handle(), recorder: Arc::new(recorder) };
        metrics.describe();
        // Every labelled counter exists from the start, at 0: a dashboard or rule sees
        // "none yet", not "no such series".
        for result in [JobResult::Done, JobResult::Failed, JobResult::Closed] {
            metrics.counter_with(JOBS_TOTAL, "result", result.label()).increment(0);
        }
        for reason in crate::core::Skip::LABELS {
            metrics.counter_with(SKIPS_TOTAL, "reason", reason).increment(0);
        }
        for outcome in ["bid", "refused"] {
            metrics.counter_with(BIDS_TOTAL, "outcome", outcome).increment(0);
        }
        metrics
    }

    /// The text `/metrics` serves.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds recorded samples into the histograms: keeps memory bounded between scrapes.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    fn describe(&self) {
        let r = &self.recorder;
        let gauge = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            r.describe_gauge(KeyName::from_const_str(name), unit, help.into());
        };
        gauge(CPU_USAGE_PERCENT, Some(Unit::Percent), "CPU usage of all cores");
        gauge(MEMORY_USED_BYTES, Some(Unit::Bytes), "Memory in use: total less available");
        gauge(MEMORY_TOTAL_BYTES, Some(Unit::Bytes), "Physical memory");
        gauge(
            DISK_FREE_BYTES,
            Some(Unit::Bytes),
            "Space the node can still write on its data disk",
        );
        gauge(DISK_TOTAL_BYTES, Some(Unit::Bytes), "Size of the data disk");
        gauge(ALERTS_ACTIVE, Some(Unit::Count), "Alerts active now");
        gauge(ALERT_ACTIVE, None, "1 while the alert with this code is active");
        gauge(GPUS, Some(Unit::Count), "NVIDIA GPUs sampled through NVML");
        gauge(GPU_UTILISATION_PERCENT, Some(Unit::Percent), "Time a kernel ran on the GPU");
        gauge(GPU_MEMORY_USED_BYTES, Some(Unit::Bytes), "GPU memory allocated");
        gauge(GPU_MEMORY_TOTAL_BYTES, Some(Unit::Bytes), "GPU memory installed");
        gauge(GPU_TEMPERATURE_CELSIUS, None, "GPU die temperature, degrees Celsius");
        gauge(GPU_POWER_WATTS, None, "GPU power draw, watts");
        gauge(GPU_PROCESSES, Some(Unit::Count), "Compute processes on the GPU");
        gauge(READY, None, "1 when the node is ready to take work");
        gauge(SUBSCRIPTION_UP, None, "1 when the request stream is connected");
        gauge(PROVER_SLOTS, Some(Unit::Count), "Proving slots");
        gauge(PROVER_JOBS_PROVING, Some(Unit::Count), "Jobs proving now");
        gauge(PROVER_JOBS_QUEUED, Some(Unit::Count), "Active jobs not yet proving");
        gauge(PROVER_JOBS_AT_RISK, Some(Unit::Count), "Jobs at risk of missing their deadline");
        gauge(PROVER_CONSECUTIVE_FAILURES, Some(Unit::Count), "Jobs failed in a row");
        gauge(BIDDER_COMMITTED_PGUS, Some(Unit::Count), "PGUs bid on or won, not yet proven");
        gauge(
            CONFIGURED_PGUS_PER_SECOND,
            None,
            "Proving throughput the config gives, PGUs per second",
        );
        gauge(
            MEASURED_PGUS_PER_SECOND,
            None,
            "Proving throughput measured from proofs, PGUs per second",
        );
        gauge(CALIBRATION_SAMPLES, Some(Unit::Count), "Proofs behind the measured throughput");
        gauge(CALIBRATION_IN_USE, None, "1 when the measured throughput prices and schedules");
        gauge(
            CALIBRATED_PROGRAMS,
            Some(Unit::Count),
            "Programs priced and scheduled by their own measured throughput",
        );
        gauge(
            CONFIGURED_MEMORY_PER_PGU_BYTES,
            Some(Unit::Bytes),
            "Memory per PGU the backend's model gives at the largest job",
        );
        gauge(
            MEASURED_MEMORY_PER_PGU_BYTES,
            Some(Unit::Bytes),
            "Peak memory per PGU measured from proofs that ran alone",
        );
        gauge(
            MEMORY_CALIBRATION_SAMPLES,
            Some(Unit::Count),
            "Proofs behind the measured memory per PGU",
        );
        gauge(
            MEMORY_CALIBRATION_IN_USE,
            None,
            "1 when memory admission goes by the measured figure",
        );
        gauge(MARGIN, None, "Paid less proving cost and penalties since start, ledger units");
        gauge(POOL_WORKERS, Some(Unit::Count), "Proving pool workers, by state");
        gauge(
            POOL_WORKER_HEARTBEAT_AGE_SECONDS,
            Some(Unit::Seconds),
            "Time since a pool worker's last heartbeat",
        );
        gauge(POOL_WORKER_TASKS, Some(Unit::Count), "Tasks a pool worker holds");
        gauge(
            POOL_WORKER_PGUS_PER_SECOND,
            None,
            "A pool worker's measured throughput, PGUs per second",
        );
        gauge(POOL_WORKER_UP, None, "1 while a pool worker is live");
        gauge(STAKE, None, "The prover's stake, ledger units");
        gauge(
            COLLATERAL_LOCKED,
            None,
            "Stake locked as collateral for assigned requests, ledger units",
        );
        let counter = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            r.describe_counter(KeyName::from_const_str(name), unit, help.into());
        };
        counter(BIDDER_BIDS_WON_TOTAL, Some(Unit::Count), "Bids won");
        counter(BIDDER_BIDS_LOST_TOTAL, Some(Unit::Count), "Bids lost");
        counter(
            BIDDER_BIDS_EXPIRED_TOTAL,
            Some(Unit::Count),
            "Bids whose request closed unassigned",
        );
        counter(BIDDER_REQUESTS_SKIPPED_TOTAL, Some(Unit::Count), "Requests skipped");
        counter(EARNINGS_TOTAL, None, "Paid for accepted proofs, ledger units");
        counter(PROVER_PGUS_TOTAL, Some(Unit::Count), "PGUs proven");
        counter(
            POOL_TASK_RETRIES_TOTAL,
            Some(Unit::Count),
            "Extra claims pool tasks needed (lost lease, refused or failed proof)",
        );
        counter(JOBS_TOTAL, Some(Unit::Count), "Jobs ended, by result (done, failed, closed)");
        counter(SKIPS_TOTAL, Some(Unit::Count), "Requests the bidder skipped, by reason");
        counter(BIDS_TOTAL, Some(Unit::Count), "Bids sent, by outcome (bid, refused)");
        counter(
            COST_TOTAL,
            None,
            "Proving cost since start: cost per hour times busy hours, ledger units",
        );
        counter(
            DEADLINE_MISSES_TOTAL,
            Some(Unit::Count),
            "Won jobs given up or late (collateral forfeited)",
        );
        counter(
            PENALTIES_TOTAL,
            None,
            "Collateral forfeited by deadline misses since start, ledger units",
        );
        let histogram = |name: &'static str, help: &'static str| {
            r.describe_histogram(KeyName::from_const_str(name), Some(Unit::Seconds), help.into());
        };
        histogram(PROVER_PROOF_DURATION_SECONDS, "Time one proof took");
        histogram(BID_LATENCY_SECONDS, "Time from seeing a request to its bid being accepted");
        r.describe_histogram(
            KeyName::from_const_str(ESTIMATE_ERROR_RATIO),
            None,
            "A proof's actual proving time over the node's estimate for it".into(),
        );
    }

    fn gauge(&self, name: &'static str) -> Gauge {
        self.recorder.register_gauge(&Key::from_static_name(name), &METADATA)
    }

    fn gauge_with(&self, name: &'static str, labels: &[(&'static str, String)]) -> Gauge {
        self.recorder.register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    fn counter(&self, name: &'static str) -> Counter {
        self.recorder.register_counter(&Key::from_static_name(name), &METADATA)
    }

    fn counter_with(
        &self,
        name: &'static str,
        label: &'static str,
        value: &'static str,
    ) -> Counter {
        self.recorder.register_counter(&Key::from_parts(name, &[(label, value)]), &METADATA)
    }

    fn histogram(&self, name: &'static str) -> Histogram {
        self.recorder.register_histogram(&Key::from_static_name(name), &METADATA)
    }

    /// Sets the system gauges from a sample. Disk gauges are left alone when no disk was found.
    pub fn system(&self, sample: &SystemSample) {
        self.gauge(CPU_USAGE_PERCENT).set(sample.cpu_usage_percent);
        self.gauge(MEMORY_USED_BYTES).set(sample.memory_used_bytes as f64);
        self.gauge(MEMORY_TOTAL_BYTES).set(sample.memory_total_bytes as f64);
        if let Some(disk) = &sample.disk {
            self.gauge(DISK_FREE_BYTES).set(disk.free_bytes as f64);
            self.gauge(DISK_TOTAL_BYTES).set(disk.total_bytes as f64);
        }
        self.gauge(GPUS).set(sample.gpus.len() as f64);
        for gpu in &sample.gpus {
            // Index and model, never a serial: the labels identify a slot, not the hardware.
            let labels = [("gpu", gpu.index.to_string()), ("model", gpu.model.clone())];
            let gauge = |name| self.gauge_with(name, &labels);
            gauge(GPU_UTILISATION_PERCENT).set(f64::from(gpu.utilisation_percent));
            gauge(GPU_MEMORY_USED_BYTES).set(gpu.memory_used_bytes as f64);
            gauge(GPU_MEMORY_TOTAL_BYTES).set(gpu.memory_total_bytes as f64);
            gauge(GPU_TEMPERATURE_CELSIUS).set(f64::from(gpu.temperature_celsius));
            if let Some(mw) = gpu.power_milliwatts {
                gauge(GPU_POWER_WATTS).set(f64::from(mw) / 1000.0);
            }
            gauge(GPU_PROCESSES).set(gpu.processes.len() as f64);
        }
    }

    /// Sets the active alerts: their number, and a 0 or 1 for every code.
    pub fn alerts(&self, active: &[Alert]) {
        self.gauge(ALERTS_ACTIVE).set(active.len() as f64);
        for code in CODES {
            let on = active.iter().any(|a| a.code == code);
            self.gauge_with(ALERT_ACTIVE, &[("code", code.to_owned())]).set(if on {
                1.0
            } else {
                0.0
            });
        }
    }

    /// Sets the proving and bidding metrics from what the runtime published.
    pub fn status(&self, status: &NodeStatus, health: &HealthSnapshot) {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        self.gauge(READY).set(flag(health.ready));
        self.gauge(SUBSCRIPTION_UP).set(flag(health.subscription_up));
        self.gauge(PROVER_SLOTS).set(status.slots as f64);
        self.gauge(PROVER_JOBS_PROVING).set(status.proving as f64);
        self.gauge(PROVER_JOBS_QUEUED).set(queued(status) as f64);
        self.gauge(PROVER_JOBS_AT_RISK).set(f64::from(health.jobs_at_risk));
        self.gauge(PROVER_CONSECUTIVE_FAILURES).set(f64::from(health.consecutive_failures));
        self.gauge(BIDDER_COMMITTED_PGUS).set(status.committed_pgus as f64);
        self.counter(BIDDER_BIDS_WON_TOTAL).absolute(status.won);
        self.counter(BIDDER_BIDS_LOST_TOTAL).absolute(status.lost);
        self.counter(BIDDER_BIDS_EXPIRED_TOTAL).absolute(status.expired);
        self.counter(BIDDER_REQUESTS_SKIPPED_TOTAL).absolute(status.skipped);
        // Earnings are whole ledger units as decimal text; anything else is left out rather
        // than exported wrong.
        if let Ok(earned) = status.earnings.trim().parse::<u64>() {
            self.counter(EARNINGS_TOTAL).absolute(earned);
        }
        let economics = &status.economics;
        if let Ok(cost) = economics.since_start.cost.parse::<u64>() {
            self.counter(COST_TOTAL).absolute(cost);
        }
        if let Ok(margin) = economics.since_start.margin.parse::<f64>() {
            self.gauge(MARGIN).set(margin);
        }
        self.counter(DEADLINE_MISSES_TOTAL).absolute(economics.since_start.deadline_misses);
        if let Ok(penalties) = economics.since_start.penalties.parse::<u64>() {
            self.counter(PENALTIES_TOTAL).absolute(penalties);
        }
        if let Some(stake) = &economics.stake {
            if let Ok(total) = stake.stake.parse::<f64>() {
                self.gauge(STAKE).set(total);
            }
            if let Ok(collateral) = stake.collateral.parse::<f64>() {
                self.gauge(COLLATERAL_LOCKED).set(collateral);
            }
        }
        if let Some(workers) = &status.pool {
            for state in ["live", "lost", "gone", "stopped", "refused"] {
                let n = workers.iter().filter(|w| w.state == state).count();
                self.gauge_with(POOL_WORKERS, &[("state", state.to_owned())]).set(n as f64);
            }
            for w in workers {
                let labels = [("worker", w.id.clone())];
                self.gauge_with(POOL_WORKER_HEARTBEAT_AGE_SECONDS, &labels)
                    .set(w.heartbeat_age_secs);
                self.gauge_with(POOL_WORKER_TASKS, &labels).set(w.tasks.len() as f64);
                self.gauge_with(POOL_WORKER_UP, &labels).set(flag(w.is_live()));
                for (version, rate) in &w.pgus_per_second {
                    let labels = [("worker", w.id.clone()), ("version", version.clone())];
                    self.gauge_with(POOL_WORKER_PGUS_PER_SECOND, &labels).set(*rate);
                }
            }
        }
        for c in &status.calibration {
            let labels = [("version", c.version.clone()), ("mode", c.mode.as_str().to_owned())];
            self.gauge_with(CONFIGURED_PGUS_PER_SECOND, &labels).set(c.configured_pgus_per_second);
            self.gauge_with(MEASURED_PGUS_PER_SECOND, &labels).set(c.measured.pgus_per_second);
            self.gauge_with(CALIBRATION_SAMPLES, &labels).set(c.measured.samples as f64);
            self.gauge_with(CALIBRATION_IN_USE, &labels).set(flag(c.in_use));
            self.gauge_with(CALIBRATED_PROGRAMS, &labels).set(c.programs_in_use() as f64);
            self.gauge_with(CONFIGURED_MEMORY_PER_PGU_BYTES, &labels)
                .set(c.configured_memory_per_pgu_bytes);
            self.gauge_with(MEASURED_MEMORY_PER_PGU_BYTES, &labels).set(c.memory.bytes_per_pgu);
            self.gauge_with(MEMORY_CALIBRATION_SAMPLES, &labels).set(c.memory.samples as f64);
            self.gauge_with(MEMORY_CALIBRATION_IN_USE, &labels).set(flag(c.memory_in_use));
        }
    }

    /// A pool task needed `extra` claims beyond its first.
    pub fn pool_task_retried(&self, extra: u32) {
        self.counter(POOL_TASK_RETRIES_TOTAL).increment(u64::from(extra));
    }

    /// A proof took `ratio` times the proving time the node estimated for it.
    pub fn estimate_error(&self, ratio: f64) {
        if ratio.is_finite() {
            self.histogram(ESTIMATE_ERROR_RATIO).record(ratio.max(0.0));
        }
    }

    /// A proof of `pgus` PGUs took `seconds` of proving.
    pub fn proof_done(&self, pgus: u64, seconds: f64) {
        self.counter(PROVER_PGUS_TOTAL).increment(pgus);
        self.histogram(PROVER_PROOF_DURATION_SECONDS).record(seconds.max(0.0));
    }

    /// A job ended with `result`.
    pub fn job_ended(&self, result: JobResult) {
        self.counter_with(JOBS_TOTAL, "result", result.label()).increment(1);
    }

    /// The bidder skipped a request for `reason`.
    pub fn skipped(&self, reason: &'static str) {
        self.counter_with(SKIPS_TOTAL, "reason", reason).increment(1);
    }

    /// The network accepted a bid `seconds` after the node saw its request.
    pub fn bid_accepted(&self, seconds: f64) {
        self.histogram(BID_LATENCY_SECONDS).record(seconds.max(0.0));
        self.counter_with(BIDS_TOTAL, "outcome", "bid").increment(1);
    }

    /// The network refused a bid.
    pub fn bid_refused(&self) {
        self.counter_with(BIDS_TOTAL, "outcome", "refused").increment(1);
    }
}

/// Active jobs (not done or failed) that are not proving: the queue depth.
pub fn queued(status: &NodeStatus) -> usize {
    let active =
        status.jobs.iter().filter(|j| !matches!(j.state.as_str(), "done" | "failed")).count();
    active.saturating_sub(status.proving)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::JobStatus;

    #[test]
    fn each_node_renders_only_what_it_recorded() {
        let a = NodeMetrics::new();
        let b = NodeMetrics::new();
        let clone = a.clone();
        clone.job_ended(JobResult::Done);
        a.job_ended(JobResult::Done);
        b.job_ended(JobResult::Failed);
        let (a, b) = (a.render(), b.render());
        assert!(a.contains(r#"node_jobs_total{result="done"} 2"#), "{a}");
        assert!(a.contains(r#"node_jobs_total{result="failed"} 0"#), "{a}");
        assert!(b.contains(r#"node_jobs_total{result="failed"} 1"#), "{b}");
        assert!(b.contains(r#"node_jobs_total{result="done"} 0"#), "{b}");
        assert!(b.contains(r#"node_skips_total{reason="below cost"} 0"#), "{b}");
    }

    #[test]
    fn penalties_are_a_counter_in_ledger_units_beside_the_misses() {
        let metrics = NodeMetrics::new();
        let mut status = NodeStatus::default();
        status.economics.since_start.deadline_misses = 2;
        status.economics.since_start.penalties = "750".into();
        metrics.status(&status, &HealthSnapshot::default());
        let text = metrics.render();
        for want in [
            "# HELP node_penalties_total Collateral forfeited by deadline misses since start, \
             ledger units",
            "# TYPE node_penalties_total counter",
            "node_penalties_total 750",
            "node_deadline_misses_total 2",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }

    #[test]
    fn latencies_are_histograms_with_buckets_and_help() {
        let metrics = NodeMetrics::new();
        metrics.bid_accepted(0.003);
        metrics.proof_done(1000, 42.0);
        let text = metrics.render();
        for want in [
            "# TYPE node_bid_latency_seconds histogram",
            r#"node_bid_latency_seconds_bucket{le="0.005"} 1"#,
            r#"node_bid_latency_seconds_bucket{le="0.0025"} 0"#,
            r#"node_bid_latency_seconds_bucket{le="+Inf"} 1"#,
            "# TYPE node_prover_proof_duration_seconds histogram",
            r#"node_prover_proof_duration_seconds_bucket{le="60"} 1"#,
            "# HELP node_prover_pgus_total PGUs proven",
            r#"node_bids_total{outcome="bid"} 1"#,
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        assert!(!text.contains("quantile"), "no summaries: {text}");
    }

    #[test]
    fn each_gpu_gets_its_gauges_labelled_by_index_and_model() {
        let metrics = NodeMetrics::new();
        // Values typical of an L4 under load (written by hand).
        let sample = SystemSample {
            cpu_usage_percent: 50.0,
            memory_total_bytes: 100,
            memory_available_bytes: 50,
            memory_used_bytes: 50,
            disk: None,
            gpus: vec![crate::monitor::GpuSample {
                index: 3,
                model: "NVIDIA L4 (test)".into(),
                utilisation_percent: 97,
                memory_used_bytes: 12 << 30,
                memory_total_bytes: 24 << 30,
                temperature_celsius: 71,
                power_milliwatts: Some(71_430),
                processes: vec![4242, 4243],
            }],
            gpus_lost: Vec::new(),
        };
        metrics.system(&sample);
        let text = metrics.render();
        for want in [
            r#"node_gpu_utilisation_percent{gpu="3",model="NVIDIA L4 (test)"} 97"#,
            r#"node_gpu_memory_used_bytes{gpu="3",model="NVIDIA L4 (test)"} 12884901888"#,
            r#"node_gpu_memory_total_bytes{gpu="3",model="NVIDIA L4 (test)"} 25769803776"#,
            r#"node_gpu_temperature_celsius{gpu="3",model="NVIDIA L4 (test)"} 71"#,
            r#"node_gpu_power_watts{gpu="3",model="NVIDIA L4 (test)"} 71.43"#,
            r#"node_gpu_processes{gpu="3",model="NVIDIA L4 (test)"} 2"#,
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }

    #[test]
    fn the_queue_is_active_jobs_not_proving() {
        let job = |state: &str| JobStatus { state: state.into(), ..JobStatus::default() };
        let status = NodeStatus {
            proving: 1,
            jobs: vec![job("proving"), job("fetched"), job("assigned"), job("done"), job("failed")],
            ..NodeStatus::default()
        };
        assert_eq!(queued(&status), 2);
        assert_eq!(queued(&NodeStatus { proving: 3, ..NodeStatus::default() }), 0);
    }
}
