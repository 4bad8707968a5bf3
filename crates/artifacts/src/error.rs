//! One error enum per component: [`SignError`] (presigning), [`StorageError`] (object storage),
//! [`ApiError`] (what HTTP clients see), [`ServerError`] (launching the server),
//! [`ClientError`] (the HTTP client) and [`CacheError`] (the local cache).

use std::path::PathBuf;

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use provernet_types::ArtifactId;

use crate::presign::Method;

/// Boxed error for the escape hatches.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a presigned URL was refused, or a signer could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The request carries no signature but needs one.
    #[error("a presigned URL is required")]
    Missing,
    /// A presign field is absent or unparsable.
    #[error("presigned URL field `{field}` is missing or malformed")]
    Malformed {
        /// The offending query field.
        field: &'static str,
    },
    /// The signature does not match the URL's fields.
    #[error("signature does not match")]
    Forged,
    /// The URL was signed for another method.
    #[error("URL was signed for {signed}, not {used}")]
    WrongMethod {
        /// Method the URL was issued for.
        signed: Method,
        /// Method the request used.
        used: Method,
    },
    /// The URL's expiry has passed.
    #[error("URL expired at {expires} (now {now})")]
    Expired {
        /// Expiry, unix seconds.
        expires: u64,
        /// Time of the check, unix seconds.
        now: u64,
    },
    /// The HMAC secret is too short.
    #[error("HMAC secret must be at least {min} bytes")]
    WeakSecret {
        /// Minimum length in bytes.
        min: usize,
    },
}

/// A failure of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No (complete, unexpired) artifact with this id.
    #[error("artifact {id} not found")]
    NotFound {
        /// The artifact asked for.
        id: ArtifactId,
    },
    /// The upload went past the size limit; nothing was stored.
    #[error("artifact {id} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The artifact being uploaded.
        id: ArtifactId,
        /// The limit, bytes.
        limit: u64,
    },
    /// The uploaded bytes do not hash to the id; nothing was stored.
    #[error("uploaded bytes hash to {actual}, not to the id {expected}")]
    Mismatch {
        /// The id the upload was addressed to.
        expected: ArtifactId,
        /// The BLAKE3 of the bytes received.
        actual: ArtifactId,
    },
    /// Reading the upload stream failed (client went away or stalled); nothing was stored.
    #[error("upload of {id} was interrupted: {source}")]
    Body {
        /// The artifact being uploaded.
        id: ArtifactId,
        /// What went wrong.
        source: BoxError,
    },
    /// The storage location in the config is unusable.
    #[error("bad storage location `{location}`: {reason}")]
    Location {
        /// The configured location.
        location: String,
        /// Why it is unusable.
        reason: String,
    },
    /// A metadata sidecar could not be parsed.
    #[error("metadata of {id} is corrupt: {source}")]
    CorruptMeta {
        /// The artifact.
        id: ArtifactId,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The object store failed.
    #[error("object store {op} failed: {source}")]
    Backend {
        /// The operation (`get`, `put`, …).
        op: &'static str,
        /// The underlying error.
        source: object_store::Error,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl StorageError {
    /// Wraps an object-store error, mapping "not found" to [`StorageError::NotFound`].
    pub(crate) fn backend(op: &'static str, id: ArtifactId, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Self::NotFound { id },
            source => Self::Backend { op, source },
        }
    }
}

/// The error an HTTP client of the store sees: a status and `{"error": "...", "code": "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The path's id is not 32 bytes of hex.
    #[error("invalid artifact id: {0}")]
    BadId(String),
    /// Something else about the request is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The presigned URL is missing, forged, expired or for another method.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// No such artifact.
    #[error("artifact {0} not found")]
    NotFound(ArtifactId),
    /// Over the size limit.
    #[error("artifact is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: u64,
    },
    /// The bytes do not hash to the id.
    #[error("uploaded bytes hash to {actual}, not to the id {expected}")]
    Mismatch {
        /// The id in the path.
        expected: ArtifactId,
        /// BLAKE3 of the bytes received.
        actual: ArtifactId,
    },
    /// The Range header asks for bytes outside the artifact.
    #[error("range not satisfiable for an artifact of {size} bytes")]
    RangeNotSatisfiable {
        /// Artifact size, bytes.
        size: u64,
    },
    /// No route matches the path.
    #[error("no such route")]
    NoRoute,
    /// The route exists but not for this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The upload body broke off before its end.
    #[error("upload interrupted")]
    UploadInterrupted,
    /// The storage has no room for the upload (a disk full); nothing was stored.
    #[error(
        "the artifact store's storage is full; nothing was stored: try again once space is freed"
    )]
    StorageFull,
    /// The storage refused access (permission denied: EACCES or EPERM on the folder, or the
    /// object store's credentials lack a permission); nothing was written. The path and cause
    /// are logged, not shown.
    #[error(
        "the artifact store's storage refused access (permission denied); nothing was written: \
         try again once its operator restores access"
    )]
    StorageDenied,
    /// A server-side failure; details are logged, not shown.
    #[error("internal storage error")]
    Internal,
}

