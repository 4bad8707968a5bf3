//! The HTTP server: [`ArtifactServer`] (shared state), [`router`] to embed it, and [`serve`] to
//! run it with its retention sweeper.
//!
//! Layout:
//! - `handlers`: PUT / GET / HEAD on `/v1/artifacts/{id}`;
//! - `range`: `Range` header parsing.
//!
//! Routes: `PUT|GET|HEAD /v1/artifacts/{id}`, `GET /health`.

mod handlers;
pub use self::handlers::{KIND_HEADER, VISIBILITY_HEADER};
pub mod range;
pub mod tls;

use std::{future::Future, sync::Arc, time::Duration};

use axum::{Router, extract::DefaultBodyLimit, middleware, routing::get};
use tokio_util::sync::CancellationToken;

use crate::{
    config::ArtifactStoreConfig,
    error::{ApiError, ServerError},
    metrics::{ArtifactsHttpMetrics, track},
    presign::UrlSigner,
    retention::RetentionSweeper,
    storage::ArtifactStorage,
};

/// Staged uploads older than this are assumed abandoned by a crashed process and removed at start.
const STALE_UPLOAD_AGE: Duration = Duration::from_secs(3600);

/// How long [`serve`] waits for the retention sweeper to stop after shutdown.
const SWEEPER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared state of the store's HTTP server. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ArtifactServer {
    inner: Arc<ServerState>,
}

#[derive(Debug)]
struct ServerState {
    storage: ArtifactStorage,
    signer: UrlSigner,
    max_artifact_bytes: u64,
    sweep_interval: Duration,
    idle_timeout: Duration,
}

impl ArtifactServer {
    /// Builds a server from config: validates it and opens the storage.
    ///
    /// # Errors
    /// [`ServerError::Config`], or a storage or secret that cannot be used.
    pub fn new(config: &ArtifactStoreConfig) -> Result<Self, ServerError> {
        config.validate()?;
        let mut storage = ArtifactStorage::open(&config.storage)?;
        if config.part_bytes > 0 {
            storage = storage.with_part_bytes(config.part_bytes);
        }
        let signer = UrlSigner::new(&config.secret)?;
        Ok(Self::from_parts(storage, signer, config))
    }

    /// Builds a server on an already opened storage (e.g. [`ArtifactStorage::memory`]); the
    /// config's `storage` and `secret` fields are ignored.
    pub fn from_parts(
        storage: ArtifactStorage,
        signer: UrlSigner,
        config: &ArtifactStoreConfig,
    ) -> Self {
        Self {
            inner: Arc::new(ServerState {
                storage,
                signer,
                max_artifact_bytes: config.max_artifact_bytes,
                sweep_interval: config.retention_sweep_interval(),
                idle_timeout: config.upload_idle_timeout(),
            }),
        }
    }

    /// The storage it serves.
    pub fn storage(&self) -> &ArtifactStorage {
        &self.inner.storage
    }

    /// The signer whose URLs it accepts (the network issues URLs with an equal one).
    pub fn signer(&self) -> &UrlSigner {
        &self.inner.signer
    }

    /// The largest artifact it accepts, bytes.
    pub fn max_artifact_bytes(&self) -> u64 {
        self.inner.max_artifact_bytes
    }

    /// A retention sweeper over its storage at the configured interval.
    pub fn retention(&self) -> RetentionSweeper {
        RetentionSweeper::new(self.inner.storage.clone(), self.inner.sweep_interval)
    }

    /// Its routes, to mount in another axum app.
    pub fn router(&self) -> Router {
        router(self.clone())
    }
}

/// The store's routes with metrics middleware, for embedding in another process's server.
/// Retention is not included: run [`ArtifactServer::retention`] alongside.
pub fn router(server: ArtifactServer) -> Router {
    ArtifactsHttpMetrics::describe();
    Router::new()
        .route(
            "/v1/artifacts/{id}",
            get(handlers::get_artifact).head(handlers::get_artifact).put(handlers::put_artifact),
        )
        .route("/health", get(handlers::health))
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Our handlers enforce the configured limit while streaming; axum's 2 MB default would not.
        .layer(DefaultBodyLimit::disable())
        .route_layer(middleware::from_fn(track))
        .with_state(server)
}

/// Serves the store on `listener` until `shutdown` resolves, with its retention sweeper.
///
/// On shutdown it stops accepting connections, lets in-flight requests finish and stops the
/// sweeper.
///
/// # Errors
/// [`ServerError::Io`] if serving fails.
pub async fn serve<L>(
    listener: L,
    server: ArtifactServer,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    serve_with(listener, server, Router::new(), shutdown).await
}

/// [`serve`], with `extra` routes of the embedding process beside the store's own (the
/// network's Succinct-API uploads and downloads).
///
/// # Errors
/// [`ServerError::Io`] if serving fails.
pub async fn serve_with<L>(
    listener: L,
    server: ArtifactServer,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    match server.storage().remove_stale_uploads(STALE_UPLOAD_AGE).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(target: "provernet::artifacts", removed = n, "removed stale staged uploads")
        }
        Err(err) => {
            tracing::warn!(target: "provernet::artifacts", %err, "could not scan for stale uploads")
        }
    }
    let cancel = CancellationToken::new();
    let sweeper = tokio::spawn(server.retention().run(cancel.clone()));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(target: "provernet::artifacts", ?addr, storage = ?server.storage(), "artifact store listening");
    }

    let stop = cancel.clone();
    let result = axum::serve(listener, extra.merge(router(server)))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop.cancel();
        })
        .await;
    cancel.cancel();
    if tokio::time::timeout(SWEEPER_STOP_TIMEOUT, sweeper).await.is_err() {
        tracing::warn!(target: "provernet::artifacts", "retention sweeper did not stop in time");
    }
    result.map_err(ServerError::Io)
}
