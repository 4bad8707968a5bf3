//! NodeContext: built first, dropped last. Owns the config, the operator key, the network's
//! driver, the artifact cache, the backends, the resources, the job store, the health the monitor
//! reports, the clock, the decision [`core`](crate::core) the bidder and prover share, and the
//! shutdown signal.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
};

use provernet_artifacts::ArtifactCache;
use provernet_types::{Address, Signer};
use provernet_zkvm::{ProofMode, ZkVmRegistry};
use tokio_util::sync::CancellationToken;

pub use crate::clock::now_secs;
use crate::{
    NodeConfig, Resources,
    clock::Clock,
    config::{BiddingConfig, ProvingConfig, Sp1Config},
    core::{Action, CoreConfig, CostPlus, Event, NodeCore, VersionProfile, Work},
    driver::{self, DriverParts, NetworkDriver, RequestRecord},
    error::NodeError,
    monitor::NodeHealth,
    pool::{ClusterSecret, Coordinator},
    store::JobStore,
};

/// Memory kept back from proving for the OS and the node when none is configured.
const RESERVED_MEMORY: u64 = 2 << 30;

/// The running node's shared state.
pub struct NodeContext {
    /// The configuration in force: what the node started with, and the settings a reload
    /// changed since ([`Self::reload`]). A std mutex: only copied in or out.
    config: Mutex<NodeConfig>,
    /// The operator key: signs bids, proofs and failures.
    pub operator: Signer,
    /// The prover account the node works for.
    pub prover: Address,
    /// The network, through its API's driver.
    pub driver: Arc<dyn NetworkDriver>,
    /// Verified program and inputs files.
    pub cache: Arc<ArtifactCache>,
    /// The proving backends.
    pub backends: ZkVmRegistry,
    /// The zkVM versions this node proves.
    pub versions: Vec<String>,
    /// What the machine offers for proving.
    pub resources: Resources,
    /// The job store.
    pub store: JobStore,
    /// What the monitor reports.
    pub health: Arc<NodeHealth>,
    /// Where the node takes its time.
    pub clock: Arc<dyn Clock>,
    /// Unix seconds the node started.
    pub started_at: u64,
    /// Stops bidding and winds the node down.
    pub shutdown: CancellationToken,
    /// The proving pool this node coordinates (`[cluster]`), if any: proofs are made by its
    /// workers instead of in-process.
    pub pool: Option<Arc<Coordinator>>,
    /// The node's decisions; a std mutex, as no lock is held across an await.
    core: Mutex<NodeCore>,
}

impl std::fmt::Debug for NodeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeContext")
            .field("prover", &self.prover)
            .field("operator", &self.operator.address())
            .field("network", &self.driver.url())
            .finish_non_exhaustive()
    }
}

