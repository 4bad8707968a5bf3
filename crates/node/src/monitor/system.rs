//! System sampling with `sysinfo`: CPU, memory and the disk holding the data dir.
//!
//! Definitions (Linux figures from `/proc/meminfo` and `statvfs`):
//! - **memory used** = total − available, where *available* is the kernel's `MemAvailable`: the
//!   memory a new process could get without swapping, counting reclaimable page cache as free.
//!   `total − free` would count the page cache as used and alert on every busy machine.
//! - **disk free** is the space an unprivileged process can still write (`f_bavail`), not
//!   `f_bfree`, which includes the blocks reserved for root that the node cannot use.
//! - **disk total** is the filesystem's size (`f_blocks`).
//! - **CPU** is the usage of all cores since the previous sample, in percent (0–100). The first
//!   sample after [`SystemSampler::new`] waits [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] so it is
//!   meaningful.
//!
//! Container memory limits (cgroups) are not read: the figures are the host's as `/proc` shows.
//! GPUs come from NVML ([`super::gpu`]); a machine without NVIDIA's driver has none.

use std::path::{Path, PathBuf};

use super::gpu::{GpuSample, GpuSampler, LostGpu};
use serde::{Deserialize, Serialize};
use sysinfo::{CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};

/// The disk holding the data dir, at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSample {
    /// The filesystem's mount point.
    pub mount_point: PathBuf,
    /// The filesystem's size, bytes.
    pub total_bytes: u64,
    /// Bytes the node can still write (excludes root's reserve).
    pub free_bytes: u64,
}

/// The machine at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemSample {
    /// Usage of all cores since the previous sample, percent (0–100).
    pub cpu_usage_percent: f64,
    /// Physical memory, bytes.
    pub memory_total_bytes: u64,
    /// Memory a new process could get without swapping (`MemAvailable`), bytes.
    pub memory_available_bytes: u64,
    /// Total − available, bytes.
    pub memory_used_bytes: u64,
    /// The disk holding the data dir, when one was found.
    pub disk: Option<DiskSample>,
    /// Every NVIDIA GPU NVML could read (none without NVIDIA's driver).
    #[serde(default)]
    pub gpus: Vec<GpuSample>,
    /// GPUs seen before and missing now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus_lost: Vec<LostGpu>,
}

impl SystemSample {
    /// Memory in use, percent; `None` when the total is unknown.
    pub fn memory_used_percent(&self) -> Option<f64> {
        (self.memory_total_bytes > 0)
            .then(|| self.memory_used_bytes as f64 * 100.0 / self.memory_total_bytes as f64)
    }

    /// The data disk's free share, percent; `None` when no disk was found or its size is 0.
    pub fn disk_free_percent(&self) -> Option<f64> {
        let disk = self.disk.as_ref()?;
        (disk.total_bytes > 0).then(|| disk.free_bytes as f64 * 100.0 / disk.total_bytes as f64)
    }
}

/// Keeps the `sysinfo` state between samples (CPU usage is a difference between two reads).
///
/// Each sample reads `/proc` and calls `statvfs`, which can block on a network filesystem: call
/// [`SystemSampler::sample`] from `spawn_blocking`.
#[derive(Debug)]
pub struct SystemSampler {
    system: System,
    disks: Disks,
    gpus: GpuSampler,
    data_dir: PathBuf,
    primed: bool,
}

