//! The alert rules: a pure function of a system sample, the runtime's health and the thresholds,
//! and the bookkeeping that turns successive evaluations into "raised" and "cleared" events so
//! each alert is logged once when it starts and once when it ends, not at every interval.
//!
//! Every alert has a stable, searchable code:
//!
//! | code                    | severity | fires when                                              |
//! |-------------------------|----------|---------------------------------------------------------|
//! | `PN-DISK-LOW`           | ERROR    | the data disk's free share < `disk_min_free_percent`    |
//! | `PN-MEMORY-HIGH`        | WARN     | memory in use > `memory_max_percent`                    |
//! | `PN-DEADLINE-AT-RISK`   | WARN     | at least one job is at risk of missing its deadline     |
//! | `PN-JOB-FAILURES`       | ERROR    | `max_consecutive_failures` (≥ 1) jobs failed in a row   |
//! | `PN-SUBSCRIPTION-DOWN`  | ERROR    | the node is ready but its request stream is down        |
//! | `PN-PROVER-UNREGISTERED`| ERROR    | the network refused a bid: the prover is not registered |
//! | `PN-GPU-LOST`           | ERROR    | a GPU seen earlier is missing from the sample           |
//! | `PN-GPU-HOT`            | WARN     | a GPU's die is at `gpu_max_temperature_celsius` or more |
//! | `PN-GPU-MEMORY`         | WARN     | a GPU's memory use > `gpu_memory_max_percent`           |
//! | `PN-CALIBRATION-DRIFT`  | WARN     | measured throughput is off the configured one by more   |
//! |                         |          | than `calibration_drift_percent` (either way)           |
//! | `PN-WORKER-LOST`        | ERROR    | a proving pool worker missed its lease (no heartbeat), |
//! |                         |          | or registered without the cluster secret's MAC          |
//! | `PN-POOL-RETRIES`       | WARN     | pool tasks needed another claim in the last 10 minutes  |

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

use super::{HealthSnapshot, system::SystemSample};
use crate::{config::MonitorConfig, core::VersionCalibration};

/// The data disk's free share is below `disk_min_free_percent`.
pub const DISK_LOW: &str = "PN-DISK-LOW";
/// Memory in use is above `memory_max_percent`.
pub const MEMORY_HIGH: &str = "PN-MEMORY-HIGH";
/// A job is at risk of missing its deadline.
pub const DEADLINE_AT_RISK: &str = "PN-DEADLINE-AT-RISK";
/// `max_consecutive_failures` jobs failed in a row.
pub const JOB_FAILURES: &str = "PN-JOB-FAILURES";
/// The node is ready but its request stream is disconnected.
pub const SUBSCRIPTION_DOWN: &str = "PN-SUBSCRIPTION-DOWN";
/// The network refuses bids because the prover is not registered (a Succinct-API endpoint
/// cannot be asked beforehand).
pub const PROVER_UNREGISTERED: &str = "PN-PROVER-UNREGISTERED";
/// A GPU seen in an earlier sample is missing (off the bus, reset, its driver gone).
pub const GPU_LOST: &str = "PN-GPU-LOST";
/// A GPU's die is at or above `gpu_max_temperature_celsius`.
pub const GPU_HOT: &str = "PN-GPU-HOT";
/// A GPU's memory use is above `gpu_memory_max_percent`.
pub const GPU_MEMORY: &str = "PN-GPU-MEMORY";
/// The throughput measured from proofs is off the configured one by more than
/// `calibration_drift_percent`: the config's figure is wrong (the node already prices with the
/// measured one; fix the config, or `provernet calibrate`).
pub const CALIBRATION_DRIFT: &str = "PN-CALIBRATION-DRIFT";
/// A proving pool worker stopped heartbeating within its lease (its tasks go to others), or
/// registered without the cluster secret.
pub const WORKER_LOST: &str = "PN-WORKER-LOST";
/// Pool tasks needed another claim recently (a lost lease, a refused or failed proof).
pub const POOL_RETRIES: &str = "PN-POOL-RETRIES";
/// Stands for a code this build does not know, when reading another node's report.
pub const UNKNOWN: &str = "PN-UNKNOWN";

