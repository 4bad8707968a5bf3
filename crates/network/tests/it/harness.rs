//! The harness: a real network ([`launch`]) on loopback listeners with its data in a temp dir,
//! a gRPC client, actors that sign, an event stream to wait on, and a ledger check on shutdown.

use std::{
    collections::BTreeSet,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use provernet_artifacts::{ArtifactClient, public_url};
use provernet_network::{NetworkConfig, NetworkHandle, launch};
use provernet_types::{
    Address, Amount, ArtifactId, Domain, RequestId, RequestSpec, SignedBody, Signer,
    proto::{
        self, SignedMessage, prover_network_client::ProverNetworkClient, request_event::Event,
    },
    seal,
};
use provernet_zkvm::{
    MidenBackend, ProofBundle, ProofMode, ProveJob, ZkVm, ZkVmRegistry,
    samples::{FIB, Sample},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    Code, Status,
    transport::{Channel, Endpoint},
};

/// The network id every test network signs under.
pub const NETWORK_ID: &str = "provernet-test";
/// The ArtifactStore's HMAC secret.
const SECRET: &str = "a-secret-of-at-least-16-bytes";
/// The longest wait for one expected event (a loaded 2-core machine, short of a hang).
pub const WAIT: Duration = Duration::from_secs(20);
/// Every test's bound.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(50);
/// The Miden version string.
pub const MIDEN: &str = "miden-0.23";
/// What every funded actor gets from the faucet.
pub const FUNDS: u128 = 10_000_000_000;
/// The stake provers register with.
pub const STAKE: u128 = 1_000_000_000;

/// Runs `test` bounded by [`TEST_TIMEOUT`].
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test).await.expect("the test did not finish in time");
}

/// Set to `postgres` to run this suite against PostgreSQL (at `PROVERNET_TEST_POSTGRES_URL`)
/// instead of SQLite; `.ci/run` runs it both ways.
pub const ENGINE_ENV: &str = "PROVERNET_TEST_NETWORK_DB";

/// The database URL for a new test network: a SQLite file in `dir`, or a fresh PostgreSQL
/// database when [`ENGINE_ENV`] is `postgres` (left for the CI machine to discard).
async fn database_url(dir: &std::path::Path) -> String {
    if std::env::var(ENGINE_ENV).as_deref() != Ok("postgres") {
        return format!("sqlite://{}", dir.join("network.db").display());
    }
    postgres_database().await
}

/// A fresh PostgreSQL database on the server at `PROVERNET_TEST_POSTGRES_URL` (left for the CI
/// machine to discard).
async fn postgres_database() -> String {
    use sqlx::Connection;
    let admin = std::env::var("PROVERNET_TEST_POSTGRES_URL")
        .expect("this test needs PostgreSQL: set PROVERNET_TEST_POSTGRES_URL");
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("pn_it_{}_{nanos}_{n}", std::process::id());
    let mut connection = sqlx::PgConnection::connect(&admin).await.expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .expect("create a test database");
    let mut url = url::Url::parse(&admin).expect("PostgreSQL URL");
    url.set_path(&name);
    url.to_string()
}

/// What the harness knows independently of the network: every deposit it made and every
/// account it used, to check the ledger from the outside.
#[derive(Debug, Default)]
pub struct Books {
    deposits: u128,
    accounts: BTreeSet<Address>,
}

/// A stopped network: its data dir (deleted when dropped), config and books.
pub struct Stopped {
    dir: Arc<tempfile::TempDir>,
    database_url: String,
    tweak: fn(&mut NetworkConfig),
    books: Arc<Mutex<Books>>,
}

/// A running network and a client of it.
pub struct Net {
    pub handle: NetworkHandle,
    pub domain: Domain,
    pub artifacts: ArtifactClient,
    pub artifacts_url: String,
    client: ProverNetworkClient<Channel>,
    cancel: CancellationToken,
    dir: Arc<tempfile::TempDir>,
    database_url: String,
    tweak: fn(&mut NetworkConfig),
    books: Arc<Mutex<Books>>,
}

impl Net {
    /// A network with the default local config.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A network with the local config changed by `tweak`.
    pub async fn start_with(tweak: fn(&mut NetworkConfig)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let database_url = database_url(dir.path()).await;
        Self::launch_in(dir, database_url, tweak, Arc::default()).await
    }