impl NodeContext {
    /// Builds the context on `clock`: reads the key, opens the job store and cache, connects to
    /// the network with its API's driver (retrying until it answers or `shutdown`), and checks
    /// the prover as far as the API can.
    ///
    /// # Errors
    /// [`NodeError`] naming what could not be set up.
    pub async fn build(
        config: NodeConfig,
        health: Arc<NodeHealth>,
        shutdown: CancellationToken,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, NodeError> {
        let operator = read_key(&config.key_file)?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| NodeError::Io { what: "create the data folder", source })?;
        // A pool's coordinator keeps its state beside the pool's queue (see `store`).
        let store = match config.cluster.enabled() {
            false => JobStore::open(&config.data_dir.join("jobs.db")).await?,
            true => JobStore::connect(&config.cluster.database_url).await.map_err(|e| {
                NodeError::Setup(format!("{e} (is PostgreSQL at cluster.database_url running?)"))
            })?,
        };
        let cache =
            ArtifactCache::open(config.data_dir.join("cache"), config.proving.cache_mib << 20)
                .await
                .map_err(|e| NodeError::Setup(format!("artifact cache: {e}")))?;
        let cache = Arc::new(cache);
        let backends = ZkVmRegistry::with_default_backends();
        let versions = if config.proving.versions.is_empty() {
            backends.versions()
        } else {
            for v in &config.proving.versions {
                if !backends.supports(v) {
                    return Err(NodeError::Setup(format!(
                        "proving.versions names {v}, which this build cannot prove (it has {})",
                        backends.versions().join(", ")
                    )));
                }
            }
            config.proving.versions.clone()
        };
        let parts = DriverParts {
            operator: operator.clone(),
            prover: config.prover,
            cache: cache.clone(),
            backends: backends.clone(),
        };
        let (driver, prover) = driver::connect(&config, parts, &shutdown).await?;
        // Before anything is decided: deadlines are the network's.
        if let Some(now) = driver.network_time().await {
            clock.observe_network(now);
        }
        store.check_api(config.network.api).await?;
        let pool = match config.cluster.enabled() {
            false => None,
            true => {
                let c = &config.cluster;
                let secret = ClusterSecret::read(&c.secret_file)
                    .map_err(|e| NodeError::Setup(format!("proving pool: {e}")))?;
                let coordinator = Coordinator::open(
                    &c.database_url,
                    secret,
                    &prover.to_string(),
                    &versions,
                    c.lease_secs,
                    c.max_attempts,
                )
                .await
                .map_err(|e| {
                    NodeError::Setup(format!(
                        "proving pool: {e} (is PostgreSQL at cluster.database_url running?)"
                    ))
                })?;
                tracing::info!("coordinating a proving pool: proofs are made by its workers");
                Some(Arc::new(coordinator))
            }
        };
        let resources = resources(&config);
        let mut core = NodeCore::new(core_config(
            &config.bidding,
            &config.proving,
            &config.sp1,
            &versions,
            resources,
        ));
        // What earlier runs measured of this machine.
        for (key, estimate) in store.calibration().await? {
            core.restore_calibration(key, estimate);
        }
        // A coordinator proves nothing itself: until its first reading of the workers, it has
        // no capacity to bid with.
        if pool.is_some() {
            core.set_pool(crate::core::PoolCapacity::default());
        }
        Ok(Arc::new(Self {
            config: Mutex::new(config),
            operator,
            prover,
            driver,
            cache,
            backends,
            versions,
            resources,
            store,
            health,
            started_at: clock.now_secs(),
            clock,
            shutdown,
            pool,
            core: Mutex::new(core),
        }))
    }

    /// The configuration in force.
    pub fn config(&self) -> NodeConfig {
        self.config.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Takes the reloadable settings of `new` (pricing, bidding limits, throughput; alert
    /// thresholds are the monitor's): the decisions from now on follow them, what is already
    /// bid on or won stays. Returns the settings that changed.
    ///
    /// # Errors
    /// [`NodeError::Config`] if `new` is invalid or changes a setting only a restart can
    /// change; the config in force is kept.
    pub fn reload(&self, new: NodeConfig) -> Result<Vec<String>, NodeError> {
        let mut config = self.config.lock().unwrap_or_else(|e| e.into_inner());
        let changed = config.reloadable_changes(&new)?;
        self.core().reconfigure(core_config(
            &new.bidding,
            &new.proving,
            &new.sp1,
            &self.versions,
            self.resources,
        ));
        *config = new;
        Ok(changed)
    }

    /// The node's decisions, to read (the bidder and prover change them through [`Self::apply`]).
    pub fn core(&self) -> MutexGuard<'_, NodeCore> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Unix seconds now by the node's clock.
    pub fn now(&self) -> u64 {
        self.clock.now_secs()
    }

    /// Feeds `event` to the core at the clock's time; returns what to do.
    pub fn apply(&self, event: Event) -> Vec<Action> {
        let now = self.now();
        self.core().handle(event, now)
    }

    /// What proving `request` takes, as its backend measures it (a mode it cannot parse counts
    /// as the default: the prover refuses it later with the reason; a version without a
    /// backend needs more memory than there is). Its memory is what the node measured of its
    /// program (or of its version and mode) once that is trusted, the backend's model until
    /// then.
    pub fn work(&self, request: &RequestRecord) -> Work {
        let version = request.zkvm_version();
        let backend = self.backends.get(&version).ok();
        let modes = backend.as_ref().map_or(&[][..], |b| b.proof_modes());
        let mode = request.mode(modes).unwrap_or(ProofMode::Default);
        // A malformed program id is refused when the job is checked; here it is no program.
        let program = request.program_id().ok().flatten();
        let pgus = request.pgus();
        let measured = self.core().memory_estimate(&version, mode, program.as_ref());
        let memory = match (&backend, measured) {
            (None, _) => u64::MAX,
            (Some(_), Some(measured)) => measured.bytes_for(pgus),
            (Some(b), None) => b.proving_memory(pgus, mode),
        };
        let gpu_memory = backend.as_ref().map_or(0, |b| b.proving_gpu_memory(pgus, mode));
        let max_pgus = self.max_pgus(&version, mode);
        Work { version, mode, program, pgus, memory, gpu_memory, max_pgus }
    }

    /// The memory per PGU the backend's model gives `version` in `mode` at the largest job it
    /// takes, bytes (what the measured figure replaces); 0 for a version without a backend.
    pub fn configured_memory_per_pgu(&self, version: &str, mode: ProofMode) -> f64 {
        let Ok(backend) = self.backends.get(version) else { return 0.0 };
        let pgus = backend.max_gas_limit().max(1);
        backend.proving_memory(pgus, mode) as f64 / pgus as f64
    }

    /// The largest job of `version` in `mode` this machine's proving memory (or its pool's
    /// largest worker's) holds, in PGUs.
    pub fn max_pgus(&self, version: &str, mode: ProofMode) -> u64 {
        let Ok(backend) = self.backends.get(version) else { return 0 };
        // The machine's memory, or a pool's largest live worker's.
        let (memory, measured) = {
            let core = self.core();
            (core.job_memory_limit(version), core.memory_estimate(version, mode, None))
        };
        // Memory grows with PGUs (as measured once trusted), and so does a GPU backend's GPU
        // memory.
        let fits = |pgus| {
            measured.map_or_else(|| backend.proving_memory(pgus, mode), |m| m.bytes_for(pgus))
                <= memory
                && self.resources.gpu_holds(backend.proving_gpu_memory(pgus, mode))
        };
        // The largest that fits, by bisection.
        let (mut lo, mut hi) = (0, backend.max_gas_limit());
        if fits(hi) {
            return hi;
        }
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) { lo = mid } else { hi = mid }
        }
        lo
    }
}

