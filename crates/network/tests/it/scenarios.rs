//! The other ways a request goes: the cheaper bid wins, a tampered proof is rejected, the
//! prover gives up, the requester cancels, the program cannot run, and private inputs are read
//! only by those allowed. Each flow has actors of its own, so the last test runs them all at
//! once on one network and checks the ledger after.

use provernet_types::{
    RequestId, RequestSpec, Signer,
    proto::{self, ExecutionStatus, RequestStatus, request_event::Event},
};
use provernet_zkvm::{
    ProofBundle, PublicOutputs,
    samples::{ADVICE_FOLD, ASSERT42, FIB, Sample},
};
use tonic::Code;

use crate::{
    happy::happy_path,
    harness::{Events, Net, Program, Prover, STAKE, amount, assert_status, bounded},
};

/// A request that a prover won.
pub(crate) struct Won {
    pub requester: Signer,
    pub prover: Prover,
    pub program: Program,
    pub spec: RequestSpec,
    pub id: RequestId,
    pub events: Events,
    /// The requester's balance before the request.
    pub balance_before: u128,
}

/// Funds a requester and a prover, requests a proof of `sample`, bids and waits for the
/// assignment.
pub(crate) async fn won(net: &Net, sample: &Sample, private: bool) -> Won {
    let requester = net.funded().await;
    let prover = net.prover().await;
    let program = net.program(&requester, sample, private).await;
    let spec = program.spec(1);
    let balance_before = net.balance(&requester.address()).await;
    let mut events = net.events().await;
    let id = net.request(&requester, &spec).await;
    events.executed(&id).await;
    net.bid(&prover, &id, 3).await.expect("Bid");
    let assigned = events.assigned(&id).await;
    assert_eq!(assigned.prover, prover.address().as_bytes());
    Won { requester, prover, program, spec, id, events, balance_before }
}

fn is(status: RequestStatus) -> impl Fn(&proto::ProofRequest) -> bool {
    move |r| r.status == status as i32
}

pub async fn cheaper_bid_wins(net: &Net) {
    let requester = net.funded().await;
    let (first, cheap, tie) = (net.prover().await, net.prover().await, net.prover().await);
    let program = net.program(&requester, &FIB, false).await;
    let mut events = net.events().await;
    // Long enough for three bids on a loaded machine, so that the timer settles.
    let id = net.request(&requester, &program.spec(3)).await;
    events.executed(&id).await;
    net.bid(&first, &id, 8).await.expect("first bid");
    net.bid(&cheap, &id, 5).await.expect("cheaper bid");
    net.bid(&tie, &id, 5).await.expect("as cheap, later");
    let assigned = events.assigned(&id).await;
    assert_eq!(assigned.prover, cheap.address().as_bytes(), "lowest price, earliest on a tie");
    assert_eq!(assigned.price_per_pgu, "5");
    let r = net.get(&id).await;
    assert_eq!(r.status, RequestStatus::Assigned as i32);
    assert_eq!(r.winning_price_per_pgu, "5");
    {
        let market = net.handle.state.market();
        let r = market.request(&id).expect("stored");
        let settled = r.assignment.as_ref().expect("assigned").at_ms;
        let last_bid = r.bids.iter().map(|b| b.at_ms).max().expect("bids");
        assert_eq!(r.bids.len(), 3);
        assert!(last_bid < r.auction_end() * 1000, "bids came in after the period: slow machine?");
        assert!(settled >= r.auction_end() * 1000, "settled before the period ended");
        assert!(settled > last_bid, "settled by the timer, after the bids");
    }
    for loser in [&first, &tie] {
        let info = net.account(&loser.address()).await.prover.expect("prover");
        assert_eq!(amount(&info.free_stake), STAKE, "losers hold no collateral");
    }
    let info = net.account(&cheap.address()).await.prover.expect("prover");
    assert!(amount(&info.free_stake) < STAKE, "the winner holds collateral");
}

