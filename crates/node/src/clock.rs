//! The clock the node is given: the core decides by the time it is told, and the node tells it
//! this clock's time. The live node uses [`NetworkTime`] over the [`SystemClock`]: the
//! machine's clock corrected to the network's, whose deadlines the node races; tests and
//! simulations may set time by hand with [`ManualClock`].

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

/// A difference between the machine's clock and the network's worth a warning, seconds.
pub const SKEW_WARNING_SECS: i64 = 2;

/// Unix seconds, from wherever the node takes its time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Unix seconds now.
    fn now_secs(&self) -> u64;

    /// Tells the clock the network's time as just read (unix seconds); a clock that follows
    /// the network's corrects itself, others ignore it.
    fn observe_network(&self, _network_now: u64) {}

    /// Seconds this clock adds to the machine's to read the network's time (0 where it does
    /// not follow the network).
    fn offset_secs(&self) -> i64 {
        0
    }
}

/// The network's time as the node sees it: a local clock plus the offset last measured
/// against the network's (`GetNetworkInfo.now`). A machine whose clock is off would otherwise
/// misjudge every deadline by as much: bid on work it cannot finish, or skip work it can.
#[derive(Debug)]
pub struct NetworkTime {
    local: Arc<dyn Clock>,
    offset: AtomicI64,
    warned: AtomicBool,
}

impl NetworkTime {
    /// `local`, corrected from the first observation on.
    pub fn new(local: Arc<dyn Clock>) -> Self {
        Self { local, offset: AtomicI64::new(0), warned: AtomicBool::new(false) }
    }
}

impl Clock for NetworkTime {
    fn now_secs(&self) -> u64 {
        self.local.now_secs().saturating_add_signed(self.offset.load(Ordering::Relaxed))
    }

    fn observe_network(&self, network_now: u64) {
        let local = self.local.now_secs();
        // Whole seconds on both sides: a difference of one is the reading's own rounding.
        let offset = i64::try_from(network_now).unwrap_or(i64::MAX)
            - i64::try_from(local).unwrap_or(i64::MAX);
        let offset = if offset.abs() <= 1 { 0 } else { offset };
        self.offset.store(offset, Ordering::Relaxed);
        let off = offset.abs() >= SKEW_WARNING_SECS;
        if off && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                code = "PN-CLOCK-SKEW",
                offset_secs = offset,
                "this machine's clock is {} s {} the network's: the node decides by the network's \
                 time; fix the machine's clock (NTP)",
                offset.abs(),
                if offset > 0 { "behind" } else { "ahead of" }
            );
        } else if !off {
            self.warned.store(false, Ordering::Relaxed);
        }
    }

    fn offset_secs(&self) -> i64 {
        self.offset.load(Ordering::Relaxed)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_time_corrects_a_clock_that_is_off_and_ignores_rounding() {
        let local = Arc::new(ManualClock::at(1_000));
        let time = NetworkTime::new(local.clone());
        assert_eq!(time.now_secs(), 1_000, "uncorrected until it has seen the network's");
        time.observe_network(970);
        assert_eq!((time.now_secs(), time.offset_secs()), (970, -30), "30 s ahead");
        local.advance(5);
        assert_eq!(time.now_secs(), 975);
        time.observe_network(1_036);
        assert_eq!(time.offset_secs(), 31, "behind");
        time.observe_network(1_006);
        assert_eq!((time.now_secs(), time.offset_secs()), (1_005, 0), "a second is rounding");
        assert_eq!(SystemClock.offset_secs(), 0);
    }
}
