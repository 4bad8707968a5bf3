//! [`Monitor`]: samples the system every `interval_secs`, sets the gauges, evaluates the alert
//! rules and logs each alert when it is raised and when it clears.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{
    ConfigReload, HealthSnapshot, NodeHealth, NodeStatus,
    alerts::{self, Alert, Severity},
    system::{SystemSample, SystemSampler},
};
use crate::config::MonitorConfig;

/// Log target of the monitor.
const TARGET: &str = "provernet::monitor";

/// What `/status` serves and `provernet node status` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// What the runtime last published.
    pub status: NodeStatus,
    /// The runtime's flags and counters now.
    pub health: HealthSnapshot,
    /// Alerts active at the last sample, most severe first.
    pub alerts: Vec<Alert>,
    /// The last system sample; none before the first.
    #[serde(default)]
    pub system: Option<SystemSample>,
    /// The last config reload tried; none since start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reload: Option<ConfigReload>,
}

/// What the last sample found.
#[derive(Debug, Default)]
struct MonitorState {
    sample: Option<SystemSample>,
    alerts: Vec<Alert>,
}

/// NodeMonitor: the shared health (with the node's metrics), the thresholds, and the last sample
/// with the alerts it raised.
#[derive(Debug)]
pub struct Monitor {
    health: Arc<NodeHealth>,
    // Replaced whole by a reload; the sampling interval is read once, at spawn.
    config: Mutex<MonitorConfig>,
    data_dir: PathBuf,
    // std mutexes: held only to copy in or out, never across an `.await`.
    state: Mutex<MonitorState>,
    // Taken by the blocking task for the length of one sample.
    sampler: Arc<Mutex<Option<SystemSampler>>>,
}

