//! Artifact storage over the `object_store` crate: a local folder, memory, or S3-compatible.
//!
//! Layout inside the store (ids as 64 lowercase hex digits, sharded by their first byte):
//! - `objects/{ab}/{id}`: the artifact's bytes, written only whole (see below);
//! - `meta/{ab}/{id}.json`: its [`ArtifactMeta`] sidecar; an artifact exists once this exists;
//! - `expiry/{unix secs, 20 digits}/{id}`: empty markers that retention lists.
//!
//! ```text
//! PUT body ──► hash + size check ──► multipart upload (staged) ──► id ok? ─► publish ─► meta
//!                                                                  └ no ─► abort (nothing left)
//! ```
//!
//! Uploads go through a multipart upload, which is invisible until completed: the local folder
//! stages it in `objects/{ab}/{id}#n` and publishes with an atomic rename (`local`: a failed
//! write or rename, e.g. the folder refusing access, empties and removes the staged file and
//! keeps its cause); S3 keeps the parts hidden until `CompleteMultipartUpload`. Uploads to S3
//! smaller than one part use a single atomic put.
//! The sidecar is written only after the bytes are published and is deleted before them, so a
//! crash at any point leaves nothing that can be served.

mod local;
mod sweep;

use std::{
    ops::Range,
    path::{Path as FsPath, PathBuf},
    sync::Arc,
};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt, stream::BoxStream};
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, PutMode, PutPayload, WriteMultipart,
    aws::AmazonS3Builder, local::LocalFileSystem, memory::InMemory, path::Path,
    prefix::PrefixStore,
};
use provernet_types::ArtifactId;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use self::local::{Leftovers, StagedFile};
pub use self::{
    local::{is_staged, staged_files},
    sweep::SweepReport,
};
use crate::{
    error::{BoxError, StorageError, StorageResult},
    kind::{ArtifactKind, ArtifactMeta, Visibility, later_retention, unix_now},
};

/// Default multipart part size for S3-compatible stores (S3's minimum part is 5 MiB).
pub const DEFAULT_REMOTE_PART_BYTES: usize = 8 << 20;
/// Default part size for the local folder: small, since it only bounds buffering.
pub const DEFAULT_LOCAL_PART_BYTES: usize = 2 << 20;
/// Parts uploaded concurrently per upload; with the part size this bounds an upload's memory.
const PARTS_IN_FLIGHT: usize = 2;
/// Read size when streaming a local file: large enough to keep syscalls and task hops rare.
const LOCAL_READ_BYTES: usize = 256 << 10;

/// What an uploader declares about a new artifact (from its presigned URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewArtifact {
    /// What it holds.
    pub kind: ArtifactKind,
    /// Who may read it.
    pub visibility: Visibility,
    /// Retention expiry, unix seconds; `None` keeps it.
    pub retain_until: Option<u64>,
}

/// Result of a successful upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// This upload stored the artifact.
    Created {
        /// Size in bytes.
        size: u64,
    },
    /// The artifact was already stored; nothing was rewritten.
    AlreadyStored {
        /// Size in bytes.
        size: u64,
    },
}

