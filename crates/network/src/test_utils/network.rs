//! [`TestNetwork`]: a real network in this process, its client, its actors and its ledger check.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use provernet_artifacts::{ArtifactClient, public_url};
use provernet_types::{
    Address, Amount, ArtifactId, Domain, NetworkClient, RequestId, RequestSpec, SignedBody, Signer,
    proto::{self, SignedMessage, prover_network_client::ProverNetworkClient},
    seal,
};
use provernet_zkvm::{
    MidenBackend, ProofBundle, ProofMode, ProveJob, ZkVm, ZkVmRegistry, samples::Sample,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status, transport::Channel};

use super::{Events, FUNDS, MIDEN, NETWORK_ID, STAKE, WAIT, now_secs, postgres};
use crate::{NetworkConfig, NetworkHandle, launch};

/// The ArtifactStore's HMAC secret.
const SECRET: &str = "a-secret-of-at-least-16-bytes";

/// Set to `postgres` to run a suite whose networks use [`Engine::FromEnv`] against PostgreSQL
/// (at [`postgres::URL_ENV`]) instead of SQLite; `.ci/run` runs the network's suite both ways.
pub const ENGINE_ENV: &str = "PROVERNET_TEST_NETWORK_DB";

/// Where a test network keeps its state.
#[derive(Debug, Clone, Default)]
pub enum Engine {
    /// SQLite in the temp dir, or a fresh PostgreSQL database when [`ENGINE_ENV`] says so.
    #[default]
    FromEnv,
    /// SQLite in the temp dir.
    Sqlite,
    /// A fresh database on the PostgreSQL server of [`postgres::URL_ENV`].
    Postgres,
    /// This database URL, made by the caller (e.g. a schema of its own).
    At(String),
}

impl Engine {
    /// The database URL for a network whose data dir is `dir`.
    async fn database_url(&self, dir: &std::path::Path) -> String {
        let sqlite = || format!("sqlite://{}", dir.join("network.db").display());
        match self {
            Self::FromEnv if std::env::var(ENGINE_ENV).as_deref() == Ok("postgres") => {
                postgres::fresh_database("pn_it").await
            }
            Self::FromEnv | Self::Sqlite => sqlite(),
            Self::Postgres => postgres::fresh_database("pn_it").await,
            Self::At(url) => url.clone(),
        }
    }
}

/// How to launch a [`TestNetwork`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Where it keeps its state.
    pub engine: Engine,
    /// Changes to the local config ([`NetworkConfig::local`]) before launch.
    pub tweak: fn(&mut NetworkConfig),
    /// The runtime its listeners and tasks belong to (a benchmark's server runtime); the
    /// caller's when `None`.
    pub runtime: Option<tokio::runtime::Handle>,
}

impl Default for Options {
    fn default() -> Self {
        Self { engine: Engine::FromEnv, tweak: |_| {}, runtime: None }
    }
}

/// What the harness knows independently of the network: every deposit it made and every
/// account it used, to check the ledger from the outside.
#[derive(Debug, Default)]
struct Books {
    deposits: u128,
    accounts: BTreeSet<Address>,
}

/// A stopped network: its data dir (deleted when the last holder drops it).
pub struct Stopped {
    /// The data dir.
    pub dir: Arc<tempfile::TempDir>,
}

/// A network running in this process on loopback ports chosen at run time, with its data in
/// a temp dir, and a client of it.
pub struct TestNetwork {
    /// The running network: its addresses, state and tasks.
    pub handle: NetworkHandle,
    /// A client that signs and keeps nonces (one per signer).
    pub client: NetworkClient,
    /// The gRPC URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The signing domain.
    pub domain: Domain,
    /// An ArtifactStore client.
    pub artifacts: ArtifactClient,
    /// The ArtifactStore's URL.
    pub artifacts_url: String,
    cancel: CancellationToken,
    dir: Arc<tempfile::TempDir>,
    database_url: String,
    options: Options,
    books: Arc<Mutex<Books>>,
}

impl TestNetwork {
    /// A network with the default local config, on SQLite (or PostgreSQL by [`ENGINE_ENV`]).
    pub async fn start() -> Self {
        Self::start_with_options(Options::default()).await
    }