pub async fn tampered_proof_is_rejected(net: &Net) {
    let Won { requester, prover, program, id, mut events, .. } = won(net, &FIB, false).await;
    let bundle = program.prove(program.inputs.clone()).await;
    let decoded = ProofBundle::decode(&bundle).expect("bundle");

    let mut flipped = bundle.clone();
    let at = bundle.len() - decoded.proof.len() / 2;
    flipped[at] ^= 0x01;
    let mut other_outputs = decoded.clone();
    other_outputs.outputs = PublicOutputs(vec![0; decoded.outputs.0.len()]);
    let mut truncated = bundle.clone();
    truncated.truncate(bundle.len() - decoded.proof.len() / 2);
    let before = net.get(&id).await;
    let owner = net.account(&prover.address()).await;
    let requester_before = net.account(&requester.address()).await;
    // A bundle that claims something else is refused at once and uses no nonce.
    for (what, bytes, says) in [
        ("other public outputs", other_outputs.encode(), "public outputs differ"),
        ("not a bundle", b"not a proof bundle".to_vec(), "bad magic"),
    ] {
        let operator_nonce = net.nonce(&prover.operator.address()).await;
        assert_status(net.fulfill(&prover, &id, bytes).await, Code::InvalidArgument, says);
        assert_eq!(net.get(&id).await, before, "{what}: the request stays as it was (Assigned)");
        assert_eq!(net.nonce(&prover.operator.address()).await, operator_nonce, "{what}");
    }
    // A proof that does not hold is submitted (the nonce is used at once), then rejected by the
    // verifier: the request stays assigned and nobody is paid.
    for (what, bytes, says) in [
        ("a flipped proof byte", flipped, "proof does not verify"),
        ("a truncated proof", truncated, "proof"),
    ] {
        let operator_nonce = net.nonce(&prover.operator.address()).await;
        net.fulfill(&prover, &id, bytes).await.expect("submitted for verification");
        assert_eq!(net.nonce(&prover.operator.address()).await, operator_nonce + 1, "{what}");
        let reason = events.verdict(&id).await.expect_err("rejected");
        assert!(reason.contains(says), "{what}: {reason}");
        let r = net.get(&id).await;
        assert_eq!(r.status, RequestStatus::Assigned as i32, "{what}");
        assert_eq!(r.proof_rejected_reason, reason, "{what}");
        assert!(r.pending_proof_artifact_id.is_empty(), "{what}");
        assert_eq!(net.account(&prover.address()).await, owner, "{what}");
        assert_eq!(net.account(&requester.address()).await, requester_before, "{what}");
    }
    assert_eq!(before.status, RequestStatus::Assigned as i32);

    // The genuine proof is still accepted.
    net.fulfill(&prover, &id, bundle).await.expect("the genuine proof");
    events.verdict(&id).await.expect("the genuine proof verifies");
    net.wait_until(&id, "Fulfilled", is(RequestStatus::Fulfilled)).await;
}

pub async fn failed_fulfillment_refunds_with_collateral(net: &Net) {
    let Won { requester, prover, spec, id, mut events, balance_before, .. } =
        won(net, &FIB, false).await;
    let collateral = spec.max_cost().expect("cost").get() / 10;

    // Assigned: the requester may no longer cancel.
    let message = net
        .sign(&requester, |nonce| proto::CancelRequestBody {
            nonce,
            request_id: id.as_bytes().to_vec(),
        })
        .await;
    assert_status(net.rpc().cancel_request(message).await, Code::FailedPrecondition, "Assigned");

    let message = net
        .sign(&prover.operator, |nonce| proto::FailFulfillmentBody {
            nonce,
            request_id: id.as_bytes().to_vec(),
            prover: prover.address().as_bytes().to_vec(),
            reason: "out of memory".into(),
        })
        .await;
    net.rpc().fail_fulfillment(message).await.expect("FailFulfillment");
    let reason = events
        .wait_for(&id, "Unfulfillable", |e| match e {
            Event::Unfulfillable(u) => Some(u.reason.clone()),
            _ => None,
        })
        .await;
    assert!(reason.contains("out of memory"), "{reason}");

    let r = net.get(&id).await;
    assert_eq!(r.status, RequestStatus::Unfulfillable as i32);
    assert!(r.unfulfillable_reason.contains("prover gave up"), "{}", r.unfulfillable_reason);
    assert_eq!(amount(&r.paid), 0);
    let account = net.account(&requester.address()).await;
    assert_eq!(amount(&account.locked), 0);
    assert_eq!(amount(&account.balance), balance_before + collateral, "refund plus collateral");
    let info = net.account(&prover.address()).await.prover.expect("prover");
    assert_eq!(amount(&info.stake), STAKE - collateral, "the collateral is forfeited");
    assert_eq!(amount(&info.free_stake), STAKE - collateral);
    assert_eq!(info.recent_misses, 1);

    // Closed: no second failure, no late proof.
    let bundle = vec![0; 8];
    assert_status(
        net.fulfill(&prover, &id, bundle).await,
        Code::FailedPrecondition,
        "Unfulfillable",
    );
}

