//! What goes into the core and what comes out: events, actions, and how the core is set up.

use std::collections::BTreeMap;

use provernet_types::{Amount, RequestId};
use provernet_zkvm::{ProgramId, ProofMode};

use super::{JobState, PricingStrategy, ProofTiming, Skip};
use crate::Resources;

/// One request's work as its backend measures it: the facts the core prices and schedules by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// The request's zkVM version.
    pub version: String,
    /// The proof mode asked for.
    pub mode: ProofMode,
    /// The program, where the request names it (the Succinct API's do not before proving):
    /// a program the node has measured goes by its own figures.
    pub program: Option<ProgramId>,
    /// PGUs published by the network's executor.
    pub pgus: u64,
    /// Memory its proof holds, bytes (`u64::MAX` for a version this node cannot prove).
    pub memory: u64,
    /// GPU memory its proof holds on one GPU, bytes (0: a CPU prover).
    pub gpu_memory: u64,
    /// The largest job of this version and mode that the node's proving memory holds, PGUs.
    pub max_pgus: u64,
}

/// The calibration and pricing of one zkVM version.
pub struct VersionProfile {
    /// Calibrated proving throughput, PGUs per second (whole machine).
    pub pgus_per_second: f64,
    /// Fixed seconds per job beyond proving (fetch, execute, verify, submit; SP1's setup).
    pub overhead_secs: f64,
    /// Fixed seconds per compressed-mode job (SP1's recursion); the default mode's otherwise.
    pub compressed_overhead_secs: f64,
    /// How the node prices this version's work.
    pub pricing: Box<dyn PricingStrategy>,
}

impl std::fmt::Debug for VersionProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionProfile")
            .field("pgus_per_second", &self.pgus_per_second)
            .field("overhead_secs", &self.overhead_secs)
            .field("compressed_overhead_secs", &self.compressed_overhead_secs)
            .finish_non_exhaustive()
    }
}

impl VersionProfile {
    /// Fixed seconds per job in `mode`.
    pub fn overhead(&self, mode: ProofMode) -> f64 {
        match mode {
            ProofMode::Compressed => self.compressed_overhead_secs,
            _ => self.overhead_secs,
        }
    }

    /// Estimated seconds for `pgus` in `mode`, overhead included, margin excluded.
    pub fn estimate_secs(&self, pgus: u64, mode: ProofMode) -> f64 {
        pgus as f64 / self.pgus_per_second.max(f64::MIN_POSITIVE) + self.overhead(mode)
    }
}

/// How the core is set up.
#[derive(Debug)]
pub struct CoreConfig {
    /// The versions the node proves, each with its calibration and pricing.
    pub profiles: BTreeMap<String, VersionProfile>,
    /// Whether the node bids at all.
    pub bidding: bool,
    /// Extra time kept in hand, as a share of the estimated time (0.5 = 50% more).
    pub safety_margin: f64,
    /// Cap on committed PGUs; 0 means 8 × the largest job of the request's version (per pool worker).
    pub committed_cap_pgus: u64,
    /// Jobs fetched and executed ahead of a slot (at least 1).
    pub prefetch: usize,
    /// What the machine offers for proving.
    pub resources: Resources,
}

/// How a bid ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BidOutcome {
    /// The request was assigned to this prover.
    Won,
    /// The request was assigned to another prover.
    Lost,
    /// The request closed unassigned.
    Expired,
}

impl BidOutcome {
    /// The outcome's name as recorded.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Won => "won",
            Self::Lost => "lost",
            Self::Expired => "expired",
        }
    }
}

/// What the network said of a job a previous run submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// The proof was accepted; the network paid this.
    Fulfilled(Amount),
    /// Still assigned to this prover: the proof did not land.
    Assigned,
    /// The request closed otherwise, saying why.
    Closed(String),
}

/// Why the node gives a job up (FailFulfillment).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GiveUp {
    /// Its estimate no longer fits before the deadline.
    #[error("cannot make the deadline: ~{needed_secs:.0} s of work, {left_secs} s left")]
    CannotMakeDeadline {
        /// Estimated seconds still needed.
        needed_secs: f64,
        /// Seconds to the deadline.
        left_secs: u64,
    },
    /// The node is shutting down and the job cannot finish before its deadline.
    #[error("the node is shutting down and cannot finish before the deadline")]
    ShuttingDown,
    /// A step failed and cannot be retried.
    #[error("{0}")]
    Step(String),
}

