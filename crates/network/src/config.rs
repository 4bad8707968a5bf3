//! [`NetworkConfig`]: everything an operator sets for `provernet network`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use provernet_types::{Address, Amount};
use sha3::{Digest, Keccak256};

use crate::market::MarketConfig;

/// A rate: calls per second sustained, with bursts of up to `burst` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls per second, sustained.
    pub per_second: u32,
    /// Calls allowed at once after a quiet while.
    pub burst: u32,
}

/// How the ProverNetwork runs.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The network's id: the signing domain. Messages signed for another id are refused.
    pub network_id: String,
    /// Database URL: `sqlite://path` (default, WAL) or `postgres://…`.
    pub database_url: String,
    /// Where the embedded ArtifactStore keeps artifacts: a folder, `memory://` or `s3://…`.
    pub artifact_storage: String,
    /// HMAC secret shared with the ArtifactStore for presigned URLs.
    pub artifact_secret: String,
    /// The ArtifactStore's public base URL, as handed to clients (e.g. `http://127.0.0.1:7070`).
    pub artifact_base_url: String,
    /// Largest artifact accepted, in bytes.
    pub max_artifact_bytes: u64,
    /// Largest program the network reads and assembles at registration, in bytes.
    pub max_program_bytes: u64,
    /// Largest proof the network reads and verifies, in bytes (a proof artifact named by
    /// FulfillProof; inline proofs are bounded by `max_message_bytes`).
    pub max_proof_bytes: u64,
    /// The market's rules.
    pub market: MarketConfig,
    /// Requests executed at once by the network's executor.
    pub executor_concurrency: usize,
    /// Proofs verified at once by the network's verifier.
    pub verifier_concurrency: usize,
    /// Requests waiting for or in the executor above which RequestProof is refused
    /// (`RESOURCE_EXHAUSTED`).
    pub max_queued_executions: usize,
    /// Proofs waiting for or in the verifier above which FulfillProof is refused.
    pub max_queued_verifications: usize,
    /// State-changing calls per account (`None`: unlimited).
    pub account_rate_limit: Option<RateLimit>,
    /// Open subscriptions per connection.
    pub max_subscriptions_per_connection: usize,
    /// Largest gRPC message accepted, in bytes (proof bytes travel in FulfillProof).
    pub max_message_bytes: usize,
    /// How long presigned URLs stay valid.
    pub presign_ttl: Duration,
    /// Subscriber buffer, in events; a slower subscriber is told it lagged.
    pub subscriber_buffer: usize,
    /// Timeout of every RPC.
    pub request_timeout: Duration,
    /// Folder for the default SQLite file and artifacts, when their URLs are not given.
    pub data_dir: PathBuf,
    /// Where to serve Prometheus metrics (`None`: not served).
    pub metrics_addr: Option<SocketAddr>,
    /// The Succinct-API facade (`network.ProverNetwork`, `artifact.ArtifactStore`) on the gRPC
    /// port, for SP1's SDK and Succinct-protocol nodes (`None`: not served).
    pub succinct: Option<SuccinctApiConfig>,
    /// How long after its request closes an accepted proof is kept in the ArtifactStore
    /// (`None`: for ever, the default). The request keeps its record either way.
    pub proof_retention: Option<Duration>,
    /// How often the proof retention looks for proofs to delete.
    pub retention_interval: Duration,
    /// The certificate and key both ports serve TLS with (gRPC and the ArtifactStore);
    /// `None`: plain HTTP/2 and HTTP (loopback, or behind a TLS-terminating proxy).
    pub tls: Option<provernet_artifacts::TlsIdentity>,
}

/// What the Succinct-API facade tells its clients, and its own limits.
#[derive(Debug, Clone)]
pub struct SuccinctApiConfig {
    /// The chain id of the EIP-712 domain that request, bid and fulfilment bodies must name.
    /// 1 (the original mainnet's domain) by default, which reference nodes hard-code.
    pub chain_id: u64,
    /// The base fee GetProofRequestParams proposes.
    pub base_fee: Amount,
    /// The price per PGU GetProofRequestParams proposes (the SDK offers 1.2 times it).
    pub max_price_per_pgu: Amount,
    /// The shortest auction, in seconds: a request asking for less (the SDK asks for 0) gets
    /// this, so that more than the first bidder can compete.
    pub min_auction_period: u64,
    /// The auctioneer, executor, verifier and treasury addresses that requests must name (the
    /// SDK copies them from GetProofRequestParams).
    pub auctioneer: Address,
    /// See `auctioneer`.
    pub executor: Address,
    /// See `auctioneer`.
    pub verifier: Address,
    /// See `auctioneer`.
    pub treasury: Address,
    /// Artifact slots (CreateArtifact) open at once per account.
    pub max_slots_per_account: usize,
    /// Bytes of uploaded inputs held in slots until a request names them.
    pub max_slot_bytes: u64,
}

impl SuccinctApiConfig {
    /// Defaults for the network `network_id`: the mainnet domain, and role addresses derived
    /// from the network id (`keccak256(network_id ‖ "/" ‖ role)`, last 20 bytes), so that they
    /// are stable and distinct per network.
    pub fn for_network(network_id: &str) -> Self {
        let role = |name: &str| {
            let hash = Keccak256::digest(format!("{network_id}/{name}").as_bytes());
            Address::from_slice(&hash[12..]).unwrap_or_default()
        };
        Self {
            chain_id: provernet_types::succinct::MAINNET_CHAIN_ID,
            base_fee: Amount::new(0),
            max_price_per_pgu: Amount::new(1_000),
            min_auction_period: 2,
            auctioneer: role("auctioneer"),
            executor: role("executor"),
            verifier: role("verifier"),
            treasury: role("treasury"),
            max_slots_per_account: 64,
            max_slot_bytes: 256 << 20,
        }
    }
}

impl NetworkConfig {
    /// Defaults for a local network in `data_dir`: SQLite and artifacts in that folder, the
    /// faucet on.
    pub fn local(
        data_dir: impl Into<PathBuf>,
        network_id: &str,
        artifact_base_url: &str,
        artifact_secret: &str,
    ) -> Self {
        let data_dir = data_dir.into();
        Self {
            network_id: network_id.to_owned(),
            database_url: format!("sqlite://{}", data_dir.join("network.db").display()),
            artifact_storage: data_dir.join("artifacts").display().to_string(),
            artifact_secret: artifact_secret.to_owned(),
            artifact_base_url: artifact_base_url.to_owned(),
            max_artifact_bytes: 1 << 30,
            max_program_bytes: 16 << 20,
            max_proof_bytes: 32 << 20,
            market: MarketConfig::default(),
            executor_concurrency: 2,
            verifier_concurrency: 2,
            max_queued_executions: 1_000,
            max_queued_verifications: 100,
            account_rate_limit: Some(RateLimit { per_second: 200, burst: 400 }),
            max_subscriptions_per_connection: 16,
            max_message_bytes: 8 << 20,
            presign_ttl: Duration::from_secs(900),
            subscriber_buffer: 1024,
            request_timeout: Duration::from_secs(30),
            data_dir,
            metrics_addr: None,
            succinct: None,
            proof_retention: None,
            retention_interval: Duration::from_secs(3_600),
            tls: None,
        }
    }
}