impl SystemSampler {
    /// A sampler for the machine and the filesystem holding `data_dir` (which need not exist
    /// yet: its nearest existing ancestor decides).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        let disks =
            Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage());
        Self { system, disks, gpus: GpuSampler::open(), data_dir: data_dir.into(), primed: false }
    }

    /// Reads the machine now. Blocks (see the type's doc).
    pub fn sample(&mut self) -> SystemSample {
        if !self.primed {
            // CPU usage needs two reads at least this far apart.
            std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
            self.primed = true;
        }
        self.system.refresh_cpu_usage();
        self.system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        // Re-list so a filesystem mounted after start (the data dir's) is found.
        self.disks.refresh_specifics(true, DiskRefreshKind::nothing().with_storage());

        let memory_total_bytes = self.system.total_memory();
        let memory_available_bytes = self.system.available_memory().min(memory_total_bytes);
        let dir = resolve(&self.data_dir);
        let disk = mount_for(&dir, self.disks.list().iter().map(|d| d.mount_point()))
            .and_then(|i| self.disks.list().get(i))
            .map(|d| DiskSample {
                mount_point: d.mount_point().to_path_buf(),
                total_bytes: d.total_space(),
                free_bytes: d.available_space(),
            });
        let (gpus, gpus_lost) = self.gpus.sample();
        SystemSample {
            cpu_usage_percent: f64::from(self.system.global_cpu_usage()).clamp(0.0, 100.0),
            memory_total_bytes,
            memory_available_bytes,
            memory_used_bytes: memory_total_bytes - memory_available_bytes,
            disk,
            gpus,
            gpus_lost,
        }
    }
}

/// `path` canonicalised (symlinks resolved), or, while it does not exist, its nearest existing
/// ancestor canonicalised; an absolute path as is when nothing resolves.
fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|cwd| cwd.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    absolute.ancestors().find_map(|p| p.canonicalize().ok()).unwrap_or(absolute)
}

/// The index of the mount point holding `path`: the one that is the longest prefix of it, by
/// whole path components (`/data` holds `/data/node`, not `/database`).
fn mount_for<'a>(path: &Path, mounts: impl Iterator<Item = &'a Path>) -> Option<usize> {
    mounts
        .enumerate()
        .filter(|(_, m)| path.starts_with(m))
        .max_by_key(|(_, m)| m.components().count())
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_prefix_holds_the_path() {
        let mounts =
            [Path::new("/"), Path::new("/data"), Path::new("/data/fast"), Path::new("/dat")];
        let find = |p: &str| mount_for(Path::new(p), mounts.iter().copied());
        assert_eq!(find("/data/node"), Some(1));
        assert_eq!(find("/data/fast/node"), Some(2));
        assert_eq!(find("/data"), Some(1));
        assert_eq!(find("/database/x"), Some(0), "by components, not characters");
        assert_eq!(find("/home/x"), Some(0));
        assert_eq!(mount_for(Path::new("/x"), [Path::new("/data")].into_iter()), None);
    }

    #[test]
    fn a_missing_dir_resolves_to_its_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        assert_eq!(resolve(&dir.path().join("not/yet")), real);
        assert_eq!(resolve(dir.path()), real);
    }

    #[test]
    fn percentages_are_none_when_totals_are_unknown() {
        let mut s = SystemSample {
            cpu_usage_percent: 0.0,
            memory_total_bytes: 200,
            memory_available_bytes: 50,
            memory_used_bytes: 150,
            disk: Some(DiskSample { mount_point: "/".into(), total_bytes: 400, free_bytes: 100 }),
            gpus: Vec::new(),
            gpus_lost: Vec::new(),
        };
        assert_eq!(s.memory_used_percent(), Some(75.0));
        assert_eq!(s.disk_free_percent(), Some(25.0));
        s.memory_total_bytes = 0;
        s.disk = None;
        assert_eq!(s.memory_used_percent(), None);
        assert_eq!(s.disk_free_percent(), None);
    }

    #[test]
    fn this_machine_samples_consistently() {
        let dir = tempfile::tempdir().unwrap();
        let mut sampler = SystemSampler::new(dir.path());
        let s = sampler.sample();
        assert!(s.memory_total_bytes > 0);
        assert_eq!(s.memory_used_bytes, s.memory_total_bytes - s.memory_available_bytes);
        assert!((0.0..=100.0).contains(&s.cpu_usage_percent));
        let disk = s.disk.expect("the temp dir's disk is found");
        assert!(disk.total_bytes > 0 && disk.free_bytes <= disk.total_bytes, "{disk:?}");
        assert!(s.gpus_lost.is_empty(), "nothing lost in a first sample");
    }
}