    /// A network on a fresh PostgreSQL database, whatever [`ENGINE_ENV`] says.
    pub async fn start_on_postgres() -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let database_url = postgres_database().await;
        Self::launch_in(dir, database_url, |_| {}, Arc::default()).await
    }

    /// Another network process on this one's database and artifact storage (hot standby: on
    /// PostgreSQL it stands by while this one leads), sharing the harness's books.
    pub async fn another_process(&self) -> Self {
        Self::launch_in(self.dir.clone(), self.database_url.clone(), self.tweak, self.books.clone())
            .await
    }

    async fn launch_in(
        dir: Arc<tempfile::TempDir>,
        database_url: String,
        tweak: fn(&mut NetworkConfig),
        books: Arc<Mutex<Books>>,
    ) -> Self {
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind gRPC");
        let artifacts = TcpListener::bind("127.0.0.1:0").await.expect("bind artifacts");
        let artifacts_url = format!("http://{}", artifacts.local_addr().expect("address"));
        let mut config = NetworkConfig::local(dir.path(), NETWORK_ID, &artifacts_url, SECRET);
        config.database_url = database_url.clone();
        tweak(&mut config);
        let cancel = CancellationToken::new();
        let handle = launch(config, grpc, artifacts, cancel.clone()).await.expect("launch");
        let channel = Endpoint::from_shared(format!("http://{}", handle.grpc_addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let client = ProverNetworkClient::new(channel).max_decoding_message_size(64 << 20);
        Self {
            handle,
            domain: Domain::new(NETWORK_ID),
            artifacts: ArtifactClient::new().expect("artifact client"),
            artifacts_url,
            client,
            cancel,
            dir,
            database_url,
            tweak,
            books,
        }
    }

    /// A client (cheap clone of the channel).
    pub fn rpc(&self) -> ProverNetworkClient<Channel> {
        self.client.clone()
    }

    /// Checks the ledger (inside and from the outside), cancels and waits for every task.
    pub async fn stop(self) -> Stopped {
        self.assert_ledger().await;
        let Self { handle, cancel, dir, database_url, tweak, books, client, .. } = self;
        drop(client);
        cancel.cancel();
        tokio::time::timeout(WAIT, handle.join).await.expect("shut down in time").expect("join");
        Stopped { dir, database_url, tweak, books }
    }

    /// Stops the network and launches it again on the same data dir, on new listeners.
    pub async fn restart(self) -> Self {
        let Stopped { dir, database_url, tweak, books } = self.stop().await;
        Self::launch_in(dir, database_url, tweak, books).await
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
            held += amount(&a.balance) + amount(&a.locked);
            if let Some(p) = a.prover {
                held += amount(&p.stake);
            }
        }
        assert_eq!(held, deposits, "balances + locks + stakes + treasury != deposits");
    }

    // --- reading ---

    pub async fn account(&self, address: &Address) -> proto::Account {
        self.rpc()
            .get_account(proto::GetAccountRequest { address: address.as_bytes().to_vec() })
            .await
            .expect("GetAccount")
            .into_inner()
            .account
            .expect("account")
    }

    pub async fn nonce(&self, address: &Address) -> u64 {
        self.account(address).await.nonce
    }

    pub async fn balance(&self, address: &Address) -> u128 {
        amount(&self.account(address).await.balance)
    }

    pub async fn get(&self, id: &RequestId) -> proto::ProofRequest {
        self.rpc()
            .get_proof_request(proto::GetProofRequestRequest { request_id: id.as_bytes().to_vec() })
            .await
            .expect("GetProofRequest")
            .into_inner()
            .request
            .expect("request")
    }

    /// A subscription to every event.
    pub async fn events(&self) -> Events {
        self.events_for(proto::SubscribeRequestsRequest::default()).await
    }

    pub async fn events_for(&self, filter: proto::SubscribeRequestsRequest) -> Events {
        Events(self.rpc().subscribe_requests(filter).await.expect("subscribe").into_inner())
    }

    // --- signing ---

    /// Seals `body` with the signer's current nonce (set by `with_nonce`).
    pub async fn sign<B: SignedBody>(
        &self,
        signer: &Signer,
        with_nonce: impl FnOnce(u64) -> B,
    ) -> SignedMessage {
        let nonce = self.nonce(&signer.address()).await;
        seal(signer, &self.domain, &with_nonce(nonce))
    }

    // --- actors ---

    /// Records an account the ledger check should add up.
    pub fn track(&self, address: Address) {
        self.books.lock().expect("books").accounts.insert(address);
    }

    /// Credits `amount` to the signer through the faucet.
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
        let message = self
            .sign(&owner, |nonce| proto::RegisterProverBody {
                nonce,
                stake: stake.to_string(),
                operator: operator.address().as_bytes().to_vec(),
            })
            .await;
        self.rpc().register_prover(message).await.expect("RegisterProver");
        Prover { owner, operator }
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

    /// Uploads and registers `program` (of `zkvm_version`) and uploads `inputs`.
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
    pub async fn bid(&self, prover: &Prover, id: &RequestId, price: u128) -> Result<(), Status> {
        let message = self.sign(&prover.operator, |nonce| bid_body(nonce, id, prover, price)).await;
        self.rpc().bid(message).await.map(drop)
    }

    /// Submits `bundle` for `prover`, signed by its operator.
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

    /// Waits, on `events` (subscribed before the change could happen), until request `id`
    /// satisfies `done`; checks the stored request once first and again after each of its
    /// events.
    pub async fn wait_until(
        &self,
        events: &mut Events,
        id: &RequestId,
        what: &str,
        done: impl Fn(&proto::ProofRequest) -> bool,
    ) -> proto::ProofRequest {
        loop {
            let request = self.get(id).await;
            if done(&request) {
                return request;
            }
            events.next_about(id, what).await;
        }
    }
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
    pub owner: Signer,
    pub operator: Signer,
}

