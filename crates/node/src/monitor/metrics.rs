//! The node's Prometheus recorder and the metrics the monitor sets (scopes `node.monitor`,
//! `node.prover`, `node.bidder`).
//!
//! System (set by the sampler every `interval_secs`):
//! - `node_cpu_usage_percent`, `node_memory_used_bytes`, `node_memory_total_bytes`,
//!   `node_disk_free_bytes`, `node_disk_total_bytes`, `node_alerts_active`.
//!
//! Proving and bidding (from [`NodeStatus`] and [`HealthSnapshot`], at each sample and scrape):
//! - `node_ready`, `node_subscription_up` (0 or 1);
//! - `node_prover_slots`, `node_prover_jobs_proving`, `node_prover_jobs_queued` (active jobs not
//!   proving: the queue depth), `node_prover_jobs_at_risk`, `node_prover_consecutive_failures`;
//! - `node_bidder_committed_pgus`;
//! - counters since start: `node_bidder_bids_won_total`, `node_bidder_bids_lost_total`,
//!   `node_bidder_bids_expired_total`, `node_bidder_requests_skipped_total`,
//!   `node_earnings_total` (ledger units). Win rate = won / (won + lost).
//!
//! Recorded by the prover through [`NodeMonitorMetrics::proof_done`]:
//! - `node_prover_pgus_total` and the summary `node_prover_proof_duration_seconds`: PGUs/s is
//!   `rate(node_prover_pgus_total[5m])`, or `node_prover_pgus_total /
//!   node_prover_proof_duration_seconds_sum` for throughput while proving (no rate metric is
//!   exported, as Prometheus computes rates itself).

use std::sync::OnceLock;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::{HealthSnapshot, NodeStatus, system::SystemSample};

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

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder the first time, and returns its handle each
/// time (so several nodes in one test process share it). No HTTP listener: the monitor serves
/// `/metrics` itself.
///
/// If another recorder was installed first (by code outside the node), the node's metrics go
/// to that one; the handle returned then belongs to a recorder nobody records into, so
/// `/metrics` only shows what this module describes, and a warning says so.
pub fn install_prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = match PrometheusBuilder::new().install_recorder() {
                Ok(handle) => handle,
                Err(err) => {
                    tracing::warn!(
                        target: "provernet::monitor",
                        %err,
                        "another metrics recorder is installed: /metrics will not show the node's metrics"
                    );
                    PrometheusBuilder::new().build_recorder().handle()
                }
            };
            NodeMonitorMetrics::describe();
            handle
        })
        .clone()
}

/// The monitor's metrics, resolved through the `metrics` facade on each use.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeMonitorMetrics;

impl NodeMonitorMetrics {
    /// Registers the descriptions (HELP lines) with the current recorder.
    pub fn describe() {
        describe_gauge!(CPU_USAGE_PERCENT, Unit::Percent, "CPU usage of all cores");
        describe_gauge!(MEMORY_USED_BYTES, Unit::Bytes, "Memory in use: total less available");
        describe_gauge!(MEMORY_TOTAL_BYTES, Unit::Bytes, "Physical memory");
        describe_gauge!(
            DISK_FREE_BYTES,
            Unit::Bytes,
            "Space the node can still write on its data disk"
        );
        describe_gauge!(DISK_TOTAL_BYTES, Unit::Bytes, "Size of the data disk");
        describe_gauge!(ALERTS_ACTIVE, Unit::Count, "Alerts active now");
        describe_gauge!(GPUS, Unit::Count, "NVIDIA GPUs sampled through NVML");
        describe_gauge!(GPU_UTILISATION_PERCENT, Unit::Percent, "Time a kernel ran on the GPU");
        describe_gauge!(GPU_MEMORY_USED_BYTES, Unit::Bytes, "GPU memory allocated");
        describe_gauge!(GPU_MEMORY_TOTAL_BYTES, Unit::Bytes, "GPU memory installed");
        describe_gauge!(GPU_TEMPERATURE_CELSIUS, "GPU die temperature, degrees Celsius");
        describe_gauge!(GPU_POWER_WATTS, "GPU power draw, watts");
        describe_gauge!(GPU_PROCESSES, Unit::Count, "Compute processes on the GPU");
        describe_gauge!(READY, "1 when the node is ready to take work");
        describe_gauge!(SUBSCRIPTION_UP, "1 when the request stream is connected");
        describe_gauge!(PROVER_SLOTS, Unit::Count, "Proving slots");
        describe_gauge!(PROVER_JOBS_PROVING, Unit::Count, "Jobs proving now");
        describe_gauge!(PROVER_JOBS_QUEUED, Unit::Count, "Active jobs not yet proving");
        describe_gauge!(PROVER_JOBS_AT_RISK, Unit::Count, "Jobs at risk of missing their deadline");
        describe_gauge!(PROVER_CONSECUTIVE_FAILURES, Unit::Count, "Jobs failed in a row");
        describe_gauge!(BIDDER_COMMITTED_PGUS, Unit::Count, "PGUs bid on or won, not yet proven");
        describe_counter!(BIDDER_BIDS_WON_TOTAL, Unit::Count, "Bids won");
        describe_counter!(BIDDER_BIDS_LOST_TOTAL, Unit::Count, "Bids lost");
        describe_counter!(
            BIDDER_BIDS_EXPIRED_TOTAL,
            Unit::Count,
            "Bids whose request closed unassigned"
        );
        describe_counter!(BIDDER_REQUESTS_SKIPPED_TOTAL, Unit::Count, "Requests skipped");
        describe_counter!(EARNINGS_TOTAL, "Paid for accepted proofs, ledger units");
        describe_counter!(PROVER_PGUS_TOTAL, Unit::Count, "PGUs proven");
        describe_histogram!(PROVER_PROOF_DURATION_SECONDS, Unit::Seconds, "Time one proof took");
    }

