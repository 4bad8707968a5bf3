//! NodeContext: built first, dropped last. Owns the config, the operator key, the network and
//! artifact clients, the backends, the resources, the job store, the health the monitor
//! reports, the clock, the decision [`core`](crate::core) the bidder and prover share, and the
//! shutdown signal.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use provernet_artifacts::{ArtifactCache, ArtifactClient};
use provernet_types::{Address, NetworkClient, Signer, proto};
use provernet_zkvm::{ProofMode, ZkVmRegistry};
use tokio_util::sync::CancellationToken;

pub use crate::clock::now_secs;
use crate::{
    NodeConfig, Resources,
    clock::Clock,
    config::{BiddingConfig, ProvingConfig, Sp1Config},
    core::{Action, CoreConfig, CostPlus, Event, NodeCore, VersionProfile, Work},
    error::NodeError,
    monitor::NodeHealth,
    store::JobStore,
};

/// Memory kept back from proving for the OS and the node when none is configured.
const RESERVED_MEMORY: u64 = 2 << 30;
/// The longest wait between attempts to reach the network.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The running node's shared state.
pub struct NodeContext {
    /// The configuration in force.
    pub config: NodeConfig,
    /// The operator key: signs bids, proofs and failures.
    pub operator: Signer,
    /// The prover account the node works for.
    pub prover: Address,
    /// The network.
    pub client: NetworkClient,
    /// The ArtifactStore client.
    pub artifacts: ArtifactClient,
    /// Verified program and inputs files.
    pub cache: ArtifactCache,
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
    /// The node's decisions; a std mutex, as no lock is held across an await.
    core: Mutex<NodeCore>,
}

impl std::fmt::Debug for NodeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeContext")
            .field("prover", &self.prover)
            .field("operator", &self.operator.address())
            .field("network", &self.client.url())
            .finish_non_exhaustive()
    }
}

impl NodeContext {
    /// Builds the context on `clock`: reads the key, opens the job store and cache, connects to the network
    /// (retrying until it answers or `shutdown`), and checks the prover's registration.
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
        let prover = config.prover.unwrap_or_else(|| operator.address());
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| NodeError::Io { what: "create the data folder", source })?;
        let store = JobStore::open(&config.data_dir.join("jobs.db")).await?;
        let cache =
            ArtifactCache::open(config.data_dir.join("cache"), config.proving.cache_mib << 20)
                .await
                .map_err(|e| NodeError::Setup(format!("artifact cache: {e}")))?;
        let artifacts =
            ArtifactClient::new().map_err(|e| NodeError::Setup(format!("artifact client: {e}")))?;
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
        let client = connect(&config.network_url, &shutdown).await?;
        check_registration(&client, &prover, &operator).await?;
        let resources = resources(&config);
        let core = NodeCore::new(core_config(
            &config.bidding,
            &config.proving,
            &config.sp1,
            &versions,
            resources,
        ));
        Ok(Arc::new(Self {
            config,
            operator,
            prover,
            client,
            artifacts,
            cache,
            backends,
            versions,
            resources,
            store,
            health,
            started_at: clock.now_secs(),
            clock,
            shutdown,
            core: Mutex::new(core),
        }))
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
    /// backend needs more memory than there is).
    pub fn work(&self, request: &proto::ProofRequest) -> Work {
        let (version, mode) = version_and_mode(request);
        let memory =
            self.backends.get(version).map_or(u64::MAX, |b| b.proving_memory(request.pgus, mode));
        Work {
            version: version.to_owned(),
            mode,
            pgus: request.pgus,
            memory,
            max_pgus: self.max_pgus(version, mode),
        }
    }

    /// The largest job of `version` in `mode` this machine's proving memory holds, in PGUs.
    pub fn max_pgus(&self, version: &str, mode: ProofMode) -> u64 {
        let Ok(backend) = self.backends.get(version) else { return 0 };
        let fits = |pgus| backend.proving_memory(pgus, mode) <= self.resources.memory_bytes;
        // Memory grows with PGUs: the largest that fits, by bisection.
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

/// The zkVM version and proof mode `request` asks for.
pub fn version_and_mode(request: &proto::ProofRequest) -> (&str, ProofMode) {
    let body = request.body.as_ref();
    let version = body.map_or("", |b| b.zkvm_version.as_str());
    let mode = body.and_then(|b| b.proof_mode.parse().ok()).unwrap_or(ProofMode::Default);
    (version, mode)
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

/// Connects to the network, retrying with backoff until it answers or `shutdown`.
async fn connect(url: &str, shutdown: &CancellationToken) -> Result<NetworkClient, NodeError> {
    let mut backoff = Duration::from_millis(200);
    loop {
        match NetworkClient::connect(url, Duration::from_secs(5)).await {
            Ok(client) => return Ok(client),
            Err(e) if e.is_transient() => {
                tracing::warn!(code = "PN-NETWORK-UNREACHABLE", "{e}; retrying in {backoff:?}");
            }
            Err(e) => return Err(NodeError::Network(e)),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Err(NodeError::Stopped),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Checks that `prover` is registered and `operator` may act for it.
async fn check_registration(
    client: &NetworkClient,
    prover: &Address,
    operator: &Signer,
) -> Result<(), NodeError> {
    let account = client.account(prover).await?;
    let Some(info) = account.prover else {
        return Err(NodeError::Setup(format!(
            "{prover} is not a registered prover on network {}: register it with \
             `provernet node register --stake <amount>`",
            client.info().network_id
        )));
    };
    let registered_operator = Address::from_slice(&info.operator).ok();
    let me = operator.address();
    if me != *prover && registered_operator != Some(me) {
        return Err(NodeError::Setup(format!(
            "the key {me} may not act for prover {prover}: its operator is {}",
            registered_operator.map_or_else(|| "unset".into(), |a| a.to_string())
        )));
    }
    Ok(())
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
    Resources { cores, memory_bytes, cores_per_slot: config.proving.cores_per_slot }
}
