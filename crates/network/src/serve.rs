//! [`launch`]: the ProverNetwork wired on given listeners — store, market, executor, timers,
//! the gRPC service (with health and reflection) and the embedded ArtifactStore — leading, or
//! standing by until it leads ([`Role`]).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use provernet_artifacts::{ArtifactServer, ArtifactStoreConfig};
use provernet_types::{
    proto::prover_network_server::ProverNetworkServer,
    succinct::proto::{
        artifact::artifact_store_server::ArtifactStoreServer,
        network::prover_network_server::ProverNetworkServer as SuccinctNetworkServer,
    },
};
use provernet_zkvm::ZkVmRegistry;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    NetworkConfig,
    leader::{self, Leadership},
    market::{Market, Snapshot},
    service::{
        Background, NetworkService, NetworkState, StandbyGateLayer, succinct::SuccinctService,
    },
    store::{Followed, SqlStore, StoreError, StoreWriter, journal},
};

/// Why the network could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The database could not be opened or loaded.
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The ArtifactStore could not be set up.
    #[error("artifact store: {0}")]
    Artifacts(String),
    /// A listener has no local address.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS certificate or key cannot serve.
    #[error("{0}")]
    Tls(String),
    /// Stopped while standing by (another network process led the database throughout).
    #[error("stopped while standing by: another network process leads the database")]
    StoodBy,
    /// The bid for the lead failed.
    #[error("bidding for the lead: {0}")]
    Lead(String),
}

/// What this process does in the network's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Another process leads: this one follows its journal, serves reads and subscriptions,
    /// and refuses operations ([`crate::service::standby_refusal`]).
    StandingBy,
    /// This process applies operations: at this leader epoch on PostgreSQL (`None` on SQLite,
    /// where a network is one process).
    Leading {
        /// The epoch every commit is fenced by.
        epoch: Option<i64>,
    },
}

/// A running network.
pub struct NetworkHandle {
    /// The gRPC address.
    pub grpc_addr: SocketAddr,
    /// The ArtifactStore's HTTP address.
    pub artifacts_addr: SocketAddr,
    /// The shared state (for tests and the devnet).
    pub state: Arc<NetworkState>,
    /// Whether this process leads; changes once, when a standby takes over.
    pub role: watch::Receiver<Role>,
    /// Finishes when every task has stopped after `cancel`.
    pub join: JoinHandle<()>,
}

/// Where the embedded ArtifactStore listens.
#[derive(Debug)]
pub enum ArtifactsListener {
    /// On this listener, from the start.
    Bound(TcpListener),
    /// Bound at this address once this process leads (at once if it leads from the start):
    /// the processes of one network on one host then share the address handed to clients,
    /// which the leader serves.
    WhenLeading(SocketAddr),
}

impl From<TcpListener> for ArtifactsListener {
    fn from(listener: TcpListener) -> Self {
        Self::Bound(listener)
    }
}

/// How long a new leader tries to bind the ArtifactStore's shared address (the last leader's
/// socket may take a moment to go).
const ARTIFACTS_BIND_PATIENCE: Duration = Duration::from_secs(10);

