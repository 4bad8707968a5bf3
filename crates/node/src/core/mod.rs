//! The node's decisions as one pure core: `(state, event, now) → actions`.
//!
//! [`NodeCore::handle`] is the only place the node decides anything: the bidding book (what is
//! bid on, won and committed, and the queue's seconds), bid or skip and at what price, prefetch
//! permits, which waiting job starts next in which slot (earliest deadline first), when a job is
//! given up, and every job transition. It does no I/O, holds no clock and knows no runtime: the
//! live node's bidder and prover perform its actions and feed back what happened, stamped with
//! the node's clock; the market simulation (`provernet bench market`) does the same on its
//! simulated clock.
//!
//! Layout:
//! - [`machine`]: [`NodeCore`], the state and its transition function.
//! - [`types`]: [`Event`] in, [`Action`] out, [`Work`], [`CoreConfig`] with a
//!   [`VersionProfile`] (calibration and pricing) per zkVM version.
//! - [`book`]: the bidding [`Book`] and a job's [`JobCost`].
//! - [`calibration`]: self-calibration, running [`Throughput`] and [`MemoryUse`] estimates per
//!   version and mode and per program, from the proofs made ([`Event::Measured`]).
//! - [`bid`]: [`decide`], bid or skip and at what price.
//! - [`pricing`]: [`PricingStrategy`] and its default, [`CostPlus`].
//! - [`schedule`]: [`next_to_start`], earliest deadline first over the resources.
//! - [`job`]: [`JobState`], a job's recorded states.
//!
//! ```text
//! Offered ─decide─▶ Bid | Skip        Assigned ─▶ Resolved(won/lost)   Closed ─▶ Stop
//! JobReceived ─permit─▶ Fetch ─Fetched─▶ Execute ─Executed─▶ (deadline check) GiveUp
//!   | slot (EDF) ─▶ Prove ─Proved─▶ Submit ─Accepted─▶ Done         Failed ─▶ GiveUp
//! resumed: executed ─▶ Fetch ─▶ slot; proved ─▶ Submit; submitted ─▶ Confirm ─Confirmed─▶ …
//! ```

pub mod bid;
pub mod book;
pub mod calibration;
pub mod job;
pub mod machine;
pub mod pricing;
pub mod schedule;
pub mod types;

pub use bid::{NodeState, Offer, Skip, decide};
pub use book::{Book, JobCost};
pub use calibration::{
    Calibration, CalibrationKey, Estimate, MemoryUse, ProgramCalibration, ProofTiming, Throughput,
    VersionCalibration,
};
pub use job::JobState;
pub use machine::NodeCore;
pub use pricing::{CostPlus, PricingStrategy};
pub use schedule::{Waiting, next_to_start};
pub use types::{
    Action, BidOutcome, Confirmation, CoreConfig, Event, GiveUp, PoolCapacity, VersionCapacity,
    VersionProfile, Work,
};
