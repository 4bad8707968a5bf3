//! A real network (in-process, on loopback ports chosen at run time, data in a temp dir), nodes
//! launched with real keys and configs, and a requester that uploads, registers and requests
//! through [`NetworkClient`].

use std::{future::Future, sync::Arc, time::Duration};

use provernet_artifacts::ArtifactClient;
use provernet_network::{NetworkConfig, NetworkHandle, SuccinctApiConfig, launch};
use provernet_node::{NodeConfig, NodeHandle};
use provernet_types::{
    Address, Amount, ArtifactId, NetworkClient, RequestId, RequestSpec, Signer,
    proto::{self, request_event::Event},
};
use provernet_zkvm::samples::Sample;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const NETWORK_ID: &str = "provernet-node-test";
const SECRET: &str = "a-secret-of-at-least-16-bytes";
pub const MIDEN: &str = "miden-0.23";
/// The longest wait for one expected change.
pub const WAIT: Duration = Duration::from_secs(40);
/// Every test's bound.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `test` bounded by [`TEST_TIMEOUT`].
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test).await.expect("the test did not finish in time");
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A network running in this process.
pub struct Net {
    pub handle: NetworkHandle,
    pub client: NetworkClient,
    pub url: String,
    pub dir: Arc<tempfile::TempDir>,
    /// Whether it serves the Succinct API beside its own.
    succinct: bool,
    cancel: CancellationToken,
}

impl Net {
    /// A network on fresh loopback ports.
    pub async fn start() -> Self {
        Self::start_serving(false).await
    }

    /// A network on fresh loopback ports that also serves the Succinct API.
    pub async fn start_succinct() -> Self {
        Self::start_serving(true).await
    }