impl ApiError {
    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadId(_) | Self::BadRequest(_) | Self::UploadInterrupted => {
                StatusCode::BAD_REQUEST
            }
            Self::Sign(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Mismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            // Not 500: the server works but its storage cannot be used until its operator acts;
            // 503 tells clients and load balancers to try later (or elsewhere).
            Self::StorageDenied => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code, e.g. `signature_expired`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadId(_) => "bad_id",
            Self::BadRequest(_) => "bad_request",
            Self::Sign(SignError::Missing) => "signature_required",
            Self::Sign(SignError::Malformed { .. }) => "signature_malformed",
            Self::Sign(SignError::Forged) => "signature_invalid",
            Self::Sign(SignError::WrongMethod { .. }) => "signature_wrong_method",
            Self::Sign(SignError::Expired { .. }) => "signature_expired",
            Self::Sign(SignError::WeakSecret { .. }) => "signature_invalid",
            Self::NotFound(_) => "not_found",
            Self::NoRoute => "no_route",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooLarge { .. } => "too_large",
            Self::Mismatch { .. } => "hash_mismatch",
            Self::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Self::UploadInterrupted => "upload_interrupted",
            Self::StorageFull => "storage_full",
            Self::StorageDenied => "storage_denied",
            Self::Internal => "internal",
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NotFound { id } => Self::NotFound(id),
            StorageError::TooLarge { limit, .. } => Self::TooLarge { limit },
            StorageError::Mismatch { expected, actual } => Self::Mismatch { expected, actual },
            StorageError::Body { id, source } => {
                tracing::debug!(target: "provernet::artifacts", %id, %source, "upload interrupted");
                Self::UploadInterrupted
            }
            err if is_storage_full(&err) => {
                tracing::error!(target: "provernet::artifacts", %err, "storage full");
                Self::StorageFull
            }
            err if is_storage_denied(&err) => {
                // The path is in `err` and stays in the log: clients learn only the cause.
                tracing::error!(target: "provernet::artifacts", %err, "storage refused access");
                Self::StorageDenied
            }
            err => {
                tracing::error!(target: "provernet::artifacts", %err, "storage failure");
                Self::Internal
            }
        }
    }
}

/// Whether `err` comes from a disk with no space left (ENOSPC, or a quota), anywhere in its
/// chain of sources.
fn is_storage_full(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// Whether `err` comes from the storage refusing access (EACCES or EPERM on a file, or an object
/// store's permission or credentials error), anywhere in its chain of sources.
fn is_storage_denied(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::PermissionDenied
        {
            return true;
        }
        if let Some(store) = e.downcast_ref::<object_store::Error>()
            && matches!(
                store,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            )
        {
            return true;
        }
        next = e.source();
    }
    false
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string(), "code": self.code() });
        (self.status(), Json(body)).into_response()
    }
}

