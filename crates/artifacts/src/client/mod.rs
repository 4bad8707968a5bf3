//! [`ArtifactClient`]: uploads and verified downloads over HTTP, with retries and progress.
//!
//! Layout:
//! - `retry`: [`RetryPolicy`], exponential backoff on transient failures;
//! - `download`: sequential and parallel ranged downloads, always verified against the id;
//! - `transfer`: the [`ArtifactTransfer`] seam and its in-memory [`MemoryArtifactTransfer`].
//!
//! The client works with full URLs: presigned ones from the network, or [`public_url`] for
//! public artifacts. It never logs URLs, which may carry a signature.
//!
//! [`public_url`]: crate::presign::public_url

mod download;
pub use self::download::hash_file;
mod retry;
mod transfer;

use std::{path::Path, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::TryStreamExt;
use provernet_types::ArtifactId;
use reqwest::{Response, header};
use serde::Deserialize;
use tokio_util::io::ReaderStream;

pub use self::{
    retry::RetryPolicy,
    transfer::{ArtifactTransfer, MemoryArtifactTransfer},
};
use crate::{
    error::ClientError,
    kind::{ArtifactKind, Visibility},
    server::{KIND_HEADER, VISIBILITY_HEADER},
};

/// Read size when streaming a file into an upload.
const UPLOAD_READ_BYTES: usize = 256 << 10;

/// How far a transfer has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes transferred so far.
    pub done: u64,
    /// Total bytes, when known.
    pub total: Option<u64>,
}

/// A progress callback, called as bytes move (often: keep it cheap).
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Settings of an [`ArtifactClient`].
#[derive(Debug, Clone)]
pub struct ArtifactClientConfig {
    /// Retries of transient failures. Default: [`RetryPolicy::default`].
    pub retry: RetryPolicy,
    /// Connections used by a parallel ranged download; 1 disables them. Default: 4.
    pub parallel_connections: usize,
    /// Artifacts at least this large (bytes) are downloaded in parallel ranges. Default: 64 MiB.
    pub parallel_threshold_bytes: u64,
    /// Size of each range of a parallel download, bytes. Default: 16 MiB.
    pub range_bytes: u64,
    /// Timeout to establish a connection. Default: 10 s.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response. Default: 60 s.
    pub read_timeout: Duration,
    /// Certificate authorities (PEM) trusted for `https://` URLs beside the system's.
    /// Default: those of `PROVERNET_TLS_CA`'s file ([`provernet_types::client::TLS_CA_ENV`]),
    /// if set and readable.
    pub extra_ca: Option<Vec<u8>>,
}

impl Default for ArtifactClientConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            parallel_connections: 4,
            parallel_threshold_bytes: 64 << 20,
            range_bytes: 16 << 20,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            // An unreadable file is reported where TLS is set up (the gRPC client), which
            // names it; here it only means no extra authority.
            extra_ca: provernet_types::client::extra_ca().ok().flatten(),
        }
    }
}

/// What the store answered to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct UploadReceipt {
    /// The artifact's id.
    pub id: ArtifactId,
    /// Its size in bytes.
    pub size: u64,
    /// Whether this upload stored it (`false`: it was already there).
    pub created: bool,
}

/// What HEAD tells about a stored artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactInfo {
    /// Size in bytes.
    pub size: u64,
    /// Its kind, if the server said.
    pub kind: Option<ArtifactKind>,
    /// Its visibility, if the server said.
    pub visibility: Option<Visibility>,
}

/// HTTP client of the artifact store. Cheap to clone (shares its connection pool).
#[derive(Debug, Clone)]
pub struct ArtifactClient {
    http: reqwest::Client,
    config: ArtifactClientConfig,
}

impl ArtifactClient {
    /// A client with default settings.
    ///
    /// # Errors
    /// [`ClientError::Setup`] if the TLS or HTTP stack cannot be initialised.
    pub fn new() -> Result<Self, ClientError> {
        Self::with_config(ArtifactClientConfig::default())
    }

