//! The node's proving capacity: how many proofs it can run at once, how much memory they hold,
//! and the GPUs they may ask for. A job's memory comes from its backend
//! ([`provernet_zkvm::ZkVm::proving_memory`]): Miden grows with the trace, SP1 takes 12–18 GiB
//! whatever its gas. Its GPU memory too ([`provernet_zkvm::ZkVm::proving_gpu_memory`]): none for
//! today's CPU provers; a job that asks for some holds one whole GPU with that much memory.

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
    /// GPUs available to proving (NVIDIA, through NVML; 0 without).
    pub gpus: u32,
    /// Memory of the smallest of those GPUs, bytes: a job that fits it fits any of them.
    pub gpu_memory_bytes: u64,
}

impl Resources {
    /// Whether a job of `gpu_memory` bytes could ever run here: it asks for no GPU, or one GPU
    /// holds it.
    pub fn gpu_holds(&self, gpu_memory: u64) -> bool {
        gpu_memory == 0 || (self.gpus > 0 && gpu_memory <= self.gpu_memory_bytes)
    }
}

/// Admits proving jobs while cores and memory allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceManager {
    resources: Resources,
    /// Memory and GPU memory (bytes) of the jobs holding a slot.
    running: Vec<(u64, u64)>,
}

impl ResourceManager {
    /// A manager of `resources` with nothing running.
    pub fn new(resources: Resources) -> Self {
        Self { resources, running: Vec::new() }
    }

    /// Takes `resources` as what there is from now on (a proving pool's workers came or went);
    /// the jobs running keep their slots, and no new one starts until they fit.
    pub fn set_resources(&mut self, resources: Resources) {
        self.resources = resources;
    }

    /// Proofs that can run at once.
    pub fn slots(&self) -> usize {
        (self.resources.cores / self.resources.cores_per_slot.max(1)).max(1) as usize
    }

    /// Memory for proving in all, bytes: the largest job this machine can hold (alone).
    pub fn memory_bytes(&self) -> u64 {
        self.resources.memory_bytes
    }

    /// Memory the running jobs hold, bytes.
    pub fn memory_in_use(&self) -> u64 {
        self.running.iter().map(|(m, _)| m).sum()
    }

    fn gpus_in_use(&self) -> usize {
        self.running.iter().filter(|(_, g)| *g > 0).count()
    }

    /// Whether a job of `gpu_memory` bytes could ever run here (see [`Resources::gpu_holds`]).
    pub fn gpu_holds(&self, gpu_memory: u64) -> bool {
        self.resources.gpu_holds(gpu_memory)
    }

    /// Whether a job needing `memory` bytes, and a GPU with `gpu_memory` bytes (0: none), could
    /// start now.
    pub fn can_start(&self, memory: u64, gpu_memory: u64) -> bool {
        self.running.len() < self.slots()
            && self.memory_in_use().saturating_add(memory) <= self.resources.memory_bytes
            && self.gpu_holds(gpu_memory)
            && (gpu_memory == 0 || self.gpus_in_use() < self.resources.gpus as usize)
    }

    /// Takes a slot (and a GPU, if it asks for one) for a job; false if it does not fit now.
    pub fn start(&mut self, memory: u64, gpu_memory: u64) -> bool {
        let fits = self.can_start(memory, gpu_memory);
        if fits {
            self.running.push((memory, gpu_memory));
        }
        fits
    }

    /// Releases the slot (and GPU) of a job that needed `memory` and `gpu_memory` bytes.
    pub fn finish(&mut self, memory: u64, gpu_memory: u64) {
        if let Some(i) = self.running.iter().position(|r| *r == (memory, gpu_memory)) {
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
            gpus: 0,
            gpu_memory_bytes: 0,
        })
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn slots_follow_cores_and_memory() {
        let mut m = two_cores(24);
        assert_eq!(m.slots(), 2);
        assert_eq!(m.memory_bytes(), 24 * GIB);
        assert!(m.start(10 * GIB, 0));
        assert!(m.start(10 * GIB, 0), "two fit in 24 GiB");
        assert!(!m.can_start(GIB, 0), "no third slot");
        m.finish(10 * GIB, 0);
        assert!(!m.start(20 * GIB, 0), "10 GiB are held");
        assert!(m.start(GIB, 0));
        assert_eq!(m.running(), 2);
    }

    #[test]
    fn a_job_larger_than_memory_never_fits() {
        let m = two_cores(1);
        assert!(!m.can_start(2 * GIB, 0));
        assert!(m.can_start(GIB / 2, 0));
    }

    #[test]
    fn a_gpu_job_holds_one_gpu_that_has_the_memory() {
        let cpu_only = two_cores(24);
        assert!(!cpu_only.gpu_holds(GIB) && !cpu_only.can_start(GIB, GIB), "no GPU here");
        assert!(cpu_only.gpu_holds(0), "a CPU job asks for none");
        let mut m = ResourceManager::new(Resources {
            cores: 4,
            memory_bytes: 64 * GIB,
            cores_per_slot: 1,
            gpus: 2,
            gpu_memory_bytes: 24 * GIB,
        });
        assert!(!m.gpu_holds(25 * GIB), "larger than any GPU");
        assert!(m.start(GIB, 20 * GIB));
        assert!(m.start(GIB, 20 * GIB), "the second GPU");
        assert!(!m.can_start(GIB, GIB), "both GPUs busy: one job per GPU");
        assert!(m.start(GIB, 0), "a CPU job still takes a slot");
        m.finish(GIB, 20 * GIB);
        assert!(m.can_start(GIB, GIB), "a GPU is free again");
    }
}
