//! The provernet prover node.
//!
//! Built so far: the node's decisions, as plain functions of (request, node state, time) — what
//! the market simulation and the unit tests drive directly (DESIGN.md, "The node"):
//! - [`resources`]: the [`ResourceManager`], proving capacity from cores and memory.
//! - [`bidder`]: the bidder's "bid or skip, at what price" ([`bidder::decide`]) and the
//!   [`bidder::PricingStrategy`] with its default, [`bidder::CostPlus`].
//!
//! Not built yet (issue "The prover node"): the NodeContext runtime, the subscription-driven
//! NodeBidder loop, the NodeProver state machine and job store, and the NodeMonitor.

pub mod bidder;
pub mod resources;

pub use resources::{ResourceManager, Resources};
