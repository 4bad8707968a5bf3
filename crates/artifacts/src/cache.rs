//! [`ArtifactCache`]: a size-bounded local cache of artifacts keyed by content id.
//!
//! Files live at `{dir}/{id hex}`. Entries are verified against their id whenever they are read
//! (a corrupt entry is dropped and reads as a miss), only verified bytes ever enter the cache,
//! and the least recently used entries are evicted once the total size passes the capacity.
//! Recency survives restarts through file modification times.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::Mutex,
    time::SystemTime,
};

use provernet_types::ArtifactId;

use crate::{
    client::{ArtifactClient, ProgressFn, hash_file},
    error::{CacheError, ClientError},
};

/// A size-bounded, verified, LRU cache of artifacts on local disk.
#[derive(Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    capacity: u64,
    /// std mutex: held only for index bookkeeping, never across an `.await`.
    index: Mutex<Index>,
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<ArtifactId, Entry>,
    /// Recency order: stamp → id; the smallest stamp is evicted first.
    order: BTreeMap<u64, ArtifactId>,
    used: u64,
    clock: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    stamp: u64,
}

impl Index {
    fn touch(&mut self, id: ArtifactId, size: u64) {
        self.clock += 1;
        let stamp = self.clock;
        if let Some(old) = self.entries.insert(id, Entry { size, stamp }) {
            self.order.remove(&old.stamp);
            self.used -= old.size;
        }
        self.order.insert(stamp, id);
        self.used += size;
    }

    fn remove(&mut self, id: &ArtifactId) -> Option<Entry> {
        let entry = self.entries.remove(id)?;
        self.order.remove(&entry.stamp);
        self.used -= entry.size;
        Some(entry)
    }

    /// Takes entries out, least recent first, until `used <= capacity`, sparing `keep`.
    fn evict(&mut self, capacity: u64, keep: &ArtifactId) -> Vec<ArtifactId> {
        let mut victims = Vec::new();
        while self.used > capacity {
            let Some(victim) = self.order.values().find(|id| *id != keep).copied() else { break };
            self.remove(&victim);
            victims.push(victim);
        }
        victims
    }
}

