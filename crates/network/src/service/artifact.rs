//! Whole artifacts read from the embedded ArtifactStore, bounded in size, verified against
//! their id, with the failures told apart: the request's fault (missing, too large, corrupt) or
//! the storage's (worth retrying).

use futures::StreamExt;
use provernet_types::ArtifactId;

use super::NetworkState;

/// Why an artifact could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// Not stored.
    #[error("it is not in the ArtifactStore")]
    Missing,
    /// Larger than the caller accepts (nothing was read).
    #[error("it is {size} bytes, above the limit of {max}")]
    TooLarge {
        /// Its size in bytes.
        size: u64,
        /// The caller's limit.
        max: u64,
    },
    /// The stored bytes do not hash to the id: retrying cannot help.
    #[error("its stored bytes do not match its id")]
    Corrupt,
    /// The storage failed; a later try may succeed.
    #[error("the storage failed: {0}")]
    Storage(String),
}

impl ReadError {
    /// Whether the failure may pass by itself (the storage failed), so that the read is worth
    /// repeating.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Self::Storage(_))
    }
}

/// Reads a whole artifact of at most `max_bytes` from the embedded store; its size is checked
/// against the stored metadata before a byte is read, and again as the bytes arrive.
pub(crate) async fn read_artifact(
    state: &NetworkState,
    id: &ArtifactId,
    max_bytes: u64,
) -> Result<Vec<u8>, ReadError> {
    let storage = state.artifacts.storage();
    let size = match storage.meta(id).await {
        Ok(Some(meta)) => meta.size,
        Ok(None) => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Storage(e.to_string())),
    };
    if size > max_bytes {
        return Err(ReadError::TooLarge { size, max: max_bytes });
    }
    let mut body = storage.get(id, None).await.map_err(|e| ReadError::Storage(e.to_string()))?;
    let mut bytes = Vec::with_capacity(size as usize);
    while let Some(chunk) = body.stream.next().await {
        let chunk = chunk.map_err(|e| ReadError::Storage(e.to_string()))?;
        if (bytes.len() + chunk.len()) as u64 > max_bytes {
            return Err(ReadError::Corrupt);
        }
        bytes.extend_from_slice(&chunk);
    }
    if ArtifactId::of(&bytes) != *id {
        return Err(ReadError::Corrupt);
    }
    Ok(bytes)
}

/// Stores `bytes` as a content-addressed artifact of `kind` (at most `max_bytes`); returns its
/// id. Storing bytes that are already there stores nothing new.
pub(crate) async fn store_bytes(
    state: &NetworkState,
    bytes: Vec<u8>,
    kind: provernet_artifacts::ArtifactKind,
    visibility: provernet_artifacts::Visibility,
    max_bytes: u64,
) -> Result<ArtifactId, provernet_artifacts::StorageError> {
    let id = ArtifactId::of(&bytes);
    let new = provernet_artifacts::NewArtifact { kind, visibility, retain_until: None };
    let stream =
        futures::stream::once(async move { Ok::<_, std::io::Error>(bytes::Bytes::from(bytes)) });
    state.artifacts.storage().put_stream(id, new, Box::pin(stream), max_bytes).await?;
    Ok(id)
}