/// A byte stream of (part of) an artifact.
pub struct ArtifactBody {
    /// The byte range it covers.
    pub range: Range<u64>,
    /// The bytes.
    pub stream: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

/// Content-addressed artifact storage on any [`ObjectStore`].
#[derive(Clone)]
pub struct ArtifactStorage {
    store: Arc<dyn ObjectStore>,
    /// The folder, when backed by the local filesystem (lets GET read files directly).
    local_root: Option<PathBuf>,
    part_bytes: usize,
    description: String,
    /// Staged files a failure could not remove (local folder), retried before each upload.
    leftovers: Leftovers,
}

impl std::fmt::Debug for ArtifactStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl ArtifactStorage {
    /// Opens a location: a folder path, `file:///abs/path`, `memory://`, or
    /// `s3://bucket[/prefix]` (credentials and endpoint from the `AWS_*` environment).
    ///
    /// # Errors
    /// [`StorageError::Location`] if the location is unusable.
    pub fn open(location: &str) -> StorageResult<Self> {
        let bad = |reason: String| StorageError::Location { location: location.to_owned(), reason };
        if location == "memory://" || location == "memory:" {
            return Ok(Self::memory());
        }
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name".into()));
            }
            let s3 = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| bad(e.to_string()))?;
            let prefix = prefix.trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            };
            let mut this = Self::from_object_store(store, DEFAULT_REMOTE_PART_BYTES);
            this.description = format!("s3 bucket {bucket} prefix /{prefix}");
            return Ok(this);
        }
        let folder = match location.strip_prefix("file://") {
            Some(path) => PathBuf::from(path),
            None if location.contains("://") => return Err(bad("unknown scheme".into())),
            None => PathBuf::from(location),
        };
        Self::local(&folder)
    }

    /// Storage in a local folder (created if missing).
    ///
    /// # Errors
    /// [`StorageError::Io`] if the folder cannot be created, [`StorageError::Location`] if the
    /// store refuses it.
    pub fn local(folder: &FsPath) -> StorageResult<Self> {
        std::fs::create_dir_all(folder)
            .map_err(|source| StorageError::Io { path: folder.to_owned(), source })?;
        let root = std::fs::canonicalize(folder)
            .map_err(|source| StorageError::Io { path: folder.to_owned(), source })?;
        let fs = LocalFileSystem::new_with_prefix(&root).map_err(|e| StorageError::Location {
            location: folder.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            store: Arc::new(fs),
            description: format!("local folder {}", root.display()),
            local_root: Some(root),
            part_bytes: DEFAULT_LOCAL_PART_BYTES,
            leftovers: Leftovers::default(),
        })
    }

    /// In-memory storage, for tests and wiring.
    pub fn memory() -> Self {
        let mut this = Self::from_object_store(Arc::new(InMemory::new()), DEFAULT_LOCAL_PART_BYTES);
        this.description = "memory".into();
        this
    }

    /// Storage on any object store, uploading in parts of `part_bytes`.
    pub fn from_object_store(store: Arc<dyn ObjectStore>, part_bytes: usize) -> Self {
        Self {
            store,
            local_root: None,
            part_bytes: part_bytes.max(1),
            description: "object store".into(),
            leftovers: Leftovers::default(),
        }
    }

    /// Overrides the multipart part size (bytes); S3 needs at least 5 MiB.
    pub fn with_part_bytes(mut self, part_bytes: usize) -> Self {
        self.part_bytes = part_bytes.max(1);
        self
    }

    /// The local folder, if this storage is one.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }

    /// Key of an artifact's bytes: `objects/{ab}/{id hex}`.
    pub fn object_key(id: &ArtifactId) -> String {
        let hex = hex::encode(id.as_bytes());
        format!("objects/{}/{hex}", &hex[..2])
    }

    /// Key of an artifact's metadata sidecar: `meta/{ab}/{id hex}.json`.
    pub fn meta_key(id: &ArtifactId) -> String {
        let hex = hex::encode(id.as_bytes());
        format!("meta/{}/{hex}.json", &hex[..2])
    }

    fn expiry_key(id: &ArtifactId, at: u64) -> Path {
        Path::from(format!("expiry/{at:020}/{}", hex::encode(id.as_bytes())))
    }

    /// The metadata of a stored artifact, or `None` if it is not (completely) stored.
    ///
    /// # Errors
    /// Backend failures and corrupt sidecars.
    pub async fn meta(&self, id: &ArtifactId) -> StorageResult<Option<ArtifactMeta>> {
        let key = Path::from(Self::meta_key(id));
        let bytes = match self.store.get(&key).await {
            Ok(result) => result.bytes().await.map_err(|e| StorageError::backend("get", *id, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(StorageError::backend("get", *id, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StorageError::CorruptMeta { id: *id, source })
    }

    /// Streams `body` into storage as artifact `id`, hashing as it goes.
    ///
    /// Nothing is stored unless the bytes hash to `id` and stay within `max_bytes`. If the id is
    /// already stored the bytes are not rewritten (a later retention is kept).
    ///
    /// # Errors
    /// [`StorageError::TooLarge`], [`StorageError::Mismatch`], [`StorageError::Body`] if the body
    /// breaks off, and backend failures.
    ///
    /// # Cancellation safety
    /// Dropping the future abandons the upload: the staged object is removed (local folder) or
    /// left as an incomplete multipart upload that S3 never serves.
    pub async fn put_stream<S, E>(
        &self,
        id: ArtifactId,
        new: NewArtifact,
        mut body: S,
        max_bytes: u64,
    ) -> StorageResult<PutOutcome>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<BoxError>,
    {
        let key = Path::from(Self::object_key(&id));
        self.leftovers.retry().await;
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        // The first part is held back: an upload that ends within it is stored with one put (or,
        // in the local folder, one write).
        let mut head: Vec<Bytes> = Vec::new();
        let mut upload: Option<Upload> = None;

        let result: StorageResult<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| StorageError::Body { id, source: e.into() })?;
                size += chunk.len() as u64;
                if size > max_bytes {
                    return Err(StorageError::TooLarge { id, limit: max_bytes });
                }
                hasher.update(&chunk);
                if let Some(writer) = upload.as_mut() {
                    writer.write(id, chunk).await?;
                } else {
                    head.push(chunk);
                    if size >= self.part_bytes as u64 {
                        let writer = upload.insert(self.start_upload(&key, id).await?);
                        for chunk in head.drain(..) {
                            writer.write(id, chunk).await?;
                        }
                    }
                }
            }
            // The local folder stages even a small upload, so that its failures read the same.
            if upload.is_none() && self.local_root.is_some() {
                let writer = upload.insert(self.start_upload(&key, id).await?);
                for chunk in head.drain(..) {
                    writer.write(id, chunk).await?;
                }
            }
            Ok(())
        }
        .await;

        let actual = ArtifactId::from_hasher(&hasher);
        let result = result.and_then(|()| {
            if actual == id { Ok(()) } else { Err(StorageError::Mismatch { expected: id, actual }) }
        });
        if let Err(err) = result {
            if let Some(writer) = upload {
                writer.abort(id).await;
            }
            return Err(err);
        }

        match upload {
            Some(writer) => writer.finish(id).await?,
            None => self
                .store
                .put(&key, head.into_iter().collect::<PutPayload>())
                .await
                .map(drop)
                .map_err(|e| StorageError::backend("publish", id, e))?,
        }

        let meta = ArtifactMeta {
            kind: new.kind,
            visibility: new.visibility,
            size,
            created_at: unix_now(),
            retain_until: new.retain_until,
        };
        self.publish_meta(id, meta).await
    }

    /// Starts the staged upload of `id`'s bytes: a staged file in the local folder, a multipart
    /// upload elsewhere.
    async fn start_upload(&self, key: &Path, id: ArtifactId) -> StorageResult<Upload> {
        match &self.local_root {
            Some(root) => {
                let dest = root.join(Self::object_key(&id));
                let staged = StagedFile::create(dest, self.part_bytes, self.leftovers.clone());
                Ok(Upload::Local(staged.await?))
            }
            None => {
                let multipart = self
                    .store
                    .put_multipart(key)
                    .await
                    .map_err(|e| StorageError::backend("put_multipart", id, e))?;
                Ok(Upload::Remote(WriteMultipart::new_with_chunk_size(multipart, self.part_bytes)))
            }
        }
    }

    /// Writes the sidecar unless one exists; an existing one only has its retention extended.
    async fn publish_meta(&self, id: ArtifactId, meta: ArtifactMeta) -> StorageResult<PutOutcome> {
        let key = Path::from(Self::meta_key(&id));
        let json =
            serde_json::to_vec(&meta).map_err(|source| StorageError::CorruptMeta { id, source })?;
        // Expiry marker first: a marker without an artifact is harmless, the reverse would leak.
        if let Some(at) = meta.retain_until {
            self.put_marker(id, at).await?;
        }
        match self
            .store
            .put_opts(&key, PutPayload::from(json.clone()), PutMode::Create.into())
            .await
        {
            Ok(_) => Ok(PutOutcome::Created { size: meta.size }),
            Err(object_store::Error::AlreadyExists { .. }) => {
                self.extend_retention(&id, meta.retain_until).await?;
                Ok(PutOutcome::AlreadyStored { size: meta.size })
            }
            // A store without conditional puts: last writer wins, which is fine for equal bytes.
            Err(object_store::Error::NotImplemented) => {
                self.store
                    .put(&key, PutPayload::from(json))
                    .await
                    .map_err(|e| StorageError::backend("put_meta", id, e))?;
                Ok(PutOutcome::Created { size: meta.size })
            }
            // Some S3 look-alikes answer a lost create race with another status than 412: if the
            // sidecar is there now, another upload of the same bytes won.
            Err(e) => match self.meta(&id).await {
                Ok(Some(_)) => {
                    self.extend_retention(&id, meta.retain_until).await?;
                    Ok(PutOutcome::AlreadyStored { size: meta.size })
                }
                _ => Err(StorageError::backend("put_meta", id, e)),
            },
        }
    }

    async fn put_marker(&self, id: ArtifactId, at: u64) -> StorageResult<()> {
        self.store
            .put(&Self::expiry_key(&id, at), PutPayload::default())
            .await
            .map(drop)
            .map_err(|e| StorageError::backend("put_expiry", id, e))
    }

    /// Makes a stored artifact live at least until `retain_until` (`None`: forever).
    ///
    /// # Errors
    /// [`StorageError::NotFound`] if it is not stored, and backend failures.
    pub async fn extend_retention(
        &self,
        id: &ArtifactId,
        retain_until: Option<u64>,
    ) -> StorageResult<()> {
        let mut meta = self.meta(id).await?.ok_or(StorageError::NotFound { id: *id })?;
        let extended = later_retention(meta.retain_until, retain_until);
        if extended == meta.retain_until {
            return Ok(());
        }
        meta.retain_until = extended;
        if let Some(at) = extended {
            self.put_marker(*id, at).await?;
        }
        let json = serde_json::to_vec(&meta)
            .map_err(|source| StorageError::CorruptMeta { id: *id, source })?;
        self.store
            .put(&Path::from(Self::meta_key(id)), PutPayload::from(json))
            .await
            .map(drop)
            .map_err(|e| StorageError::backend("put_meta", *id, e))
    }

    /// Streams the bytes of `id` in `range` (the whole artifact if `None`).
    ///
    /// The caller checks the metadata (existence, visibility) first; this reads the bytes only.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] and backend failures.
    pub async fn get(
        &self,
        id: &ArtifactId,
        range: Option<Range<u64>>,
    ) -> StorageResult<ArtifactBody> {
        let key = Path::from(Self::object_key(id));
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let result = self
            .store
            .get_opts(&key, options)
            .await
            .map_err(|e| StorageError::backend("get", *id, e))?;
        let range = result.range.clone();
        let stream = match result.payload {
            GetResultPayload::File(file, path) => {
                // object_store would read in 8 KiB blocking steps; read large chunks instead.
                let mut file = tokio::fs::File::from_std(file);
                file.seek(std::io::SeekFrom::Start(range.start))
                    .await
                    .map_err(|source| StorageError::Io { path, source })?;
                let reader = file.take(range.end - range.start);
                ReaderStream::with_capacity(reader, LOCAL_READ_BYTES).boxed()
            }
            GetResultPayload::Stream(stream) => stream.map_err(std::io::Error::other).boxed(),
        };
        Ok(ArtifactBody { range, stream })
    }

    /// Deletes an artifact: sidecar first (so it stops being served), then its bytes.
    ///
    /// # Errors
    /// Backend failures; a missing artifact is not an error.
    pub async fn delete(&self, id: &ArtifactId) -> StorageResult<()> {
        for key in [Self::meta_key(id), Self::object_key(id)] {
            match self.store.delete(&Path::from(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(StorageError::backend("delete", *id, e)),
            }
        }
        Ok(())
    }
}

/// An upload under way, invisible until finished.
enum Upload {
    /// A multipart upload of the object store.
    Remote(WriteMultipart),
    /// A staged file in the local folder.
    Local(StagedFile),
}

impl Upload {
    async fn write(&mut self, id: ArtifactId, chunk: Bytes) -> StorageResult<()> {
        match self {
            Self::Remote(writer) => {
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| StorageError::backend("put_part", id, e))?;
                writer.put(chunk);
                Ok(())
            }
            Self::Local(staged) => staged.write(&chunk).await,
        }
    }

    /// Makes the bytes visible under the object key, all at once.
    async fn finish(self, id: ArtifactId) -> StorageResult<()> {
        match self {
            Self::Remote(writer) => {
                writer.finish().await.map(drop).map_err(|e| StorageError::backend("publish", id, e))
            }
            Self::Local(staged) => staged.publish().await,
        }
    }

    /// Gives the upload up, leaving nothing.
    async fn abort(self, id: ArtifactId) {
        match self {
            Self::Remote(writer) => {
                if let Err(abort_err) = writer.abort().await {
                    tracing::warn!(target: "provernet::artifacts", %id, %abort_err, "abort failed");
                }
            }
            Self::Local(staged) => staged.discard().await,
        }
    }
}