    /// Sets the system gauges from a sample. Disk gauges are left alone when no disk was found.
    pub fn system(sample: &SystemSample) {
        gauge!(CPU_USAGE_PERCENT).set(sample.cpu_usage_percent);
        gauge!(MEMORY_USED_BYTES).set(sample.memory_used_bytes as f64);
        gauge!(MEMORY_TOTAL_BYTES).set(sample.memory_total_bytes as f64);
        if let Some(disk) = &sample.disk {
            gauge!(DISK_FREE_BYTES).set(disk.free_bytes as f64);
            gauge!(DISK_TOTAL_BYTES).set(disk.total_bytes as f64);
        }
        gauge!(GPUS).set(sample.gpus.len() as f64);
        for gpu in &sample.gpus {
            // Index and model, never a serial: the labels identify a slot, not the hardware.
            let labels = [("gpu", gpu.index.to_string()), ("model", gpu.model.clone())];
            gauge!(GPU_UTILISATION_PERCENT, &labels).set(f64::from(gpu.utilisation_percent));
            gauge!(GPU_MEMORY_USED_BYTES, &labels).set(gpu.memory_used_bytes as f64);
            gauge!(GPU_MEMORY_TOTAL_BYTES, &labels).set(gpu.memory_total_bytes as f64);
            gauge!(GPU_TEMPERATURE_CELSIUS, &labels).set(f64::from(gpu.temperature_celsius));
            if let Some(mw) = gpu.power_milliwatts {
                gauge!(GPU_POWER_WATTS, &labels).set(f64::from(mw) / 1000.0);
            }
            gauge!(GPU_PROCESSES, &labels).set(gpu.processes.len() as f64);
        }
    }

    /// Sets the number of active alerts.
    pub fn alerts_active(n: usize) {
        gauge!(ALERTS_ACTIVE).set(n as f64);
    }

    /// Sets the proving and bidding metrics from what the runtime published.
    pub fn status(status: &NodeStatus, health: &HealthSnapshot) {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        gauge!(READY).set(flag(health.ready));
        gauge!(SUBSCRIPTION_UP).set(flag(health.subscription_up));
        gauge!(PROVER_SLOTS).set(status.slots as f64);
        gauge!(PROVER_JOBS_PROVING).set(status.proving as f64);
        gauge!(PROVER_JOBS_QUEUED).set(queued(status) as f64);
        gauge!(PROVER_JOBS_AT_RISK).set(f64::from(health.jobs_at_risk));
        gauge!(PROVER_CONSECUTIVE_FAILURES).set(f64::from(health.consecutive_failures));
        gauge!(BIDDER_COMMITTED_PGUS).set(status.committed_pgus as f64);
        counter!(BIDDER_BIDS_WON_TOTAL).absolute(status.won);
        counter!(BIDDER_BIDS_LOST_TOTAL).absolute(status.lost);
        counter!(BIDDER_BIDS_EXPIRED_TOTAL).absolute(status.expired);
        counter!(BIDDER_REQUESTS_SKIPPED_TOTAL).absolute(status.skipped);
        // Earnings are whole ledger units as decimal text; anything else is left out rather
        // than exported wrong.
        if let Ok(earned) = status.earnings.trim().parse::<u64>() {
            counter!(EARNINGS_TOTAL).absolute(earned);
        }
    }

    /// A proof of `pgus` PGUs took `seconds` of proving.
    pub fn proof_done(pgus: u64, seconds: f64) {
        counter!(PROVER_PGUS_TOTAL).increment(pgus);
        histogram!(PROVER_PROOF_DURATION_SECONDS).record(seconds.max(0.0));
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
    fn the_recorder_installs_once_and_renders_what_is_set() {
        let a = install_prometheus();
        let b = install_prometheus();
        // A name of its own: other tests set the real gauges concurrently.
        gauge!("node_monitor_test_gauge").set(2.0);
        assert!(a.render().contains("node_monitor_test_gauge 2"), "{}", a.render());
        assert!(b.render().contains("node_monitor_test_gauge 2"), "the same recorder");
    }

    #[test]
    fn each_gpu_gets_its_gauges_labelled_by_index_and_model() {
        let handle = install_prometheus();
        // Values typical of an L4 under load (written by hand); a model name of its own, since
        // other tests sample this (GPU-less) machine concurrently.
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
        NodeMonitorMetrics::system(&sample);
        let text = handle.render();
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
