//! The provernet prover node (DESIGN.md, "The node"): one pure decision core, and the drivers
//! that perform its decisions against the network, the ArtifactStore, the backends and disk.
//!
//! Layout, in DESIGN.md's terms:
//! - [`core`]: the node's decisions, `(state, event, now) → actions`: the bidding book,
//!   committed work and queue time, bid or skip and at what price, prefetch, which job starts
//!   next in which slot (EDF), give-up, and job transitions. No I/O, no runtime, no clock of
//!   its own; the market simulation drives the same core on its simulated clock.
//! - Drivers that perform the core's actions and feed back events:
//!   - [`driver`]: the network seam, one driver per API the network speaks (provernet's own,
//!     streamed; the Succinct API, polled), both feeding the same bidder and prover.
//!   - [`bidder`]: NodeBidder, on what the network's driver tells (sign and send bids, record
//!     skips and outcomes).
//!   - [`prover`]: NodeProver, one task per job (fetch, execute, prove, submit, confirm),
//!     retrying transient network failures.
//! - [`monitor`]: NodeMonitor: [`monitor::NodeHealth`], system sampling, alert rules, and the
//!   HTTP endpoints `/metrics`, `/health/*`, `/status`.
//! - [`store`]: the SQLite job store (each job's state, every bid decision).
//! - [`context`]: [`NodeContext`], built first and dropped last: config, key, clients,
//!   backends, resources, job store, health, clock, the core, shutdown.
//! - [`clock`]: the [`Clock`] the node is given ([`SystemClock`] live, [`ManualClock`] for
//!   tests).
//! - [`config`]: [`NodeConfig`], the TOML file, environment and flag overrides.
//! - [`resources`]: the [`ResourceManager`], proving capacity from cores and memory.
//! - [`runtime`]: [`launch`] a node, and its orderly shutdown.
//! - `test_utils` (feature `test-utils`): a node configured in a temp dir and a requester,
//!   for tests and benchmarks.
//!
//! ```text
//! network ─driver─▶ bidder ─event─▶ core ─Bid/Skip/Resolved─▶ bidder ─▶ network, store
//!                                    │ ▲
//!                        job actions ▼ │ events (fetched, executed, proved, accepted, failed)
//!                                   prover ─▶ ArtifactStore, backend, network, store
//! ```

pub mod bidder;
pub mod clock;
pub mod config;
pub mod context;
pub mod core;
pub mod driver;
pub mod error;
pub mod monitor;
pub mod pool;
pub mod prover;
pub mod resources;
pub mod runtime;
pub mod store;
#[cfg(feature = "test-utils")]
pub mod test_utils;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, NodeConfig};
pub use context::NodeContext;
pub use error::NodeError;
pub use resources::{ResourceManager, Resources};
pub use runtime::{NodeHandle, Reloader, launch, launch_with_clock};