    /// A network launched as `options` say.
    pub async fn start_with_options(options: Options) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let database_url = options.engine.database_url(dir.path()).await;
        Self::launch_in(dir, database_url, options, Arc::default(), None).await
    }

    /// A network with the local config changed by `tweak`.
    pub async fn start_with(tweak: fn(&mut NetworkConfig)) -> Self {
        Self::start_with_options(Options { tweak, ..Options::default() }).await
    }

    /// A network on a fresh PostgreSQL database, whatever [`ENGINE_ENV`] says.
    pub async fn start_on_postgres() -> Self {
        Self::start_with_options(Options { engine: Engine::Postgres, ..Options::default() }).await
    }

    /// Another network process on this one's database and artifact storage, on new ports
    /// (hot standby: on PostgreSQL it stands by while this one leads), sharing the ledger
    /// check's books.
    pub async fn another_process(&self) -> Self {
        let (dir, url, options) =
            (self.dir.clone(), self.database_url.clone(), self.options.clone());
        Self::launch_in(dir, url, options, self.books.clone(), None).await
    }

    async fn launch_in(
        dir: Arc<tempfile::TempDir>,
        database_url: String,
        options: Options,
        books: Arc<Mutex<Books>>,
        ports: Option<(SocketAddr, SocketAddr)>,
    ) -> Self {
        let (grpc_at, artifacts_at) = ports.unwrap_or((loopback(), loopback()));
        let runtime = options.runtime.clone().unwrap_or_else(tokio::runtime::Handle::current);
        // Listeners belong to the runtime that serves them.
        let grpc = runtime.spawn(TcpListener::bind(grpc_at)).await.expect("task").expect("bind");
        let artifacts =
            runtime.spawn(TcpListener::bind(artifacts_at)).await.expect("task").expect("bind");
        let artifacts_url = format!("http://{}", artifacts.local_addr().expect("address"));
        let mut config = NetworkConfig::local(dir.path(), NETWORK_ID, &artifacts_url, SECRET);
        config.database_url.clone_from(&database_url);
        (options.tweak)(&mut config);
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let handle = runtime
            .spawn(async move { launch(config, grpc, artifacts, stop).await })
            .await
            .expect("task")
            .expect("launch");
        let url = format!("http://{}", handle.grpc_addr);
        let client = NetworkClient::connect(&url, Duration::from_secs(5)).await.expect("connect");
        Self {
            handle,
            client,
            url,
            domain: Domain::new(NETWORK_ID),
            artifacts: ArtifactClient::new().expect("artifact client"),
            artifacts_url,
            cancel,
            dir,
            database_url,
            options,
            books,
        }
    }

    /// The generated gRPC client (a cheap clone of the channel), for calls made by hand.
    pub fn rpc(&self) -> ProverNetworkClient<Channel> {
        self.client.rpc()
    }

    /// The data dir (artifacts, SQLite file).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Checks the ledger ([`Self::assert_ledger`]), stops the network and waits for every task.
    pub async fn stop(self) -> Stopped {
        self.assert_ledger().await;
        self.stop_unchecked().await
    }

    /// Stops the network and waits for every task, without the ledger check (a process
    /// whose ledger another one keeps, e.g. a deposed leader).
    pub async fn stop_unchecked(self) -> Stopped {
        let Self { handle, cancel, dir, client, .. } = self;
        drop(client);
        cancel.cancel();
        tokio::time::timeout(WAIT, handle.join).await.expect("shut down in time").expect("join");
        Stopped { dir }
    }

    /// Stops the network (ledger checked) and launches it again on the same data and ports,
    /// so that nodes configured with its URL find it again.
    pub async fn restart(self) -> Self {
        let ports = (self.handle.grpc_addr, self.handle.artifacts_addr);
        let (database_url, options, books) =
            (self.database_url.clone(), self.options.clone(), self.books.clone());
        let Stopped { dir } = self.stop().await;
        Self::launch_in(dir, database_url, options, books, Some(ports)).await
    }

    /// The double-entry check: the market's own, and balances + locks + stakes + treasury of
    /// every account the harness used, read over gRPC, against the deposits the harness made.
    pub async fn assert_ledger(&self) {
        let (deposits, accounts) = {
            let books = self.books.lock().expect("books");
            (books.deposits, books.accounts.clone())
        };
        let (treasury, recorded) = {
            let market = self.handle.state.market();
            if let Err((held, deposits)) = market.check_ledger() {
                panic!("ledger out of balance: {held} held, {deposits} deposited");
            }
            (market.ledger().treasury.get(), market.ledger().deposits.get())
        };
        assert_eq!(recorded, deposits, "the network's deposits differ from the faucet calls");
        let mut held = treasury;
        for address in accounts {
            let a = self.account(&address).await;
            held += super::amount(&a.balance) + super::amount(&a.locked);
            if let Some(p) = a.prover {
                held += super::amount(&p.stake);
            }
        }
        assert_eq!(held, deposits, "balances + locks + stakes + treasury != deposits");
    }

    // --- reading ---

    /// The account at `address`.
    pub async fn account(&self, address: &Address) -> proto::Account {
        self.client.account(address).await.expect("GetAccount")
    }

    /// The next nonce of `address`.
    pub async fn nonce(&self, address: &Address) -> u64 {
        self.account(address).await.nonce
    }

    /// The spendable balance of `address`.
    pub async fn balance(&self, address: &Address) -> u128 {
        super::amount(&self.account(address).await.balance)
    }

    /// The request `id`.
    pub async fn get(&self, id: &RequestId) -> proto::ProofRequest {
        self.client.proof_request(id).await.expect("GetProofRequest")
    }

    /// A subscription to every event.
    pub async fn events(&self) -> Events {
        self.events_for(proto::SubscribeRequestsRequest::default()).await
    }

    /// A subscription to the events `filter` passes.
    pub async fn events_for(&self, filter: proto::SubscribeRequestsRequest) -> Events {
        Events(self.client.subscribe(filter).await.expect("subscribe"))
    }

    /// Waits until request `id` satisfies `done`, at most [`WAIT`], driven by the event stream
    /// ([`NetworkClient::wait_until`]); `what` names the wait when it times out.
    pub async fn wait_until(
        &self,
        id: &RequestId,
        what: &str,
        done: impl FnMut(&proto::ProofRequest) -> bool,
    ) -> proto::ProofRequest {
        self.wait_until_within(WAIT, id, what, done).await
    }

    /// [`Self::wait_until`], waiting up to `within`.
    pub async fn wait_until_within(
        &self,
        within: Duration,
        id: &RequestId,
        what: &str,
        done: impl FnMut(&proto::ProofRequest) -> bool,
    ) -> proto::ProofRequest {
        let filter = proto::SubscribeRequestsRequest::default();
        tokio::time::timeout(within, self.client.wait_until(id, filter, done))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what} ({id})"))
            .unwrap_or_else(|e| panic!("waiting for {what} ({id}): {e}"))
    }

    // --- signing ---

    /// Seals `body` with the signer's current nonce, read from the network (so that calls
    /// made by hand and through [`Self::client`] may alternate).
    pub async fn sign<B: SignedBody>(
        &self,
        signer: &Signer,
        with_nonce: impl FnOnce(u64) -> B,
    ) -> SignedMessage {
        let nonce = self.nonce(&signer.address()).await;
        seal(signer, &self.domain, &with_nonce(nonce))
    }

    // --- actors ---

    /// The requester client library acting for `signer` on this network: what a requester's
    /// program uses to submit, wait, and fetch and verify proofs.
    pub fn requester(&self, signer: &Signer) -> provernet_client::Requester {
        let (client, artifacts) = (self.client.clone(), self.artifacts.clone());
        provernet_client::Requester::from_parts(client, artifacts, Some(signer.clone()))
    }

    /// Records an account the ledger check should add up.
    pub fn track(&self, address: Address) {
        self.books.lock().expect("books").accounts.insert(address);
    }

    /// Credits `amount` to the signer through the faucet, and records it for the ledger check.
    pub async fn faucet(&self, signer: &Signer, amount: u128) {
        let message = self
            .sign(signer, |nonce| proto::FaucetBody { nonce, amount: amount.to_string() })
            .await;
        self.rpc().faucet(message).await.expect("Faucet");
        let mut books = self.books.lock().expect("books");
        books.deposits += amount;
        books.accounts.insert(signer.address());
    }

    /// A new account with [`FUNDS`].
    pub async fn funded(&self) -> Signer {
        let signer = Signer::random();
        self.faucet(&signer, FUNDS).await;
        signer
    }

    /// A new prover with [`STAKE`] and a separate operator key.
    pub async fn prover(&self) -> Prover {
        self.prover_with_stake(STAKE).await
    }

    /// A new prover with `stake` and a separate operator key.
    pub async fn prover_with_stake(&self, stake: u128) -> Prover {
        let owner = self.funded().await;
        let operator = Signer::random();
        self.track(operator.address());
        self.register_prover(&owner, stake, &operator.address()).await;
        Prover { owner, operator }
    }

    /// Registers the funded `owner` as a prover with `stake`, bidding through `operator`.
    pub async fn register_prover(&self, owner: &Signer, stake: u128, operator: &Address) {
        let message = self
            .sign(owner, |nonce| proto::RegisterProverBody {
                nonce,
                stake: stake.to_string(),
                operator: operator.as_bytes().to_vec(),
            })
            .await;
        self.rpc().register_prover(message).await.expect("RegisterProver");
    }

    /// Uploads `bytes` through a presigned URL; returns the artifact id.
    pub async fn upload(
        &self,
        signer: &Signer,
        bytes: &[u8],
        kind: proto::ArtifactKind,
    ) -> ArtifactId {
        let id = ArtifactId::of(bytes);
        let message = self
            .sign(signer, |nonce| proto::PresignArtifactUploadBody {
                nonce,
                artifact_id: id.as_bytes().to_vec(),
                kind: kind as i32,
                size: bytes.len() as u64,
            })
            .await;
        let url = self
            .rpc()
            .presign_artifact_upload(message)
            .await
            .expect("PresignArtifactUpload")
            .into_inner()
            .url;
        let receipt = self
            .artifacts
            .upload_bytes(&url, bytes::Bytes::copy_from_slice(bytes))
            .await
            .expect("upload");
        assert_eq!(receipt.id, id);
        id
    }

    /// Downloads a public artifact, verified against its id.
    pub async fn download_public(&self, id: &ArtifactId) -> Vec<u8> {
        self.artifacts
            .download_to_vec(&public_url(&self.artifacts_url, id), id, None)
            .await
            .expect("download")
            .to_vec()
    }

    /// Uploads and registers `sample`'s program and uploads its inputs (private or not).
    pub async fn program(&self, signer: &Signer, sample: &Sample, private: bool) -> Program {
        let (source, inputs) = (sample.source.as_bytes(), sample.inputs.as_bytes());
        self.program_of(signer, sample.name, MIDEN, source, inputs, private).await
    }

    /// Uploads and registers `program` (of `zkvm_version`) under `name` and uploads `inputs`;
    /// a program someone registered already is taken as it is.
    pub async fn program_of(
        &self,
        signer: &Signer,
        name: &str,
        zkvm_version: &str,
        program: &[u8],
        inputs: &[u8],
        private: bool,
    ) -> Program {
        let artifact_id = self.upload(signer, program, proto::ArtifactKind::Program).await;
        let message = self
            .sign(signer, |nonce| proto::RegisterProgramBody {
                nonce,
                name: name.into(),
                zkvm_version: zkvm_version.into(),
                program_artifact_id: artifact_id.as_bytes().to_vec(),
            })
            .await;
        let program_id = match self.rpc().register_program(message).await {
            Ok(response) => response.into_inner().program.expect("program").program_id,
            // Another flow on the same network registered it first.
            Err(status) if status.code() == Code::AlreadyExists => {
                let backend =
                    ZkVmRegistry::with_default_backends().get(zkvm_version).expect("zkvm");
                backend.program_id(program).expect("program id").as_bytes().to_vec()
            }
            Err(status) => panic!("RegisterProgram: {status:?}"),
        };
        let kind =
            if private { proto::ArtifactKind::PrivateInputs } else { proto::ArtifactKind::Inputs };
        let inputs_id = self.upload(signer, inputs, kind).await;
        Program {
            program_id,
            zkvm_version: zkvm_version.into(),
            artifact_id,
            source: program.to_vec(),
            inputs: inputs.to_vec(),
            inputs_id,
            private,
        }
    }

    /// Asks for a proof of `spec`; returns its id.
    pub async fn request(&self, signer: &Signer, spec: &RequestSpec) -> RequestId {
        let message = self.sign(signer, |nonce| spec.to_body(nonce)).await;
        let response = self.rpc().request_proof(message).await.expect("RequestProof");
        RequestId::from_slice(&response.into_inner().request_id).expect("request id")
    }

    /// Bids `price` per PGU for `prover`, signed by its operator.
    ///
    /// # Errors
    /// The network's refusal.
    pub async fn bid(&self, prover: &Prover, id: &RequestId, price: u128) -> Result<(), Status> {
        let message = self.sign(&prover.operator, |nonce| bid_body(nonce, id, prover, price)).await;
        self.rpc().bid(message).await.map(drop)
    }

    /// Submits `bundle` for `prover`, signed by its operator.
    ///
    /// # Errors
    /// The network's refusal.
    pub async fn fulfill(
        &self,
        prover: &Prover,
        id: &RequestId,
        bundle: Vec<u8>,
    ) -> Result<proto::FulfillProofResponse, Status> {
        let message = self
            .sign(&prover.operator, |nonce| proto::FulfillProofBody {
                nonce,
                request_id: id.as_bytes().to_vec(),
                prover: prover.address().as_bytes().to_vec(),
                proof: Some(proto::fulfill_proof_body::Proof::ProofBytes(bundle)),
            })
            .await;
        self.rpc().fulfill_proof(message).await.map(tonic::Response::into_inner)
    }

    /// Asks for a URL to read `artifact` of request `id`, as `signer`.
    ///
    /// # Errors
    /// The network's refusal.
    pub async fn presign_download(
        &self,
        signer: &Signer,
        id: &RequestId,
        artifact: &ArtifactId,
    ) -> Result<String, Status> {
        let message = self
            .sign(signer, |nonce| proto::PresignArtifactDownloadBody {
                nonce,
                artifact_id: artifact.as_bytes().to_vec(),
                request_id: id.as_bytes().to_vec(),
            })
            .await;
        self.rpc().presign_artifact_download(message).await.map(|r| r.into_inner().url)
    }
}