/// Every code [`evaluate`] can raise.
pub const CODES: [&str; 12] = [
    DISK_LOW,
    MEMORY_HIGH,
    DEADLINE_AT_RISK,
    JOB_FAILURES,
    SUBSCRIPTION_DOWN,
    PROVER_UNREGISTERED,
    GPU_LOST,
    GPU_HOT,
    GPU_MEMORY,
    CALIBRATION_DRIFT,
    WORKER_LOST,
    POOL_RETRIES,
];

/// How bad an alert is: the log level it is raised at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Logged at WARN: needs attention soon.
    Warn,
    /// Logged at ERROR: the node is losing or about to lose work.
    Error,
}

/// One active alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// The stable code (`PN-DISK-LOW`…), one of [`CODES`].
    pub code: &'static str,
    /// The log level it is raised at.
    pub severity: Severity,
    /// What is wrong, with the values that made it fire.
    pub message: String,
}

impl<'de> Deserialize<'de> for Alert {
    /// Reads an alert from another process's report. A known code maps to its constant; an
    /// unknown one (from a newer node) becomes [`UNKNOWN`] and is kept at the front of the
    /// message, so nothing is lost and nothing is leaked.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire<'a> {
            #[serde(borrow)]
            code: Cow<'a, str>,
            severity: Severity,
            message: String,
        }
        let wire = Wire::deserialize(deserializer)?;
        Ok(match CODES.iter().find(|c| **c == wire.code) {
            Some(code) => Alert { code, severity: wire.severity, message: wire.message },
            None => Alert {
                code: UNKNOWN,
                severity: wire.severity,
                message: format!("[{}] {}", wire.code, wire.message),
            },
        })
    }
}

/// The alerts that hold for this sample, health and thresholds, most severe first.
///
/// Comparisons are strict where the config says "below" or "above": a disk exactly at
/// `disk_min_free_percent` free, or memory exactly at `memory_max_percent`, does not alert. A
/// disk or memory total the sample could not read (`None`) raises nothing.
/// `max_consecutive_failures = 0` turns the failure rule off.
pub fn evaluate(
    sample: &SystemSample,
    health: &HealthSnapshot,
    config: &MonitorConfig,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    if let (Some(free), Some(disk)) = (sample.disk_free_percent(), &sample.disk)
        && free < config.disk_min_free_percent
    {
        alerts.push(Alert {
            code: DISK_LOW,
            severity: Severity::Error,
            message: format!(
                "data disk {} has {free:.1}% free ({} of {} bytes), below {}%",
                disk.mount_point.display(),
                disk.free_bytes,
                disk.total_bytes,
                config.disk_min_free_percent
            ),
        });
    }
    if let Some(used) = sample.memory_used_percent()
        && used > config.memory_max_percent
    {
        alerts.push(Alert {
            code: MEMORY_HIGH,
            severity: Severity::Warn,
            message: format!(
                "memory {used:.1}% in use ({} of {} bytes), above {}%",
                sample.memory_used_bytes, sample.memory_total_bytes, config.memory_max_percent
            ),
        });
    }
    if health.jobs_at_risk > 0 {
        alerts.push(Alert {
            code: DEADLINE_AT_RISK,
            severity: Severity::Warn,
            message: format!("{} job(s) at risk of missing their deadline", health.jobs_at_risk),
        });
    }
    if config.max_consecutive_failures > 0
        && health.consecutive_failures >= config.max_consecutive_failures
    {
        alerts.push(Alert {
            code: JOB_FAILURES,
            severity: Severity::Error,
            message: format!(
                "{} jobs failed in a row (limit {})",
                health.consecutive_failures, config.max_consecutive_failures
            ),
        });
    }
    if health.ready && !health.subscription_up {
        alerts.push(Alert {
            code: SUBSCRIPTION_DOWN,
            severity: Severity::Error,
            message: "the request stream from the network is disconnected".into(),
        });
    }
    if health.prover_unregistered {
        alerts.push(Alert {
            code: PROVER_UNREGISTERED,
            severity: Severity::Error,
            message: "the network refuses this node's bids: its prover is not registered (or \
                      not staked) there"
                .into(),
        });
    }
    // One alert per code (alerts are tracked by code), naming every GPU concerned.
    let named = |gpus: Vec<String>| gpus.join(", ");
    if !sample.gpus_lost.is_empty() {
        alerts.push(Alert {
            code: GPU_LOST,
            severity: Severity::Error,
            message: format!(
                "GPU(s) missing since an earlier sample: {}",
                named(
                    sample.gpus_lost.iter().map(|g| format!("{} ({})", g.index, g.model)).collect()
                )
            ),
        });
    }
    let hot: Vec<String> = sample
        .gpus
        .iter()
        .filter(|g| g.temperature_celsius >= config.gpu_max_temperature_celsius)
        .map(|g| format!("{} ({}) at {} °C", g.index, g.model, g.temperature_celsius))
        .collect();
    if !hot.is_empty() {
        alerts.push(Alert {
            code: GPU_HOT,
            severity: Severity::Warn,
            message: format!(
                "GPU(s) at or above {} °C: {}",
                config.gpu_max_temperature_celsius,
                named(hot)
            ),
        });
    }
    let full: Vec<String> = sample
        .gpus
        .iter()
        .filter_map(|g| {
            let used = g.memory_used_percent()?;
            (used > config.gpu_memory_max_percent)
                .then(|| format!("{} ({}) {used:.1}% used", g.index, g.model))
        })
        .collect();
    if !full.is_empty() {
        alerts.push(Alert {
            code: GPU_MEMORY,
            severity: Severity::Warn,
            message: format!(
                "GPU memory above {}%: {}",
                config.gpu_memory_max_percent,
                named(full)
            ),
        });
    }
    // Stable: equal severities keep rule order.
    alerts.sort_by_key(|a| std::cmp::Reverse(a.severity));
    alerts
}