pub async fn cancel_before_assignment_refunds(net: &Net) {
    let requester = net.funded().await;
    let prover = net.prover().await;
    let program = net.program(&requester, &FIB, false).await;
    let balance_before = net.balance(&requester.address()).await;
    let mut events = net.events().await;
    // A long period: nothing settles before the cancel.
    let id = net.request(&requester, &program.spec(30)).await;
    events.executed(&id).await;
    net.bid(&prover, &id, 4).await.expect("Bid");

    let message = net
        .sign(&requester, |nonce| proto::CancelRequestBody {
            nonce,
            request_id: id.as_bytes().to_vec(),
        })
        .await;
    net.rpc().cancel_request(message).await.expect("CancelRequest");
    events.wait_for(&id, "Cancelled", |e| matches!(e, Event::Cancelled(_)).then_some(())).await;
    let r = net.get(&id).await;
    assert_eq!(r.status, RequestStatus::Cancelled as i32);
    assert!(r.closed_at > 0);
    let account = net.account(&requester.address()).await;
    assert_eq!((amount(&account.balance), amount(&account.locked)), (balance_before, 0));
    let info = net.account(&prover.address()).await.prover.expect("prover");
    assert_eq!(amount(&info.free_stake), STAKE);

    // Closed: no more bids, no second cancel.
    assert_status(net.bid(&prover, &id, 3).await, Code::FailedPrecondition, "Cancelled");
    let message = net
        .sign(&requester, |nonce| proto::CancelRequestBody {
            nonce,
            request_id: id.as_bytes().to_vec(),
        })
        .await;
    assert_status(net.rpc().cancel_request(message).await, Code::FailedPrecondition, "Cancelled");
}

pub async fn unexecutable_request_is_closed(net: &Net) {
    let requester = net.funded().await;
    let prover = net.prover().await;
    let program = net.program(&requester, &ASSERT42, false).await;
    let spec = program.spec(1);
    let lock = spec.max_cost().expect("cost").get();
    let balance_before = net.balance(&requester.address()).await;
    let treasury_before = net.handle.state.market().ledger().treasury.get();
    let mut events = net.events().await;
    let id = net.request(&requester, &spec).await;
    let reason = events
        .wait_for(&id, "Unexecutable", |e| match e {
            Event::Unexecutable(u) => Some(u.reason.clone()),
            Event::Executed(_) => panic!("ASSERT42 executed on 41"),
            _ => None,
        })
        .await;
    assert!(!reason.is_empty());

    let r = net.get(&id).await;
    assert_eq!(r.status, RequestStatus::Unfulfillable as i32);
    assert_eq!(r.execution_status, ExecutionStatus::Unexecutable as i32);
    assert_eq!(r.unexecutable_reason, reason);
    assert!(r.unfulfillable_reason.starts_with("unexecutable"), "{}", r.unfulfillable_reason);
    let penalty = lock / 100;
    let account = net.account(&requester.address()).await;
    assert_eq!(amount(&account.locked), 0);
    assert_eq!(amount(&account.balance), balance_before - penalty, "refund less the penalty");
    assert!(net.handle.state.market().ledger().treasury.get() >= treasury_before + penalty);
    assert_status(net.bid(&prover, &id, 3).await, Code::FailedPrecondition, "Unfulfillable");

    // So are a program whose outputs are not the ones expected, and one over its gas limit.
    let fib = net.program(&requester, &FIB, false).await;
    let mut wrong_outputs = fib.spec(1);
    wrong_outputs.expected_outputs_hash = Some([0; 32]);
    let mut over_gas = fib.spec(1);
    over_gas.gas_limit = 1;
    for (spec, says) in [(wrong_outputs, "expected"), (over_gas, "gas")] {
        let id = net.request(&requester, &spec).await;
        let reason = events
            .wait_for(&id, "Unexecutable", |e| match e {
                Event::Unexecutable(u) => Some(u.reason.clone()),
                Event::Executed(_) => panic!("executed despite {says}"),
                _ => None,
            })
            .await;
        assert!(reason.contains(says), "{reason}");
        assert_eq!(net.get(&id).await.status, RequestStatus::Unfulfillable as i32);
    }
}

