//! Which waiting job starts next, in which slot: earliest deadline first, over the resources.

use crate::ResourceManager;

/// A job waiting for a slot, as the scheduler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// Unix seconds by which its proof must be accepted.
    pub deadline: u64,
    /// Memory it needs while proving, bytes.
    pub memory: u64,
    /// Arrival order, to break deadline ties.
    pub seq: u64,
}

/// Which waiting job starts now, if any: the earliest deadline (then the earliest arrival),
/// and only if it fits. A later job never jumps ahead of it, so large jobs are not starved.
pub fn next_to_start(waiting: &[Waiting], resources: &ResourceManager) -> Option<usize> {
    let (index, first) = waiting.iter().enumerate().min_by_key(|(_, w)| (w.deadline, w.seq))?;
    resources.can_start(first.memory).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resources;

    fn manager(cores: u32, gib: u64) -> ResourceManager {
        ResourceManager::new(Resources { cores, memory_bytes: gib << 30, cores_per_slot: 1 })
    }

    #[test]
    fn earliest_deadline_first_and_no_jumping_the_queue() {
        let w = |deadline, memory, seq| Waiting { deadline, memory, seq };
        let idle = manager(1, 24);
        assert_eq!(next_to_start(&[], &idle), None);
        assert_eq!(next_to_start(&[w(50, 10, 1), w(40, 10, 2), w(40, 10, 3)], &idle), Some(1));
        // The most urgent job needs more memory than is free: nothing smaller jumps ahead.
        let mut busy = manager(2, 12);
        busy.start(10 << 30);
        assert_eq!(next_to_start(&[w(10, 10 << 30, 1), w(20, 10, 2)], &busy), None);
    }
}
