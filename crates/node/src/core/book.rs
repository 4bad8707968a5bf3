//! The bidding book: what the node has bid on and won, what that commits it to, and how its
//! bids ended. Ordered maps, so sums over them (the queue's seconds) do not depend on a hasher's
//! seed and a simulation replays exactly.

use std::collections::BTreeMap;

use provernet_types::{Amount, RequestId};

/// What one job costs this node: its PGUs, the memory its proof holds, and the time it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobCost {
    /// The request's PGUs.
    pub pgus: u64,
    /// Memory while proving, bytes (from its backend).
    pub memory: u64,
    /// GPU memory while proving, bytes (0: a CPU prover).
    pub gpu_memory: u64,
    /// Estimated seconds, fixed overhead included, safety margin excluded.
    pub secs: f64,
}

/// The node's commitments and the outcomes of its bids.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Book {
    /// Requests decided on (bid or skipped), with the time: never decided twice.
    pub decided: BTreeMap<RequestId, u64>,
    /// Bids not yet resolved: what the job would cost, and the price.
    pub outstanding: BTreeMap<RequestId, (JobCost, Amount)>,
    /// Jobs won and not finished: what they cost.
    pub jobs: BTreeMap<RequestId, JobCost>,
    /// Bids won.
    pub won: u64,
    /// Bids lost to another prover.
    pub lost: u64,
    /// Bids whose request closed unassigned.
    pub expired: u64,
    /// Requests skipped.
    pub skipped: u64,
    /// What the network paid for accepted proofs since start (base fee included).
    pub earnings: Amount,
}

impl Book {
    /// PGUs bid on or won and not yet proven.
    pub fn committed_pgus(&self) -> u64 {
        self.commitments().map(|c| c.pgus).sum()
    }

    /// Seconds of proving bid on or won and not yet done, each job at its version's throughput
    /// with its fixed overhead.
    pub fn queue_secs(&self) -> f64 {
        self.commitments().map(|c| c.secs).sum()
    }

    fn commitments(&self) -> impl Iterator<Item = &JobCost> {
        self.outstanding.values().map(|(c, _)| c).chain(self.jobs.values())
    }

    /// Forgets decisions older than `horizon` seconds before `now` (their requests are closed).
    pub fn prune(&mut self, now: u64, horizon: u64) {
        self.decided.retain(|_, at| now.saturating_sub(*at) < horizon);
    }
}