/// The embedded ArtifactStore, ready to serve on a listener.
struct ArtifactsService {
    server: ArtifactServer,
    /// Routes beside the store's own (the Succinct API's upload slots).
    routes: axum::Router,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

impl ArtifactsService {
    /// Serves on `listener` until `cancel` fires.
    fn spawn(
        self,
        listener: TcpListener,
        cancel: CancellationToken,
    ) -> Result<JoinHandle<Result<(), provernet_artifacts::ServerError>>, LaunchError> {
        let shutdown = async move { cancel.cancelled().await };
        Ok(match self.tls {
            Some(rustls) => {
                let listener = provernet_artifacts::TlsListener::new(listener, rustls)?;
                tokio::spawn(provernet_artifacts::serve_with(
                    listener,
                    self.server,
                    self.routes,
                    shutdown,
                ))
            }
            None => tokio::spawn(provernet_artifacts::serve_with(
                listener,
                self.server,
                self.routes,
                shutdown,
            )),
        })
    }
}

/// Who holds the leadership, for operators reading `network_leader`.
pub fn holder(grpc: &str) -> String {
    format!("pid {} serving {grpc}", std::process::id())
}

/// How often a standby tries to load the market while the database has none yet (the leader
/// is creating the schema) or cannot be reached.
const STANDBY_RETRY: Duration = Duration::from_millis(500);

/// Starts the network on `grpc` and `artifacts` listeners; it runs until `cancel` fires.
///
/// On PostgreSQL, several processes may share the database ([`crate::leader`]): the first leads;
/// the others stand by, serving reads and subscriptions from the leader's journal (their health
/// check reports the `ProverNetwork` service NOT_SERVING, and operations are refused), and take
/// over when the leader is gone. [`NetworkHandle::role`] says which.
///
/// # Errors
/// A database that cannot be opened or loaded, or an ArtifactStore that cannot be set up.
pub async fn launch(
    config: NetworkConfig,
    grpc: TcpListener,
    artifacts: impl Into<ArtifactsListener>,
    cancel: CancellationToken,
) -> Result<NetworkHandle, LaunchError> {
    let artifacts = artifacts.into();
    crate::metrics::describe();
    // Before anything starts: a certificate or key that cannot serve is refused up front.
    let tls = match &config.tls {
        Some(identity) => {
            // tonic's TLS server takes the process's rustls provider.
            provernet_artifacts::install_default_crypto_provider();
            let rustls = identity.server_config().map_err(|e| LaunchError::Tls(e.to_string()))?;
            let tonic = tonic::transport::ServerTlsConfig::new().identity(
                tonic::transport::Identity::from_pem(&identity.cert_pem, &identity.key_pem),
            );
            Some((rustls, tonic))
        }
        None => None,
    };
    let grpc_addr = grpc.local_addr()?;
    let artifacts_addr = match &artifacts {
        ArtifactsListener::Bound(listener) => listener.local_addr()?,
        ArtifactsListener::WhenLeading(addr) => *addr,
    };
    let opened = open(&config, &grpc_addr.to_string(), &cancel).await?;
    let requests = opened.market.requests().count();
    let role = match &opened.start {
        Start::Leading { leadership, .. } => {
            Role::Leading { epoch: leadership.as_ref().map(Leadership::epoch) }
        }
        Start::StandingBy { .. } => Role::StandingBy,
    };
    let (role_tx, role_rx) = watch::channel(role);

    let mut artifact_config =
        ArtifactStoreConfig::new(&config.artifact_storage, &config.artifact_secret);
    artifact_config.max_artifact_bytes = config.max_artifact_bytes;
    let artifact_server =
        ArtifactServer::new(&artifact_config).map_err(|e| LaunchError::Artifacts(e.to_string()))?;

    let zkvms = ZkVmRegistry::with_default_backends();
    let (state, work_rx) = NetworkState::new(
        config.clone(),
        opened.market,
        opened.reads,
        None,
        artifact_server.clone(),
        zkvms,
    );
    let background = Background::new(state.clone(), work_rx);
    tracing::info!(target: "provernet::network", %grpc_addr, %artifacts_addr, requests, network_id = %config.network_id, ?role, "network listening");

    let succinct = config.succinct.clone().map(|c| SuccinctService::new(state.clone(), c));
    let mut artifacts_service = Some(ArtifactsService {
        server: artifact_server,
        routes: succinct.as_ref().map(SuccinctService::routes).unwrap_or_default(),
        tls: tls.as_ref().map(|(rustls, _)| rustls.clone()),
    });
    let artifacts_task = match artifacts {
        ArtifactsListener::Bound(listener) => match artifacts_service.take() {
            Some(service) => Some(service.spawn(listener, cancel.clone())?),
            None => None,
        },
        ArtifactsListener::WhenLeading(_) => None,
    };

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // SERVING once this process leads: clients of several addresses send calls to the leader.
    health_reporter.set_not_serving::<ProverNetworkServer<NetworkService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(provernet_types::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| LaunchError::Artifacts(format!("reflection: {e}")))?;
    let service = ProverNetworkServer::new(NetworkService::new(state.clone()))
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    // The Succinct API on the same port (SP1's SDK uses one channel for both of its services);
    // without it, its paths answer UNIMPLEMENTED like any unknown service.
    let (succinct_network, succinct_artifacts) = match succinct {
        Some(s) => (
            Some(
                SuccinctNetworkServer::new(s.clone())
                    .max_decoding_message_size(config.max_message_bytes)
                    .max_encoding_message_size(config.max_message_bytes),
            ),
            Some(ArtifactStoreServer::new(s)),
        ),
        None => (None, None),
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some((_, tonic)) = tls {
        builder = builder.tls_config(tonic).map_err(|e| LaunchError::Tls(e.to_string()))?;
    }
    let stop = cancel.clone();
    let grpc_task = tokio::spawn(
        builder
            .timeout(config.request_timeout)
            .layer(StandbyGateLayer::new(state.clone()))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(service)
            .add_optional_service(succinct_network)
            .add_optional_service(succinct_artifacts)
            // Small messages (bids, events) must not wait for Nagle's algorithm and the peer's
            // delayed ACK (~40 ms on Linux).
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
                async move { stop.cancelled().await },
            ),
    );

    let leading = Leading {
        state: state.clone(),
        background,
        health: health_reporter,
        role_tx,
        artifacts: artifacts_service.map(|service| (service, artifacts_addr)),
    };
    let role_task = match opened.start {
        // Led before the handle is returned: the caller's first call is applied, not refused.
        Start::Leading { store, leadership } => {
            leading.lead(store, leadership, cancel.clone()).await
        }
        Start::StandingBy { bid, followed } => {
            tokio::spawn(leading.stand_by(bid, state.store().clone(), followed, cancel.clone()))
        }
    };
    let join = tokio::spawn(async move {
        if let Ok(Err(e)) = grpc_task.await {
            tracing::error!(target: "provernet::network", %e, "gRPC server failed");
        }
        if let Some(task) = artifacts_task
            && let Ok(Err(e)) = task.await
        {
            tracing::error!(target: "provernet::network", %e, "artifact store failed");
        }
        let _ = role_task.await;
    });
    Ok(NetworkHandle { grpc_addr, artifacts_addr, state, role: role_rx, join })
}

/// The store and market a process starts with, and how it starts.
struct Opened {
    /// The store the service reads the history from.
    reads: SqlStore,
    /// The market as loaded.
    market: Market,
    start: Start,
}

/// How a process starts: leading, or standing by.
enum Start {
    /// It leads at once (the database was free, or SQLite): `store` is fenced by the epoch.
    Leading { store: SqlStore, leadership: Option<Leadership> },
    /// Another process leads: this one follows the journal after row `followed` and waits for
    /// `bid` to win the lead (`None`: cancelled first).
    StandingBy { bid: JoinHandle<Result<Option<Leadership>, StoreError>>, followed: i64 },
}

/// Opens the database: on PostgreSQL, bids for the lead and, if another process holds it,
/// opens the database as it is to follow (waiting for the leader to create the schema).
async fn open(
    config: &NetworkConfig,
    grpc: &str,
    cancel: &CancellationToken,
) -> Result<Opened, LaunchError> {
    let url = config.database_url.clone();
    let market_config = config.market.clone();
    if !url.starts_with("postgres") {
        let store = SqlStore::open(&url).await?;
        let market = Market::new(market_config, store.load().await?);
        let start = Start::Leading { store: store.clone(), leadership: None };
        return Ok(Opened { reads: store, market, start });
    }
    let holder = holder(grpc);
    let stop = cancel.clone();
    let bid_url = url.clone();
    let mut bid = tokio::spawn(async move { Leadership::acquire(&bid_url, &holder, &stop).await });
    let lead = |won: Result<Result<Option<Leadership>, StoreError>, tokio::task::JoinError>| async {
        // Opened (and its schema brought up to date) only by a leader: a standby writes
        // nothing. Loaded after the epoch moved on: every commit of the last leader is in.
        let won = won.map_err(|e| LaunchError::Lead(e.to_string()))?;
        let Some(held) = won? else { return Err(LaunchError::StoodBy) };
        let store = SqlStore::open(&url).await?.fenced(held.epoch());
        let market = Market::new(market_config.clone(), store.load().await?);
        let start = Start::Leading { store: store.clone(), leadership: Some(held) };
        Ok(Opened { reads: store, market, start })
    };
    // The lock's first try is at once: a lone network leads without standing by.
    if let Ok(won) = tokio::time::timeout(leader::POLL * 2, &mut bid).await {
        return lead(won).await;
    }
    let mut warned = false;
    loop {
        if bid.is_finished() {
            return lead((&mut bid).await).await;
        }
        match follow_from_scratch(&url).await {
            Ok((reads, snapshot, followed)) => {
                let market = Market::new(market_config.clone(), snapshot);
                return Ok(Opened { reads, market, start: Start::StandingBy { bid, followed } });
            }
            Err(e) => {
                if !warned {
                    warned = true;
                    tracing::warn!(target: "provernet::network", %e, "standby cannot load the market yet (the leader may be creating it): trying again");
                }
                tokio::select! {
                    () = cancel.cancelled() => return Err(LaunchError::StoodBy),
                    () = tokio::time::sleep(STANDBY_RETRY) => {}
                }
            }
        }
    }
}

/// A standby's store, market and journal position ([`load_to_follow`]).
async fn follow_from_scratch(url: &str) -> Result<(SqlStore, Snapshot, i64), StoreError> {
    let reads = SqlStore::open_follower(url).await?;
    let (snapshot, followed) = load_to_follow(&reads).await?;
    Ok((reads, snapshot, followed))
}

/// The market, and the journal row to follow it from: the head is read first, so that the rows
/// after it hold whatever the market lacks.
async fn load_to_follow(reads: &SqlStore) -> Result<(Snapshot, i64), StoreError> {
    let head = reads.journal_head().await?;
    Ok((reads.load().await?, head))
}

/// What a process needs to start leading.
struct Leading {
    state: Arc<NetworkState>,
    background: Background,
    health: tonic_health::server::HealthReporter,
    role_tx: watch::Sender<Role>,
    /// The ArtifactStore, to serve at this address once leading (`None`: serving already).
    artifacts: Option<(ArtifactsService, SocketAddr)>,
}

impl Leading {
    /// Stands by: applies the leader's journal (after row `followed`) as it grows until `bid`
    /// wins the lead, then follows it to its end and leads.
    async fn stand_by(
        self,
        bid: JoinHandle<Result<Option<Leadership>, StoreError>>,
        reads: SqlStore,
        mut followed: i64,
        cancel: CancellationToken,
    ) {
        tokio::pin!(bid);
        let mut failing = false;
        let held = loop {
            tokio::select! {
                joined = &mut bid => match joined {
                    Ok(Ok(Some(held))) => break held,
                    Ok(Ok(None)) => {
                        // Cancelled: the network stops while standing by.
                        self.state.close_streams();
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::error!(target: "provernet::network", %e, "standby cannot bid for the lead: stopping");
                        self.state.close_streams();
                        cancel.cancel();
                        return;
                    }
                    Err(e) => {
                        tracing::error!(target: "provernet::network", %e, "standby's bid for the lead failed: stopping");
                        self.state.close_streams();
                        cancel.cancel();
                        return;
                    }
                },
                () = tokio::time::sleep(journal::FOLLOW_POLL) => {
                    match follow(&self.state, &reads, &mut followed).await {
                        Ok(_) => failing = false,
                        // Said once per outage, not every poll.
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(target: "provernet::network", %e, "standby cannot follow the journal: trying again");
                        }
                        Err(_) => {}
                    }
                }
            }
        };
        // The epoch moved on, so the last leader commits nothing more: what the journal holds
        // now is all there is.
        let store = loop {
            let caught_up = async {
                while follow(&self.state, &reads, &mut followed).await? {}
                SqlStore::open(self.state.config.database_url.as_str()).await
            };
            match caught_up.await {
                Ok(store) => break store.fenced(held.epoch()),
                Err(e) => {
                    tracing::warn!(target: "provernet::network", %e, "new leader cannot read the journal's end: trying again");
                    tokio::select! {
                        () = cancel.cancelled() => {
                            self.state.close_streams();
                            return;
                        }
                        () = tokio::time::sleep(STANDBY_RETRY) => {}
                    }
                }
            }
        };
        tracing::info!(target: "provernet::network", epoch = held.epoch(), followed, "took over from the last leader");
        let _ = self.lead(store, Some(held), cancel).await.await;
    }

