//! Deleting what is no longer wanted: expired artifacts (retention) and staged uploads left by
//! crashed processes.

use std::{
    path::{Path as FsPath, PathBuf},
    time::Duration,
};

use futures::StreamExt;
use object_store::path::Path;

use super::{ArtifactStorage, id_from_hex};
use crate::error::{StorageError, StorageResult};

/// What one retention sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Artifacts deleted.
    pub deleted: u64,
    /// Expiry markers dropped because the artifact's retention had been extended or it was gone.
    pub stale_markers: u64,
    /// Artifacts whose deletion failed (retried next sweep).
    pub failed: u64,
}

impl ArtifactStorage {
    /// Deletes every artifact whose retention expired at or before `now` (unix seconds).
    ///
    /// # Errors
    /// Listing failures; per-artifact failures are counted in the report and retried next sweep.
    pub async fn sweep_expired(&self, now: u64) -> StorageResult<SweepReport> {
        let mut due = Vec::new();
        let mut listing = self.store.list(Some(&Path::from("expiry")));
        while let Some(item) = listing.next().await {
            let item = item.map_err(|e| StorageError::Backend { op: "list", source: e })?;
            let parts: Vec<String> = item.location.parts().map(|p| p.as_ref().to_owned()).collect();
            let (Some(at), Some(hex)) = (parts.get(1), parts.get(2)) else { continue };
            let (Ok(at), Some(id)) = (at.parse::<u64>(), id_from_hex(hex)) else { continue };
            if at <= now {
                due.push((id, item.location));
            }
        }
        drop(listing);

        let mut report = SweepReport::default();
        for (id, marker) in due {
            let outcome = match self.meta(&id).await {
                Ok(Some(meta)) if meta.is_expired(now) => self.delete(&id).await.map(|()| true),
                Ok(_) => Ok(false),
                Err(StorageError::CorruptMeta { .. }) => self.delete(&id).await.map(|()| true),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(deleted) => {
                    if deleted {
                        report.deleted += 1;
                    } else {
                        report.stale_markers += 1;
                    }
                    if let Err(err) = self.store.delete(&marker).await {
                        tracing::warn!(target: "provernet::artifacts", %id, %err, "expiry marker not deleted");
                    }
                }
                Err(err) => {
                    tracing::warn!(target: "provernet::artifacts", %id, %err, "expired artifact not deleted");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Removes staged uploads (`objects/*/*#n`) older than `age` left by a crashed process
    /// (local folder only; S3 cleans incomplete multipart uploads with a lifecycle rule).
    ///
    /// # Errors
    /// [`StorageError::Io`] if the folder cannot be read.
    pub async fn remove_stale_uploads(&self, age: Duration) -> StorageResult<u64> {
        let Some(root) = self.local_root.clone() else { return Ok(0) };
        tokio::task::spawn_blocking(move || remove_stale_staged(&root.join("objects"), age))
            .await
            .map_err(|e| StorageError::Io {
            path: PathBuf::from("objects"),
            source: std::io::Error::other(e),
        })?
    }
}

fn remove_stale_staged(objects: &FsPath, age: Duration) -> StorageResult<u64> {
    let io = |path: &FsPath| {
        let path = path.to_owned();
        move |source| StorageError::Io { path, source }
    };
    let shards = match std::fs::read_dir(objects) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(objects)(e)),
    };
    let mut removed = 0;
    for shard in shards.flatten() {
        let Ok(files) = std::fs::read_dir(shard.path()) else { continue };
        for file in files.flatten() {
            let staged = super::is_staged(&file.file_name());
            let old = file
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed >= age);
            if staged && old && std::fs::remove_file(file.path()).is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}