/// The core's setup from the node's config sections: each version's calibration and pricing
/// (SP1 at its own throughput and fixed times, every other version at the proving section's),
/// the bidding limits, prefetch and resources. The market simulation sets its nodes up with it.
pub fn core_config(
    bidding: &BiddingConfig,
    proving: &ProvingConfig,
    sp1: &Sp1Config,
    versions: &[String],
    resources: Resources,
) -> CoreConfig {
    let profiles = versions
        .iter()
        .map(|version| {
            let (pgus_per_second, overhead_secs, compressed_overhead_secs) =
                if version.starts_with("sp1-") {
                    (sp1.pgus_per_second, sp1.overhead_secs, sp1.compressed_overhead_secs)
                } else {
                    (proving.pgus_per_second, bidding.overhead_secs, bidding.overhead_secs)
                };
            let pricing = Box::new(CostPlus {
                cost_per_hour: bidding.cost_per_hour,
                pgus_per_second,
                target_utilisation: bidding.target_utilisation,
                margin: bidding.margin,
                surcharge: bidding.surcharge,
            });
            let profile = VersionProfile {
                pgus_per_second,
                overhead_secs,
                compressed_overhead_secs,
                pricing,
            };
            (version.clone(), profile)
        })
        .collect::<BTreeMap<_, _>>();
    CoreConfig {
        profiles,
        bidding: bidding.enabled,
        safety_margin: bidding.safety_margin,
        committed_cap_pgus: bidding.committed_cap_pgus,
        prefetch: proving.prefetch,
        resources,
    }
}

/// Reads the operator key file (hex secret).
fn read_key(path: &std::path::Path) -> Result<Signer, NodeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| NodeError::Key { path: path.into(), reason: source.to_string() })?;
    Signer::from_hex(text.trim())
        .map_err(|e| NodeError::Key { path: path.into(), reason: e.to_string() })
}

/// Proving resources from the config, filling in what it leaves to the machine.
fn resources(config: &NodeConfig) -> Resources {
    let cores = match config.proving.cores {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        n => n,
    };
    let memory_bytes = match config.proving.memory_gib {
        0 => {
            let mut system = sysinfo::System::new();
            system.refresh_memory();
            system.total_memory().saturating_sub(RESERVED_MEMORY)
        }
        gib => gib << 30,
    };
    // GPUs as NVML sees them at start (none without NVIDIA's driver).
    let (gpus, _) = crate::monitor::GpuSampler::open().sample();
    Resources {
        cores,
        memory_bytes,
        cores_per_slot: config.proving.cores_per_slot,
        gpus: gpus.len() as u32,
        gpu_memory_bytes: gpus.iter().map(|g| g.memory_total_bytes).min().unwrap_or(0),
    }
}
