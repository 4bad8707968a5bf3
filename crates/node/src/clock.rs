//! The clock the node is given: the core decides by the time it is told, and the node tells it
//! this clock's time. The live node uses [`SystemClock`]; tests and simulations may set time by
//! hand with [`ManualClock`].

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// Unix seconds, from wherever the node takes its time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Unix seconds now.
    fn now_secs(&self) -> u64;
}

/// The machine's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_secs(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

/// A clock that moves only when told.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `secs`.
    pub fn at(secs: u64) -> Self {
        Self(AtomicU64::new(secs))
    }

    /// Moves the clock to `secs`.
    pub fn set(&self, secs: u64) {
        self.0.store(secs, Ordering::SeqCst);
    }

    /// Moves the clock `secs` on.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_secs(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Unix seconds now by the system clock.
pub fn now_secs() -> u64 {
    SystemClock.now_secs()
}
