//! The history out of memory (issue 18): a closed request leaves the market's memory once its
//! closing is durable, and every read of it (GetProofRequest, ListProofRequests with filters
//! and cursor) comes from the database, the same before and after a restart; operations on it
//! are refused as they were while it was in memory.

use provernet_types::{RequestId, proto, proto::RequestStatus};
use provernet_zkvm::samples::FIB;
use tonic::Code;

use crate::harness::{Net, assert_status, bounded};

/// Every page of `filter`, `limit` at a time, following the cursor.
async fn list_all(
    net: &Net,
    filter: proto::ListProofRequestsRequest,
    limit: u32,
) -> Vec<proto::ProofRequest> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = net
            .rpc()
            .list_proof_requests(proto::ListProofRequestsRequest {
                cursor: cursor.clone(),
                limit,
                ..filter.clone()
            })
            .await
            .expect("ListProofRequests")
            .into_inner();
        all.extend(page.requests);
        if page.next_cursor.is_empty() {
            return all;
        }
        cursor = page.next_cursor;
    }
}

async fn cancel(
    net: &Net,
    requester: &provernet_types::Signer,
    id: &RequestId,
) -> Result<(), tonic::Status> {
    let message = net
        .sign(requester, |nonce| proto::CancelRequestBody {
            nonce,
            request_id: id.as_bytes().to_vec(),
        })
        .await;
    net.rpc().cancel_request(message).await.map(|_| ())
}

fn ids(requests: &[proto::ProofRequest]) -> Vec<Vec<u8>> {
    requests.iter().map(|r| r.request_id.clone()).collect()
}

/// `requests` in the order the network lists them: by creation second, then id.
async fn in_list_order(net: &Net, requests: &[RequestId]) -> Vec<RequestId> {
    let mut keyed = Vec::new();
    for id in requests {
        keyed.push((net.get(id).await.created_at, *id));
    }
    keyed.sort();
    keyed.into_iter().map(|(_, id)| id).collect()
}

/// The ids of `requests` at the places `at` of `requests`, in list order.
fn picked(order: &[RequestId], requests: &[RequestId], at: &[usize]) -> Vec<Vec<u8>> {
    order
        .iter()
        .filter(|id| at.iter().any(|i| requests[*i] == **id))
        .map(|id| id.as_bytes().to_vec())
        .collect()
}

