//! Subscriptions deliver what their filter asks for: by prover (whitelist, and assignments to
//! it), by zkVM version, by status, by request id. Every stream is read to its end, which the network's stop
//! brings, so "nothing else" is checked without waiting for a timeout.

use provernet_types::{
    RequestId,
    proto::{self, RequestStatus, SubscribeRequestsRequest, request_event::Event},
};
use provernet_zkvm::samples::FIB;
use tonic::Code;

use crate::harness::{Events, Net, assert_status, bounded};

/// Every event left on `events`, until the stream ends.
async fn drain(mut events: Events) -> Vec<proto::RequestEvent> {
    let mut all = Vec::new();
    while let Ok(Some(event)) = events.0.message().await {
        all.push(event);
    }
    all
}

/// The kinds of the events about `id`, in order.
fn kinds(events: &[proto::RequestEvent], id: &RequestId) -> Vec<&'static str> {
    events
        .iter()
        .filter(|e| e.request_id == id.as_bytes())
        .map(|e| match e.event.as_ref().expect("event body") {
            Event::Created(_) => "created",
            Event::Executed(_) => "executed",
            Event::Unexecutable(_) => "unexecutable",
            Event::Assigned(_) => "assigned",
            Event::ProofSubmitted(_) => "proof submitted",
            Event::ProofRejected(_) => "proof rejected",
            Event::Fulfilled(_) => "fulfilled",
            Event::Unfulfillable(_) => "unfulfillable",
            Event::Cancelled(_) => "cancelled",
            Event::Lagged(_) => "lagged",
        })
        .collect()
}

#[tokio::test]
async fn subscriptions_deliver_what_their_filter_asks_for() {
    bounded(async {
        let net = Net::start().await;
        let requester = net.funded().await;
        let (a, b) = (net.prover().await, net.prover().await);
        let program = net.program(&requester, &FIB, false).await;
        let prover = |p: &crate::harness::Prover| SubscribeRequestsRequest {
            prover: p.address().as_bytes().to_vec(),
            ..Default::default()
        };
        let mut all = net.events().await;
        let for_a = net.events_for(prover(&a)).await;
        let for_b = net.events_for(prover(&b)).await;
        let other_vm = net
            .events_for(SubscribeRequestsRequest {
                zkvm_versions: vec!["sp1-v5".into()],
                ..Default::default()
            })
            .await;
        let cancelled = net
            .events_for(SubscribeRequestsRequest {
                statuses: vec![RequestStatus::Cancelled as i32],
                ..Default::default()
            })
            .await;

        let mut spec = program.spec(1);
        spec.whitelist = vec![a.address()];
        let only_a = net.request(&requester, &spec).await;
        let open = net.request(&requester, &program.spec(1)).await;
        all.executed_each(&[only_a, open]).await;
        net.bid(&a, &open, 3).await.expect("Bid");
        all.assigned(&open).await;
        let mut spec = program.spec(30);
        spec.base_fee = provernet_types::Amount::new(1);
        let cancel = net.request(&requester, &spec).await;
        let message = net
            .sign(&requester, |nonce| proto::CancelRequestBody {
                nonce,
                request_id: cancel.as_bytes().to_vec(),
            })
            .await;
        net.rpc().cancel_request(message).await.expect("CancelRequest");
        all.wait_for(&cancel, "Cancelled", |e| matches!(e, Event::Cancelled(_)).then_some(()))
            .await;

        net.stop().await;
        let (all, for_a, for_b, other_vm, cancelled) = (
            drain(all).await,
            drain(for_a).await,
            drain(for_b).await,
            drain(other_vm).await,
            drain(cancelled).await,
        );
        assert_eq!(kinds(&for_a, &only_a), ["created", "executed"]);
        assert_eq!(kinds(&for_a, &open), ["created", "executed", "assigned"]);
        assert_eq!(kinds(&for_b, &only_a), Vec::<&str>::new(), "B is not on the whitelist");
        assert_eq!(kinds(&for_b, &open), ["created", "executed"], "assigned to A, not B");
        for events in [&for_a, &for_b] {
            assert_eq!(kinds(events, &cancel).first(), Some(&"created"));
            assert_eq!(kinds(events, &cancel).last(), Some(&"cancelled"));
        }
        assert!(other_vm.is_empty(), "no request runs on sp1-v5: {other_vm:?}");
        assert_eq!(cancelled.len(), 1, "only the cancellation: {cancelled:?}");
        assert_eq!(kinds(&cancelled, &cancel), ["cancelled"]);
        // The unfiltered stream got the events still unread after the waits above, in order.
        assert!(all.windows(2).all(|w| w[0].sequence < w[1].sequence), "{all:?}");
    })
    .await;
}

#[tokio::test]
async fn a_request_id_filter_delivers_only_those_requests_events() {
    bounded(async {
        let net = Net::start().await;
        let requester = net.funded().await;
        let program = net.program(&requester, &FIB, false).await;
        let malformed = SubscribeRequestsRequest {
            request_ids: vec![vec![1; 32], vec![2; 5]],
            ..Default::default()
        };
        let refused = net.rpc().subscribe_requests(malformed).await.map(|_| ());
        assert_status(refused, Code::InvalidArgument, "request_ids");
        let too_many = SubscribeRequestsRequest {
            request_ids: (0..=256u32).map(|i| [i.to_le_bytes(); 8].concat()).collect(),
            ..Default::default()
        };
        let refused = net.rpc().subscribe_requests(too_many).await.map(|_| ());
        assert_status(refused, Code::InvalidArgument, "request_ids");

        // A request's id derives from its signed body, so it is known before it is sent and the
        // subscription sees its first event.
        let first = net.sign(&requester, |nonce| program.spec(1).to_body(nonce)).await;
        let first_id = RequestId::derive(&requester.address(), &first.body);
        let mut all = net.events().await;
        let only_first = net
            .events_for(SubscribeRequestsRequest {
                request_ids: vec![first_id.as_bytes().to_vec()],
                ..Default::default()
            })
            .await;
        net.rpc().request_proof(first).await.expect("RequestProof");
        let second = net.request(&requester, &program.spec(1)).await;
        all.executed_each(&[first_id, second]).await;

        net.stop().await;
        let only_first = drain(only_first).await;
        assert_eq!(kinds(&only_first, &first_id), ["created", "executed"]);
        assert!(
            only_first.iter().all(|e| e.request_id == first_id.as_bytes()),
            "only events about {first_id}: {only_first:?}"
        );
    })
    .await;
}