    /// A client with `config`.
    ///
    /// # Errors
    /// [`ClientError::Setup`] if the TLS or HTTP stack cannot be initialised.
    pub fn with_config(config: ArtifactClientConfig) -> Result<Self, ClientError> {
        let setup = |e: reqwest::Error| ClientError::Setup(e.without_url().to_string());
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .tcp_nodelay(true);
        if let Some(pem) = &config.extra_ca {
            for ca in reqwest::Certificate::from_pem_bundle(pem).map_err(setup)? {
                builder = builder.add_root_certificate(ca);
            }
        }
        let http = builder.build().map_err(setup)?;
        Ok(Self { http, config })
    }

    /// Its settings.
    pub fn config(&self) -> &ArtifactClientConfig {
        &self.config
    }

    /// Streams the file at `path` to a presigned PUT `url`; the store checks it hashes to the id
    /// in the URL. Retried from the start on transient failures.
    ///
    /// # Errors
    /// [`ClientError::Io`] if the file cannot be read, [`ClientError::Status`] for refusals
    /// (403 bad URL, 413 too large, 422 hash mismatch), transport errors after retries.
    pub async fn upload_file(
        &self,
        url: &str,
        path: &Path,
        progress: Option<ProgressFn>,
    ) -> Result<UploadReceipt, ClientError> {
        let io = |source| ClientError::Io { path: path.to_owned(), source };
        let len = tokio::fs::metadata(path).await.map_err(io)?.len();
        self.config
            .retry
            .run("upload", |_| async {
                let file = tokio::fs::File::open(path).await.map_err(io)?;
                let mut done = 0u64;
                let progress = progress.clone();
                let stream =
                    ReaderStream::with_capacity(file, UPLOAD_READ_BYTES).inspect_ok(move |chunk| {
                        done += chunk.len() as u64;
                        if let Some(report) = &progress {
                            report(Progress { done, total: Some(len) });
                        }
                    });
                let request = self
                    .http
                    .put(url)
                    .header(header::CONTENT_LENGTH, len)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(reqwest::Body::wrap_stream(stream));
                receipt(request.send().await.map_err(ClientError::request)?).await
            })
            .await
    }

    /// Uploads `bytes` to a presigned PUT `url`.
    ///
    /// # Errors
    /// As [`upload_file`](Self::upload_file), without the file errors.
    pub async fn upload_bytes(
        &self,
        url: &str,
        bytes: Bytes,
    ) -> Result<UploadReceipt, ClientError> {
        self.config
            .retry
            .run("upload", |_| async {
                let request = self
                    .http
                    .put(url)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone());
                receipt(request.send().await.map_err(ClientError::request)?).await
            })
            .await
    }

    /// Size, kind and visibility of the artifact at `url` (a public or presigned GET URL).
    ///
    /// # Errors
    /// [`ClientError::Status`] (404 unknown, 403 private without a valid URL), transport errors.
    pub async fn head(&self, url: &str) -> Result<ArtifactInfo, ClientError> {
        self.config
            .retry
            .run("head", |_| async {
                let response =
                    check(self.http.head(url).send().await.map_err(ClientError::request)?).await?;
                let headers = response.headers();
                let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                let size =
                    text(header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok()).ok_or_else(
                        || ClientError::Other("HEAD response without Content-Length".into()),
                    )?;
                Ok(ArtifactInfo {
                    size,
                    kind: text(KIND_HEADER).and_then(|v| v.parse().ok()),
                    visibility: text(VISIBILITY_HEADER).and_then(|v| v.parse().ok()),
                })
            })
            .await
    }
}

/// Passes a success response through; turns an error status into [`ClientError::Status`].
async fn check(response: Response) -> Result<Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
        code: String,
    }
    let body = response.bytes().await.unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(e) => (e.code, e.error),
        Err(_) => {
            ("unknown".to_owned(), String::from_utf8_lossy(&body).chars().take(200).collect())
        }
    };
    Err(ClientError::Status { status: status.as_u16(), code, message })
}

async fn receipt(response: Response) -> Result<UploadReceipt, ClientError> {
    let body = check(response).await?.bytes().await.map_err(ClientError::request)?;
    serde_json::from_slice(&body).map_err(|e| ClientError::Other(Box::new(e)))
}