    /// Takes the lead: once this returns, operations are applied. The task returned holds it
    /// until `cancel` fires (or the lead is lost, or the store fails, which cancel it): the
    /// writer, the background tasks, the proof retention, and the lead.
    async fn lead(
        self,
        store: SqlStore,
        leadership: Option<Leadership>,
        cancel: CancellationToken,
    ) -> JoinHandle<()> {
        let artifacts_task = match self.artifacts {
            Some((service, addr)) => match bind_patiently(addr, &cancel).await {
                Ok(listener) => match service.spawn(listener, cancel.clone()) {
                    Ok(task) => Some(task),
                    Err(e) => {
                        tracing::error!(target: "provernet::network", %e, %addr, "cannot serve the artifact store: stopping");
                        cancel.cancel();
                        None
                    }
                },
                Err(e) => {
                    tracing::error!(target: "provernet::network", %e, %addr, "cannot listen for the artifact store: stopping");
                    cancel.cancel();
                    None
                }
            },
            None => None,
        };
        let (writer, writer_task) = StoreWriter::spawn(store, cancel.child_token());
        self.state.lead(writer);
        self.background.restore();
        let background_task = tokio::spawn(self.background.run(cancel.clone()));
        if let Some(keep) = self.state.config.proof_retention {
            tokio::spawn(crate::service::retention::run(
                self.state.clone(),
                keep,
                self.state.config.retention_interval,
                cancel.clone(),
            ));
        }
        self.health.set_serving::<ProverNetworkServer<NetworkService>>().await;
        let epoch = leadership.as_ref().map(Leadership::epoch);
        self.role_tx.send_replace(Role::Leading { epoch });
        // Released after the writer's last commit, so a standby follows every one of them.
        let release = CancellationToken::new();
        let leader_task =
            leadership.map(|held| tokio::spawn(held.hold(release.clone(), cancel.clone())));
        tokio::spawn(async move {
            // A failed write leaves memory ahead of the database: stop, and reload on restart.
            if let Ok(Err(e)) = writer_task.await {
                tracing::error!(target: "provernet::network", %e, "store writer failed: shutting down; restart to reload from the database");
                cancel.cancel();
            }
            let _ = background_task.await;
            if let Some(task) = artifacts_task
                && let Ok(Err(e)) = task.await
            {
                tracing::error!(target: "provernet::network", %e, "artifact store failed");
            }
            release.cancel();
            if let Some(task) = leader_task {
                let _ = task.await;
            }
        })
    }
}

