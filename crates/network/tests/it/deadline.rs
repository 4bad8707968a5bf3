//! Deadlines and misses: the sweeper closes requests whose deadline passed, assigned or not,
//! and a prover that misses repeatedly is suspended from bidding.

use provernet_types::proto::{self, RequestStatus, request_event::Event};
use provernet_zkvm::samples::FIB;
use tonic::Code;

use crate::harness::{Net, STAKE, amount, assert_status, bounded, now_secs};

#[tokio::test]
async fn the_deadline_closes_assigned_and_unassigned_requests() {
    bounded(async {
        let net = Net::start().await;
        let requester = net.funded().await;
        let prover = net.prover().await;
        let program = net.program(&requester, &FIB, false).await;
        let balance_before = net.balance(&requester.address()).await;
        let mut events = net.events().await;
        let mut spec = program.spec(1);
        spec.deadline = now_secs() + 3;
        let lock = spec.max_cost().expect("cost").get();
        let missed = net.request(&requester, &spec).await;
        spec.base_fee = spec.base_fee.checked_add(provernet_types::Amount::new(1)).expect("fee");
        let unassigned = net.request(&requester, &spec).await;
        events.executed(&missed).await;
        net.bid(&prover, &missed, 3).await.expect("Bid");
        events.assigned(&missed).await;

        let closed = |r: &proto::ProofRequest| r.status == RequestStatus::Unfulfillable as i32;
        let r = net.wait_until(&missed, "the deadline", closed).await;
        assert!(r.closed_at >= spec.deadline, "closed at {} before {}", r.closed_at, spec.deadline);
        assert!(r.unfulfillable_reason.contains("deadline passed before a proof"), "{r:?}");
        let r = net.wait_until(&unassigned, "the deadline", closed).await;
        assert!(r.unfulfillable_reason.contains("deadline passed before assignment"), "{r:?}");

        let collateral = lock / 10;
        let account = net.account(&requester.address()).await;
        assert_eq!(amount(&account.locked), 0);
        assert_eq!(amount(&account.balance), balance_before + collateral, "refunds + collateral");
        let info = net.account(&prover.address()).await.prover.expect("prover");
        assert_eq!(amount(&info.stake), STAKE - collateral);
        assert_eq!(info.recent_misses, 1);

        // Too late now.
        let proof = program.prove(program.inputs.clone()).await;
        assert_status(
            net.fulfill(&prover, &missed, proof).await,
            Code::FailedPrecondition,
            "Unfulfillable",
        );
        assert_status(
            net.bid(&prover, &unassigned, 3).await,
            Code::FailedPrecondition,
            "Unfulfillable",
        );
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn repeated_misses_suspend_a_prover_from_bidding() {
    bounded(async {
        let net = Net::start().await;
        let requester = net.funded().await;
        let prover = net.prover().await;
        let program = net.program(&requester, &FIB, false).await;
        let mut events = net.events().await;
        let mut ids = Vec::new();
        for fee in 0..4u128 {
            let mut spec = program.spec(1);
            // Distinct bodies (the nonce differs anyway; the fee shows which is which).
            spec.base_fee = provernet_types::Amount::new(1_000 + fee);
            ids.push(net.request(&requester, &spec).await);
        }
        let limit = net.handle.state.market().config().miss_limit as usize;
        assert!(limit < ids.len(), "a request left to bid on after the suspension");
        for id in &ids[..limit] {
            net.wait_until(id, "Executed", |r| {
                r.execution_status == proto::ExecutionStatus::Executed as i32
            })
            .await;
            net.bid(&prover, id, 3).await.expect("Bid");
        }
        for id in &ids[..limit] {
            net.wait_until(id, "Assigned", |r| r.status == RequestStatus::Assigned as i32).await;
            let message = net
                .sign(&prover.operator, |nonce| proto::FailFulfillmentBody {
                    nonce,
                    request_id: id.as_bytes().to_vec(),
                    prover: prover.address().as_bytes().to_vec(),
                    reason: "overloaded".into(),
                })
                .await;
            net.rpc().fail_fulfillment(message).await.expect("FailFulfillment");
            events
                .wait_for(id, "Unfulfillable", |e| {
                    matches!(e, Event::Unfulfillable(_)).then_some(())
                })
                .await;
        }
        let info = net.account(&prover.address()).await.prover.expect("prover");
        assert!(info.suspended_until > now_secs(), "suspended: {info:?}");
        let last = ids[limit];
        net.wait_until(&last, "Executed", |r| {
            r.execution_status == proto::ExecutionStatus::Executed as i32
        })
        .await;
        assert_status(net.bid(&prover, &last, 3).await, Code::FailedPrecondition, "suspended");
        net.stop().await;
    })
    .await;
}
