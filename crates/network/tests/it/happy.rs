//! A request's whole life: faucet, prover registration, upload, program registration,
//! request, execution, auction, local proving, fulfilment, payment and the proof download.

use provernet_types::{ArtifactId, proto::request_event::Event};
use provernet_zkvm::PublicOutputs;

use crate::harness::{Net, amount, bounded};

/// Bid price per PGU in the happy path.
const PRICE: u128 = 7;

/// The happy path on `net`, with actors of its own (so it can run beside other flows).
pub async fn happy_path(net: &Net) {
    let requester = net.funded().await;
    let prover = net.prover().await;
    let program = net.program(&requester, &crate::harness::DEFAULT_SAMPLE, false).await;
    let spec = program.spec(1);
    let lock = spec.max_cost().expect("worst case").get();
    let requester_before = net.balance(&requester.address()).await;
    let prover_before = net.account(&prover.address()).await;
    let stake = amount(&prover_before.prover.as_ref().expect("a prover").stake);

    // Subscribe first, so no event of the request can be missed.
    let mut events = net.events().await;
    let id = net.request(&requester, &spec).await;
    let account = net.account(&requester.address()).await;
    assert_eq!(amount(&account.locked), lock, "the worst case is locked");
    assert_eq!(amount(&account.balance), requester_before - lock);

    let executed = events.executed(&id).await;
    assert!(executed.pgus > 0 && executed.pgus <= spec.gas_limit, "pgus {}", executed.pgus);
    let stored = net.get(&id).await;
    assert_eq!(stored.pgus, executed.pgus);
    assert_eq!(stored.public_outputs, executed.public_outputs);

    net.bid(&prover, &id, PRICE).await.expect("Bid");
    let assigned = events.assigned(&id).await;
    assert_eq!(assigned.prover, prover.address().as_bytes());
    assert_eq!(assigned.price_per_pgu, PRICE.to_string());
    {
        // Never before the period ends; by the timer right after it, unless the bid itself came
        // after the period (then the bid settles the auction at once).
        let market = net.handle.state.market();
        let r = market.request(&id).expect("stored");
        let settled = r.assignment.as_ref().expect("assigned").at_ms;
        let end_ms = r.auction_end() * 1000;
        let bid_ms = r.bids[0].at_ms;
        assert!(settled >= end_ms, "settled at {settled} before the period ended at {end_ms}");
        if bid_ms < end_ms {
            assert!(settled < end_ms + 2_000, "the timer settled {} ms late", settled - end_ms);
        } else {
            assert_eq!(settled, bid_ms, "a bid after the period settles at once");
        }
    }
    let collateral = lock / 10;
    let free = net.account(&prover.address()).await.prover.expect("prover").free_stake;
    assert_eq!(amount(&free), stake - collateral, "collateral is held while assigned");

    let bundle = program.prove(program.inputs.clone()).await;
    let response = net.fulfill(&prover, &id, bundle.clone()).await.expect("FulfillProof");
    let proof_id = ArtifactId::from_slice(&response.proof_artifact_id).expect("proof id");
    assert_eq!(proof_id, ArtifactId::of(&bundle));
    let fulfilled = events
        .wait_for(&id, "Fulfilled", |e| match e {
            Event::Fulfilled(f) => Some(f.proof_artifact_id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(fulfilled, proof_id.as_bytes());

    let r = net.get(&id).await;
    assert_eq!(r.status, provernet_types::proto::RequestStatus::Fulfilled as i32);
    let paid = spec.base_fee.get() + PRICE * u128::from(r.pgus);
    assert_eq!(amount(&r.paid), paid, "paid = base_fee + price × pgus");
    assert_eq!(r.proof_artifact_id, proof_id.as_bytes());
    let prover_after = net.account(&prover.address()).await;
    assert_eq!(amount(&prover_after.balance), amount(&prover_before.balance) + paid);
    let info = prover_after.prover.expect("prover");
    assert_eq!((amount(&info.stake), amount(&info.free_stake)), (stake, stake));
    let account = net.account(&requester.address()).await;
    assert_eq!(amount(&account.locked), 0, "the lock is released");
    assert_eq!(amount(&account.balance), requester_before - paid);

    // Anyone can fetch the proof and check it; the requester's client library does.
    let downloaded = net.download_public(&proof_id).await;
    assert_eq!(downloaded, bundle);
    let verified = net.requester(&requester).fetch_proof(&id).await.expect("the proof verifies");
    assert_eq!(verified.bundle_bytes, bundle);
    assert_eq!(verified.outputs, PublicOutputs(r.public_outputs.clone()));
    assert!(verified.security_bits >= 96, "security {}", verified.security_bits);
}

#[tokio::test]
async fn a_request_is_executed_auctioned_proven_verified_and_paid() {
    bounded(async {
        let net = Net::start().await;
        happy_path(&net).await;
        net.stop().await;
    })
    .await;
}