impl Monitor {
    /// A monitor of `health`, with the thresholds of `config`, watching the disk that holds
    /// `data_dir`.
    pub fn new(
        health: Arc<NodeHealth>,
        config: MonitorConfig,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            health,
            config: Mutex::new(config),
            data_dir: data_dir.into(),
            state: Mutex::default(),
            sampler: Arc::default(),
        }
    }

    /// The health the runtime reports into.
    pub fn health(&self) -> &Arc<NodeHealth> {
        &self.health
    }

    /// The thresholds.
    pub fn config(&self) -> MonitorConfig {
        self.config.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes new alert thresholds (a reloaded config), from the next sample on.
    pub fn set_config(&self, config: MonitorConfig) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// The text `/metrics` serves: this node's metrics only.
    pub fn render_metrics(&self) -> String {
        self.health.metrics().render()
    }

    /// The last system sample, if any.
    pub fn last_sample(&self) -> Option<SystemSample> {
        self.lock().sample.clone()
    }

    /// The alerts active at the last sample, most severe first.
    pub fn alerts(&self) -> Vec<Alert> {
        self.lock().alerts.clone()
    }

    /// The report `/status` serves.
    pub fn report(&self) -> StatusReport {
        let state = self.lock();
        StatusReport {
            status: self.health.status(),
            health: self.health.snapshot(),
            alerts: state.alerts.clone(),
            system: state.sample.clone(),
            last_reload: self.health.last_reload(),
        }
    }

    /// Sets the proving and bidding metrics from what the runtime published last.
    pub fn record_status_metrics(&self) {
        self.health.metrics().status(&self.health.status(), &self.health.snapshot());
    }

    /// Samples the system (on a blocking thread), sets the gauges, evaluates the rules and
    /// logs what was raised or cleared. Returns the sample.
    ///
    /// # Errors
    /// Only if the blocking task panicked or the runtime is shutting down.
    pub async fn sample_once(&self) -> Result<SystemSample, tokio::task::JoinError> {
        let sampler = Arc::clone(&self.sampler);
        let data_dir = self.data_dir.clone();
        let sample = tokio::task::spawn_blocking(move || {
            let mut guard = sampler.lock().unwrap_or_else(|e| e.into_inner());
            guard.get_or_insert_with(|| SystemSampler::new(data_dir)).sample()
        })
        .await?;
        self.apply(sample.clone(), self.health.snapshot());
        Ok(sample)
    }

    /// Sets the gauges for `sample` and `health`, evaluates the rules and logs the changes.
    fn apply(&self, sample: SystemSample, health: HealthSnapshot) {
        self.health.metrics().system(&sample);
        self.record_status_metrics();
        let config = self.config();
        let mut now = alerts::evaluate(&sample, &health, &config);
        let status = self.health.status();
        now.extend(alerts::calibration_drift(&status.calibration, &config));
        if let Some(workers) = &status.pool {
            let at = crate::clock::now_secs();
            now.extend(alerts::pool(workers, self.health.pool_retries(at)));
        }
        self.health.metrics().alerts(&now);
        let before = {
            let mut state = self.lock();
            state.sample = Some(sample);
            std::mem::replace(&mut state.alerts, now.clone())
        };
        let changes = alerts::changes(&before, &now);
        for alert in &changes.raised {
            match alert.severity {
                Severity::Warn => warn!(target: TARGET, code = alert.code, "{}", alert.message),
                Severity::Error => error!(target: TARGET, code = alert.code, "{}", alert.message),
            }
        }
        for alert in &changes.cleared {
            info!(target: TARGET, code = alert.code, "cleared: {}", alert.message);
        }
        self.health.metrics().upkeep();
    }

    /// Starts the sampler: a sample now, then every `interval_secs` until `cancel`.
    pub fn spawn(self: &Arc<Monitor>, cancel: CancellationToken) -> JoinHandle<()> {
        let monitor = Arc::clone(self);
        tokio::spawn(async move {
            let period = Duration::from_secs(monitor.config().interval_secs.max(1));
            let mut ticks = tokio::time::interval(period);
            // A slow sample (a hung network filesystem) delays the next rather than bursting.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    result = monitor.sample_once() => {
                        if let Err(err) = result {
                            error!(target: TARGET, %err, "system sample failed");
                        }
                    }
                }
            }
            info!(target: TARGET, "monitor stopped");
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MonitorState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{alerts::DISK_LOW, system::DiskSample};

    fn sample(free_bytes: u64) -> SystemSample {
        SystemSample {
            cpu_usage_percent: 5.0,
            memory_total_bytes: 100,
            memory_available_bytes: 60,
            memory_used_bytes: 40,
            disk: Some(DiskSample { mount_point: "/".into(), total_bytes: 100, free_bytes }),
            gpus: Vec::new(),
            gpus_lost: Vec::new(),
        }
    }

    #[test]
    fn alerts_follow_the_samples_and_the_report_carries_them() {
        let health = Arc::new(NodeHealth::default());
        health.set_ready(true);
        health.set_subscription_up(true);
        let monitor = Monitor::new(Arc::clone(&health), MonitorConfig::default(), "/");
        monitor.apply(sample(5), health.snapshot());
        assert_eq!(monitor.alerts().iter().map(|a| a.code).collect::<Vec<_>>(), [DISK_LOW]);
        let report = monitor.report();
        assert_eq!(report.system, Some(sample(5)));
        let json = serde_json::to_vec(&report).unwrap();
        assert_eq!(serde_json::from_slice::<StatusReport>(&json).unwrap(), report);
        monitor.apply(sample(50), health.snapshot());
        assert!(monitor.alerts().is_empty());
    }

    #[tokio::test]
    async fn the_sampler_samples_at_once_and_stops_on_cancel() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = Arc::new(Monitor::new(Arc::default(), MonitorConfig::default(), dir.path()));
        let cancel = CancellationToken::new();
        let task = monitor.spawn(cancel.clone());
        for _ in 0..100 {
            if monitor.last_sample().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sample = monitor.last_sample().expect("a first sample");
        assert!(sample.memory_total_bytes > 0);
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
    }
}
