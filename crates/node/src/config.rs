//! The node's configuration: a TOML file, overridden by `PROVERNET_*` environment variables,
//! overridden by flags (the binary applies those last two through [`NodeConfig::set`]).
//!
//! [`NodeConfig::template`] is the commented file `provernet node init` writes.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use provernet_types::{Address, Amount};
use serde::{Deserialize, Serialize};

/// Why a configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the node config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node config.
    #[error("invalid node config {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser found.
        source: Box<toml::de::Error>,
    },
    /// A key set from the environment or a flag has no such setting or a bad value.
    #[error("invalid setting {key} = {value:?}: {reason}")]
    Setting {
        /// The dotted key (`bidding.margin`).
        key: String,
        /// The value given.
        value: String,
        /// What was wrong.
        reason: String,
    },
    /// A value is out of its range.
    #[error("invalid node config: {0}")]
    Invalid(String),
}

/// Everything a node needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The ProverNetwork's gRPC URL; for a network with hot standby, each of its processes'
    /// URLs separated by commas (the node follows the one that leads).
    pub network_url: String,
    /// The operator key file (hex secret, mode 0600): signs bids and proofs. Relative paths are
    /// relative to the config file.
    pub key_file: PathBuf,
    /// The prover account this node works for (its stake is slashed, its balance paid). Empty:
    /// the key's own address, a prover that is its own operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prover: Option<Address>,
    /// Where the job store, proofs and artifact cache live. Relative to the config file.
    pub data_dir: PathBuf,
    /// Bidding and pricing.
    #[serde(default)]
    pub bidding: BiddingConfig,
    /// Proving capacity.
    #[serde(default)]
    pub proving: ProvingConfig,
    /// Health, metrics and alerts.
    #[serde(default)]
    pub monitor: MonitorConfig,
    /// SP1's throughput on this machine (used when the build proves SP1: feature `sp1`).
    #[serde(default)]
    pub sp1: Sp1Config,
    /// Which API the network at `network_url` speaks, and how the node follows it.
    #[serde(default)]
    pub network: NetworkSection,
    /// A proving pool of `provernet worker` processes (off unless `database_url` is set).
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// The `[cluster]` section: the node as the coordinator of a proving pool over PostgreSQL
/// (see [`crate::pool`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// The pool's PostgreSQL URL (`postgres://…`); empty: no pool, the node proves in-process.
    pub database_url: String,
    /// The cluster secret (text, at least 16 bytes) every worker is given. Relative to the
    /// config file.
    pub secret_file: PathBuf,
    /// Seconds a worker's claim holds without its heartbeat; then the task is claimable again.
    pub lease_secs: u32,
    /// Claims a task gets (a lost lease, a failed or refused proof each spend one) before it
    /// fails.
    pub max_attempts: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            secret_file: "cluster.secret".into(),
            lease_secs: 10,
            max_attempts: 3,
        }
    }
}

impl ClusterConfig {
    /// Whether the node coordinates a pool.
    pub fn enabled(&self) -> bool {
        !self.database_url.is_empty()
    }
}

/// The API a network speaks: the node's driver for it (see [`crate::driver`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkApi {
    /// provernet's own `provernet.v1`: a request stream, registration, private inputs.
    #[default]
    Provernet,
    /// The Succinct Prover Network's `network.ProverNetwork`, as a provernet network with
    /// `--succinct-api` or any Succinct-API endpoint serves it: polled.
    Succinct,
}

impl NetworkApi {
    /// Its name in the config and in `/status`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Provernet => "provernet",
            Self::Succinct => "succinct",
        }
    }
}

impl std::str::FromStr for NetworkApi {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "provernet" => Ok(Self::Provernet),
            "succinct" => Ok(Self::Succinct),
            other => Err(format!("{other:?} is not an API: use provernet or succinct")),
        }
    }
}

