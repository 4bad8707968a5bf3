//! A proof's peak memory, for self-calibration's memory per PGU: the most the node process's
//! resident memory (`VmRSS` in `/proc/self/status`) stood above its floor while the proof ran,
//! sampled every [`SAMPLE_EVERY`].
//!
//! The floor is the lowest resident memory this process had at the start of any proof, not at
//! this proof's start: the allocator keeps memory an earlier proof freed, and a proof that
//! reuses it does not grow the process, so growth over its own start would read low and admit
//! too much. Over the floor it reads high at worst (caches grown since), which admits less.
//! Resident memory is the whole process's, so a proof that overlapped another proof anywhere in
//! it (the devnet runs several nodes in one process) is not measured. Without `/proc` (not
//! Linux) nothing is.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

/// How often resident memory is read while a proof runs.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// Proofs running in this process now.
static PROVING: AtomicUsize = AtomicUsize::new(0);

/// The lowest resident memory seen at a proof's start in this process, bytes.
static FLOOR: AtomicU64 = AtomicU64::new(u64::MAX);

/// The process's resident memory now, bytes; none without `/proc`.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// Watches the process's memory while one proof runs.
#[derive(Debug)]
pub struct PeakMemory {
    peak: Arc<AtomicU64>,
    shared: Arc<AtomicBool>,
    sampler: tokio::task::JoinHandle<()>,
}

impl PeakMemory {
    /// Starts watching, as a proof starts.
    pub fn start() -> Self {
        let others = PROVING.fetch_add(1, Ordering::SeqCst);
        let now = resident_bytes();
        if let Some(now) = now {
            FLOOR.fetch_min(now, Ordering::SeqCst);
        }
        let peak = Arc::new(AtomicU64::new(now.unwrap_or(0)));
        let shared = Arc::new(AtomicBool::new(others > 0));
        let (p, s) = (peak.clone(), shared.clone());
        // Reading procfs takes microseconds: no need for a blocking thread.
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                if PROVING.load(Ordering::SeqCst) > 1 {
                    s.store(true, Ordering::SeqCst);
                }
                if let Some(now) = resident_bytes() {
                    p.fetch_max(now, Ordering::SeqCst);
                }
            }
        });
        Self { peak, shared, sampler }
    }

    /// How far the process's memory stood above the floor at its peak while the proof ran,
    /// bytes; none if another proof shared the process meanwhile or memory cannot be read.
    pub fn finish(self) -> Option<u64> {
        let now = resident_bytes()?;
        let peak = self.peak.fetch_max(now, Ordering::SeqCst).max(now);
        if self.shared.load(Ordering::SeqCst) || PROVING.load(Ordering::SeqCst) > 1 {
            return None;
        }
        Some(peak.saturating_sub(FLOOR.load(Ordering::SeqCst)))
    }
}

impl Drop for PeakMemory {
    fn drop(&mut self) {
        self.sampler.abort();
        PROVING.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_proof_alone_reads_its_growth_and_one_shared_reads_nothing() {
        if resident_bytes().is_none() {
            return; // no /proc: nothing is measured
        }
        let alone = PeakMemory::start();
        // 64 MiB touched page by page, so it is resident.
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        tokio::time::sleep(SAMPLE_EVERY * 3).await;
        let grew = alone.finish();
        drop(block);
        assert!(grew.is_some_and(|b| b >= 32 << 20), "{grew:?}");
        let first = PeakMemory::start();
        let second = PeakMemory::start();
        tokio::time::sleep(SAMPLE_EVERY * 2).await;
        assert_eq!(first.finish(), None, "another proof shared the process");
        assert_eq!(second.finish(), None);
    }
}