impl Prover {
    pub fn address(&self) -> Address {
        self.owner.address()
    }
}

/// A registered program with uploaded inputs.
#[derive(Clone)]
pub struct Program {
    pub program_id: Vec<u8>,
    pub zkvm_version: String,
    pub artifact_id: ArtifactId,
    pub source: Vec<u8>,
    pub inputs: Vec<u8>,
    pub inputs_id: ArtifactId,
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

/// The fib sample (the default program of these tests).
pub const DEFAULT_SAMPLE: Sample = FIB;

/// A stream of events.
pub struct Events(pub tonic::Streaming<proto::RequestEvent>);

impl Events {
    /// The next event about `id`, within [`WAIT`].
    pub async fn next_about(&mut self, id: &RequestId, what: &str) -> Event {
        let wait = async {
            loop {
                let event = self.0.message().await.expect("event stream").expect("stream open");
                if event.request_id == id.as_bytes() {
                    return event.event.expect("event body");
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no event about {id} while waiting for {what}"))
    }

    /// Skips events about `id` until `pick` returns something.
    pub async fn wait_for<T>(
        &mut self,
        id: &RequestId,
        what: &str,
        pick: impl Fn(&Event) -> Option<T>,
    ) -> T {
        loop {
            if let Some(found) = pick(&self.next_about(id, what).await) {
                return found;
            }
        }
    }

    pub async fn executed(&mut self, id: &RequestId) -> proto::RequestExecuted {
        self.wait_for(id, "Executed", |e| match e {
            Event::Executed(x) => Some(x.clone()),
            Event::Unexecutable(x) => panic!("request {id} is unexecutable: {}", x.reason),
            _ => None,
        })
        .await
    }

    /// Waits until every request of `ids` is executed, in whatever order: requests execute
    /// concurrently, and [`Events::executed`] on one skips the others' events.
    pub async fn executed_each(&mut self, ids: &[RequestId]) {
        let mut waiting: Vec<&RequestId> = ids.iter().collect();
        let wait = async {
            while !waiting.is_empty() {
                let event = self.0.message().await.expect("event stream").expect("stream open");
                let id = event.request_id.as_slice();
                match event.event.expect("event body") {
                    Event::Executed(_) => waiting.retain(|w| w.as_bytes() != id),
                    Event::Unexecutable(x) => panic!("a request is unexecutable: {}", x.reason),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("not every request executed: {ids:?}"));
    }

    /// The verifier's verdict on the proof just submitted for `id`: `Ok` once it is fulfilled,
    /// `Err(reason)` once the proof is rejected.
    pub async fn verdict(&mut self, id: &RequestId) -> Result<(), String> {
        self.wait_for(id, "the verifier's verdict", |e| match e {
            Event::Fulfilled(_) => Some(Ok(())),
            Event::ProofRejected(r) => Some(Err(r.reason.clone())),
            _ => None,
        })
        .await
    }

    pub async fn assigned(&mut self, id: &RequestId) -> proto::RequestAssigned {
        self.wait_for(id, "Assigned", |e| match e {
            Event::Assigned(x) => Some(x.clone()),
            _ => None,
        })
        .await
    }
}

/// Parses a decimal amount from the wire (empty means 0).
pub fn amount(text: &str) -> u128 {
    if text.is_empty() { 0 } else { text.parse().expect("decimal amount") }
}

pub fn now_secs() -> u64 {
    provernet_network::service::now_ms() / 1000
}

/// Asserts `result` failed with `code` and a message containing `says`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, says: &str) {
    match result {
        Ok(value) => panic!("expected {code:?} ({says}), got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "wrong code: {status:?}");
            assert!(
                status.message().contains(says),
                "message {:?} does not say {says:?}",
                status.message()
            );
        }
    }
}