pub async fn private_inputs_are_read_only_by_requester_and_assigned_prover(net: &Net) {
    let requester = net.funded().await;
    let (winner, loser) = (net.prover().await, net.prover().await);
    let stranger = Signer::random();
    let program = net.program(&requester, &ADVICE_FOLD, true).await;
    let inputs_id = program.inputs_id;

    // Not through its public URL.
    let url = provernet_artifacts::public_url(&net.artifacts_url, &inputs_id);
    let refused = net.artifacts.download_to_vec(&url, &inputs_id, None).await;
    let status = refused.as_ref().err().and_then(provernet_artifacts::ClientError::status);
    assert_eq!(status, Some(403), "private inputs by their public URL: {refused:?}");

    let mut events = net.events().await;
    let id = net.request(&requester, &program.spec(2)).await;
    let read = async |signer: &Signer| {
        let url = net.presign_download(signer, &id, &inputs_id).await?;
        let bytes = net.artifacts.download_to_vec(&url, &inputs_id, None).await.expect("download");
        Ok::<_, tonic::Status>(bytes.to_vec())
    };
    assert_eq!(read(&requester).await.expect("the requester reads"), program.inputs);
    for (who, signer) in
        [("a prover before assignment", &winner.operator), ("a stranger", &stranger)]
    {
        let nonce = net.nonce(&signer.address()).await;
        let result = net.presign_download(signer, &id, &inputs_id).await;
        assert_status(result, Code::PermissionDenied, "only its requester and assigned prover");
        assert_eq!(net.nonce(&signer.address()).await, nonce, "{who}: a refusal uses no nonce");
    }

    events.executed(&id).await;
    net.bid(&winner, &id, 5).await.expect("Bid");
    net.bid(&loser, &id, 6).await.expect("Bid");
    let assigned = events.assigned(&id).await;
    assert_eq!(assigned.prover, winner.address().as_bytes());

    let inputs = read(&winner.operator).await.expect("the assigned prover's operator reads");
    assert_eq!(inputs, program.inputs);
    read(&winner.owner).await.expect("the assigned prover's owner reads");
    for signer in [&loser.operator, &loser.owner, &stranger] {
        let result = net.presign_download(signer, &id, &inputs_id).await;
        assert_status(result, Code::PermissionDenied, "only its requester and assigned prover");
    }

    // The prover proves from what it downloaded, uploads the proof and fulfils by its id.
    let bundle = program.prove(inputs).await;
    let proof_id = net.upload(&winner.operator, &bundle, proto::ArtifactKind::Proof).await;
    let message = net
        .sign(&winner.operator, |nonce| proto::FulfillProofBody {
            nonce,
            request_id: id.as_bytes().to_vec(),
            prover: winner.address().as_bytes().to_vec(),
            proof: Some(proto::fulfill_proof_body::Proof::ProofArtifactId(
                proof_id.as_bytes().to_vec(),
            )),
        })
        .await;
    let accepted = net.rpc().fulfill_proof(message).await.expect("FulfillProof by artifact id");
    assert_eq!(accepted.into_inner().proof_artifact_id, proof_id.as_bytes());
    net.wait_until(&id, "Fulfilled", is(RequestStatus::Fulfilled)).await;
}

#[tokio::test]
async fn the_cheaper_bid_wins_when_the_timer_settles() {
    bounded(async {
        let net = Net::start().await;
        cheaper_bid_wins(&net).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_tampered_proof_is_rejected_and_the_request_stays_assigned() {
    bounded(async {
        let net = Net::start().await;
        tampered_proof_is_rejected(&net).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn fail_fulfillment_refunds_the_requester_with_the_collateral() {
    bounded(async {
        let net = Net::start().await;
        failed_fulfillment_refunds_with_collateral(&net).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn cancel_before_assignment_refunds_the_lock() {
    bounded(async {
        let net = Net::start().await;
        cancel_before_assignment_refunds(&net).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_unexecutable_request_is_closed_at_once() {
    bounded(async {
        let net = Net::start().await;
        unexecutable_request_is_closed(&net).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn private_inputs_are_read_only_by_the_requester_and_the_assigned_prover() {
    bounded(async {
        let net = Net::start().await;
        private_inputs_are_read_only_by_requester_and_assigned_prover(&net).await;
        net.stop().await;
    })
    .await;
}

/// Every flow at once on one network, on a multi-threaded runtime as in production: the ledger
/// balances after (checked by `stop`), and one subscriber saw every event once, in sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_balances_after_every_scenario_on_one_network() {
    bounded(async {
        let net = Net::start().await;
        let mut all = net.events().await;
        let collector = tokio::spawn(async move {
            let mut sequences = Vec::new();
            // Until the network ends the stream at its stop.
            while let Ok(Some(event)) = all.0.message().await {
                sequences.push(event.sequence);
            }
            sequences
        });
        tokio::join!(
            happy_path(&net),
            cheaper_bid_wins(&net),
            tampered_proof_is_rejected(&net),
            failed_fulfillment_refunds_with_collateral(&net),
            cancel_before_assignment_refunds(&net),
            unexecutable_request_is_closed(&net),
            private_inputs_are_read_only_by_requester_and_assigned_prover(&net),
        );
        net.stop().await;
        let sequences = collector.await.expect("collector");
        assert!(sequences.len() > 20, "{} events", sequences.len());
        assert!(!sequences.contains(&0), "the subscriber lagged");
        let out_of_order: Vec<_> = sequences.windows(2).filter(|w| w[0] >= w[1]).collect();
        assert!(out_of_order.is_empty(), "sequence numbers out of order: {out_of_order:?}");
    })
    .await;
}
