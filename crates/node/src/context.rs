//! NodeContext: built first, dropped last. Owns the config, the operator key, the network and
//! artifact clients, the backends, the resources, the job store, the health the monitor
//! reports, the bidding book, and the shutdown signal.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use provernet_artifacts::{ArtifactCache, ArtifactClient};
use provernet_types::{Address, Amount, NetworkClient, RequestId, Signer, proto};
use provernet_zkvm::{ProofMode, ZkVmRegistry};
use tokio_util::sync::CancellationToken;

use crate::{
    NodeConfig, Resources,
    bidder::{CostPlus, NodeState, PricingStrategy},
    error::NodeError,
    monitor::NodeHealth,
    store::JobStore,
};

/// Memory kept back from proving for the OS and the node when none is configured.
const RESERVED_MEMORY: u64 = 2 << 30;
/// The longest wait between attempts to reach the network.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Unix seconds now.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

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
    /// How the node prices, by zkVM version (each version at its own throughput).
    pub pricing: HashMap<String, Box<dyn PricingStrategy>>,
    /// Unix seconds the node started.
    pub started_at: u64,
    /// Stops bidding and winds the node down.
    pub shutdown: CancellationToken,
    book: Mutex<Book>,
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

/// The bidder's and prover's shared ledger of commitments and outcomes.
#[derive(Debug, Default)]
pub struct Book {
    /// Requests seen and not yet decided (waiting for execution), by id.
    pub pending: HashMap<RequestId, proto::ProofRequest>,
    /// Requests decided on (bid or skipped), with the time: never decided twice.
    pub decided: HashMap<RequestId, u64>,
    /// Bids not yet resolved: what the job would cost, and the price.
    pub outstanding: HashMap<RequestId, (JobCost, Amount)>,
    /// Jobs won and not finished: what they cost.
    pub jobs: HashMap<RequestId, JobCost>,
    /// Bids won.
    pub won: u64,
    /// Bids lost to another prover.
    pub lost: u64,
    /// Bids whose request closed unassigned.
    pub expired: u64,
    /// Requests skipped.
    pub skipped: u64,
    /// Paid for accepted proofs since start.
    pub earnings: Amount,
}

/// What one job costs this node: its PGUs, the memory its proof holds, and the time it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobCost {
    /// The request's PGUs.
    pub pgus: u64,
    /// Memory while proving, bytes (from its backend).
    pub memory: u64,
    /// Estimated seconds, fixed overhead included, safety margin excluded.
    pub secs: f64,
}

impl Book {
    /// PGUs bid on or won and not yet proven.
    pub fn committed_pgus(&self) -> u64 {
        self.commitments().map(|c| c.pgus).sum()
    }

    /// Seconds of proving bid on or won and not yet done, each job at its version's throughput.
    pub fn queue_secs(&self) -> f64 {
        self.commitments().map(|c| c.secs).sum()
    }

    fn commitments(&self) -> impl Iterator<Item = &JobCost> {
        self.outstanding.values().map(|(c, _)| c).chain(self.jobs.values())
    }

    /// Forgets decisions older than `horizon` seconds before `now` (their requests are closed).
    pub fn prune(&mut self, now: u64, horizon: u64) {
        self.decided.retain(|_, at| now.saturating_sub(*at) < horizon);
    }
}

impl NodeContext {
    /// Builds the context: reads the key, opens the job store and cache, connects to the network
    /// (retrying until it answers or `shutdown`), and checks the prover's registration.
    ///
    /// # Errors
    /// [`NodeError`] naming what could not be set up.
    pub async fn build(
        config: NodeConfig,
        health: Arc<NodeHealth>,
        shutdown: CancellationToken,
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
        let pricing = versions
            .iter()
            .map(|version| {
                let strategy: Box<dyn PricingStrategy> = Box::new(CostPlus {
                    cost_per_hour: config.bidding.cost_per_hour,
                    pgus_per_second: throughput(&config, version, ProofMode::Default).0,
                    target_utilisation: config.bidding.target_utilisation,
                    margin: config.bidding.margin,
                    surcharge: config.bidding.surcharge,
                });
                (version.clone(), strategy)
            })
            .collect();
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
            pricing,
            started_at: now_secs(),
            shutdown,
            book: Mutex::default(),
        }))
    }

    /// The bidding book.
    pub fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a job of `pgus` on `version` in `mode` costs this node. An unknown version costs
    /// more memory than there is (it is never started).
    pub fn job_cost(&self, version: &str, mode: ProofMode, pgus: u64) -> JobCost {
        let memory = self.backends.get(version).map_or(u64::MAX, |b| b.proving_memory(pgus, mode));
        JobCost { pgus, memory, secs: self.estimate_secs(version, mode, pgus) }
    }

    /// What proving `request` costs this node (a mode it cannot parse counts as the default:
    /// the prover refuses it later with the reason).
    pub fn request_cost(&self, request: &proto::ProofRequest) -> JobCost {
        let (version, mode) = version_and_mode(request);
        self.job_cost(version, mode, request.pgus)
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

    /// The node as the bidder's decision sees it for a request of `version` in `mode`.
    pub fn node_state(&self, version: &str, mode: ProofMode, book: &Book) -> NodeState {
        let (pgus_per_second, overhead_secs) = throughput(&self.config, version, mode);
        let max = self.max_pgus(version, mode);
        let cap = match self.config.bidding.committed_cap_pgus {
            0 => max.saturating_mul(8),
            cap => cap,
        };
        NodeState {
            versions: self.versions.clone(),
            max_pgus: max,
            committed_pgus: book.committed_pgus(),
            committed_cap: cap,
            queue_secs: book.queue_secs(),
            pgus_per_second,
            safety_margin: self.config.bidding.safety_margin,
            overhead_secs,
        }
    }

    /// Seconds the node expects a job of `pgus` on `version` in `mode` to take, overhead
    /// included, margin excluded.
    pub fn estimate_secs(&self, version: &str, mode: ProofMode, pgus: u64) -> f64 {
        let (pgus_per_second, overhead_secs) = throughput(&self.config, version, mode);
        pgus as f64 / pgus_per_second + overhead_secs
    }
}

/// The zkVM version and proof mode `request` asks for.
pub fn version_and_mode(request: &proto::ProofRequest) -> (&str, ProofMode) {
    let body = request.body.as_ref();
    let version = body.map_or("", |b| b.zkvm_version.as_str());
    let mode = body.and_then(|b| b.proof_mode.parse().ok()).unwrap_or(ProofMode::Default);
    (version, mode)
}

/// The calibrated throughput for `version` in `mode`: PGUs per second and fixed seconds per job.
fn throughput(config: &NodeConfig, version: &str, mode: ProofMode) -> (f64, f64) {
    if version.starts_with("sp1-") {
        let overhead = match mode {
            ProofMode::Compressed => config.sp1.compressed_overhead_secs,
            _ => config.sp1.overhead_secs,
        };
        (config.sp1.pgus_per_second, overhead)
    } else {
        (config.proving.pgus_per_second, config.bidding.overhead_secs)
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
