//! Which waiting job starts next, in which slot: earliest deadline first, over the resources.

use crate::ResourceManager;

/// A job waiting for a slot, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// Unix seconds by which its proof must be accepted.
    pub deadline: u64,
    /// Memory it needs while proving, bytes.
    pub memory: u64,
    /// GPU memory it needs on one GPU, bytes (0: none).
    pub gpu_memory: u64,
    /// Arrival order, to break deadline ties.
    pub seq: u64,
}

/// Which waiting job starts now, if any: the earliest deadline (then the earliest arrival),
/// and only if it fits. A later job never jumps ahead of it, so large jobs are not starved.
pub fn next_to_start(waiting: &[Waiting], resources: &ResourceManager) -> Option<usize> {
    let (index, first) = waiting.iter().enumerate().min_by_key(|(_, w)| (w.deadline, w.seq))?;
    resources.can_start(first.memory, first.gpu_memory).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resources;

    fn manager(cores: u32, gib: u64) -> ResourceManager {
        ResourceManager::new(Resources {
            cores,
            memory_bytes: gib << 30,
            cores_per_slot: 1,
            gpus: 0,
            gpu_memory_bytes: 0,
        })
    }

    #[test]
    fn earliest_deadline_first_and_no_jumping_the_queue() {
        let w = |deadline, memory, seq| Waiting { deadline, memory, gpu_memory: 0, seq };
        let idle = manager(1, 24);
        assert_eq!(next_to_start(&[], &idle), None);
        assert_eq!(next_to_start(&[w(50, 10, 1), w(40, 10, 2), w(40, 10, 3)], &idle), Some(1));
        // The most urgent job needs more memory than is free: nothing smaller jumps ahead.
        let mut busy = manager(2, 12);
        busy.start(10 << 30, 0);
        assert_eq!(next_to_start(&[w(10, 10 << 30, 1), w(20, 10, 2)], &busy), None);
    }

    #[test]
    fn a_gpu_job_waits_for_a_free_gpu() {
        let mut one_gpu = ResourceManager::new(Resources {
            cores: 4,
            memory_bytes: 64 << 30,
            cores_per_slot: 1,
            gpus: 1,
            gpu_memory_bytes: 24 << 30,
        });
        let gpu_job =
            |deadline, seq| Waiting { deadline, memory: 1 << 30, gpu_memory: 8 << 30, seq };
        assert_eq!(next_to_start(&[gpu_job(10, 1)], &one_gpu), Some(0));
        one_gpu.start(1 << 30, 8 << 30);
        assert_eq!(next_to_start(&[gpu_job(10, 2)], &one_gpu), None, "its one GPU is busy");
        one_gpu.finish(1 << 30, 8 << 30);
        assert_eq!(next_to_start(&[gpu_job(10, 2)], &one_gpu), Some(0));
    }
}
