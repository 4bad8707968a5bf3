//! A node on the Succinct API (`network.api = "succinct"`) against a provernet network that
//! serves it: it polls for requests, bids, fetches the program and stdin by URL, proves, submits
//! through FulfillProof and is paid; requests made through either API reach it. What it cannot
//! do (private inputs) it skips and says why; a bad setup is refused naming what is wrong.

use provernet_artifacts::succinct::{program_to_bincode, stdin_to_bincode};
use provernet_node::{config::NetworkApi, store::JobState};
use provernet_types::{
    Address, RequestId, Signer,
    proto::RequestStatus,
    succinct::{
        self, CREATE_ARTIFACT_MESSAGE,
        proto::{
            artifact::{
                ArtifactType, CreateArtifactRequest, artifact_store_client::ArtifactStoreClient,
            },
            network::prover_network_client::ProverNetworkClient,
            types::*,
        },
    },
};
use provernet_zkvm::{MidenBackend, ZkVm, samples::FIB};
use tonic::transport::Channel;

use crate::harness::*;

/// A prover registered on `net` whose node speaks the Succinct API, polling every 200 ms.
async fn succinct_prover(net: &Net) -> Prover {
    let mut prover = register(net, NodeSpec::default()).await;
    prover.config.network.api = NetworkApi::Succinct;
    prover.config.network.poll_interval_ms = 200;
    prover
}

/// A requester on the Succinct API, as SP1's SDK makes requests.
struct SdkRequester {
    key: Signer,
    network: ProverNetworkClient<Channel>,
    artifacts: ArtifactStoreClient<Channel>,
    http: reqwest::Client,
}

impl SdkRequester {
    async fn new(net: &Net) -> Self {
        let channel = Channel::from_shared(net.url.clone()).unwrap().connect().await.unwrap();
        Self {
            key: net.funded().await,
            network: ProverNetworkClient::new(channel.clone()),
            artifacts: ArtifactStoreClient::new(channel),
            http: reqwest::Client::new(),
        }
    }

    async fn nonce(&self) -> u64 {
        let request = GetNonceRequest { address: self.key.address().as_bytes().to_vec() };
        self.network.clone().get_nonce(request).await.unwrap().into_inner().nonce
    }

    /// CreateArtifact, then PUT `zstd(item)`; the artifact's URI.
    async fn upload(&self, kind: ArtifactType, bincode_item: &[u8]) -> String {
        let signature = succinct::sign_message(&self.key, CREATE_ARTIFACT_MESSAGE);
        let request = CreateArtifactRequest { signature, artifact_type: kind as i32 };
        let created = self.artifacts.clone().create_artifact(request).await.unwrap().into_inner();
        let packed = zstd::encode_all(bincode_item, 3).unwrap();
        let put = self.http.put(&created.artifact_presigned_url).body(packed).send().await.unwrap();
        assert!(put.status().is_success(), "PUT: {}", put.status());
        created.artifact_uri
    }

    /// Registers FIB (CreateProgram), uploads its inputs as an stdin, and requests a proof.
    async fn request_fib(&self) -> RequestId {
        let source = FIB.source.as_bytes();
        let vk_hash = MidenBackend::new().program_id(source).unwrap().as_bytes().to_vec();
        let program_uri = self.upload(ArtifactType::Program, &program_to_bincode(source)).await;
        let body = CreateProgramRequestBody {
            nonce: self.nonce().await,
            vk_hash: vk_hash.clone(),
            vk: Vec::new(),
            program_uri,
        };
        let (signature, body) = succinct::seal(&self.key, &body);
        let format = MessageFormat::Binary as i32;
        let request = CreateProgramRequest { format, signature, body };
        self.network.clone().create_program(request).await.unwrap();

        let stdin = stdin_to_bincode(&[FIB.inputs.as_bytes().to_vec()]);
        let stdin_uri = self.upload(ArtifactType::Stdin, &stdin).await;
        let params = GetProofRequestParamsRequest { mode: ProofMode::Core as i32 };
        let params =
            self.network.clone().get_proof_request_params(params).await.unwrap().into_inner();
        let body = RequestProofRequestBody {
            nonce: self.nonce().await,
            vk_hash,
            version: MIDEN.into(),
            mode: ProofMode::Core as i32,
            strategy: FulfillmentStrategy::Auction as i32,
            stdin_uri,
            deadline: now() + 60,
            cycle_limit: 1 << 16,
            gas_limit: 1 << 16,
            min_auction_period: 0,
            whitelist: Vec::new(),
            domain: params.domain,
            auctioneer: params.auctioneer,
            executor: params.executor,
            verifier: params.verifier,
            public_values_hash: None,
            base_fee: params.base_fee,
            max_price_per_pgu: "1000".into(),
            variant: TransactionVariant::RequestVariant as i32,
            treasury: params.treasury,
            stdin_private: false,
        };
        let (signature, bytes) = succinct::seal(&self.key, &body);
        let request = RequestProofRequest { format, signature, body: bytes.clone() };
        self.network.clone().request_proof(request).await.unwrap();
        RequestId::derive(&self.key.address(), &bytes)
    }
}

