//! Self-protection: a rate limit per account on state-changing calls, a limit on subscriptions
//! per connection, and bounds on the executor's and the verifier's queues. Each refusal is a
//! `RESOURCE_EXHAUSTED` that names the limit, so that a client knows to slow down rather than
//! retry at once.

use std::{
    collections::HashMap,
    net::SocketAddr,
    num::NonZeroU32,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use provernet_types::Address;
use tonic::Status;

use crate::config::{NetworkConfig, RateLimit};

/// The network's limits and the counts they are checked against.
pub struct Limits {
    accounts: Option<(DefaultKeyedRateLimiter<Address>, RateLimit)>,
    subscriptions: Arc<Mutex<HashMap<SocketAddr, usize>>>,
    max_subscriptions: usize,
    /// Requests waiting for or in the executor.
    pub executions: Queue,
    /// Proofs waiting for or in the verifier.
    pub verifications: Queue,
}

impl Limits {
    /// The limits `config` sets.
    pub fn new(config: &NetworkConfig) -> Self {
        let accounts = config.account_rate_limit.and_then(|limit| {
            let rate = NonZeroU32::new(limit.per_second)?;
            let burst = NonZeroU32::new(limit.burst).unwrap_or(rate);
            Some((RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)), limit))
        });
        Self {
            accounts,
            subscriptions: Arc::default(),
            max_subscriptions: config.max_subscriptions_per_connection,
            executions: Queue::new("executor", config.max_queued_executions),
            verifications: Queue::new("verifier", config.max_queued_verifications),
        }
    }

    /// Counts a state-changing call by `account` (whose signature has been checked, so that
    /// nobody spends another account's allowance); refused above the account's rate.
    pub fn admit_call(&self, account: &Address) -> Result<(), Status> {
        let Some((limiter, limit)) = &self.accounts else { return Ok(()) };
        if limiter.check_key(account).is_err() {
            crate::metrics::rate_limited();
            return Err(Status::resource_exhausted(format!(
                "account {account} is over this network's rate limit of {} state-changing calls per second (bursts of {}): slow down and retry",
                limit.per_second, limit.burst
            )));
        }
        Ok(())
    }

    /// Forgets accounts that have been quiet for a while, so the limiter's memory follows the
    /// active accounts, not every account ever seen.
    pub fn forget_quiet_accounts(&self) {
        if let Some((limiter, _)) = &self.accounts {
            limiter.retain_recent();
        }
    }

    /// Admits one more subscription on the connection from `peer` (`None`: not a TCP
    /// connection, not counted); the guard gives its place back when the stream ends.
    pub fn admit_subscription(
        &self,
        peer: Option<SocketAddr>,
    ) -> Result<Option<SubscriptionGuard>, Status> {
        let Some(peer) = peer else { return Ok(None) };
        let mut open = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(peer).or_insert(0);
        if *count >= self.max_subscriptions {
            crate::metrics::subscription_refused();
            return Err(Status::resource_exhausted(format!(
                "this connection already has {count} subscriptions, the limit per connection: close one or use another connection"
            )));
        }
        *count += 1;
        Ok(Some(SubscriptionGuard { peer, open: self.subscriptions.clone() }))
    }
}

/// A subscription's place in its connection's count.
pub struct SubscriptionGuard {
    peer: SocketAddr,
    open: Arc<Mutex<HashMap<SocketAddr, usize>>>,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

/// A bounded queue of background work: new work is refused while it is full.
pub struct Queue {
    what: &'static str,
    queued: Arc<AtomicUsize>,
    max: usize,
}

impl Queue {
    fn new(what: &'static str, max: usize) -> Self {
        Self { what, queued: Arc::default(), max: max.max(1) }
    }

    /// Refuses new work while the queue is full.
    pub fn admit(&self) -> Result<(), Status> {
        let queued = self.queued.load(Ordering::Relaxed);
        if queued >= self.max {
            crate::metrics::load_shed(self.what);
            return Err(Status::resource_exhausted(format!(
                "the network's {} has {queued} items queued, its limit: retry in a few seconds",
                self.what
            )));
        }
        Ok(())
    }

    /// Counts one item in the queue until the guard is dropped.
    pub fn enter(&self) -> QueueGuard {
        self.queued.fetch_add(1, Ordering::Relaxed);
        QueueGuard(self.queued.clone())
    }

    /// Items queued now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// One item's place in a [`Queue`].
pub struct QueueGuard(Arc<AtomicUsize>);

impl Drop for QueueGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(tweak: impl FnOnce(&mut NetworkConfig)) -> Limits {
        let mut config = NetworkConfig::local("/nonexistent", "t", "http://x", "0123456789abcdef");
        tweak(&mut config);
        Limits::new(&config)
    }

    #[test]
    fn an_account_over_its_rate_is_refused_and_others_are_not() {
        let limits = limits(|c| c.account_rate_limit = Some(RateLimit { per_second: 1, burst: 3 }));
        let (flooder, honest) = (Address::from_bytes([1; 20]), Address::from_bytes([2; 20]));
        for _ in 0..3 {
            limits.admit_call(&flooder).expect("within the burst");
        }
        let refused = limits.admit_call(&flooder).expect_err("over the burst");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("rate limit of 1 state-changing calls per second"));
        limits.admit_call(&honest).expect("another account has its own allowance");
        // Off: never refused.
        let off = super::tests::limits(|c| c.account_rate_limit = None);
        for _ in 0..1_000 {
            off.admit_call(&flooder).expect("no limit");
        }
    }

    #[test]
    fn subscriptions_are_counted_per_connection_and_given_back() {
        let limits = limits(|c| c.max_subscriptions_per_connection = 2);
        let (a, b): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1000".parse().expect("addr"), "127.0.0.1:1001".parse().expect("addr"));
        let first = limits.admit_subscription(Some(a)).expect("first");
        let _second = limits.admit_subscription(Some(a)).expect("second");
        let refused = limits.admit_subscription(Some(a)).err().expect("third refused");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(limits.admit_subscription(Some(b)).is_ok(), "another connection");
        drop(first);
        assert!(limits.admit_subscription(Some(a)).is_ok(), "a closed stream gives its place back");
    }

    #[test]
    fn a_full_queue_sheds_new_work() {
        let limits = limits(|c| c.max_queued_executions = 2);
        let first = limits.executions.enter();
        limits.executions.admit().expect("room for one more");
        let _second = limits.executions.enter();
        let refused = limits.executions.admit().expect_err("full");
        assert!(refused.message().contains("executor has 2 items queued"), "{}", refused.message());
        drop(first);
        limits.executions.admit().expect("room again");
        assert_eq!(limits.executions.queued(), 1);
    }
}
