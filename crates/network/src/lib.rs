//! ProverNetwork: proof requests, the executor, reverse auctions, proof verification and the
//! ledger, served over gRPC with the ArtifactStore embedded.
//!
//! Layout:
//! - [`market`]: the rules, as a deterministic state machine over accounts, provers, programs
//!   and requests.
//! - [`store`]: persistence of the market (SQLite by default, PostgreSQL by URL).

pub mod market;
pub mod store;