/// Binds `addr`, trying again for [`ARTIFACTS_BIND_PATIENCE`] while it is in use.
async fn bind_patiently(
    addr: SocketAddr,
    cancel: &CancellationToken,
) -> std::io::Result<TcpListener> {
    let started = std::time::Instant::now();
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && started.elapsed() < ARTIFACTS_BIND_PATIENCE =>
            {
                tokio::select! {
                    () = cancel.cancelled() => return Err(e),
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Applies the journal's rows after `followed` (one read, up to [`journal::FOLLOW_BATCH`]
/// rows); whether there were any. Loads the market again if rows it needed are gone.
async fn follow(
    state: &NetworkState,
    reads: &SqlStore,
    followed: &mut i64,
) -> Result<bool, StoreError> {
    match reads.journal_after(*followed, journal::FOLLOW_BATCH).await? {
        Followed::Entries(entries) => {
            let Some(last) = entries.last().map(|e| e.seq) else { return Ok(false) };
            for entry in &entries {
                state.follow(entry);
            }
            *followed = last;
            Ok(true)
        }
        Followed::Lost => {
            tracing::warn!(target: "provernet::network", followed = *followed, "the standby fell behind the journal: loading the market again");
            let (snapshot, head) = load_to_follow(reads).await?;
            state.replace_market(Market::new(state.config.market.clone(), snapshot));
            *followed = head;
            Ok(true)
        }
    }
}