impl ArtifactCache {
    /// Opens (creating) a cache in `dir` holding at most `capacity_bytes`. Leftover partial
    /// downloads are removed and existing entries indexed by modification time.
    ///
    /// # Errors
    /// [`CacheError::Io`] if the folder cannot be created or read.
    pub async fn open(dir: impl Into<PathBuf>, capacity_bytes: u64) -> Result<Self, CacheError> {
        let dir = dir.into();
        let scan_dir = dir.clone();
        let found = tokio::task::spawn_blocking(move || scan(&scan_dir)).await.map_err(|e| {
            CacheError::Io { path: dir.clone(), source: std::io::Error::other(e) }
        })??;
        let cache = Self { dir, capacity: capacity_bytes, index: Mutex::new(Index::default()) };
        let victims = {
            let mut index = cache.lock();
            for (id, size, _) in &found {
                index.touch(*id, *size);
            }
            index.evict(capacity_bytes, &ArtifactId::from_bytes([0; 32]))
        };
        cache.delete_files(&victims).await;
        Ok(cache)
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Most bytes it holds.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes it holds now.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` is indexed (without verifying it).
    pub fn contains(&self, id: &ArtifactId) -> bool {
        self.lock().entries.contains_key(id)
    }

    /// Where the entry for `id` lives (whether or not it exists).
    pub fn path_of(&self, id: &ArtifactId) -> PathBuf {
        self.dir.join(hex::encode(id.as_bytes()))
    }

    /// The verified file of `id`, or `None` on a miss. A corrupt entry is removed and misses.
    ///
    /// The file may be evicted by a later insert: open it promptly.
    ///
    /// # Errors
    /// [`CacheError::Io`] if the entry cannot be read.
    pub async fn get(&self, id: &ArtifactId) -> Result<Option<PathBuf>, CacheError> {
        let Some(size) = self.lock().entries.get(id).map(|e| e.size) else { return Ok(None) };
        let path = self.path_of(id);
        match hash_file(&path).await {
            Ok(actual) if actual == *id => {
                self.lock().touch(*id, size);
                let touched = path.clone();
                // Best effort: recency across restarts only.
                let _ = tokio::task::spawn_blocking(move || {
                    std::fs::File::options()
                        .write(true)
                        .open(touched)?
                        .set_modified(SystemTime::now())
                })
                .await;
                Ok(Some(path))
            }
            Ok(actual) => {
                tracing::warn!(target: "provernet::artifacts", %id, %actual, "corrupt cache entry dropped");
                self.lock().remove(id);
                let _ = tokio::fs::remove_file(&path).await;
                Ok(None)
            }
            Err(ClientError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                self.lock().remove(id);
                Ok(None)
            }
            Err(ClientError::Io { path, source }) => Err(CacheError::Io { path, source }),
            Err(e) => Err(CacheError::Client(e)),
        }
    }

    /// Moves the file at `src` into the cache as `id` after checking it hashes to `id`.
    ///
    /// # Errors
    /// [`CacheError::Mismatch`] (nothing cached, `src` left alone), [`CacheError::TooLarge`],
    /// [`CacheError::Io`].
    pub async fn insert_file(&self, id: &ArtifactId, src: &Path) -> Result<PathBuf, CacheError> {
        let actual = hash_file(src).await.map_err(|e| match e {
            ClientError::Io { path, source } => CacheError::Io { path, source },
            e => CacheError::Client(e),
        })?;
        if actual != *id {
            return Err(CacheError::Mismatch { id: *id, actual });
        }
        let size = self.check_size(id, src).await?;
        let dest = self.path_of(id);
        self.ensure_dir().await?;
        tokio::fs::rename(src, &dest)
            .await
            .map_err(|source| CacheError::Io { path: dest.clone(), source })?;
        self.admit(id, size).await;
        Ok(dest)
    }

    /// The verified file of `id`, downloading it from `url` on a miss. A failed or corrupt
    /// download leaves the cache as it was.
    ///
    /// # Errors
    /// [`CacheError::Client`] (e.g. [`ClientError::Mismatch`] naming the id), [`CacheError::Io`],
    /// [`CacheError::TooLarge`] if it can never fit.
    pub async fn get_or_download(
        &self,
        client: &ArtifactClient,
        url: &str,
        id: &ArtifactId,
        progress: Option<ProgressFn>,
    ) -> Result<PathBuf, CacheError> {
        if let Some(path) = self.get(id).await? {
            return Ok(path);
        }
        self.ensure_dir().await?;
        let dest = self.path_of(id);
        // download_to_file verifies into a temporary sibling and renames only verified bytes.
        client.download_to_file(url, id, &dest, progress).await?;
        if let Err(err) = self.check_size(id, &dest).await {
            let _ = tokio::fs::remove_file(&dest).await;
            return Err(err);
        }
        let size = tokio::fs::metadata(&dest).await.map(|m| m.len()).unwrap_or(0);
        self.admit(id, size).await;
        Ok(dest)
    }

    /// Drops `id` from the cache.
    pub async fn remove(&self, id: &ArtifactId) {
        if self.lock().remove(id).is_some() {
            let _ = tokio::fs::remove_file(self.path_of(id)).await;
        }
    }

    async fn check_size(&self, id: &ArtifactId, path: &Path) -> Result<u64, CacheError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|source| CacheError::Io { path: path.to_owned(), source })?
            .len();
        if size > self.capacity {
            return Err(CacheError::TooLarge { id: *id, size, capacity: self.capacity });
        }
        Ok(size)
    }

    async fn admit(&self, id: &ArtifactId, size: u64) {
        let victims = {
            let mut index = self.lock();
            index.touch(*id, size);
            index.evict(self.capacity, id)
        };
        self.delete_files(&victims).await;
    }

    async fn delete_files(&self, ids: &[ArtifactId]) {
        for id in ids {
            tracing::debug!(target: "provernet::artifacts", %id, "evicted from cache");
            let _ = tokio::fs::remove_file(self.path_of(id)).await;
        }
    }

    async fn ensure_dir(&self) -> Result<(), CacheError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|source| CacheError::Io { path: self.dir.clone(), source })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // A panic while holding the lock leaves a consistent-enough index: keep going.
        self.index.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Lists cache entries `(id, size, mtime)` oldest first, deleting leftover partial downloads.
fn scan(dir: &Path) -> Result<Vec<(ArtifactId, u64, SystemTime)>, CacheError> {
    let io = |source| CacheError::Io { path: dir.to_owned(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".partial") {
            let _ = std::fs::remove_file(entry.path());
            continue;
        }
        let Some(id) = crate::storage::id_from_hex(&name) else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        found.push((id, meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
    }
    found.sort_by_key(|(_, _, modified)| *modified);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn put(cache: &ArtifactCache, data: &[u8]) -> ArtifactId {
        let id = ArtifactId::of(data);
        let src = cache.dir().join(format!("src-{id}"));
        tokio::fs::write(&src, data).await.expect("write");
        cache.insert_file(&id, &src).await.expect("insert");
        id
    }

    #[tokio::test]
    async fn lru_eviction_by_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ArtifactCache::open(dir.path().join("c"), 250).await.expect("open");
        let a = put(&cache, &[1; 100]).await;
        let b = put(&cache, &[2; 100]).await;
        assert!(cache.get(&a).await.expect("get").is_some(), "a is now most recent");
        let c = put(&cache, &[3; 100]).await;
        assert!(!cache.contains(&b), "b was least recently used");
        assert!(cache.contains(&a) && cache.contains(&c));
        assert_eq!(cache.used_bytes(), 200);
        assert!(!cache.path_of(&b).exists());

        let reopened = ArtifactCache::open(dir.path().join("c"), 250).await.expect("reopen");
        assert_eq!(reopened.len(), 2);
    }

    #[tokio::test]
    async fn corrupt_entries_miss_and_bad_files_never_enter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ArtifactCache::open(dir.path().join("c"), 1 << 20).await.expect("open");
        let id = put(&cache, b"good bytes").await;
        tokio::fs::write(cache.path_of(&id), b"evil bytes").await.expect("corrupt");
        assert!(cache.get(&id).await.expect("get").is_none());
        assert!(cache.is_empty());
        assert!(!cache.path_of(&id).exists());

        let src = dir.path().join("wrong");
        tokio::fs::write(&src, b"not what the id says").await.expect("write");
        let err = cache.insert_file(&id, &src).await;
        assert!(matches!(err, Err(CacheError::Mismatch { .. })));
        assert!(cache.is_empty());

        tokio::fs::write(&src, [0u8; 10]).await.expect("write");
        let small = ArtifactCache::open(dir.path().join("s"), 5).await.expect("open");
        let err = small.insert_file(&ArtifactId::of(&[0u8; 10]), &src).await;
        assert!(matches!(err, Err(CacheError::TooLarge { .. })));
    }
}