#[tokio::test]
async fn closed_requests_read_the_same_from_the_database_and_after_a_restart() {
    bounded(async {
        let net = Net::start().await;
        let (alice, bob) = (net.funded().await, net.funded().await);
        let program = net.program(&alice, &FIB, false).await;
        let spec = program.spec(20);
        let mut requests = Vec::new();
        for requester in [&alice, &bob, &alice, &bob, &alice] {
            requests.push(net.request(requester, &spec).await);
        }
        // Cancelled: closed, and out of memory by the time the call is answered.
        for (requester, id) in
            [(&alice, &requests[0]), (&bob, &requests[3]), (&alice, &requests[4])]
        {
            cancel(&net, requester, id).await.expect("CancelRequest");
        }
        {
            let market = net.handle.state.market();
            for (i, id) in requests.iter().enumerate() {
                let open = ![0, 3, 4].contains(&i);
                assert_eq!(market.holds(id), open, "request {i} in memory");
            }
        }
        let order = in_list_order(&net, &requests).await;
        let closed = net.get(&requests[0]).await;
        assert_eq!(closed.status, RequestStatus::Cancelled as i32);
        assert!(closed.closed_at > 0);

        let filters = [
            proto::ListProofRequestsRequest::default(),
            proto::ListProofRequestsRequest {
                statuses: vec![RequestStatus::Cancelled as i32],
                ..Default::default()
            },
            proto::ListProofRequestsRequest {
                requester: alice.address().as_bytes().to_vec(),
                ..Default::default()
            },
            proto::ListProofRequestsRequest {
                requester: bob.address().as_bytes().to_vec(),
                statuses: vec![RequestStatus::Requested as i32, RequestStatus::Cancelled as i32],
                zkvm_version: spec.zkvm_version.clone(),
                ..Default::default()
            },
        ];
        let mut before = Vec::new();
        for filter in &filters {
            before.push(list_all(&net, filter.clone(), 2).await);
        }
        assert_eq!(ids(&before[0]), picked(&order, &requests, &[0, 1, 2, 3, 4]));
        assert_eq!(ids(&before[1]), picked(&order, &requests, &[0, 3, 4]));
        assert_eq!(ids(&before[2]), picked(&order, &requests, &[0, 2, 4]));
        assert_eq!(ids(&before[3]), picked(&order, &requests, &[1, 3]));
        // A listed request is the request GetProofRequest serves.
        for r in &before[0] {
            let id = RequestId::from_slice(&r.request_id).expect("id");
            assert_eq!(&net.get(&id).await, r);
        }
        // Operations on a closed request are refused as before it left memory.
        assert_status(
            cancel(&net, &alice, &requests[0]).await,
            Code::FailedPrecondition,
            "Cancelled",
        );
        let prover = net.prover().await;
        assert_status(
            net.bid(&prover, &requests[3], 1).await,
            Code::FailedPrecondition,
            "Cancelled",
        );
        assert_status(
            net.rpc()
                .get_proof_request(proto::GetProofRequestRequest { request_id: vec![7; 32] })
                .await,
            Code::NotFound,
            "no proof request",
        );
        net.assert_ledger().await;

        // A restart loads the open requests only, and serves the rest as before.
        let net = net.restart().await;
        {
            let market = net.handle.state.market();
            assert_eq!(market.requests().count(), 2, "only the open requests are loaded");
            let counts = market.status_counts();
            assert_eq!((counts.get("cancelled"), counts.get("requested")), (Some(&3), Some(&2)));
        }
        for (filter, before) in filters.iter().zip(&before) {
            assert_eq!(&list_all(&net, filter.clone(), 2).await, before, "{filter:?}");
            assert_eq!(&list_all(&net, filter.clone(), 100).await, before, "{filter:?}, one page");
        }
        net.assert_ledger().await;
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_request_closed_while_a_client_lists_is_neither_skipped_nor_repeated() {
    bounded(async {
        let net = Net::start().await;
        let requester = net.funded().await;
        let program = net.program(&requester, &FIB, false).await;
        let spec = program.spec(20);
        let mut requests = Vec::new();
        for _ in 0..7 {
            requests.push(net.request(&requester, &spec).await);
        }
        let page = |cursor: String| {
            let net = &net;
            async move {
                net.rpc()
                    .list_proof_requests(proto::ListProofRequestsRequest {
                        cursor,
                        limit: 2,
                        ..Default::default()
                    })
                    .await
                    .expect("ListProofRequests")
                    .into_inner()
            }
        };
        let order = in_list_order(&net, &requests).await;
        let first = page(String::new()).await;
        // One request already listed and two not yet listed close (and leave memory).
        for i in [1, 2, 5] {
            cancel(&net, &requester, &order[i]).await.expect("CancelRequest");
        }
        let mut listed = first.requests;
        let mut cursor = first.next_cursor;
        while !cursor.is_empty() {
            let next = page(cursor).await;
            listed.extend(next.requests);
            cursor = next.next_cursor;
        }
        assert_eq!(ids(&listed), order.iter().map(|id| id.as_bytes().to_vec()).collect::<Vec<_>>());
        // Those listed after they closed are shown closed.
        assert_eq!(listed[2].status, RequestStatus::Cancelled as i32);
        assert_eq!(listed[5].status, RequestStatus::Cancelled as i32);
        assert_eq!(listed[1].status, RequestStatus::Requested as i32, "listed before it closed");
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn proof_retention_deletes_old_proofs_and_keeps_the_record() {
    bounded(async {
        let net = Net::start_with(|config| {
            config.proof_retention = Some(std::time::Duration::from_secs(2));
            config.retention_interval = std::time::Duration::from_millis(50);
        })
        .await;
        let mut deleted = net.handle.state.proofs_deleted.subscribe();
        // Fulfilled, paid, and its proof downloaded: kept while younger than the retention.
        crate::happy::happy_path(&net).await;
        let fulfilled = list_all(
            &net,
            proto::ListProofRequestsRequest {
                statuses: vec![RequestStatus::Fulfilled as i32],
                ..Default::default()
            },
            10,
        )
        .await;
        let [fulfilled] = fulfilled.as_slice() else { panic!("one fulfilled request") };
        assert_eq!(fulfilled.proof_deleted_at, 0);
        let proof = provernet_types::ArtifactId::from_slice(&fulfilled.proof_artifact_id)
            .expect("a proof id");

        tokio::time::timeout(crate::harness::WAIT, deleted.wait_for(|n| *n >= 1))
            .await
            .expect("the retention deleted the proof in time")
            .expect("the network is running");
        let storage = net.handle.state.artifacts.storage();
        assert!(storage.meta(&proof).await.expect("storage").is_none(), "the proof is gone");
        let id = RequestId::from_slice(&fulfilled.request_id).expect("id");
        let after = net.get(&id).await;
        assert!(after.proof_deleted_at >= fulfilled.closed_at + 2, "deleted after the retention");
        // The record stays as it was, but for the deletion time.
        assert_eq!(proto::ProofRequest { proof_deleted_at: 0, ..after.clone() }, *fulfilled);

        let net = net.restart().await;
        assert_eq!(net.get(&id).await, after);
        net.stop().await;
    })
    .await;
}