/// The proving pool's alerts: workers lost (or refused), and tasks retried in the last ten
/// minutes (`retried`).
pub fn pool(workers: &[crate::pool::WorkerStatus], retried: u64) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let lost: Vec<String> = workers
        .iter()
        .filter(|w| w.state == "lost" || w.state == "refused")
        .map(|w| match w.state.as_str() {
            "refused" => format!("{} (not registered with the cluster secret)", w.id),
            _ => format!("{} (no heartbeat for {:.0} s)", w.id, w.heartbeat_age_secs),
        })
        .collect();
    if !lost.is_empty() {
        alerts.push(Alert {
            code: WORKER_LOST,
            severity: Severity::Error,
            message: format!("proving pool worker(s) lost: {}", lost.join(", ")),
        });
    }
    if retried > 0 {
        alerts.push(Alert {
            code: POOL_RETRIES,
            severity: Severity::Warn,
            message: format!("{retried} pool task claim(s) retried in the last 10 minutes"),
        });
    }
    alerts
}

/// The calibration alert for what the node measured, if any version drifted past the
/// threshold (`calibration_drift_percent`; 0 turns it off).
pub fn calibration_drift(
    calibration: &[VersionCalibration],
    config: &MonitorConfig,
) -> Option<Alert> {
    let limit = config.calibration_drift_percent;
    let drifted: Vec<String> = calibration
        .iter()
        .filter_map(|c| {
            let drift = c.drift_percent()?;
            (limit > 0.0 && drift.abs() > limit).then(|| {
                // The default mode goes without saying.
                let mode = match c.mode {
                    provernet_zkvm::ProofMode::Default => String::new(),
                    other => format!(" {other}"),
                };
                format!(
                    "{}{mode} measured {:.0} PGUs/s over {} proofs, configured {:.0} ({drift:+.0}%)",
                    c.version,
                    c.measured.pgus_per_second,
                    c.measured.samples,
                    c.configured_pgus_per_second
                )
            })
        })
        .collect();
    (!drifted.is_empty()).then(|| Alert {
        code: CALIBRATION_DRIFT,
        severity: Severity::Warn,
        message: format!(
            "proving throughput is off the config by more than {limit}% (bids use the measured \
             figure; correct the config or run `provernet calibrate`): {}",
            drifted.join("; ")
        ),
    })
}

