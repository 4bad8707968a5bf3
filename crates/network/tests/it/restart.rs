//! Stopping the network mid-auction and relaunching it on the same data: the request, its
//! bids, balances and nonces survive, replays stay void, and the auction settles by its timer.

use provernet_types::proto::RequestStatus;
use provernet_zkvm::samples::FIB;
use tonic::Code;

use crate::harness::{Net, assert_status, bid_body, bounded};

#[tokio::test]
async fn a_restart_mid_auction_keeps_the_state_and_the_auction_settles_after() {
    bounded(async {
        let net = Net::start().await;
        let requester = net.funded().await;
        let (dear, cheap) = (net.prover().await, net.prover().await);
        let program = net.program(&requester, &FIB, false).await;
        // A subscriber stays connected through the stop, as a prover node would.
        let mut events = net.events().await;
        let id = net.request(&requester, &program.spec(4)).await;
        events.executed(&id).await;
        let first_bid = net.sign(&dear.operator, |nonce| bid_body(nonce, &id, &dear, 6)).await;
        net.rpc().bid(first_bid.clone()).await.expect("Bid");
        net.bid(&cheap, &id, 4).await.expect("Bid");

        let addresses = [
            requester.address(),
            dear.address(),
            dear.operator.address(),
            cheap.address(),
            cheap.operator.address(),
        ];
        let mut accounts = Vec::new();
        for a in &addresses {
            accounts.push(net.account(a).await);
        }
        let request = net.get(&id).await;
        assert_eq!(request.status, RequestStatus::Requested as i32);
        let market = net.handle.state.market().clone();
        let auction_end_ms = market.request(&id).expect("stored").auction_end() * 1000;
        assert_eq!(market.request(&id).expect("stored").bids.len(), 2);
        assert!(
            provernet_network::service::now_ms() < auction_end_ms,
            "the auction ended before the stop: slow machine?"
        );

        let net = net.restart().await;
        // The old subscription was ended, with a reason to reconnect, not left hanging.
        let ended = tokio::time::timeout(crate::harness::WAIT, events.0.message())
            .await
            .expect("the old subscription ended");
        assert_status(ended, Code::Unavailable, "shutting down");

        assert_eq!(*net.handle.state.market(), market, "the market reloads exactly");
        assert_eq!(net.get(&id).await, request);
        for (a, before) in addresses.iter().zip(&accounts) {
            assert_eq!(&net.account(a).await, before, "account {a} after the restart");
        }
        // Nonces survived: the first bid, replayed, is stale.
        assert_status(net.rpc().bid(first_bid).await, Code::FailedPrecondition, "nonce");

        // The auction settles by its timer, on the relaunched network.
        let r =
            net.wait_until(&id, "Assigned", |r| r.status == RequestStatus::Assigned as i32).await;
        assert_eq!(r.assigned_prover, cheap.address().as_bytes());
        assert_eq!(r.winning_price_per_pgu, "4");
        let settled = net.handle.state.market().request(&id).expect("stored").assignment.clone();
        assert!(settled.expect("assigned").at_ms >= auction_end_ms, "not before the period ended");

        // And is fulfilled there, from the artifacts kept on disk.
        let bundle = program.prove(program.inputs.clone()).await;
        net.fulfill(&cheap, &id, bundle).await.expect("FulfillProof after the restart");
        net.wait_until(&id, "Fulfilled", |r| r.status == RequestStatus::Fulfilled as i32).await;
        net.stop().await;
    })
    .await;
}
