//! The provernet prover node (DESIGN.md, "The node").
//!
//! Layout:
//! - [`config`]: [`NodeConfig`], the TOML file, environment and flag overrides.
//! - [`resources`]: the [`ResourceManager`], proving capacity from cores and memory.
//! - [`bidder`]: the bidder's "bid or skip, at what price" ([`bidder::decide`]), the
//!   [`bidder::PricingStrategy`] with its default, [`bidder::CostPlus`].
//! - [`monitor`]: NodeMonitor: [`monitor::NodeHealth`], system sampling, alert rules, and the
//!   HTTP endpoints `/metrics`, `/health/*`, `/status`.

pub mod bidder;
pub mod config;
pub mod monitor;
pub mod resources;
pub mod store;

pub use config::{ConfigError, NodeConfig};
pub use resources::{ResourceManager, Resources};