/// What changed between two evaluations, by code.
#[derive(Debug, Default, PartialEq)]
pub struct AlertChanges {
    /// Alerts active now and not before.
    pub raised: Vec<Alert>,
    /// Alerts active before and not now.
    pub cleared: Vec<Alert>,
}

/// Compares the alerts active before with those active now. An alert whose code stays active is
/// neither raised nor cleared even if its message (its values) changed.
pub fn changes(before: &[Alert], now: &[Alert]) -> AlertChanges {
    let has = |list: &[Alert], code: &str| list.iter().any(|a| a.code == code);
    AlertChanges {
        raised: now.iter().filter(|a| !has(before, a.code)).cloned().collect(),
        cleared: before.iter().filter(|a| !has(now, a.code)).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::monitor::system::DiskSample;

    const GIB: u64 = 1 << 30;

    fn sample(mem_used_percent: u64, disk_free_percent: u64) -> SystemSample {
        SystemSample {
            cpu_usage_percent: 10.0,
            memory_total_bytes: 100 * GIB,
            memory_available_bytes: (100 - mem_used_percent) * GIB,
            memory_used_bytes: mem_used_percent * GIB,
            disk: Some(DiskSample {
                mount_point: PathBuf::from("/"),
                total_bytes: 100 * GIB,
                free_bytes: disk_free_percent * GIB,
            }),
            gpus: Vec::new(),
            gpus_lost: Vec::new(),
        }
    }

    /// An L4 under load as NVML would report it (values typical of the card: 24 GiB, a 72 W
    /// limit; written by hand, not read from hardware here).
    fn l4(index: u32, temperature_celsius: u32, memory_used_gib: u64) -> crate::monitor::GpuSample {
        crate::monitor::GpuSample {
            index,
            model: "NVIDIA L4".into(),
            utilisation_percent: 97,
            memory_used_bytes: memory_used_gib * GIB,
            memory_total_bytes: 24 * GIB,
            temperature_celsius,
            power_milliwatts: Some(71_430),
            processes: vec![4242],
        }
    }

    #[test]
    fn gpu_rules_name_each_gpu_concerned() {
        let config = MonitorConfig::default();
        let mut s = sample(50, 50);
        s.gpus = vec![l4(0, 70, 12)];
        assert!(evaluate(&s, &healthy(), &config).is_empty(), "a busy, healthy GPU");

        s.gpus = vec![l4(0, 85, 12), l4(1, 60, 23)];
        s.gpus_lost = vec![crate::monitor::LostGpu { index: 2, model: "NVIDIA L4".into() }];
        let alerts = evaluate(&s, &healthy(), &config);
        assert_eq!(codes(&alerts), [GPU_LOST, GPU_HOT, GPU_MEMORY]);
        assert!(alerts[0].message.contains("2 (NVIDIA L4)"), "{}", alerts[0].message);
        assert!(alerts[1].message.contains("0 (NVIDIA L4) at 85 °C"), "{}", alerts[1].message);
        assert!(alerts[2].message.contains("1 (NVIDIA L4) 95.8% used"), "{}", alerts[2].message);
    }

    fn healthy() -> HealthSnapshot {
        HealthSnapshot {
            subscription_up: true,
            ready: true,
            consecutive_failures: 0,
            jobs_at_risk: 0,
            prover_unregistered: false,
        }
    }

    fn codes(alerts: &[Alert]) -> Vec<&'static str> {
        alerts.iter().map(|a| a.code).collect()
    }

    #[test]
    fn a_healthy_node_raises_nothing() {
        let config = MonitorConfig::default();
        assert!(evaluate(&sample(50, 50), &healthy(), &config).is_empty());
    }

    #[test]
    fn disk_low_fires_strictly_below_the_threshold() {
        let config = MonitorConfig::default(); // 10%
        let alerts = evaluate(&sample(50, 9), &healthy(), &config);
        assert_eq!(codes(&alerts), [DISK_LOW]);
        assert_eq!(alerts[0].severity, Severity::Error);
        assert!(alerts[0].message.contains("9.0% free"), "{}", alerts[0].message);
        assert!(evaluate(&sample(50, 10), &healthy(), &config).is_empty(), "exactly 10% is fine");
        assert!(evaluate(&sample(50, 11), &healthy(), &config).is_empty());
        let mut s = sample(50, 0);
        assert_eq!(codes(&evaluate(&s, &healthy(), &config)), [DISK_LOW], "a full disk");
        s.disk = None;
        assert!(evaluate(&s, &healthy(), &config).is_empty(), "no disk found: no alert");
        s.disk = Some(DiskSample { mount_point: "/".into(), total_bytes: 0, free_bytes: 0 });
        assert!(evaluate(&s, &healthy(), &config).is_empty(), "a zero-size disk is unknown");
    }

    #[test]
    fn memory_high_fires_strictly_above_the_threshold() {
        let config = MonitorConfig::default(); // 90%
        let alerts = evaluate(&sample(91, 50), &healthy(), &config);
        assert_eq!(codes(&alerts), [MEMORY_HIGH]);
        assert_eq!(alerts[0].severity, Severity::Warn);
        assert!(evaluate(&sample(90, 50), &healthy(), &config).is_empty(), "exactly 90% is fine");
        assert!(evaluate(&sample(89, 50), &healthy(), &config).is_empty());
        let mut s = sample(100, 50);
        assert_eq!(codes(&evaluate(&s, &healthy(), &config)), [MEMORY_HIGH]);
        s.memory_total_bytes = 0;
        assert!(evaluate(&s, &healthy(), &config).is_empty(), "unknown total: no alert");
    }

    #[test]
    fn deadline_at_risk_fires_from_one_job() {
        let config = MonitorConfig::default();
        let mut h = healthy();
        h.jobs_at_risk = 1;
        let alerts = evaluate(&sample(50, 50), &h, &config);
        assert_eq!(codes(&alerts), [DEADLINE_AT_RISK]);
        assert_eq!(alerts[0].severity, Severity::Warn);
        h.jobs_at_risk = 0;
        assert!(evaluate(&sample(50, 50), &h, &config).is_empty());
    }

    #[test]
    fn job_failures_fire_at_the_limit_and_zero_turns_them_off() {
        let mut config = MonitorConfig::default(); // 3
        let mut h = healthy();
        h.consecutive_failures = 2;
        assert!(evaluate(&sample(50, 50), &h, &config).is_empty(), "one below the limit");
        h.consecutive_failures = 3;
        let alerts = evaluate(&sample(50, 50), &h, &config);
        assert_eq!(codes(&alerts), [JOB_FAILURES]);
        assert_eq!(alerts[0].severity, Severity::Error);
        h.consecutive_failures = 4;
        assert_eq!(codes(&evaluate(&sample(50, 50), &h, &config)), [JOB_FAILURES]);
        config.max_consecutive_failures = 0;
        assert!(evaluate(&sample(50, 50), &h, &config).is_empty(), "0: rule off");
        h.consecutive_failures = 0;
        assert!(evaluate(&sample(50, 50), &h, &config).is_empty());
    }

    #[test]
    fn subscription_down_fires_only_once_ready() {
        let config = MonitorConfig::default();
        let mut h = healthy();
        h.subscription_up = false;
        let alerts = evaluate(&sample(50, 50), &h, &config);
        assert_eq!(codes(&alerts), [SUBSCRIPTION_DOWN]);
        assert_eq!(alerts[0].severity, Severity::Error);
        h.ready = false;
        assert!(evaluate(&sample(50, 50), &h, &config).is_empty(), "still starting up");
        h.subscription_up = true;
        assert!(evaluate(&sample(50, 50), &h, &config).is_empty());
    }

    #[test]
    fn several_alerts_come_most_severe_first() {
        let config = MonitorConfig::default();
        let h = HealthSnapshot {
            subscription_up: false,
            ready: true,
            consecutive_failures: 5,
            jobs_at_risk: 2,
            prover_unregistered: true,
        };
        let alerts = evaluate(&sample(95, 5), &h, &config);
        assert_eq!(
            codes(&alerts),
            [
                DISK_LOW,
                JOB_FAILURES,
                SUBSCRIPTION_DOWN,
                PROVER_UNREGISTERED,
                MEMORY_HIGH,
                DEADLINE_AT_RISK
            ]
        );
    }

    #[test]
    fn changes_report_each_code_once_per_transition() {
        let config = MonitorConfig::default();
        let low = evaluate(&sample(50, 5), &healthy(), &config);
        let lower = evaluate(&sample(50, 4), &healthy(), &config);
        let c = changes(&[], &low);
        assert_eq!(codes(&c.raised), [DISK_LOW]);
        assert!(c.cleared.is_empty());
        assert_eq!(changes(&low, &lower), AlertChanges::default(), "same code, new values");
        let c = changes(&lower, &[]);
        assert!(c.raised.is_empty());
        assert_eq!(codes(&c.cleared), [DISK_LOW]);
    }

    #[test]
    fn alerts_read_back_and_unknown_codes_are_kept_in_the_message() {
        let alert = Alert { code: DISK_LOW, severity: Severity::Error, message: "full".into() };
        let json = serde_json::to_string(&alert).unwrap();
        assert_eq!(json, r#"{"code":"PN-DISK-LOW","severity":"error","message":"full"}"#);
        assert_eq!(serde_json::from_str::<Alert>(&json).unwrap(), alert);
        let other: Alert =
            serde_json::from_str(r#"{"code":"PN-NEW","severity":"warn","message":"m"}"#).unwrap();
        assert_eq!(other.code, UNKNOWN);
        assert_eq!(other.message, "[PN-NEW] m");
    }

    #[test]
    fn calibration_drift_fires_past_the_threshold_either_way_once_trusted() {
        use crate::core::{Throughput, VersionCalibration};
        let config = MonitorConfig::default();
        let version = |measured: f64, samples: u64| VersionCalibration {
            version: "miden-0.23".into(),
            configured_pgus_per_second: 10_000.0,
            measured: Throughput { samples, pgus_per_second: measured, variance: 0.0 },
            in_use: true,
            ..VersionCalibration::default()
        };
        assert_eq!(calibration_drift(&[version(8_000.0, 20)], &config), None, "-20% is within 25%");
        assert_eq!(calibration_drift(&[version(4_000.0, 2)], &config), None, "too few proofs");
        for measured in [5_000.0, 20_000.0] {
            let alert = calibration_drift(&[version(measured, 20)], &config).expect("fires");
            assert_eq!((alert.code, alert.severity), (CALIBRATION_DRIFT, Severity::Warn));
            assert!(alert.message.contains("miden-0.23 measured"), "{}", alert.message);
        }
        let off = MonitorConfig { calibration_drift_percent: 0.0, ..MonitorConfig::default() };
        assert_eq!(calibration_drift(&[version(1_000.0, 20)], &off), None, "0 turns it off");
    }

    #[test]
    fn pool_alerts_name_the_lost_workers_and_count_recent_retries() {
        let worker = |id: &str, state: &str| crate::pool::WorkerStatus {
            id: id.into(),
            host: String::new(),
            state: state.into(),
            versions: vec![],
            cores: 1,
            slots: 1,
            memory_bytes: 0,
            gpus: 0,
            pgus_per_second: Default::default(),
            heartbeat_age_secs: 12.0,
            tasks: vec![],
            proved: 0,
            failed: 0,
        };
        assert!(pool(&[worker("a", "live"), worker("b", "gone")], 0).is_empty());
        let alerts = pool(&[worker("a", "live"), worker("b", "lost")], 2);
        assert_eq!(alerts.len(), 2);
        assert_eq!((alerts[0].code, alerts[1].code), (WORKER_LOST, POOL_RETRIES));
        assert!(alerts[0].message.contains("b (no heartbeat for 12 s)"), "{}", alerts[0].message);
        assert!(alerts[1].message.contains("2 pool task"), "{}", alerts[1].message);
    }
}
