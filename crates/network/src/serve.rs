//! [`launch`]: the ProverNetwork wired on given listeners — store, market, executor, timers,
//! the gRPC service (with health and reflection) and the embedded ArtifactStore.

use std::{net::SocketAddr, sync::Arc};

use provernet_artifacts::{ArtifactServer, ArtifactStoreConfig};
use provernet_types::{
    proto::prover_network_server::ProverNetworkServer,
    succinct::proto::{
        artifact::artifact_store_server::ArtifactStoreServer,
        network::prover_network_server::ProverNetworkServer as SuccinctNetworkServer,
    },
};
use provernet_zkvm::ZkVmRegistry;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    NetworkConfig,
    leader::Leadership,
    market::Market,
    service::{Background, NetworkService, NetworkState, succinct::SuccinctService},
    store::{Backend, SqlStore, StoreWriter},
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
}

/// A running network.
pub struct NetworkHandle {
    /// The gRPC address.
    pub grpc_addr: SocketAddr,
    /// The ArtifactStore's HTTP address.
    pub artifacts_addr: SocketAddr,
    /// The shared state (for tests and the devnet).
    pub state: Arc<NetworkState>,
    /// Finishes when every task has stopped after `cancel`.
    pub join: JoinHandle<()>,
}

/// Starts the network on `grpc` and `artifacts` listeners; it runs until `cancel` fires. On
/// PostgreSQL it first waits to lead the database ([`crate::leader`]).
///
/// # Errors
/// A database that cannot be opened or loaded, or an ArtifactStore that cannot be set up.
pub async fn launch(
    config: NetworkConfig,
    grpc: TcpListener,
    artifacts: TcpListener,
    cancel: CancellationToken,
) -> Result<NetworkHandle, LaunchError> {
    launch_leading(config, None, grpc, artifacts, cancel).await
}

/// Who holds the leadership, for operators reading `network_leader`.
pub fn holder(grpc: &str) -> String {
    format!("pid {} serving {grpc}", std::process::id())
}

/// [`launch`] by a process that may lead already: the `network` command waits for the lead
/// before it binds its ports, so a standby refuses connections and clients go to the leader.
///
/// # Errors
/// As [`launch`].
pub async fn launch_leading(
    config: NetworkConfig,
    leadership: Option<Leadership>,
    grpc: TcpListener,
    artifacts: TcpListener,
    cancel: CancellationToken,
) -> Result<NetworkHandle, LaunchError> {
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
    let artifacts_addr = artifacts.local_addr()?;
    // On PostgreSQL, lead first: a standby writes nothing, not even the schema's upgrades.
    let postgres = config.database_url.starts_with("postgres");
    let leadership = match leadership {
        Some(held) => Some(held),
        None if postgres => {
            let holder = holder(&grpc_addr.to_string());
            match Leadership::acquire(&config.database_url, &holder, &cancel).await? {
                Some(held) => Some(held),
                None => return Err(LaunchError::StoodBy),
            }
        }
        None => None,
    };
    let store = SqlStore::open(&config.database_url).await?;
    // Loaded after the epoch moved on: every commit of the last leader is in.
    let store = match (&leadership, store.backend()) {
        (Some(held), Backend::Postgres) => store.fenced(held.epoch()),
        _ => store,
    };
    let snapshot = store.load().await?;
    let requests = snapshot.requests.len();
    let market = Market::new(config.market.clone(), snapshot);
    let (writer, writer_task) = StoreWriter::spawn(store.clone(), cancel.child_token());

    let mut artifact_config =
        ArtifactStoreConfig::new(&config.artifact_storage, &config.artifact_secret);
    artifact_config.max_artifact_bytes = config.max_artifact_bytes;
    let artifact_server =
        ArtifactServer::new(&artifact_config).map_err(|e| LaunchError::Artifacts(e.to_string()))?;

    let zkvms = ZkVmRegistry::with_default_backends();
    let (state, work_rx) =
        NetworkState::new(config.clone(), market, store, writer, artifact_server.clone(), zkvms);
    let background = Background::new(state.clone(), work_rx);
    background.restore();
    tracing::info!(target: "provernet::network", %grpc_addr, %artifacts_addr, requests, network_id = %config.network_id, "network listening");

    let succinct = config.succinct.clone().map(|c| SuccinctService::new(state.clone(), c));
    let extra_routes = succinct.as_ref().map(SuccinctService::routes).unwrap_or_default();
    let stop = cancel.clone();
    let shutdown = async move { stop.cancelled().await };
    let artifacts_task = match tls.as_ref().map(|(rustls, _)| rustls.clone()) {
        Some(rustls) => {
            let listener = provernet_artifacts::TlsListener::new(artifacts, rustls)?;
            tokio::spawn(provernet_artifacts::serve_with(
                listener,
                artifact_server,
                extra_routes,
                shutdown,
            ))
        }
        None => tokio::spawn(provernet_artifacts::serve_with(
            artifacts,
            artifact_server,
            extra_routes,
            shutdown,
        )),
    };
    let background_task = tokio::spawn(background.run(cancel.clone()));
    if let Some(keep) = config.proof_retention {
        tokio::spawn(crate::service::retention::run(
            state.clone(),
            keep,
            config.retention_interval,
            cancel.clone(),
        ));
    }

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ProverNetworkServer<NetworkService>>().await;
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

    // A failed write leaves memory ahead of the database: stop, and reload on restart.
    let writer_cancel = cancel.clone();
    let writer_task = tokio::spawn(async move {
        let result = writer_task.await;
        if let Ok(Err(e)) = &result {
            tracing::error!(target: "provernet::network", %e, "store writer failed: shutting down; restart to reload from the database");
            writer_cancel.cancel();
        }
        result
    });
    // Released after the writer's last commit, so a standby loads every one of them.
    let release = CancellationToken::new();
    let leader_task =
        leadership.map(|held| tokio::spawn(held.hold(release.clone(), cancel.clone())));
    let join = tokio::spawn(async move {
        if let Ok(Err(e)) = grpc_task.await {
            tracing::error!(target: "provernet::network", %e, "gRPC server failed");
        }
        let _ = background_task.await;
        if let Ok(Err(e)) = artifacts_task.await {
            tracing::error!(target: "provernet::network", %e, "artifact store failed");
        }
        let _ = writer_task.await;
        release.cancel();
        if let Some(task) = leader_task {
            let _ = task.await;
        }
    });
    Ok(NetworkHandle { grpc_addr, artifacts_addr, state, join })
}