/// Parses an id written as 64 hex digits without `0x` (how ids appear in keys and file names).
pub(crate) fn id_from_hex(hex: &str) -> Option<ArtifactId> {
    let bytes: [u8; 32] = hex::decode(hex).ok()?.try_into().ok()?;
    Some(ArtifactId::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use futures::stream;

    use super::*;

    fn new_artifact(retain_until: Option<u64>) -> NewArtifact {
        NewArtifact { kind: ArtifactKind::Inputs, visibility: Visibility::Public, retain_until }
    }

    fn body(
        data: &[u8],
        chunk: usize,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        let chunks: Vec<_> = data.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        stream::iter(chunks)
    }

    async fn read_all(
        storage: &ArtifactStorage,
        id: &ArtifactId,
        range: Option<Range<u64>>,
    ) -> Vec<u8> {
        let body = storage.get(id, range).await.expect("get");
        let chunks: Vec<Bytes> = body.stream.try_collect().await.expect("read");
        chunks.concat()
    }

    #[tokio::test]
    async fn small_and_multipart_round_trip_in_memory() {
        let storage = ArtifactStorage::memory().with_part_bytes(1024);
        for len in [0usize, 10, 5000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let id = ArtifactId::of(&data);
            let out = storage.put_stream(id, new_artifact(None), body(&data, 333), 1 << 20).await;
            assert_eq!(out.expect("put"), PutOutcome::Created { size: len as u64 });
            assert_eq!(read_all(&storage, &id, None).await, data);
            let meta = storage.meta(&id).await.expect("meta").expect("stored");
            assert_eq!(meta.size, len as u64);
        }
    }

    #[tokio::test]
    async fn mismatch_and_oversize_store_nothing() {
        let storage = ArtifactStorage::memory().with_part_bytes(1024);
        let data = vec![1u8; 4000];
        let wrong = ArtifactId::of(b"other");
        let err = storage.put_stream(wrong, new_artifact(None), body(&data, 500), 1 << 20).await;
        assert!(matches!(err, Err(StorageError::Mismatch { .. })));
        assert!(storage.meta(&wrong).await.expect("meta").is_none());

        let id = ArtifactId::of(&data);
        let err = storage.put_stream(id, new_artifact(None), body(&data, 500), 3999).await;
        assert!(matches!(err, Err(StorageError::TooLarge { limit: 3999, .. })));
        assert!(storage.meta(&id).await.expect("meta").is_none());
        assert!(matches!(storage.get(&id, None).await, Err(StorageError::NotFound { .. })));
    }

    #[tokio::test]
    async fn second_upload_keeps_bytes_and_extends_retention() {
        let storage = ArtifactStorage::memory();
        let data = b"hello".to_vec();
        let id = ArtifactId::of(&data);
        let first = storage.put_stream(id, new_artifact(Some(100)), body(&data, 2), 100).await;
        assert_eq!(first.expect("put"), PutOutcome::Created { size: 5 });
        let second = storage.put_stream(id, new_artifact(Some(500)), body(&data, 2), 100).await;
        assert_eq!(second.expect("put"), PutOutcome::AlreadyStored { size: 5 });
        let meta = storage.meta(&id).await.expect("meta").expect("stored");
        assert_eq!(meta.retain_until, Some(500));

        // The old marker at 100 is stale; nothing is deleted until 500.
        let report = storage.sweep_expired(200).await.expect("sweep");
        assert_eq!(report, SweepReport { deleted: 0, stale_markers: 1, failed: 0 });
        assert!(storage.meta(&id).await.expect("meta").is_some());
        let report = storage.sweep_expired(500).await.expect("sweep");
        assert_eq!(report.deleted, 1);
        assert!(storage.meta(&id).await.expect("meta").is_none());
    }

    #[tokio::test]
    async fn ranges_from_local_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = ArtifactStorage::local(dir.path()).expect("local").with_part_bytes(4096);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let id = ArtifactId::of(&data);
        storage.put_stream(id, new_artifact(None), body(&data, 1000), 1 << 20).await.expect("put");
        assert_eq!(read_all(&storage, &id, Some(100..5000)).await, &data[100..5000]);
        assert_eq!(read_all(&storage, &id, None).await, data);
        assert!(staged_files(dir.path()).is_empty(), "no staged upload left behind");
    }

    #[test]
    fn open_parses_locations() {
        assert!(ArtifactStorage::open("memory://").is_ok());
        assert!(ArtifactStorage::open("gs://bucket").is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("file://{}", dir.path().display());
        let storage = ArtifactStorage::open(&url).expect("file url");
        assert!(storage.local_root().is_some());
    }
}
