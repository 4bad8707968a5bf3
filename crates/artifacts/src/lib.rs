//! The ArtifactStore: content-addressed storage of programs, inputs and proofs over HTTP.
//!
//! An artifact's id is the BLAKE3 hash of its bytes ([`ArtifactId`]). The server accepts uploads
//! only to presigned URLs (HMAC-SHA256, expiring) that the network issues with a [`UrlSigner`],
//! checks that the bytes hash to the id while streaming them to storage, and serves public
//! artifacts to anyone and private ones only through presigned URLs. The client verifies every
//! download against its id, and the [`ArtifactCache`] keeps verified artifacts on local disk.
//!
//! ```text
//! network ──UrlSigner──► presigned URL ──► requester / node
//!                                              │ ArtifactClient (retries, progress, ranges)
//!                                              ▼
//!          ArtifactServer (axum) ── hash while streaming ──► ArtifactStorage (object_store)
//!                 └── RetentionSweeper deletes expired artifacts
//! ```
//!
//! Layout:
//! - [`kind`]: the [`ArtifactKind`], [`Visibility`], the [`ArtifactMeta`] sidecar;
//! - [`presign`]: the [`UrlSigner`], [`PresignedUrl`] and their verification;
//! - [`storage`]: the [`ArtifactStorage`] on a local folder, memory or S3-compatible storage;
//! - [`server`]: the [`ArtifactServer`], [`router`], [`serve`] and [`serve_with`];
//! - [`retention`]: the [`RetentionSweeper`];
//! - [`metrics`]: the request, byte and latency metrics (scope `artifacts.http`);
//! - [`client`]: the [`ArtifactClient`] and the [`ArtifactTransfer`] seam (with an in-memory impl);
//! - [`cache`]: the [`ArtifactCache`];
//! - [`config`]: the [`ArtifactStoreConfig`];
//! - [`succinct`]: the byte formats of the Succinct API's artifacts (a network serves them, a
//!   node reads them), and their provernet equivalents;
//! - [`error`]: the one error enum per component.
//!
//! No feature flags.

pub mod cache;
pub mod client;
pub mod config;
pub mod error;
pub mod kind;
pub mod metrics;
pub mod presign;
pub mod retention;
pub mod server;
pub mod storage;
pub mod succinct;

pub use provernet_types::ArtifactId;

pub use self::{
    cache::ArtifactCache,
    client::{
        ArtifactClient, ArtifactClientConfig, ArtifactInfo, ArtifactTransfer,
        MemoryArtifactTransfer, Progress, ProgressFn, RetryPolicy, UploadReceipt,
    },
    config::ArtifactStoreConfig,
    error::{ApiError, CacheError, ClientError, ServerError, SignError, StorageError},
    kind::{ArtifactKind, ArtifactMeta, Visibility},
    presign::{Grant, Method, PresignedUrl, UrlSigner, public_url},
    retention::RetentionSweeper,
    server::{
        ArtifactServer, router, serve, serve_with,
        tls::{TlsError, TlsIdentity, TlsListener, install_default_crypto_provider},
    },
    storage::{ArtifactStorage, NewArtifact, PutOutcome},
};
