//! ProverNetwork: proof requests, the executor, reverse auctions, proof verification and the
//! ledger, served over gRPC with the ArtifactStore embedded.
//!
//! Layout:
//! - [`market`]: the rules, as a deterministic state machine over accounts, provers, programs
//!   and requests.
//! - [`store`]: persistence of the market (SQLite by default, PostgreSQL by URL).
//! - [`leader`]: hot standby on PostgreSQL: which of the processes sharing a database leads,
//!   and the epoch that fences a deposed one's commits.
//! - [`service`]: the gRPC service (`rpc`) and the network's stages: the executor (runs each new
//!   request within its gas limit), the verifier (judges each submitted proof off the RPC
//!   path), the auction and deadline timers, and the self-protection limits.
//! - [`metrics`]: every metric the network records, with its help text and unit.
//! - [`config`]: the [`NetworkConfig`].
//! - [`serve`]: [`launch`], which wires it all on given listeners (on PostgreSQL, once this
//!   process leads).
//! - `test_utils` (feature `test-utils`): the test network, actors, waits and ledger check
//!   that every crate's tests and benchmarks share.

pub mod config;
pub mod leader;
pub mod market;
pub mod metrics;
pub mod serve;
pub mod service;
pub mod store;
#[cfg(feature = "test-utils")]
pub mod test_utils;

pub use config::{NetworkConfig, RateLimit, SuccinctApiConfig};
pub use serve::{NetworkHandle, Role, launch};
