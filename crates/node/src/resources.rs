//! The node's proving capacity: how many proofs it can run at once, and how much memory they
//! hold. A job's memory comes from its backend ([`provernet_zkvm::ZkVm::proving_memory`]): Miden
//! grows with the trace, SP1 takes 12–18 GiB whatever its gas.

use serde::{Deserialize, Serialize};

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
    /// Memory (bytes) of the jobs holding a slot.
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

    /// Memory for proving in all, bytes: the largest job this machine can hold (alone).
    pub fn memory_bytes(&self) -> u64 {
        self.resources.memory_bytes
    }

    fn memory_in_use(&self) -> u64 {
        self.running.iter().sum()
    }

    /// Whether a job needing `memory` bytes could start now.
    pub fn can_start(&self, memory: u64) -> bool {
        self.running.len() < self.slots()
            && self.memory_in_use().saturating_add(memory) <= self.resources.memory_bytes
    }

    /// Takes a slot for a job needing `memory` bytes; false if it does not fit now.
    pub fn start(&mut self, memory: u64) -> bool {
        let fits = self.can_start(memory);
        if fits {
            self.running.push(memory);
        }
        fits
    }

    /// Releases the slot of a job that needed `memory` bytes.
    pub fn finish(&mut self, memory: u64) {
        if let Some(i) = self.running.iter().position(|m| *m == memory) {
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

    const GIB: u64 = 1 << 30;

    #[test]
    fn slots_follow_cores_and_memory() {
        let mut m = two_cores(24);
        assert_eq!(m.slots(), 2);
        assert_eq!(m.memory_bytes(), 24 * GIB);
        assert!(m.start(10 * GIB));
        assert!(m.start(10 * GIB), "two fit in 24 GiB");
        assert!(!m.can_start(GIB), "no third slot");
        m.finish(10 * GIB);
        assert!(!m.start(20 * GIB), "10 GiB are held");
        assert!(m.start(GIB));
        assert_eq!(m.running(), 2);
    }

    #[test]
    fn a_job_larger_than_memory_never_fits() {
        let m = two_cores(1);
        assert!(!m.can_start(2 * GIB));
        assert!(m.can_start(GIB / 2));
    }
}
