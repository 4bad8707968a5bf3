//! [`ArtifactTransfer`]: the seam the node and network use to move artifacts, with the HTTP
//! [`ArtifactClient`] and an in-memory [`MemoryArtifactTransfer`] for tests and wiring.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use futures::future::BoxFuture;
use provernet_types::ArtifactId;

use super::{ArtifactClient, ProgressFn, UploadReceipt};
use crate::error::ClientError;

/// Moving artifacts to and from a store by URL; every download is verified against its id.
/// Hold it as `Arc<dyn ArtifactTransfer>`.
pub trait ArtifactTransfer: Send + Sync {
    /// Uploads the file at `path` to a presigned PUT `url`.
    fn upload_file<'a>(
        &'a self,
        url: &'a str,
        path: &'a Path,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<UploadReceipt, ClientError>>;

    /// Downloads artifact `id` from `url` into the file `dest`, verified; returns its size.
    fn download_to_file<'a>(
        &'a self,
        url: &'a str,
        id: &'a ArtifactId,
        dest: &'a Path,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<u64, ClientError>>;

    /// Downloads artifact `id` from `url` into memory, verified.
    fn download_to_vec<'a>(
        &'a self,
        url: &'a str,
        id: &'a ArtifactId,
    ) -> BoxFuture<'a, Result<Bytes, ClientError>>;
}

impl ArtifactTransfer for ArtifactClient {
    fn upload_file<'a>(
        &'a self,
        url: &'a str,
        path: &'a Path,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<UploadReceipt, ClientError>> {
        Box::pin(ArtifactClient::upload_file(self, url, path, progress))
    }

    fn download_to_file<'a>(
        &'a self,
        url: &'a str,
        id: &'a ArtifactId,
        dest: &'a Path,
        progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<u64, ClientError>> {
        Box::pin(ArtifactClient::download_to_file(self, url, id, dest, progress))
    }

    fn download_to_vec<'a>(
        &'a self,
        url: &'a str,
        id: &'a ArtifactId,
    ) -> BoxFuture<'a, Result<Bytes, ClientError>> {
        Box::pin(ArtifactClient::download_to_vec(self, url, id, None))
    }
}

/// An in-memory store behind the [`ArtifactTransfer`] seam: URLs are only parsed for the id in
/// their path (`…/v1/artifacts/{id}…`); signatures, kinds and expiry are not checked.
#[derive(Debug, Clone, Default)]
pub struct MemoryArtifactTransfer {
    /// std mutex: never held across an `.await`.
    artifacts: Arc<Mutex<HashMap<ArtifactId, Bytes>>>,
}

impl MemoryArtifactTransfer {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `bytes` directly, returning their id.
    pub fn insert(&self, bytes: impl Into<Bytes>) -> ArtifactId {
        let bytes = bytes.into();
        let id = ArtifactId::of(&bytes);
        self.lock().insert(id, bytes);
        id
    }

    /// The stored bytes of `id`.
    pub fn get(&self, id: &ArtifactId) -> Option<Bytes> {
        self.lock().get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ArtifactId, Bytes>> {
        self.artifacts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fetch(&self, id: &ArtifactId) -> Result<Bytes, ClientError> {
        self.get(id).ok_or_else(|| ClientError::Status {
            status: 404,
            code: "not_found".into(),
            message: format!("artifact {id} not found"),
        })
    }
}

/// The id in a store URL's path.
fn id_in_url(url: &str) -> Result<ArtifactId, ClientError> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/')
        .next()
        .and_then(|last| last.parse().ok())
        .ok_or_else(|| ClientError::Other("URL has no artifact id in its path".into()))
}

impl ArtifactTransfer for MemoryArtifactTransfer {
    fn upload_file<'a>(
        &'a self,
        url: &'a str,
        path: &'a Path,
        _progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<UploadReceipt, ClientError>> {
        Box::pin(async move {
            let expected = id_in_url(url)?;
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|source| ClientError::Io { path: path.to_owned(), source })?;
            let actual = ArtifactId::of(&bytes);
            if actual != expected {
                return Err(ClientError::Status {
                    status: 422,
                    code: "hash_mismatch".into(),
                    message: format!("uploaded bytes hash to {actual}, not to the id {expected}"),
                });
            }
            let size = bytes.len() as u64;
            let created = self.lock().insert(actual, Bytes::from(bytes)).is_none();
            Ok(UploadReceipt { id: actual, size, created })
        })
    }

    fn download_to_file<'a>(
        &'a self,
        _url: &'a str,
        id: &'a ArtifactId,
        dest: &'a Path,
        _progress: Option<ProgressFn>,
    ) -> BoxFuture<'a, Result<u64, ClientError>> {
        Box::pin(async move {
            let bytes = self.fetch(id)?;
            tokio::fs::write(dest, &bytes)
                .await
                .map_err(|source| ClientError::Io { path: dest.to_owned(), source })?;
            Ok(bytes.len() as u64)
        })
    }

    fn download_to_vec<'a>(
        &'a self,
        _url: &'a str,
        id: &'a ArtifactId,
    ) -> BoxFuture<'a, Result<Bytes, ClientError>> {
        Box::pin(async move { self.fetch(id) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_transfer_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let transfer: Arc<dyn ArtifactTransfer> = Arc::new(MemoryArtifactTransfer::new());
        let file = dir.path().join("a");
        tokio::fs::write(&file, b"program").await.expect("write");
        let id = ArtifactId::of(b"program");
        let url = format!("http://store/v1/artifacts/{id}?method=PUT&sig=00");
        let receipt = transfer.upload_file(&url, &file, None).await.expect("upload");
        assert!(receipt.created);
        assert_eq!(transfer.download_to_vec("", &id).await.expect("get"), &b"program"[..]);

        let wrong = format!("http://store/v1/artifacts/{}", ArtifactId::of(b"x"));
        let err = transfer.upload_file(&wrong, &file, None).await.expect_err("mismatch");
        assert_eq!(err.status(), Some(422));
        let err = transfer.download_to_vec("", &ArtifactId::of(b"x")).await.expect_err("missing");
        assert_eq!(err.status(), Some(404));
    }
}