    async fn start_serving(succinct: bool) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let artifacts = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::launch_on(dir, grpc, artifacts, succinct).await
    }

    async fn launch_on(
        dir: Arc<tempfile::TempDir>,
        grpc: TcpListener,
        artifacts: TcpListener,
        succinct: bool,
    ) -> Self {
        let artifacts_url = format!("http://{}", artifacts.local_addr().unwrap());
        let mut config = NetworkConfig::local(dir.path(), NETWORK_ID, &artifacts_url, SECRET);
        if succinct {
            config.succinct = Some(SuccinctApiConfig::for_network(NETWORK_ID));
        }
        // SP1's setup (registering an SP1 program) takes a minute or more in the test profile.
        config.request_timeout = Duration::from_secs(600);
        let cancel = CancellationToken::new();
        let handle = launch(config, grpc, artifacts, cancel.clone()).await.unwrap();
        let url = format!("http://{}", handle.grpc_addr);
        let client = NetworkClient::connect(&url, Duration::from_secs(5)).await.unwrap();
        Self { handle, client, url, dir, succinct, cancel }
    }

    /// Stops the network and starts it again on the same ports and data.
    pub async fn restart(self) -> Self {
        let grpc_addr = self.handle.grpc_addr;
        let artifacts_addr = self.handle.artifacts_addr;
        let (dir, succinct) = (self.dir.clone(), self.succinct);
        self.stop().await;
        let grpc = TcpListener::bind(grpc_addr).await.unwrap();
        let artifacts = TcpListener::bind(artifacts_addr).await.unwrap();
        Self::launch_on(dir, grpc, artifacts, succinct).await
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(WAIT, self.handle.join).await.unwrap().unwrap();
    }

    /// A new account with funds from the faucet.
    pub async fn funded(&self) -> Signer {
        let signer = Signer::random();
        self.client.faucet(&signer, Amount::new(100_000_000_000)).await.unwrap();
        signer
    }

    pub async fn balance(&self, address: &Address) -> u128 {
        self.client.account(address).await.unwrap().balance.parse().unwrap()
    }

    pub async fn request(&self, id: &RequestId) -> proto::ProofRequest {
        self.client.proof_request(id).await.unwrap()
    }

    /// Waits until request `id` satisfies `done`, on the event stream (checked once first and
    /// after each of its events).
    pub async fn wait_until(
        &self,
        id: &RequestId,
        what: &str,
        done: impl Fn(&proto::ProofRequest) -> bool,
    ) -> proto::ProofRequest {
        self.wait_until_within(WAIT, id, what, done).await
    }

    /// [`Net::wait_until`], waiting up to `within`.
    pub async fn wait_until_within(
        &self,
        within: Duration,
        id: &RequestId,
        what: &str,
        done: impl Fn(&proto::ProofRequest) -> bool,
    ) -> proto::ProofRequest {
        let mut events =
            self.client.subscribe(proto::SubscribeRequestsRequest::default()).await.unwrap();
        tokio::time::timeout(within, async {
            loop {
                let request = self.request(id).await;
                if done(&request) {
                    return request;
                }
                loop {
                    let event = events.message().await.unwrap().expect("stream open");
                    if event.request_id == id.as_bytes()
                        || matches!(event.event, Some(Event::Lagged(_)))
                    {
                        break;
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }
}

/// A node's settings for a test.
pub struct NodeSpec {
    pub cost_per_hour: u128,
    pub pgus_per_second: f64,
    /// Memory for proving, GiB.
    pub memory_gib: u64,
}

impl Default for NodeSpec {
    fn default() -> Self {
        Self { cost_per_hour: 360_000_000, pgus_per_second: 5_000.0, memory_gib: 4 }
    }
}

/// A registered prover and its node's config (key file and data in a temp dir).
pub struct Prover {
    pub key: Signer,
    pub config: NodeConfig,
    _dir: tempfile::TempDir,
}

impl Prover {
    /// Registers a new prover (its own operator) with stake and writes its node config.
    pub async fn register(net: &Net, spec: NodeSpec) -> Self {
        let key = net.funded().await;
        net.client.register_prover(&key, Amount::new(1_000_000_000), &key.address()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node.key"), key.secret_hex()).unwrap();
        let mut config = NodeConfig::new(&net.url);
        config.key_file = dir.path().join("node.key");
        config.data_dir = dir.path().join("data");
        config.bidding.cost_per_hour = Amount::new(spec.cost_per_hour);
        config.proving.pgus_per_second = spec.pgus_per_second;
        config.proving.cores = 2;
        config.proving.memory_gib = spec.memory_gib;
        Self { key, config, _dir: dir }
    }

    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Launches the node; returns it with its shutdown token.
    pub async fn launch(&self) -> (NodeHandle, CancellationToken) {
        let cancel = CancellationToken::new();
        let node = provernet_node::launch(self.config.clone(), None, cancel.clone()).await.unwrap();
        (node, cancel)
    }

    /// [`Self::launch`] on `clock`.
    pub async fn launch_with_clock(
        &self,
        clock: std::sync::Arc<dyn provernet_node::clock::Clock>,
    ) -> (NodeHandle, CancellationToken) {
        let cancel = CancellationToken::new();
        let node =
            provernet_node::launch_with_clock(self.config.clone(), None, cancel.clone(), clock)
                .await
                .unwrap();
        (node, cancel)
    }
}

/// Launches a node that must be refused; what it said.
pub async fn launch_refused(config: NodeConfig) -> String {
    match provernet_node::launch(config, None, CancellationToken::new()).await {
        Ok(_) => panic!("a bad setup was accepted"),
        Err(e) => e.to_string(),
    }
}

/// Stops a node and waits for it.
pub async fn stop(node: (NodeHandle, CancellationToken)) {
    node.1.cancel();
    tokio::time::timeout(WAIT, node.0.join).await.expect("node stopped in time").unwrap();
}

/// A requester with funds and a registered program.
pub struct Requester {
    pub key: Signer,
    pub artifacts: ArtifactClient,
}

impl Requester {
    pub async fn new(net: &Net) -> Self {
        Self { key: net.funded().await, artifacts: ArtifactClient::new().unwrap() }
    }

    pub async fn upload(&self, net: &Net, bytes: &[u8], kind: proto::ArtifactKind) -> ArtifactId {
        let id = ArtifactId::of(bytes);
        let url =
            net.client.presign_upload(&self.key, &id, kind, bytes.len() as u64).await.unwrap();
        self.artifacts.upload_bytes(&url, bytes::Bytes::copy_from_slice(bytes)).await.unwrap();
        id
    }

    /// Uploads and registers `sample` (under a name unique to this requester), uploads `inputs`,
    /// and returns a request spec: deadline in `deadline_secs`, auction period 1 s.
    pub async fn spec(
        &self,
        net: &Net,
        sample: &Sample,
        inputs: &str,
        deadline_secs: u64,
    ) -> RequestSpec {
        let source = sample.source.as_bytes();
        self.spec_of(net, sample.name, MIDEN, source, inputs.as_bytes(), deadline_secs).await
    }

    /// Registers `program` of `zkvm_version`, uploads `inputs`; a request for them.
    pub async fn spec_of(
        &self,
        net: &Net,
        name: &str,
        zkvm_version: &str,
        program: &[u8],
        inputs: &[u8],
        deadline_secs: u64,
    ) -> RequestSpec {
        let artifact = self.upload(net, program, proto::ArtifactKind::Program).await;
        let name = format!("{name}-{}", self.key.address());
        let registered =
            net.client.register_program(&self.key, &name, zkvm_version, &artifact).await.unwrap();
        let inputs_id = self.upload(net, inputs, proto::ArtifactKind::Inputs).await;
        RequestSpec {
            program_id: registered.program_id,
            zkvm_version: zkvm_version.into(),
            program_artifact_id: artifact,
            inputs_artifact_id: inputs_id,
            inputs_private: false,
            deadline: now() + deadline_secs,
            gas_limit: 1 << 16,
            max_price_per_pgu: Amount::new(1_000),
            base_fee: Amount::new(1_000),
            min_auction_period: 1,
            whitelist: Vec::new(),
            expected_outputs_hash: None,
            proof_mode: String::new(),
        }
    }

    pub async fn request(&self, net: &Net, spec: &RequestSpec) -> RequestId {
        net.client.request_proof(&self.key, spec).await.unwrap()
    }
}

pub fn status(request: &proto::ProofRequest) -> proto::RequestStatus {
    proto::RequestStatus::try_from(request.status).unwrap()
}

pub fn is_closed(request: &proto::ProofRequest) -> bool {
    !matches!(status(request), proto::RequestStatus::Requested | proto::RequestStatus::Assigned)
}