impl std::fmt::Display for NetworkApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `[network]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// The API the network speaks.
    pub api: NetworkApi,
    /// How often a node on the Succinct API (which has no push events) asks for new requests
    /// and for the fate of its bids and jobs, in milliseconds (at least 100).
    pub poll_interval_ms: u64,
}

impl Default for NetworkSection {
    fn default() -> Self {
        // Once a second: a provernet network's Succinct auctions last at least 2 s.
        Self { api: NetworkApi::Provernet, poll_interval_ms: 1000 }
    }
}

/// SP1's proving throughput. Its proofs cost a large fixed time (the CPU prover's setup of each
/// proof, ~1 minute on 2 cores; its creation, once per process, ~1.5 minutes) on top of the
/// time that grows with gas, so the two are configured apart from Miden's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sp1Config {
    /// Gas proven per second beyond the fixed time.
    pub pgus_per_second: f64,
    /// Fixed time per SP1 core proof, seconds (fetch, execute, setup, submit included).
    pub overhead_secs: f64,
    /// Fixed time per SP1 compressed proof, seconds (the recursion on top of the core proof).
    pub compressed_overhead_secs: f64,
}

impl Default for Sp1Config {
    fn default() -> Self {
        Self { pgus_per_second: 20_000.0, overhead_secs: 180.0, compressed_overhead_secs: 600.0 }
    }
}

/// How the node bids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BiddingConfig {
    /// Whether the node bids at all (off: only finishes the jobs it holds).
    pub enabled: bool,
    /// What the machine costs per hour, in ledger units.
    pub cost_per_hour: Amount,
    /// Share of the hour the node expects to be proving (0 to 1).
    pub target_utilisation: f64,
    /// Profit margin over cost (0.2 = 20%).
    pub margin: f64,
    /// Extra share asked at a full queue (1.0 = double).
    pub surcharge: f64,
    /// Time kept in hand, as a share of the estimate (0.5 = 50% more).
    pub safety_margin: f64,
    /// Time per job beyond proving (fetch, execute, verify, submit), seconds.
    pub overhead_secs: f64,
    /// Hard cap on committed PGUs (bid on or won, not yet proven). 0: 8 × the largest job (per worker of a proving pool).
    pub committed_cap_pgus: u64,
}

impl Default for BiddingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cost_per_hour: Amount::new(360_000_000),
            target_utilisation: 0.5,
            margin: 0.2,
            surcharge: 1.0,
            safety_margin: 0.5,
            overhead_secs: 1.0,
            committed_cap_pgus: 0,
        }
    }
}

/// What the node proves and with how much of the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvingConfig {
    /// zkVM versions to prove. Empty: every backend this build has.
    pub versions: Vec<String>,
    /// Calibrated throughput of the whole machine, PGUs per second (`provernet calibrate`).
    pub pgus_per_second: f64,
    /// Cores for proving. 0: all of them.
    pub cores: u32,
    /// Cores one proof uses (Miden's prover scales to about 2).
    pub cores_per_slot: u32,
    /// Memory for proving, GiB. 0: total less 2 GiB for the OS and the node.
    pub memory_gib: u64,
    /// Size of the verified artifact cache, MiB.
    pub cache_mib: u64,
    /// Jobs fetched and executed ahead of the one proving.
    pub prefetch: usize,
}

impl Default for ProvingConfig {
    fn default() -> Self {
        Self {
            versions: Vec::new(),
            pgus_per_second: 10_000.0,
            cores: 0,
            cores_per_slot: 2,
            memory_gib: 0,
            cache_mib: 512,
            prefetch: 2,
        }
    }
}

/// Health, metrics and alert thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// Where `/metrics`, `/health/live`, `/health/ready` and `/status` are served.
    pub listen: String,
    /// Seconds between system samples and alert evaluations.
    pub interval_secs: u64,
    /// Alert when the data disk's free share falls below this (percent).
    pub disk_min_free_percent: f64,
    /// Alert when memory use exceeds this (percent).
    pub memory_max_percent: f64,
    /// Alert after this many consecutive failed jobs.
    pub max_consecutive_failures: u32,
    /// Alert when a GPU's die reaches this temperature (°C).
    pub gpu_max_temperature_celsius: u32,
    /// Alert when a GPU's memory use exceeds this (percent).
    pub gpu_memory_max_percent: f64,
    /// Alert when the throughput measured from proofs is off the configured one by more than
    /// this (percent, either way; 0: never).
    pub calibration_drift_percent: f64,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            interval_secs: 5,
            disk_min_free_percent: 10.0,
            memory_max_percent: 90.0,
            max_consecutive_failures: 3,
            gpu_max_temperature_celsius: 85,
            gpu_memory_max_percent: 95.0,
            calibration_drift_percent: 25.0,
        }
    }
}

impl NodeConfig {
    /// A config for a node of `network_url` keeping its key and data beside the config.
    pub fn new(network_url: &str) -> Self {
        Self {
            network_url: network_url.into(),
            key_file: "node.key".into(),
            prover: None,
            data_dir: "data".into(),
            bidding: BiddingConfig::default(),
            proving: ProvingConfig::default(),
            monitor: MonitorConfig::default(),
            sp1: Sp1Config::default(),
            network: NetworkSection::default(),
            cluster: ClusterConfig::default(),
        }
    }

    /// Reads `path`; relative paths in it become relative to its folder.
    ///
    /// # Errors
    /// [`ConfigError::Read`], [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut config: Self = toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.into(), source: Box::new(source) })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.key_file = base.join(&config.key_file);
        config.data_dir = base.join(&config.data_dir);
        config.cluster.secret_file = base.join(&config.cluster.secret_file);
        config.validate()?;
        Ok(config)
    }

    /// Sets the dotted `key` (`network_url`, `bidding.margin`, `proving.cores`…) from text, as
    /// an environment variable or a flag gives it.
    ///
    /// # Errors
    /// [`ConfigError::Setting`] naming the key for an unknown key or a bad value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let bad =
            |reason: String| ConfigError::Setting { key: key.into(), value: value.into(), reason };
        // Through TOML, so a setting parses exactly as it would in the file.
        let mut table = toml::Table::try_from(&*self).map_err(|e| bad(e.to_string()))?;
        let (section, name) = match key.split_once('.') {
            Some((section, name)) => (Some(section), name),
            None => (None, key),
        };
        let target = match section {
            None => &mut table,
            Some(section) => match table.get_mut(section) {
                Some(toml::Value::Table(t)) => t,
                _ => return Err(bad("no such section".into())),
            },
        };
        let parsed = match target.get(name) {
            None if section.is_none() && name == "prover" => toml::Value::String(value.into()),
            None => return Err(bad("no such setting".into())),
            Some(toml::Value::String(_)) => toml::Value::String(value.into()),
            Some(toml::Value::Array(_)) => toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| toml::Value::String(v.into()))
                    .collect(),
            ),
            Some(_) => format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .ok_or_else(|| bad("not a valid value".into()))?,
        };
        target.insert(name.into(), parsed);
        let updated: Self =
            table.try_into().map_err(|e: toml::de::Error| bad(e.message().into()))?;
        updated.validate().map_err(|e| bad(e.to_string()))?;
        *self = updated;
        Ok(())
    }

    /// Applies every `PROVERNET_NODE_<SECTION>_<NAME>` variable of `vars`
    /// (`PROVERNET_NODE_BIDDING_MARGIN=0.3`, `PROVERNET_NODE_NETWORK_URL=…`).
    ///
    /// # Errors
    /// The first bad setting.
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            if RESERVED_ENV.contains(&name.as_str()) {
                continue;
            }
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            let rest = rest.to_ascii_lowercase();
            // `NETWORK_URL` is the top-level `network_url`, older than the `[network]` section.
            if rest == "network_url" {
                self.set("network_url", &value)?;
                continue;
            }
            let key = ["bidding_", "proving_", "monitor_", "sp1_", "network_", "cluster_"]
                .iter()
                .find_map(|section| {
                    rest.strip_prefix(section)
                        .map(|n| format!("{}.{n}", section.trim_end_matches('_')))
                })
                .unwrap_or(rest);
            self.set(&key, &value)?;
        }
        Ok(())
    }

    /// The settings that differ from `self` in `new`, dotted (`bidding.margin`), if a running
    /// node can take them all: pricing and bidding limits (`bidding.*`), throughput
    /// (`proving.pgus_per_second`, `sp1.*`) and alert thresholds (`monitor.*` but `listen`
    /// and `interval_secs`). `new` is validated first.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`]: `new` is out of range, or names a setting only a restart can
    /// change (the network, keys, folders, resources…), with that setting.
    pub fn reloadable_changes(&self, new: &Self) -> Result<Vec<String>, ConfigError> {
        new.validate()?;
        let flat = |config: &Self| {
            let mut out = BTreeMap::new();
            if let Ok(table) = toml::Table::try_from(config) {
                flatten("", &toml::Value::Table(table), &mut out);
            }
            out
        };
        let (old, new) = (flat(self), flat(new));
        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let changed: Vec<String> =
            keys.into_iter().filter(|k| old.get(*k) != new.get(*k)).cloned().collect();
        if let Some(fixed) = changed.iter().find(|k| !reloadable(k)) {
            return Err(ConfigError::Invalid(format!(
                "{fixed} cannot change while the node runs (restart the node to change it); \
                 the running config is kept"
            )));
        }
        Ok(changed)
    }

    /// Checks ranges the types cannot.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let b = &self.bidding;
        let p = &self.proving;
        let share = |name: &str, v: f64, lo: f64, hi: f64| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::Invalid(format!("{name} = {v} is outside {lo}..={hi}")))
            }
        };
        share("bidding.target_utilisation", b.target_utilisation, 0.01, 1.0)?;
        share("bidding.margin", b.margin, 0.0, 100.0)?;
        share("bidding.surcharge", b.surcharge, 0.0, 100.0)?;
        share("bidding.safety_margin", b.safety_margin, 0.0, 100.0)?;
        share("bidding.overhead_secs", b.overhead_secs, 0.0, 3600.0)?;
        share("proving.pgus_per_second", p.pgus_per_second, 1.0, 1e12)?;
        share("sp1.pgus_per_second", self.sp1.pgus_per_second, 1.0, 1e12)?;
        share("sp1.overhead_secs", self.sp1.overhead_secs, 0.0, 86_400.0)?;
        share("sp1.compressed_overhead_secs", self.sp1.compressed_overhead_secs, 0.0, 86_400.0)?;
        share("monitor.disk_min_free_percent", self.monitor.disk_min_free_percent, 0.0, 100.0)?;
        share("monitor.memory_max_percent", self.monitor.memory_max_percent, 0.0, 100.0)?;
        share("monitor.gpu_memory_max_percent", self.monitor.gpu_memory_max_percent, 0.0, 100.0)?;
        share(
            "monitor.calibration_drift_percent",
            self.monitor.calibration_drift_percent,
            0.0,
            1_000.0,
        )?;
        if p.cores_per_slot == 0 {
            return Err(ConfigError::Invalid("proving.cores_per_slot must be at least 1".into()));
        }
        if self.network.poll_interval_ms < 100 {
            return Err(ConfigError::Invalid(format!(
                "network.poll_interval_ms = {} is below the minimum of 100",
                self.network.poll_interval_ms
            )));
        }
        let c = &self.cluster;
        if c.enabled()
            && !["postgres://", "postgresql://"].iter().any(|p| c.database_url.starts_with(p))
        {
            return Err(ConfigError::Invalid(
                "cluster.database_url must be a postgres:// URL (or empty: no proving pool)".into(),
            ));
        }
        if c.lease_secs < 2 || c.max_attempts == 0 {
            return Err(ConfigError::Invalid(format!(
                "cluster.lease_secs = {} must be at least 2 and cluster.max_attempts = {} at \
                 least 1",
                c.lease_secs, c.max_attempts
            )));
        }
        if self.monitor.interval_secs == 0 {
            return Err(ConfigError::Invalid("monitor.interval_secs must be at least 1".into()));
        }
        let urls = provernet_types::client::network_urls(&self.network_url);
        if urls.is_empty()
            || urls.iter().any(|u| !u.starts_with("http://") && !u.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "network_url {:?} must be an http:// or https:// URL, or several separated by \
                 commas",
                self.network_url
            )));
        }
        Ok(())
    }

    /// The commented config `provernet node init` writes.
    pub fn template(&self) -> String {
        let b = &self.bidding;
        let p = &self.proving;
        let m = &self.monitor;
        let prover = self.prover.map_or_else(
            || "# prover = \"0x…\"   # the prover account; default: the key's own address".into(),
            |a| format!("prover = \"{a}\""),
        );
        format!(
            r#"# provernet node configuration. Every setting can also be given as an environment variable
# PROVERNET_NODE_<SECTION>_<NAME> (PROVERNET_NODE_BIDDING_MARGIN=0.3) or as a flag
# (--set bidding.margin=0.3); flags win over the environment, which wins over this file.

# The ProverNetwork's gRPC endpoint; for a network with hot standby, every process's URL,
# separated by commas (the node follows whichever leads).
network_url = "{network_url}"
# The operator key (hex secret, mode 0600): signs bids and proofs. Relative to this file.
key_file = "{key_file}"
{prover}
# Job store, proofs and artifact cache. Relative to this file.
data_dir = "{data_dir}"

[bidding]
# Bid on new requests (false: only finish the jobs already held).
enabled = {enabled}
# What this machine costs per hour, in ledger units. With the throughput below it sets the
# cost per PGU, below which the node never bids.
cost_per_hour = "{cost_per_hour}"
# Share of the hour the node expects to be proving (0-1): idle time is paid by the work.
target_utilisation = {target_utilisation}
# Profit over cost (0.2 = 20%), and the extra asked at a full queue (1.0 = double).
margin = {margin}
surcharge = {surcharge}
# Time kept in hand when judging a deadline (0.5 = estimate + 50%), and per-job time beyond
# proving (fetch, execute, verify, submit) in seconds.
safety_margin = {safety_margin}
overhead_secs = {overhead_secs}
# Hard cap on PGUs bid on or won and not yet proven (0: 8 x the largest job memory holds, per pool worker).
committed_cap_pgus = {committed_cap_pgus}

[proving]
# zkVM versions to prove ([] = every backend this build has).
versions = {versions:?}
# This machine's throughput in PGUs per second: run `provernet calibrate --write <this file>`.
pgus_per_second = {pgus_per_second}
# Cores and memory (GiB) for proving; 0 = all cores / total memory less 2 GiB.
cores = {cores}
memory_gib = {memory_gib}
# Cores one proof uses: slots = cores / cores_per_slot.
cores_per_slot = {cores_per_slot}
# Verified artifact cache (MiB), and jobs fetched and executed ahead of the proof running.
cache_mib = {cache_mib}
prefetch = {prefetch}

[monitor]
# /metrics (Prometheus), /health/live, /health/ready and /status.
listen = "{listen}"
interval_secs = {interval_secs}
# Alert thresholds.
disk_min_free_percent = {disk_min_free_percent}
memory_max_percent = {memory_max_percent}
max_consecutive_failures = {max_consecutive_failures}
# GPUs (NVIDIA, through NVML when its driver is installed): alert at this die temperature (°C)
# and above this memory use (percent).
gpu_max_temperature_celsius = {gpu_max_temperature_celsius}
gpu_memory_max_percent = {gpu_memory_max_percent}
# The node measures every proof and, after 5, prices and schedules with the throughput it
# measured rather than proving.pgus_per_second; alert when the two differ by more than this
# (percent, either way; 0: never).
calibration_drift_percent = {calibration_drift_percent}

[sp1]
# SP1 requests (builds with the `sp1` feature): gas proven per second beyond the fixed time,
# and the fixed time of a core and of a compressed proof (measured on 2 cores: ~110 s and
# ~430 s whatever the gas, plus ~1.5 min to create the prover once per process).
pgus_per_second = {sp1_pgus_per_second}
overhead_secs = {sp1_overhead_secs}
compressed_overhead_secs = {sp1_compressed_overhead_secs}

[network]
# The API the network at network_url speaks: "provernet" (its own, streamed) or "succinct"
# (the Succinct Prover Network's, polled: a provernet network started with --succinct-api,
# or any endpoint that speaks it). On "succinct" the prover must be registered and staked
# by other means, and requests with private inputs are skipped.
api = "{api}"
# How often a node on the Succinct API asks for new requests and its jobs' fate (ms, >= 100).
poll_interval_ms = {poll_interval_ms}

[cluster]
# A proving pool: `provernet worker` processes on other machines claim this node's proofs
# through PostgreSQL (postgres://user:password@host/db). Empty: the node proves in-process.
database_url = "{database_url}"
# The secret every worker is given (`provernet worker --secret-file`). Relative to this file.
secret_file = "{secret_file}"
# Seconds a worker's claim holds without its heartbeat, and claims a task gets before it fails.
lease_secs = {lease_secs}
max_attempts = {max_attempts}
"#,
            database_url = self.cluster.database_url,
            secret_file = self.cluster.secret_file.display(),
            lease_secs = self.cluster.lease_secs,
            max_attempts = self.cluster.max_attempts,
            network_url = self.network_url,
            key_file = self.key_file.display(),
            data_dir = self.data_dir.display(),
            enabled = b.enabled,
            cost_per_hour = b.cost_per_hour,
            target_utilisation = b.target_utilisation,
            margin = b.margin,
            surcharge = b.surcharge,
            safety_margin = b.safety_margin,
            overhead_secs = b.overhead_secs,
            committed_cap_pgus = b.committed_cap_pgus,
            versions = p.versions,
            pgus_per_second = p.pgus_per_second,
            cores = p.cores,
            memory_gib = p.memory_gib,
            cores_per_slot = p.cores_per_slot,
            cache_mib = p.cache_mib,
            prefetch = p.prefetch,
            listen = m.listen,
            interval_secs = m.interval_secs,
            disk_min_free_percent = m.disk_min_free_percent,
            memory_max_percent = m.memory_max_percent,
            max_consecutive_failures = m.max_consecutive_failures,
            gpu_max_temperature_celsius = m.gpu_max_temperature_celsius,
            gpu_memory_max_percent = m.gpu_memory_max_percent,
            calibration_drift_percent = m.calibration_drift_percent,
            sp1_pgus_per_second = self.sp1.pgus_per_second,
            sp1_overhead_secs = self.sp1.overhead_secs,
            sp1_compressed_overhead_secs = self.sp1.compressed_overhead_secs,
            api = self.network.api,
            poll_interval_ms = self.network.poll_interval_ms,
        )
    }
}