/// `127.0.0.1:0`: a port the system chooses.
fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The body of a bid.
pub fn bid_body(nonce: u64, id: &RequestId, prover: &Prover, price: u128) -> proto::BidBody {
    proto::BidBody {
        nonce,
        request_id: id.as_bytes().to_vec(),
        price_per_pgu: price.to_string(),
        prover: prover.address().as_bytes().to_vec(),
    }
}

/// A prover: the owner account that stakes and is paid, and the operator key that signs.
pub struct Prover {
    /// The owner (its address is the prover's).
    pub owner: Signer,
    /// The operator key, which bids and submits.
    pub operator: Signer,
}

impl Prover {
    /// The prover's address (its owner's).
    pub fn address(&self) -> Address {
        self.owner.address()
    }
}

/// A registered program with uploaded inputs.
#[derive(Debug, Clone)]
pub struct Program {
    /// The program id the network registered.
    pub program_id: Vec<u8>,
    /// Its zkVM version.
    pub zkvm_version: String,
    /// The program's artifact.
    pub artifact_id: ArtifactId,
    /// The program's bytes.
    pub source: Vec<u8>,
    /// The inputs' bytes.
    pub inputs: Vec<u8>,
    /// The inputs' artifact.
    pub inputs_id: ArtifactId,
    /// Whether the inputs are private.
    pub private: bool,
}