/// A failure to build or run the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error("invalid artifact store config: {0}")]
    Config(String),
    /// The HMAC secret is unusable.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// Opening the storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Serving on the listener failed.
    #[error("artifact server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A failure of the artifact client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be sent or its body not read (URL left out: it may carry a signature).
    #[error("request failed: {0}")]
    Request(#[source] reqwest::Error),
    /// The server answered with an error status.
    #[error("server answered {status} ({code}): {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The server's error code (e.g. `signature_expired`), or `unknown`.
        code: String,
        /// The server's message.
        message: String,
    },
    /// Downloaded bytes do not hash to the id they were fetched by.
    #[error("artifact {id} failed verification: the downloaded bytes hash to {actual}")]
    Mismatch {
        /// The id that was requested.
        id: ArtifactId,
        /// BLAKE3 of what was received.
        actual: ArtifactId,
    },
    /// The server sent a different number of bytes than announced.
    #[error("artifact {id}: expected {expected} bytes, received {got}")]
    Length {
        /// The artifact.
        id: ArtifactId,
        /// Bytes announced.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The response was longer than the caller allows.
    #[error("the download exceeds its limit of {max} bytes")]
    TooLarge {
        /// The limit, bytes.
        max: u64,
    },
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Building the HTTP client failed.
    #[error("client setup: {0}")]
    Setup(String),
    /// Escape hatch for anything else.
    #[error(transparent)]
    Other(BoxError),
}

impl ClientError {
    /// Whether trying again may succeed: connection failures, timeouts, interrupted bodies,
    /// 408, 429 and 5xx. Verification failures and other 4xx are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Request(e) => e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
            Self::Length { .. } => true,
            _ => false,
        }
    }

    /// The HTTP status, if the server answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn request(err: reqwest::Error) -> Self {
        Self::Request(err.without_url())
    }
}

/// A failure of the local artifact cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A cache file operation failed.
    #[error("artifact cache {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Fetching the artifact failed; nothing was cached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The file offered to the cache does not hash to its id.
    #[error("artifact {id} failed verification: the file hashes to {actual}")]
    Mismatch {
        /// The id it was offered under.
        id: ArtifactId,
        /// BLAKE3 of the file.
        actual: ArtifactId,
    },
    /// The artifact is larger than the whole cache.
    #[error("artifact {id} ({size} bytes) is larger than the cache ({capacity} bytes)")]
    TooLarge {
        /// The artifact.
        id: ArtifactId,
        /// Its size, bytes.
        size: u64,
        /// The cache capacity, bytes.
        capacity: u64,
    },
}

/// Result alias for storage operations.
pub type StorageResult<T> = Result<T, StorageError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// errno values, as Linux numbers them (std maps both to `PermissionDenied`).
    const EPERM: i32 = 1;
    const EACCES: i32 = 13;
    const ENOSPC: i32 = 28;

    fn io(errno: i32) -> StorageError {
        StorageError::Io {
            path: PathBuf::from("/srv/secret-layout/objects/ab/cd#1"),
            source: std::io::Error::from_raw_os_error(errno),
        }
    }

    /// An object-store error wrapping an OS error, as `LocalFileSystem` reports a failed write.
    fn backend(errno: i32) -> StorageError {
        StorageError::Backend {
            op: "put_multipart",
            source: object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(std::io::Error::from_raw_os_error(errno)),
            },
        }
    }

    #[test]
    fn permission_denied_anywhere_in_the_chain_is_storage_denied() {
        let s3 = StorageError::Backend {
            op: "put",
            source: object_store::Error::PermissionDenied {
                path: "objects/ab/cd".into(),
                source: "AccessDenied".into(),
            },
        };
        for err in [io(EACCES), io(EPERM), backend(EACCES), backend(EPERM), s3] {
            let shown = err.to_string();
            let api = ApiError::from(err);
            assert!(matches!(api, ApiError::StorageDenied), "{shown} gave {api:?}");
            assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(api.code(), "storage_denied");
            let message = api.to_string();
            assert!(message.contains("refused access (permission denied)"), "{message}");
            assert!(
                !message.contains("secret-layout") && !message.contains("objects/"),
                "{message}"
            );
        }
    }

    #[test]
    fn other_storage_failures_keep_their_mapping() {
        assert!(matches!(ApiError::from(io(ENOSPC)), ApiError::StorageFull));
        assert!(matches!(ApiError::from(backend(ENOSPC)), ApiError::StorageFull));
        let other = std::io::Error::other("disk on fire");
        let err = StorageError::Io { path: PathBuf::from("x"), source: other };
        assert!(matches!(ApiError::from(err), ApiError::Internal));
    }
}
