//! Proving slots handed out earliest deadline first.
//!
//! The choice of which waiting job starts is [`next_to_start`], a plain function of the waiting
//! jobs and the resources: what the market simulation and the tests drive directly.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

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

struct Waiter {
    job: Waiting,
    wake: oneshot::Sender<()>,
}

struct State {
    resources: ResourceManager,
    waiting: Vec<Waiter>,
    seq: u64,
}

/// The node's proving slots.
#[derive(Clone)]
pub struct Slots {
    state: Arc<Mutex<State>>,
}

/// A held slot; released when dropped.
pub struct Slot {
    state: Arc<Mutex<State>>,
    memory: u64,
}

impl Slots {
    /// Slots over `resources`.
    pub fn new(resources: ResourceManager) -> Self {
        Self { state: Arc::new(Mutex::new(State { resources, waiting: Vec::new(), seq: 0 })) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot for a job needing `memory` bytes, due at `deadline`.
    pub async fn acquire(&self, memory: u64, deadline: u64) -> Slot {
        let rx = {
            let mut state = self.lock();
            state.seq += 1;
            let (tx, rx) = oneshot::channel();
            let job = Waiting { deadline, memory, seq: state.seq };
            state.waiting.push(Waiter { job, wake: tx });
            wake(&mut state);
            rx
        };
        let mut guard = PendingGuard { slots: self.clone(), memory, rx: Some(rx) };
        if let Some(rx) = guard.rx.as_mut() {
            // The sender is only dropped after starting us (the state outlives us).
            let _ = rx.await;
        }
        guard.rx = None;
        Slot { state: self.state.clone(), memory }
    }

    /// Jobs waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Jobs holding a slot.
    pub fn running(&self) -> usize {
        self.lock().resources.running()
    }

    /// Slots in all.
    pub fn total(&self) -> usize {
        self.lock().resources.slots()
    }
}

/// Starts waiting jobs while the earliest-deadline one fits.
fn wake(state: &mut State) {
    loop {
        let jobs: Vec<Waiting> = state.waiting.iter().map(|w| w.job).collect();
        let Some(i) = next_to_start(&jobs, &state.resources) else { return };
        let waiter = state.waiting.swap_remove(i);
        state.resources.start(waiter.job.memory);
        if waiter.wake.send(()).is_err() {
            // Its task was cancelled while waiting.
            state.resources.finish(waiter.job.memory);
        }
    }
}

/// While a task waits for a slot: if it is cancelled, its wait is withdrawn, or the slot it was
/// just handed is given back.
struct PendingGuard {
    slots: Slots,
    memory: u64,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        let handed = rx.try_recv().is_ok();
        drop(rx);
        let mut state = self.slots.lock();
        if handed {
            state.resources.finish(self.memory);
        } else {
            state.waiting.retain(|w| !w.wake.is_closed());
        }
        wake(&mut state);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.resources.finish(self.memory);
        wake(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    #[tokio::test]
    async fn slots_go_to_the_earliest_deadline_when_freed() {
        let slots = Slots::new(manager(1, 24));
        let first = slots.acquire(10, 100).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for deadline in [300, 200] {
            let slots = slots.clone();
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                let slot = slots.acquire(10, deadline).await;
                tx.send(deadline).unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(slot);
            }));
        }
        while slots.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        drop(first);
        assert_eq!(rx.recv().await, Some(200));
        assert_eq!(rx.recv().await, Some(300));
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(slots.running(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_wait_gives_its_place_up() {
        let slots = Slots::new(manager(1, 24));
        let held = slots.acquire(10, 100).await;
        let waiting = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire(10, 50).await })
        };
        while slots.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        drop(held);
        let again = tokio::time::timeout(Duration::from_secs(1), slots.acquire(10, 200)).await;
        assert!(again.is_ok(), "the aborted waiter kept the slot");
        assert_eq!(slots.running(), 1);
    }
}
