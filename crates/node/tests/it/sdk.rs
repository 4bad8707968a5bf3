//! SP1's own SDK (`sp1-sdk`, feature `network`: the client SP1's users request proofs with)
//! against a provernet network that serves the Succinct API, on loopback: it registers a
//! program, requests a proof, reads its status and cancels it, each as the network records it;
//! and (an ignored test, release) a node on the Succinct API proves an SDK request that the SDK
//! then downloads and verifies. Feature `sdk-client` (it adds ~270 packages to the build):
//! `cargo test -p provernet-node --features sdk-client --test it -- sdk::`.
#![cfg(feature = "sdk-client")]

use std::time::{Duration, Instant};

use provernet_node::config::NetworkApi;
use provernet_types::{
    Address, Amount, RequestId, proto::RequestStatus, succinct::proto::types::FulfillmentStatus,
};
use provernet_zkvm::sp1::samples;
use sp1_sdk::{
    Elf, HashableKey, ProveRequest, Prover as _, ProverClient, ProvingKey, SP1Stdin,
    network::{B256, NetworkMode, proto::GetProofRequestStatusResponse, prover::NetworkProver},
};

use crate::harness::*;

/// SP1's setup and the network's (at registration) take minutes in the test profile.
const SDK_TEST_TIMEOUT: Duration = Duration::from_secs(900);

/// The SDK's network prover for `net`, signing with a new funded key.
async fn sdk_client(net: &Net) -> (NetworkProver, Address) {
    let key = net.funded().await;
    let client = ProverClient::builder()
        .network_for(NetworkMode::Mainnet)
        .rpc_url(&net.url)
        .private_key(&key.secret_hex())
        .build()
        .await;
    (client, key.address())
}

/// fib's input as the SDK's users write it.
fn stdin(n: u32) -> SP1Stdin {
    let mut stdin = SP1Stdin::new();
    stdin.write(&n);
    stdin
}

fn request_id(id: &[u8]) -> RequestId {
    RequestId::from_slice(id).expect("the SDK's request id is 32 bytes")
}

fn fulfillment(status: &GetProofRequestStatusResponse) -> FulfillmentStatus {
    FulfillmentStatus::try_from(status.fulfillment_status()).expect("a known status")
}

fn b256(id: &RequestId) -> B256 {
    B256::from(*id.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_registers_requests_reads_and_cancels() {
    tokio::time::timeout(SDK_TEST_TIMEOUT, async {
        let net = start_succinct().await;
        let (client, requester) = sdk_client(&net).await;
        let pk = client.setup(Elf::Static(samples::FIB_ELF)).await.expect("setup");
        let vk_hash = pk.verifying_key().hash_bytes();

        // Registers the program (CreateArtifact, PUT, CreateProgram), simulates, requests.
        let id = client.prove(&pk, stdin(20)).core().request().await.expect("request");
        let id = request_id(id.as_slice());
        let native = net.get(&id).await;
        assert_eq!(status(&native), RequestStatus::Requested);
        assert_eq!(Address::from_slice(&native.requester).unwrap(), requester);
        let body = native.body.as_ref().unwrap();
        assert_eq!(body.zkvm_version, "sp1-v6.1");
        assert!(body.min_auction_period >= 2, "the network's minimum auction, not the SDK's 0");

        let (shown, proof) = client.get_proof_status(b256(&id)).await.expect("status");
        assert_eq!(fulfillment(&shown), FulfillmentStatus::Requested);
        assert!(proof.is_none());
        let details = client.get_proof_request(b256(&id)).await.unwrap().unwrap();
        assert_eq!(details.vk_hash, vk_hash.to_vec(), "requested under the SDK's own hash");
        assert_eq!(details.version, "sp1-v6.1.0");

        // The same program again: found by its hash, not registered twice.
        let again = client.prove(&pk, stdin(21)).core().request().await.expect("request");
        assert_ne!(request_id(again.as_slice()), id);

        client.cancel_request(b256(&id)).await.expect("cancel");
        assert_eq!(status(&net.get(&id).await), RequestStatus::Cancelled);
        let (shown, _) = client.get_proof_status(b256(&id)).await.unwrap();
        assert_eq!(fulfillment(&shown), FulfillmentStatus::Unfulfillable);
        net.stop().await;
    })
    .await
    .expect("the test did not finish in time");
}

/// An unchanged SDK request proven by a node on the Succinct API (12+ GB, minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "12+ GB, minutes: cargo test --release -p provernet-node --features sdk-client --test it -- --ignored sdk::"]
async fn an_sdk_request_is_proven_by_a_succinct_api_node_and_verified_by_the_sdk() {
    tokio::time::timeout(Duration::from_secs(1_800), async {
        let net = start_succinct().await;
        let mut prover = register(&net, NodeSpec { memory_gib: 16, ..Default::default() }).await;
        prover.config.network.api = NetworkApi::Succinct;
        let node = prover.launch().await;
        let (client, _) = sdk_client(&net).await;
        let before = net.balance(&prover.address()).await;
        let started = Instant::now();
        let pk = client.setup(Elf::Static(samples::FIB_ELF)).await.expect("setup");
        let proof = client
            .prove(&pk, stdin(20))
            .core()
            .timeout(Duration::from_secs(1_500))
            .await
            .expect("a proof from the network");
        let elapsed = started.elapsed();
        client.verify(&proof, pk.verifying_key(), None).expect("the SDK verifies it");
        let paid = net.balance(&prover.address()).await - before;
        assert!(paid > 0, "the node was paid");
        assert_eq!(node.0.context.core().book().earnings, Amount::new(paid));
        eprintln!("SDK request to verified proof: {:.1} s", elapsed.as_secs_f64());
        stop(node).await;
        net.stop().await;
    })
    .await
    .expect("the SDK's proof did not arrive in time");
}