/// Checks that `prover`'s node proved `id` and was paid what the network says.
async fn proven_and_paid(
    net: &Net,
    prover: &Prover,
    node: &(provernet_node::NodeHandle, tokio_util::sync::CancellationToken),
    id: RequestId,
    balance_before: u128,
) {
    let mut finished = node.0.prover.finished();
    let done = net.wait_until(&id, "fulfilled", is_closed).await;
    assert_eq!(status(&done), RequestStatus::Fulfilled, "{done:?}");
    assert_eq!(Address::from_slice(&done.assigned_prover).unwrap(), prover.address());
    let paid: u128 = done.paid.parse().unwrap();
    assert!(paid > 0, "{done:?}");
    assert_eq!(net.balance(&prover.address()).await, balance_before + paid);
    // The network answers before the node records `done`: wait for the node.
    if node.0.context.store.job(&id).await.unwrap().map(|j| j.state) != Some(JobState::Done) {
        let (ended, state) = tokio::time::timeout(WAIT, finished.recv()).await.unwrap().unwrap();
        assert_eq!((ended, state), (id, JobState::Done));
    }
    let job = node.0.context.store.job(&id).await.unwrap().unwrap();
    assert_eq!(job.request.api(), NetworkApi::Succinct, "the job keeps the record it was won on");
    let bids = node.0.context.store.recent_bids(10).await.unwrap();
    assert!(bids.iter().any(|b| b.id == id && b.outcome == "won"), "{bids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_succinct_api_node_wins_proves_and_is_paid_for_an_sdk_request() {
    bounded(async {
        let net = start_succinct().await;
        let prover = succinct_prover(&net).await;
        let node = prover.launch().await;
        let before = net.balance(&prover.address()).await;
        let requester = SdkRequester::new(&net).await;
        let id = requester.request_fib().await;
        proven_and_paid(&net, &prover, &node, id, before).await;
        let earned = node.0.context.core().book().earnings.get();
        assert_eq!(earned, net.balance(&prover.address()).await - before, "earnings as paid");
        let status = node.0.context.health.status();
        assert_eq!(status.network_api, "succinct");
        stop(node).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_natively_made_request_is_proven_through_the_succinct_api_and_private_inputs_are_skipped()
{
    bounded(async {
        let net = start_succinct().await;
        let prover = succinct_prover(&net).await;
        let node = prover.launch().await;
        let requester = requester(&net).await;
        let spec = requester.spec(&FIB, FIB.inputs, 60).await;
        // Requested first: the node sees it no later than the public one.
        let private = requester
            .request(&provernet_types::RequestSpec { inputs_private: true, ..spec.clone() })
            .await;
        let before = net.balance(&prover.address()).await;
        let id = requester.request(&spec).await;
        proven_and_paid(&net, &prover, &node, id, before).await;
        let bids = node.0.context.store.recent_bids(10).await.unwrap();
        let skipped = bids.iter().find(|b| b.id == private).expect("the private request decided");
        assert_eq!(skipped.outcome, "skipped");
        let reason = skipped.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("inputs unreachable"), "{reason}");
        assert_eq!(status(&net.get(&private).await), RequestStatus::Requested, "no bid");
        stop(node).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_succinct_api_setup_that_cannot_work_is_refused_with_what_is_wrong() {
    bounded(async {
        // A network that speaks only its own API.
        let native = start().await;
        let prover = succinct_prover(&native).await;
        let err = launch_refused(prover.config.clone()).await;
        assert!(err.contains("--succinct-api") && err.contains("network.api"), "{err}");
        native.stop().await;

        // A key that does not act for the prover it names.
        let net = start_succinct().await;
        let mut prover = succinct_prover(&net).await;
        // On a provernet network the node checks the registration on the native API beside.
        let mut stranger = prover.config.clone();
        stranger.key_file = prover.config.data_dir.with_file_name("stranger.key");
        std::fs::write(&stranger.key_file, Signer::random().secret_hex()).unwrap();
        let err = launch_refused(stranger).await;
        assert!(err.contains("not a registered prover"), "{err}");
        let someone = Address::from_bytes([7; 20]);
        prover.config.prover = Some(someone);
        let err = launch_refused(prover.config.clone()).await;
        assert!(
            err.contains(&prover.address().to_string()) && err.contains(&someone.to_string()),
            "{err}"
        );
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_succinct_api_node_carries_on_after_the_network_restarts() {
    bounded(async {
        let net = start_succinct().await;
        let prover = succinct_prover(&net).await;
        let node = prover.launch().await;
        let requester = requester(&net).await;
        let spec = requester.spec(&FIB, FIB.inputs, 60).await;
        let first = requester.request(&spec).await;
        net.wait_until(&first, "fulfilled", is_closed).await;

        // Polls fail while the network is down, and answer again once it is back.
        let net = net.restart().await;
        let spec = provernet_types::RequestSpec { deadline: now() + 61, ..spec };
        let second = requester.request(&spec).await;
        let done = net.wait_until(&second, "fulfilled after the restart", is_closed).await;
        assert_eq!(status(&done), RequestStatus::Fulfilled, "{done:?}");
        assert_eq!(Address::from_slice(&done.assigned_prover).unwrap(), prover.address());
        assert!(node.0.context.health.snapshot().subscription_up, "the feed is up again");
        stop(node).await;
        net.stop().await;
    })
    .await;
}
