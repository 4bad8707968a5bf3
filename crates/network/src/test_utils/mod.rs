//! Test support shared by every crate's tests and benchmarks (feature `test-utils`, as reth
//! does): a real network ([`crate::launch`]) on loopback ports chosen at run time with its data
//! in a temp dir ([`TestNetwork`]), actors that sign ([`TestNetwork::funded`],
//! [`TestNetwork::prover`], [`TestNetwork::program`]), waits driven by the event stream
//! ([`TestNetwork::wait_until`], [`Events`]), the ledger check every stop makes
//! ([`TestNetwork::assert_ledger`]), and fresh PostgreSQL databases ([`postgres`]).
//!
//! Nothing here is used by the network itself; it exists so that a test of the node, the CLI
//! or the network starts the same network the same way and checks it the same way.
//!
//! Helpers panic on failure: a failed call in a test's setup is a failed test, named.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

mod events;
mod network;
pub mod postgres;

use std::{future::Future, time::Duration};

pub use self::{
    events::Events,
    network::{Engine, Options, Program, Prover, Stopped, TestNetwork, bid_body},
};

/// The network id every test network signs under.
pub const NETWORK_ID: &str = "provernet-test";
/// The longest wait for one expected change (a loaded 2-core machine, short of a hang).
pub const WAIT: Duration = Duration::from_secs(40);
/// Every test's bound ([`bounded`]).
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);
/// The Miden version string.
pub const MIDEN: &str = "miden-0.23";
/// What every funded actor gets from the faucet.
pub const FUNDS: u128 = 10_000_000_000;
/// The stake provers register with.
pub const STAKE: u128 = 1_000_000_000;
/// The sample program most tests prove.
pub const DEFAULT_SAMPLE: provernet_zkvm::samples::Sample = provernet_zkvm::samples::FIB;

/// Runs `test` bounded by [`TEST_TIMEOUT`]; panics when it takes longer.
pub async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(TEST_TIMEOUT, test).await.expect("the test did not finish in time");
}

/// Parses a decimal amount from the wire (empty means 0).
pub fn amount(text: &str) -> u128 {
    if text.is_empty() { 0 } else { text.parse().expect("decimal amount") }
}

/// Unix seconds now, on the network's clock.
pub fn now_secs() -> u64 {
    crate::service::now_ms() / 1000
}

/// Asserts `result` failed with `code` and a message containing `says`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    says: &str,
) {
    match result {
        Ok(value) => panic!("expected {code:?} ({says}), got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "wrong code: {status:?}");
            assert!(
                status.message().contains(says),
                "message {:?} does not say {says:?}",
                status.message()
            );
        }
    }
}
