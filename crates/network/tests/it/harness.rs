//! The harness: the shared test network of `provernet_network::test_utils` (a real network on
//! loopback listeners with its data in a temp dir, actors that sign, event waits, and a ledger
//! check on every stop), under the names these tests use.

pub use provernet_network::test_utils::{
    DEFAULT_SAMPLE, Events, FUNDS, MIDEN, NETWORK_ID, Program, Prover, STAKE, TestNetwork as Net,
    WAIT, amount, assert_status, bid_body, bounded, now_secs,
};
