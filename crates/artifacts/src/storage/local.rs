//! Uploads to the local folder, staged in `objects/{ab}/{id}#n` and renamed into place whole.
//!
//! Done here rather than through `object_store`'s multipart upload, whose local `complete` gives
//! up the staged file's name before renaming it: a failed rename (the folder made read-only)
//! would leave the staged file behind and report only "aborted", hiding the permission error.
//! Here every failure keeps its cause (and the path, for the log), and the staged file is
//! emptied through its open handle, which works even when its folder refuses changes, then
//! removed; a removal the folder refuses is retried later ([`Leftovers`]).

use std::{
    fs::{File, OpenOptions},
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use crate::error::{StorageError, StorageResult};

/// What separates a staged upload's file name from its artifact's (`{id}#n`).
const STAGED_MARK: char = '#';

/// Whether `file_name` names a staged upload rather than a stored artifact.
pub fn is_staged(file_name: &std::ffi::OsStr) -> bool {
    file_name.to_string_lossy().contains(STAGED_MARK)
}

/// The staged uploads anywhere under `dir` (a local storage's folder): what a crash or a
/// refused rename leaves behind, for the sweeper (which removes old ones) and for checks that
/// an upload left nothing. An unreadable folder is skipped.
pub fn staged_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if is_staged(&entry.file_name()) {
                found.push(path);
            }
        }
    }
    found
}

/// Staged files whose removal failed (their folder refused it), retried before later uploads.
#[derive(Debug, Clone, Default)]
pub(super) struct Leftovers(Arc<Mutex<Vec<PathBuf>>>);

impl Leftovers {
    fn push(&self, path: PathBuf) {
        if let Ok(mut paths) = self.0.lock() {
            paths.push(path);
        }
    }

    /// Tries again to remove each leftover; those still refused stay for the next try.
    pub(super) async fn retry(&self) {
        let paths = match self.0.lock() {
            Ok(mut paths) if !paths.is_empty() => std::mem::take(&mut *paths),
            _ => return,
        };
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for path in paths {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::info!(target: "provernet::artifacts", path = %path.display(), "removed a staged upload left by a failure");
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(_) => this.push(path),
                }
            }
        })
        .await;
    }
}

/// An upload being written to a staged file beside its destination.
pub(super) struct StagedFile {
    /// `objects/{ab}/{id}#n`.
    path: PathBuf,
    /// `objects/{ab}/{id}`.
    dest: PathBuf,
    /// `None` only while a write runs on the blocking pool, or once settled.
    file: Option<File>,
    /// Bytes not yet written: written a part at a time to keep blocking calls rare.
    buffer: Vec<u8>,
    part_bytes: usize,
    leftovers: Leftovers,
    /// Published or discarded: nothing left for `Drop` to clean.
    settled: bool,
}

impl StagedFile {
    /// Creates `{dest}#n` (the first free `n`) and its parent folders.
    pub(super) async fn create(
        dest: PathBuf,
        part_bytes: usize,
        leftovers: Leftovers,
    ) -> StorageResult<Self> {
        let (file, path) = blocking(dest.clone(), {
            let dest = dest.clone();
            move || create_staged(&dest)
        })
        .await?;
        Ok(Self {
            path,
            dest,
            file: Some(file),
            buffer: Vec::with_capacity(part_bytes),
            part_bytes,
            leftovers,
            settled: false,
        })
    }

    /// Appends `chunk`, writing to the file once a part's worth is buffered.
    pub(super) async fn write(&mut self, chunk: &[u8]) -> StorageResult<()> {
        self.buffer.extend_from_slice(chunk);
        if self.buffer.len() >= self.part_bytes { self.flush().await } else { Ok(()) }
    }

    async fn flush(&mut self) -> StorageResult<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let Some(mut file) = self.file.take() else { return Err(self.gone()) };
        let mut buffer = std::mem::take(&mut self.buffer);
        let (file, mut buffer) = blocking(self.path.clone(), move || {
            file.write_all(&buffer)?;
            buffer.clear();
            Ok((file, buffer))
        })
        .await?;
        buffer.reserve(self.part_bytes);
        self.file = Some(file);
        self.buffer = buffer;
        Ok(())
    }

    /// Writes what is buffered and renames the file to its destination, atomically; on failure
    /// the staged file is discarded and the error returned.
    pub(super) async fn publish(mut self) -> StorageResult<()> {
        let renamed = match self.flush().await {
            Ok(()) => {
                let (path, dest) = (self.path.clone(), self.dest.clone());
                blocking(self.path.clone(), move || std::fs::rename(&path, &dest)).await
            }
            Err(e) => Err(e),
        };
        match renamed {
            Ok(()) => {
                self.settled = true;
                Ok(())
            }
            Err(err) => {
                self.discard().await;
                Err(err)
            }
        }
    }

    /// Empties and removes the staged file. Emptying goes through the open handle, so it frees
    /// the space even where the folder refuses the removal; a refused removal is retried later.
    pub(super) async fn discard(mut self) {
        self.settled = true;
        let (file, path, leftovers) = (self.file.take(), self.path.clone(), self.leftovers.clone());
        let _ = tokio::task::spawn_blocking(move || remove_staged(file, path, &leftovers)).await;
    }

    fn gone(&self) -> StorageError {
        StorageError::Io {
            path: self.path.clone(),
            source: std::io::Error::other("staged file lost"),
        }
    }
}

impl Drop for StagedFile {
    /// A dropped upload (its request cancelled) leaves nothing either.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (file, path, leftovers) = (self.file.take(), self.path.clone(), self.leftovers.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(runtime.spawn_blocking(move || remove_staged(file, path, &leftovers)))
            }
            Err(_) => remove_staged(file, path, &leftovers),
        }
    }
}

fn remove_staged(file: Option<File>, path: PathBuf, leftovers: &Leftovers) {
    if let Some(file) = file
        && let Err(err) = file.set_len(0)
    {
        tracing::warn!(target: "provernet::artifacts", path = %path.display(), %err, "cannot empty a staged upload");
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::NotFound => {}
        Err(err) => {
            tracing::warn!(target: "provernet::artifacts", path = %path.display(), %err, "cannot remove a staged upload: retried before the next upload");
            leftovers.push(path);
        }
    }
}

fn create_staged(dest: &Path) -> std::io::Result<(File, PathBuf)> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    for n in 1u32.. {
        let mut path = dest.as_os_str().to_owned();
        path.push(format!("{STAGED_MARK}{n}"));
        let path = PathBuf::from(path);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free staging name"))
}

/// Runs `op` on the blocking pool; its error is reported against `path`.
async fn blocking<T: Send + 'static>(
    path: PathBuf,
    op: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> StorageResult<T> {
    match tokio::task::spawn_blocking(op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(StorageError::Io { path, source }),
        Err(join) => Err(StorageError::Io { path, source: std::io::Error::other(join) }),
    }
}