/// Prefix of the environment variables that override the config file.
pub const ENV_PREFIX: &str = "PROVERNET_NODE_";

/// Variables under [`ENV_PREFIX`] that are flags of the commands, not settings.
pub const RESERVED_ENV: [&str; 2] = ["PROVERNET_NODE_CONFIG", "PROVERNET_NODE_MONITOR"];

/// Whether a running node takes a new value of the dotted `key` ([`NodeConfig::reloadable_changes`]).
fn reloadable(key: &str) -> bool {
    key.starts_with("bidding.")
        || key.starts_with("sp1.")
        || key == "proving.pgus_per_second"
        || (key.starts_with("monitor.")
            && key != "monitor.listen"
            && key != "monitor.interval_secs")
}

/// Every leaf of `value` under its dotted key (arrays are leaves).
fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match value {
        toml::Value::Table(table) => {
            for (name, value) in table {
                let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                flatten(&key, value, out);
            }
        }
        leaf => {
            out.insert(prefix.to_owned(), leaf.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_reads_back_as_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::new("http://127.0.0.1:50051");
        config.bidding.margin = 0.35;
        config.proving.versions = vec!["miden-0.23".into()];
        config.network = NetworkSection { api: NetworkApi::Succinct, poll_interval_ms: 250 };
        let path = dir.path().join("node.toml");
        std::fs::write(&path, config.template()).unwrap();
        let loaded = NodeConfig::load(&path).unwrap();
        assert_eq!(loaded.key_file, dir.path().join("node.key"));
        assert_eq!(loaded.bidding, config.bidding);
        assert_eq!(loaded.proving, config.proving);
        assert_eq!(loaded.monitor, config.monitor);
        assert_eq!(loaded.sp1, config.sp1);
        assert_eq!(loaded.network, config.network);
    }

    #[test]
    fn the_network_api_is_set_by_file_flag_and_environment() {
        let mut config = NodeConfig::new("http://127.0.0.1:50051");
        assert_eq!(config.network.api, NetworkApi::Provernet, "the default");
        config.set("network.api", "succinct").unwrap();
        assert_eq!(config.network.api, NetworkApi::Succinct);
        let vars = [
            ("PROVERNET_NODE_NETWORK_API".to_string(), "provernet".to_string()),
            ("PROVERNET_NODE_NETWORK_POLL_INTERVAL_MS".to_string(), "500".to_string()),
            // Still the top-level setting, not a `[network]` one.
            ("PROVERNET_NODE_NETWORK_URL".to_string(), "http://10.0.0.1:50051".to_string()),
            ("PROVERNET_NODE_SP1_OVERHEAD_SECS".to_string(), "70".to_string()),
        ];
        config.apply_env(vars).unwrap();
        assert_eq!(config.network.api, NetworkApi::Provernet);
        assert_eq!(config.network.poll_interval_ms, 500);
        assert_eq!(config.network_url, "http://10.0.0.1:50051");
        assert_eq!(config.sp1.overhead_secs, 70.0);
        for (value, says) in [("grpc", "unknown variant"), ("", "unknown variant")] {
            let err = config.set("network.api", value).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("network.api"), "{value:?}: {err}");
        }
        let err = config.set("network.poll_interval_ms", "10").unwrap_err().to_string();
        assert!(err.contains("poll_interval_ms"), "{err}");
        // A file written before the section existed still loads, on the native API.
        let old: NodeConfig =
            toml::from_str("network_url = \"http://x\"\nkey_file = \"k\"\ndata_dir = \"d\"\n")
                .unwrap();
        assert_eq!(old.network, NetworkSection::default());
    }

    #[test]
    fn either_api_follows_a_network_of_several_processes() {
        for api in ["provernet", "succinct"] {
            let mut config = NodeConfig::new("http://10.0.0.1:50051, http://10.0.0.2:50051");
            config.set("network.api", api).unwrap();
            config.validate().unwrap_or_else(|e| panic!("{api}: {e}"));
        }
        let config = NodeConfig::new("http://10.0.0.1:50051,grpc://10.0.0.2:50051");
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("network_url") && err.contains("grpc://"), "{err}");
    }

    #[test]
    fn settings_override_by_key_and_name_what_is_wrong() {
        let mut config = NodeConfig::new("http://127.0.0.1:50051");
        config.set("bidding.margin", "0.5").unwrap();
        config.set("proving.cores", "3").unwrap();
        config.set("proving.versions", "miden-0.23, sp1-v6").unwrap();
        config.set("monitor.listen", "0.0.0.0:9000").unwrap();
        config.set("bidding.cost_per_hour", "1000").unwrap();
        config.set("sp1.overhead_secs", "90").unwrap();
        assert_eq!(config.sp1.overhead_secs, 90.0);
        assert_eq!(config.bidding.margin, 0.5);
        assert_eq!(config.proving.cores, 3);
        assert_eq!(config.proving.versions, ["miden-0.23", "sp1-v6"]);
        assert_eq!(config.bidding.cost_per_hour, Amount::new(1000));
        let vars = [("PROVERNET_NODE_BIDDING_SURCHARGE".to_string(), "2".to_string())];
        config.apply_env(vars).unwrap();
        assert_eq!(config.bidding.surcharge, 2.0);

        let before = config.clone();
        for (key, value, says) in [
            ("bidding.nope", "1", "no such setting"),
            ("nope.margin", "1", "no such section"),
            ("proving.cores", "many", "proving.cores"),
            ("bidding.margin", "-1", "bidding.margin"),
            ("bidding.cost_per_hour", "1.5", "bidding.cost_per_hour"),
            ("network_url", "ftp://x", "network_url"),
            ("network_url", "http://a:1,ftp://b", "network_url"),
            ("network_url", " , ", "network_url"),
            ("prover", "0x12", "prover"),
            ("sp1.pgus_per_second", "0", "sp1.pgus_per_second"),
        ] {
            let err = config.set(key, value).unwrap_err().to_string();
            assert!(err.contains(says) || err.contains(key), "{key}={value}: {err}");
            assert_eq!(config, before, "a refused setting changes nothing");
        }
        // A network with hot standby: its processes' URLs.
        config.set("network_url", "http://10.0.0.1:50051, http://10.0.0.2:50051").unwrap();
    }

    #[test]
    fn a_bad_file_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "network_url = \"http://x\"\nkey_file = \"k\"\ndata_dir = \"d\"\n[bidding]\nmargn = 1\n").unwrap();
        let err = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("margn"), "{err}");
        let err = NodeConfig::load(&dir.path().join("missing.toml")).unwrap_err().to_string();
        assert!(err.contains("missing.toml"), "{err}");
    }

    #[test]
    fn a_reload_takes_pricing_and_thresholds_and_names_what_needs_a_restart() {
        let running = NodeConfig::new("http://127.0.0.1:50051");
        let mut new = running.clone();
        new.set("bidding.margin", "0.5").unwrap();
        new.set("monitor.memory_max_percent", "80").unwrap();
        new.set("proving.pgus_per_second", "9000").unwrap();
        assert_eq!(
            running.reloadable_changes(&new).unwrap(),
            ["bidding.margin", "monitor.memory_max_percent", "proving.pgus_per_second"]
        );
        assert!(running.reloadable_changes(&running).unwrap().is_empty());
        for (key, value) in [
            ("network_url", "http://127.0.0.1:1"),
            ("proving.memory_gib", "64"),
            ("monitor.listen", "127.0.0.1:1"),
            ("network.api", "succinct"),
            ("proving.versions", "miden-v0.22"),
        ] {
            let mut new = running.clone();
            new.set(key, value).unwrap();
            let err = running.reloadable_changes(&new).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("restart"), "{key}: {err}");
        }
        let mut bad = running.clone();
        bad.bidding.margin = -1.0;
        let err = running.reloadable_changes(&bad).unwrap_err().to_string();
        assert!(err.contains("bidding.margin"), "{err}");
    }
}
