//! The provernet prover node (DESIGN.md, "The node").
//!
//! Layout:
//! - [`config`]: [`NodeConfig`], the TOML file, environment and flag overrides.
//! - [`resources`]: the [`ResourceManager`], proving capacity from cores and memory.
//! - [`bidder`]: the bidder's "bid or skip, at what price" ([`bidder::decide`]), the
//!   [`bidder::PricingStrategy`] with its default, [`bidder::CostPlus`].
//! - [`context`]: [`NodeContext`], built first and dropped last: key, clients, backends,
//!   resources, job store, health, the bidding book, shutdown.
//! - [`bidder::run`]: the NodeBidder loop on the network's request stream.
//! - [`prover`]: the NodeProver: each assignment's state machine, proving slots (EDF).
//! - [`store`]: the SQLite job store.
//! - [`runtime`]: [`launch`] a node, and its orderly shutdown.
//! - [`monitor`]: NodeMonitor: [`monitor::NodeHealth`], system sampling, alert rules, and the
//!   HTTP endpoints `/metrics`, `/health/*`, `/status`.

pub mod bidder;
pub mod config;
pub mod context;
pub mod error;
pub mod monitor;
pub mod prover;
pub mod resources;
pub mod runtime;
pub mod store;

pub use config::{ConfigError, NodeConfig};
pub use context::NodeContext;
pub use error::NodeError;
pub use resources::{ResourceManager, Resources};
pub use runtime::{NodeHandle, launch};