impl Program {
    /// A request for this program: deadline in 60 s, 2^16 PGUs at most 10 per PGU, base fee
    /// 1,000, auction period `period` seconds.
    pub fn spec(&self, period: u64) -> RequestSpec {
        RequestSpec {
            program_id: self.program_id.clone(),
            zkvm_version: self.zkvm_version.clone(),
            program_artifact_id: self.artifact_id,
            inputs_artifact_id: self.inputs_id,
            inputs_private: self.private,
            deadline: now_secs() + 60,
            gas_limit: 1 << 16,
            max_price_per_pgu: Amount::new(10),
            base_fee: Amount::new(1_000),
            min_auction_period: period,
            whitelist: Vec::new(),
            expected_outputs_hash: None,
            proof_mode: String::new(),
        }
    }

    /// Proves the program on `inputs` locally, as a prover node would; returns the bundle.
    pub async fn prove(&self, inputs: Vec<u8>) -> Vec<u8> {
        let job = ProveJob {
            program: self.source.clone().into(),
            inputs: inputs.into(),
            gas_limit: 1 << 16,
            mode: ProofMode::Default,
        };
        tokio::task::spawn_blocking(move || {
            let backend = MidenBackend::new();
            let proof = backend.prove(&job, &CancellationToken::new(), &|_| {}).expect("prove");
            ProofBundle::new(backend.version(), proof).encode()
        })
        .await
        .expect("prover thread")
    }
}