/// Something that happened, fed to the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An executed request is open for bids.
    Offered {
        /// The request.
        id: RequestId,
        /// What the bidder knows of it.
        offer: super::Offer,
        /// Its work.
        work: Work,
    },
    /// An executed request the bidder cannot read (a malformed body): skipped.
    Unreadable {
        /// The request.
        id: RequestId,
        /// Why it cannot be bid on (malformed, or its inputs unreachable).
        skip: Skip,
        /// Its PGUs.
        pgus: u64,
    },
    /// The network refused a bid.
    BidRefused {
        /// The request.
        id: RequestId,
    },
    /// A request was assigned.
    Assigned {
        /// The request.
        id: RequestId,
        /// Whether to this prover.
        ours: bool,
    },
    /// A request closed without this node's proof (or before its proof's answer).
    Closed {
        /// The request.
        id: RequestId,
        /// Why it closed.
        why: String,
    },
    /// The prover holds a job: a new assignment, or one resumed at its recorded `state`.
    JobReceived {
        /// The request.
        id: RequestId,
        /// Its work.
        work: Work,
        /// Unix seconds by which its proof must be accepted.
        deadline: u64,
        /// Where it stands.
        state: JobState,
    },
    /// A job's program and inputs are loaded (and verified).
    Fetched {
        /// The request.
        id: RequestId,
    },
    /// A job's own execution matched the network's.
    Executed {
        /// The request.
        id: RequestId,
    },
    /// A job's proof is made, verified and written.
    Proved {
        /// The request.
        id: RequestId,
    },
    /// The network accepted a job's proof and paid this.
    Accepted {
        /// The request.
        id: RequestId,
        /// What the network paid (base fee included).
        paid: Amount,
    },
    /// What the network says of a job a previous run submitted.
    Confirmed {
        /// The request.
        id: RequestId,
        /// Its status.
        status: Confirmation,
    },
    /// A step of a job failed for good.
    Failed {
        /// The request.
        id: RequestId,
        /// What failed.
        reason: String,
    },
    /// The prover let go of a job without an outcome (its store failed): it resumes at the
    /// next start.
    Dropped {
        /// The request.
        id: RequestId,
    },
    /// The node is shutting down: stop bidding, give up what cannot finish in time.
    ShuttingDown,
    /// A proof was made in this time: a sample for self-calibration.
    Measured(ProofTiming),
}

/// Something the core decided, for a driver to perform.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Sign and send a bid.
    Bid {
        /// The request.
        id: RequestId,
        /// Price per PGU.
        price: Amount,
        /// Its PGUs.
        pgus: u64,
    },
    /// Record a skip.
    Skip {
        /// The request.
        id: RequestId,
        /// Its PGUs.
        pgus: u64,
        /// Why.
        skip: Skip,
    },
    /// Record how a bid ended.
    Resolved {
        /// The request.
        id: RequestId,
        /// How.
        outcome: BidOutcome,
        /// The price bid.
        price: Amount,
        /// Its PGUs.
        pgus: u64,
    },
    /// Load the job's program and inputs (cache or ArtifactStore).
    Fetch {
        /// The request.
        id: RequestId,
    },
    /// Execute the job and compare with the network's execution.
    Execute {
        /// The request.
        id: RequestId,
    },
    /// Prove in the slot just taken; abandon the proof at `until`.
    Prove {
        /// The request.
        id: RequestId,
        /// Unix seconds at which the proof is abandoned (the deadline).
        until: u64,
    },
    /// Send the proof (FulfillProof).
    Submit {
        /// The request.
        id: RequestId,
    },
    /// Ask the network whether a previous run's proof landed.
    Confirm {
        /// The request.
        id: RequestId,
    },
    /// Record the job done.
    Done {
        /// The request.
        id: RequestId,
    },
    /// Give the job up and tell the network (FailFulfillment).
    GiveUp {
        /// The request.
        id: RequestId,
        /// Why.
        reason: GiveUp,
    },
    /// The request closed: stop the job's work, nothing to report.
    Stop {
        /// The request.
        id: RequestId,
        /// Why it closed.
        why: String,
    },
}

impl Action {
    /// The job this action is for, if it is a job's (the prover performs those).
    pub fn job(&self) -> Option<RequestId> {
        match self {
            Self::Bid { .. } | Self::Skip { .. } | Self::Resolved { .. } => None,
            Self::Fetch { id }
            | Self::Execute { id }
            | Self::Prove { id, .. }
            | Self::Submit { id }
            | Self::Confirm { id }
            | Self::Done { id }
            | Self::GiveUp { id, .. }
            | Self::Stop { id, .. } => Some(*id),
        }
    }
}

/// What a proving pool's live workers offer, as the core bids and schedules by it in place of
/// the machine's own resources (`[cluster]` in node.toml; see `crate::pool`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolCapacity {
    /// Live workers.
    pub workers: usize,
    /// Proofs the live workers can run at once, in all.
    pub slots: usize,
    /// Their proving memory, in all, bytes.
    pub memory_bytes: u64,
    /// For each version some live worker proves: what the workers that prove it offer.
    pub versions: BTreeMap<String, VersionCapacity>,
}

/// What the live workers that prove one version offer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VersionCapacity {
    /// How many prove it.
    pub workers: usize,
    /// The proving memory of the largest of them, bytes: the largest job the pool holds.
    pub largest_memory_bytes: u64,
    /// Their throughput, in all, PGUs per second.
    pub pgus_per_second: f64,
}
