//! The node's proving capacity: how many proofs it can run at once, and how large a proof it can
//! hold in memory.

use serde::{Deserialize, Serialize};

/// Memory a Miden proof needs per PGU (padded trace row), measured: ~10 KB (notes/miden.md).
pub const BYTES_PER_PGU: u64 = 10 * 1024;

/// What the machine offers for proving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU cores available to proving.
    pub cores: u32,
    /// Memory available to proving, in bytes (total less what the OS and node keep).
    pub memory_bytes: u64,
    /// Cores one proof uses well (Miden's prover scales to ~2 cores; more slots beat wider ones).
    pub cores_per_slot: u32,
}

/// Admits proving jobs while cores and memory allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceManager {
    resources: Resources,
    /// PGUs of the jobs holding a slot.
    running: Vec<u64>,
}

impl ResourceManager {
    /// A manager of `resources` with nothing running.
    pub fn new(resources: Resources) -> Self {
        Self { resources, running: Vec::new() }
    }

    /// Proofs that can run at once.
    pub fn slots(&self) -> usize {
        (self.resources.cores / self.resources.cores_per_slot.max(1)).max(1) as usize
    }

    /// Memory a job of `pgus` needs.
    pub fn memory_for(pgus: u64) -> u64 {
        pgus.saturating_mul(BYTES_PER_PGU)
    }

    /// The largest job this machine can hold at all (alone).
    pub fn max_pgus(&self) -> u64 {
        self.resources.memory_bytes / BYTES_PER_PGU
    }

    fn memory_in_use(&self) -> u64 {
        self.running.iter().map(|p| Self::memory_for(*p)).sum()
    }

    /// Whether a job of `pgus` could start now.
    pub fn can_start(&self, pgus: u64) -> bool {
        self.running.len() < self.slots()
            && self.memory_in_use().saturating_add(Self::memory_for(pgus))
                <= self.resources.memory_bytes
    }

    /// Takes a slot for a job of `pgus`; false if it does not fit now.
    pub fn start(&mut self, pgus: u64) -> bool {
        let fits = self.can_start(pgus);
        if fits {
            self.running.push(pgus);
        }
        fits
    }

    /// Releases the slot of a job of `pgus`.
    pub fn finish(&mut self, pgus: u64) {
        if let Some(i) = self.running.iter().position(|p| *p == pgus) {
            self.running.swap_remove(i);
        }
    }

    /// Jobs running.
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_cores(memory_gib: u64) -> ResourceManager {
        ResourceManager::new(Resources {
            cores: 2,
            memory_bytes: memory_gib << 30,
            cores_per_slot: 1,
        })
    }

    #[test]
    fn slots_follow_cores_and_memory() {
        let mut m = two_cores(24);
        assert_eq!(m.slots(), 2);
        assert_eq!(m.max_pgus(), (24 << 30) / BYTES_PER_PGU);
        assert!(m.start(1 << 20), "a 2^20 job takes ~10 GiB");
        assert!(m.start(1 << 20), "two fit in 24 GiB");
        assert!(!m.can_start(1 << 10), "no third slot");
        m.finish(1 << 20);
        assert!(!m.start(1 << 21), "2^21 rows need 20 GiB, 10 GiB are held");
        assert!(m.start(1 << 16));
        assert_eq!(m.running(), 2);
    }

    #[test]
    fn a_job_larger_than_memory_never_fits() {
        let m = two_cores(1);
        assert!(!m.can_start(1 << 20));
        assert!(m.can_start(1 << 16));
    }
}
