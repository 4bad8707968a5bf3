//! SP1 requests (feature `sp1`): the node bids only where its memory holds an SP1 proof
//! (12 GiB whatever the gas), and (an ignored test) proves one end to end with SP1's CPU prover
//! (10+ GB and minutes: run it in release, see programs/sp1/README.md).
#![cfg(feature = "sp1")]

use std::time::Duration;

use provernet_types::{Address, proto::RequestStatus};
use provernet_zkvm::{
    ProofMode,
    samples::FIB,
    sp1::{self, samples},
};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_memory_for_sp1_skips_its_requests() {
    // SP1's setup (at the program's registration) takes a minute or more in the test profile.
    tokio::time::timeout(Duration::from_secs(600), async {
        let net = start().await;
        let prover = register(&net, NodeSpec::default()).await;
        let node = prover.launch().await;
        let ctx = &node.0.context;
        assert!(ctx.versions.iter().any(|v| v == sp1::VERSION), "{:?}", ctx.versions);
        assert_eq!(ctx.max_pgus(sp1::VERSION, ProofMode::Core), 0, "4 GiB hold no SP1 proof");
        let requester = requester(&net).await;
        let mut spec = requester
            .spec_of("fib", sp1::VERSION, samples::FIB_ELF, &samples::fib_inputs(20), 600)
            .await;
        spec.gas_limit = 1_000_000;
        let sp1_id = requester.request(&spec).await;
        net.wait_until(&sp1_id, "executed", |r| r.pgus > 0).await;
        // A Miden request after it: the node decides in event order, so once it has proven
        // this one it has decided on the SP1 request.
        let miden = requester.spec(&FIB, FIB.inputs, 60).await;
        let miden_id = requester.request(&miden).await;
        let done = net.wait_until(&miden_id, "fulfilled", is_closed).await;
        assert_eq!(status(&done), RequestStatus::Fulfilled);
        {
            let core = ctx.core();
            let book = core.book();
            assert!(book.decided.contains_key(&sp1_id), "the SP1 request was decided on");
            assert!(!book.outstanding.contains_key(&sp1_id) && !book.jobs.contains_key(&sp1_id));
            assert_eq!(book.skipped, 1, "skipped: over capacity");
        }
        assert_eq!(status(&net.get(&sp1_id).await), RequestStatus::Requested, "no bid");
        stop(node).await;
        net.stop().await;
    })
    .await
    .expect("the test did not finish in time");
}

/// Proves an SP1 request end to end (12+ GB of memory, minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "12+ GB, minutes: cargo test --release -p provernet-node --features sp1 --test it -- --ignored sp1"]
async fn a_node_proves_an_sp1_request_when_asked() {
    let within = Duration::from_secs(1_200);
    tokio::time::timeout(within, async {
        let net = start().await;
        let prover = register(&net, NodeSpec { memory_gib: 16, ..Default::default() }).await;
        let node = prover.launch().await;
        let mut finished = node.0.prover.finished();
        let requester = requester(&net).await;
        let mut spec = requester
            .spec_of("fib", sp1::VERSION, samples::FIB_ELF, &samples::fib_inputs(20), 1_100)
            .await;
        spec.gas_limit = 1_000_000;
        let before = net.balance(&prover.address()).await;
        let id = requester.request(&spec).await;
        let done = net.wait_until_within(within, &id, "fulfilled", is_closed).await;
        assert_eq!(status(&done), RequestStatus::Fulfilled, "{done:?}");
        assert_eq!(Address::from_slice(&done.assigned_prover).unwrap(), prover.address());
        assert!(net.balance(&prover.address()).await > before, "paid");
        let (ended, state) = finished.recv().await.unwrap();
        assert_eq!((ended, state), (id, provernet_node::store::JobState::Done));
        stop(node).await;
        net.stop().await;
    })
    .await
    .expect("the SP1 proof did not finish in time");
}
