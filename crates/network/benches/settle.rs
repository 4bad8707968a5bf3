//! The in-memory market (no store, no gRPC): settling an auction with 1, 10 and 100 bids, and
//! taking one bid. The market state is built in setup and cloned outside the timed part, so the
//! figures are the market's own work, including the changed entities each `Outcome` carries.
//!
//! ```sh
//! cargo bench -p provernet-network --bench settle
//! ```

#![allow(clippy::unwrap_used, reason = "a benchmark fails by panicking, like a test")]

use std::{hint::black_box, time::Duration};

use criterion::{BatchSize, Criterion};
use provernet_network::market::{Market, MarketConfig, Program, Snapshot};
use provernet_types::{Address, Amount, ArtifactId, RequestId, RequestSpec};

/// Unix milliseconds at which the request is created.
const T0: u64 = 1_700_000_000_000;
/// Auction period, seconds.
const PERIOD: u64 = 2;
const REQUESTER: u8 = 1;
const REGISTRAR: u8 = 2;

fn addr(n: u32) -> Address {
    let mut bytes = [0u8; 20];
    bytes[16..].copy_from_slice(&n.to_be_bytes());
    Address::from_bytes(bytes)
}

fn prover(i: usize) -> Address {
    addr(1_000 + i as u32)
}

fn spec() -> RequestSpec {
    RequestSpec {
        program_id: vec![7; 32],
        zkvm_version: "miden-0.23".into(),
        program_artifact_id: ArtifactId::of(b"fib"),
        inputs_artifact_id: ArtifactId::of(b"inputs"),
        inputs_private: false,
        deadline: T0 / 1000 + 600,
        gas_limit: 1 << 16,
        max_price_per_pgu: Amount::new(100),
        base_fee: Amount::new(10),
        min_auction_period: PERIOD,
        whitelist: Vec::new(),
        expected_outputs_hash: None,
        proof_mode: String::new(),
    }
}

/// A market with `provers` staked provers, the program, and one executed request holding `bids`
/// bids (one per prover, prices spread so that the ranking has work to do).
fn market(provers: usize, bids: usize) -> (Market, RequestId) {
    let mut m = Market::new(MarketConfig::default(), Snapshot::default());
    let requester = addr(REQUESTER.into());
    m.deposit(requester, 0, requester, Amount::new(1_000_000_000)).unwrap();
    for i in 0..provers {
        let p = prover(i);
        m.deposit(p, 0, p, Amount::new(10_000_000)).unwrap();
        m.register_prover(p, 1, Amount::new(1_000_000), None, T0).unwrap();
    }
    let registrar = addr(REGISTRAR.into());
    let program = Program {
        program_id: vec![7; 32],
        name: "fib".into(),
        zkvm_version: "miden-0.23".into(),
        artifact_id: ArtifactId::of(b"fib"),
        registered_by: registrar,
        registered_at: 0,
        sdk_hash: None,
    };
    m.register_program(registrar, 0, program).unwrap();
    let id = RequestId::from_bytes([9; 32]);
    m.request_proof(requester, 1, id, spec(), T0).unwrap();
    m.record_execution(id, Ok((1 << 16, vec![1])), T0).unwrap();
    for i in 0..bids {
        let p = prover(i);
        let price = Amount::new(20 + (i as u128 * 37) % 61);
        m.bid(p, 2, id, p, price, T0 + 10 + i as u64).unwrap();
    }
    (m, id)
}

fn settle(c: &mut Criterion) {
    let mut group = c.benchmark_group("market");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let after = T0 + PERIOD * 1000;
    for bids in [1, 10, 100] {
        let (m, id) = market(bids, bids);
        let outcome = m.clone().settle(id, after);
        assert_eq!(outcome.changes.events.len(), 1, "the auction settles");
        group.bench_function(format!("settle, {bids} bids"), |b| {
            b.iter_batched_ref(
                || m.clone(),
                |m| m.settle(black_box(id), after),
                BatchSize::SmallInput,
            )
        });
    }
    // One more bid on a request holding 10, within the auction period.
    let (m, id) = market(11, 10);
    let last = prover(10);
    m.clone().bid(last, 2, id, last, Amount::new(25), T0 + 500).unwrap();
    group.bench_function("bid (11th on the request)", |b| {
        b.iter_batched_ref(
            || m.clone(),
            |m| m.bid(last, 2, black_box(id), last, Amount::new(25), T0 + 500).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn main() {
    // Not `criterion_group!`: it generates an undocumented `pub fn` (missing_docs).
    let mut c = Criterion::default().configure_from_args();
    settle(&mut c);
    c.final_summary();
}
