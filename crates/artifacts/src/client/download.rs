//! Downloads, always verified against the id: sequential (hash while streaming) or, for large
//! artifacts, parallel ranges written in place and hashed once complete.
//!
//! ```text
//! sequential: GET ──► hash + write ─► id ok? ─► rename into place
//! parallel:   HEAD ─► N × GET Range ─► write at offset ─► hash file ─► id ok? ─► rename
//! ```
//! Bytes land in a temporary sibling file first, so a failed or corrupt download never leaves
//! anything at the destination.

use std::{
    io::SeekFrom,
    ops::Range,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use provernet_types::ArtifactId;
use reqwest::{StatusCode, header};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::{ArtifactClient, Progress, ProgressFn, check};
use crate::error::ClientError;

/// Write buffer per download stream: large writes keep blocking-pool hops rare.
const WRITE_BUF_BYTES: usize = 1 << 20;
/// Read buffer when hashing a downloaded file.
const HASH_BUF_BYTES: usize = 1 << 20;

/// Tells temporary files of concurrent downloads in one process apart.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ArtifactClient {
    /// Downloads the artifact `id` from `url` into the file `path`, verifying it; returns its
    /// size. Large artifacts are fetched in parallel ranges (see [`ArtifactClientConfig`]).
    ///
    /// # Errors
    /// [`ClientError::Mismatch`] (naming the id) if the bytes do not hash to `id`, in which case
    /// nothing is written at `path`; [`ClientError::Status`], [`ClientError::Io`], transport errors.
    ///
    /// [`ArtifactClientConfig`]: super::ArtifactClientConfig
    pub async fn download_to_file(
        &self,
        url: &str,
        id: &ArtifactId,
        path: &Path,
        progress: Option<ProgressFn>,
    ) -> Result<u64, ClientError> {
        let tmp = temp_sibling(path);
        let result = async {
            let parallel_size = if self.config.parallel_connections > 1 {
                let size = self.head(url).await?.size;
                (size >= self.config.parallel_threshold_bytes).then_some(size)
            } else {
                None
            };
            let size = match parallel_size {
                Some(size) => self.fetch_parallel(url, id, &tmp, size, progress).await?,
                None => self.fetch_sequential(url, id, &tmp, progress).await?,
            };
            tokio::fs::rename(&tmp, path)
                .await
                .map_err(|source| ClientError::Io { path: path.to_owned(), source })?;
            Ok(size)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// Downloads the artifact `id` from `url` into memory, verifying it.
    ///
    /// # Errors
    /// As [`download_to_file`](Self::download_to_file).
    pub async fn download_to_vec(
        &self,
        url: &str,
        id: &ArtifactId,
        progress: Option<ProgressFn>,
    ) -> Result<Bytes, ClientError> {
        self.config
            .retry
            .run("download", |_| async {
                let response =
                    check(self.http.get(url).send().await.map_err(ClientError::request)?).await?;
                let total = response.content_length();
                // Capacity from the announced length, capped so a lying server can't make us reserve.
                let mut buf = Vec::with_capacity(total.unwrap_or(0).min(64 << 20) as usize);
                let mut hasher = blake3::Hasher::new();
                let mut chunks = response.bytes_stream();
                while let Some(chunk) = chunks.try_next().await.map_err(ClientError::request)? {
                    hasher.update(&chunk);
                    buf.extend_from_slice(&chunk);
                    report(&progress, buf.len() as u64, total);
                }
                verify(id, &hasher, total, buf.len() as u64)?;
                Ok(Bytes::from(buf))
            })
            .await
    }

    /// Downloads `url` into memory, refusing more than `max_bytes`: for bytes that have no
    /// content id to check (a Succinct-API network serves its artifacts by URL only).
    ///
    /// # Errors
    /// [`ClientError::TooLarge`] as soon as the announced or received length passes `max_bytes`
    /// (nothing is kept); [`ClientError::Status`] and transport errors, after the retries.
    pub async fn download_bounded(&self, url: &str, max_bytes: u64) -> Result<Bytes, ClientError> {
        self.config
            .retry
            .run("download", |_| async {
                let response =
                    check(self.http.get(url).send().await.map_err(ClientError::request)?).await?;
                let total = response.content_length();
                if total.is_some_and(|n| n > max_bytes) {
                    return Err(ClientError::TooLarge { max: max_bytes });
                }
                let mut buf = Vec::with_capacity(total.unwrap_or(0).min(64 << 20) as usize);
                let mut chunks = response.bytes_stream();
                while let Some(chunk) = chunks.try_next().await.map_err(ClientError::request)? {
                    if (buf.len() + chunk.len()) as u64 > max_bytes {
                        return Err(ClientError::TooLarge { max: max_bytes });
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(Bytes::from(buf))
            })
            .await
    }

    /// One stream, hashed as it is written.
    async fn fetch_sequential(
        &self,
        url: &str,
        id: &ArtifactId,
        tmp: &Path,
        progress: Option<ProgressFn>,
    ) -> Result<u64, ClientError> {
        let io = |source| ClientError::Io { path: tmp.to_owned(), source };
        self.config
            .retry
            .run("download", |_| async {
                let response =
                    check(self.http.get(url).send().await.map_err(ClientError::request)?).await?;
                let total = response.content_length();
                let file = tokio::fs::File::create(tmp).await.map_err(io)?;
                let mut writer = BufWriter::with_capacity(WRITE_BUF_BYTES, file);
                let mut hasher = blake3::Hasher::new();
                let mut done = 0u64;
                let mut chunks = response.bytes_stream();
                while let Some(chunk) = chunks.try_next().await.map_err(ClientError::request)? {
                    hasher.update(&chunk);
                    writer.write_all(&chunk).await.map_err(io)?;
                    done += chunk.len() as u64;
                    report(&progress, done, total);
                }
                writer.flush().await.map_err(io)?;
                verify(id, &hasher, total, done)?;
                Ok(done)
            })
            .await
    }

    /// Ranges fetched over several connections into a preallocated file, then hashed.
    async fn fetch_parallel(
        &self,
        url: &str,
        id: &ArtifactId,
        tmp: &Path,
        size: u64,
        progress: Option<ProgressFn>,
    ) -> Result<u64, ClientError> {
        let io = |source| ClientError::Io { path: tmp.to_owned(), source };
        let file = tokio::fs::File::create(tmp).await.map_err(io)?;
        file.set_len(size).await.map_err(io)?;
        drop(file);

        let step = self.config.range_bytes.max(1);
        let ranges = (0..size.div_ceil(step)).map(|i| i * step..((i + 1) * step).min(size));
        let done = Arc::new(AtomicU64::new(0));
        stream::iter(ranges)
            .map(|range| self.fetch_range(url, *id, tmp, range, size, &done, &progress))
            .buffer_unordered(self.config.parallel_connections.max(1))
            .try_collect::<()>()
            .await?;

        let actual = hash_file(tmp).await?;
        if actual != *id {
            return Err(ClientError::Mismatch { id: *id, actual });
        }
        Ok(size)
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_range(
        &self,
        url: &str,
        id: ArtifactId,
        tmp: &Path,
        range: Range<u64>,
        size: u64,
        done: &AtomicU64,
        progress: &Option<ProgressFn>,
    ) -> Result<(), ClientError> {
        let io = |source| ClientError::Io { path: tmp.to_owned(), source };
        let want = range.end - range.start;
        self.config
            .retry
            .run("download range", |_| async {
                let mut written = 0u64;
                let result = async {
                    let request = self
                        .http
                        .get(url)
                        .header(header::RANGE, format!("bytes={}-{}", range.start, range.end - 1));
                    let response =
                        check(request.send().await.map_err(ClientError::request)?).await?;
                    if response.status() != StatusCode::PARTIAL_CONTENT {
                        return Err(ClientError::Other("server ignored the Range header".into()));
                    }
                    let mut file =
                        tokio::fs::OpenOptions::new().write(true).open(tmp).await.map_err(io)?;
                    file.seek(SeekFrom::Start(range.start)).await.map_err(io)?;
                    let mut writer = BufWriter::with_capacity(WRITE_BUF_BYTES, file);
                    let mut chunks = response.bytes_stream();
                    while let Some(chunk) = chunks.try_next().await.map_err(ClientError::request)? {
                        let len = chunk.len() as u64;
                        if written + len > want {
                            return Err(ClientError::Length {
                                id,
                                expected: want,
                                got: written + len,
                            });
                        }
                        writer.write_all(&chunk).await.map_err(io)?;
                        written += len;
                        let total = done.fetch_add(len, Ordering::Relaxed) + len;
                        report(progress, total, Some(size));
                    }
                    writer.flush().await.map_err(io)?;
                    if written != want {
                        return Err(ClientError::Length { id, expected: want, got: written });
                    }
                    Ok(())
                }
                .await;
                if result.is_err() {
                    // Progress counts this range again when it is retried.
                    done.fetch_sub(written, Ordering::Relaxed);
                }
                result
            })
            .await
    }
}

/// BLAKE3 of a file, read in large blocks on the blocking pool (not memory-mapped, so it does
/// not count towards resident memory).
pub async fn hash_file(path: &Path) -> Result<ArtifactId, ClientError> {
    let owned = path.to_owned();
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<ArtifactId> {
        use std::io::Read;
        let mut file = std::fs::File::open(&owned)?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; HASH_BUF_BYTES];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(ArtifactId::from_hasher(&hasher));
            }
            hasher.update(&buf[..n]);
        }
    })
    .await
    .map_err(|e| ClientError::Other(Box::new(e)))?;
    result.map_err(|source| ClientError::Io { path: path.to_owned(), source })
}

fn verify(
    id: &ArtifactId,
    hasher: &blake3::Hasher,
    total: Option<u64>,
    got: u64,
) -> Result<(), ClientError> {
    if let Some(expected) = total.filter(|&t| t != got) {
        return Err(ClientError::Length { id: *id, expected, got });
    }
    let actual = ArtifactId::from_hasher(hasher);
    if actual != *id {
        return Err(ClientError::Mismatch { id: *id, actual });
    }
    Ok(())
}

fn report(progress: &Option<ProgressFn>, done: u64, total: Option<u64>) {
    if let Some(report) = progress {
        report(Progress { done, total });
    }
}

/// `dir/.name.<pid>-<n>.partial` next to `path`.
fn temp_sibling(path: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}.partial", std::process::id()))
}
