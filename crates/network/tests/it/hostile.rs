//! A hostile caller with its own keys: signature, nonce, rights and funds are checked before any
//! work that grows with the input (reading, assembling, verifying), uploads stay within what
//! their signer declared and the per-kind limits, and every error message is bounded.

use provernet_types::{ArtifactId, RequestId, Signer, proto, seal};
use provernet_zkvm::samples::FIB;
use tonic::Code;

use crate::harness::{Net, assert_status, bounded};

/// The program and proof limit of these tests' network.
const LIMIT: u64 = 256 << 10;

fn fulfil_naming(
    signer: &Signer,
    net: &Net,
    nonce: u64,
    id: &RequestId,
    prover: &Signer,
    proof: &ArtifactId,
) -> proto::SignedMessage {
    let body = proto::FulfillProofBody {
        nonce,
        request_id: id.as_bytes().to_vec(),
        prover: prover.address().as_bytes().to_vec(),
        proof: Some(proto::fulfill_proof_body::Proof::ProofArtifactId(proof.as_bytes().to_vec())),
    };
    seal(signer, &net.domain, &body)
}

fn register_naming(
    signer: &Signer,
    net: &Net,
    nonce: u64,
    name: &str,
    program: &ArtifactId,
) -> proto::SignedMessage {
    let body = proto::RegisterProgramBody {
        nonce,
        name: name.into(),
        zkvm_version: "miden-0.23".into(),
        program_artifact_id: program.as_bytes().to_vec(),
    };
    seal(signer, &net.domain, &body)
}

/// A network with [`LIMIT`] on programs and proofs, and a key it has never seen.
async fn limited_net_and_stranger() -> (Net, Signer) {
    let net = Net::start_with(|config| {
        config.max_program_bytes = LIMIT;
        config.max_proof_bytes = LIMIT;
    })
    .await;
    let stranger = Signer::random();
    net.track(stranger.address());
    (net, stranger)
}

#[tokio::test]
async fn who_is_calling_is_checked_before_any_work_that_grows_with_the_input() {
    bounded(async {
        // An unfunded, unregistered key: uploads need no funds, so it can store a big artifact.
        let (net, stranger) = limited_net_and_stranger().await;
        let big = vec![b'x'; 4 * LIMIT as usize];
        let big_id = net.upload(&stranger, &big, proto::ArtifactKind::Inputs).await;
        let never_uploaded = ArtifactId::of(b"never uploaded");
        let invented = RequestId::from_bytes([9; 32]);
        let nonce = net.nonce(&stranger.address()).await;

        // Each of these would have read (or failed to find) the artifact before the fix; now the
        // caller's nonce or rights refuse it first, whatever the artifact is.
        for artifact in [&big_id, &never_uploaded] {
            let stale = fulfil_naming(&stranger, &net, 999, &invented, &stranger, artifact);
            assert_status(net.rpc().fulfill_proof(stale).await, Code::FailedPrecondition, "nonce");
            let unregistered =
                fulfil_naming(&stranger, &net, nonce, &invented, &stranger, artifact);
            assert_status(
                net.rpc().fulfill_proof(unregistered).await,
                Code::NotFound,
                "not a registered prover",
            );
            let stale = register_naming(&stranger, &net, 999, "big", artifact);
            assert_status(
                net.rpc().register_program(stale).await,
                Code::FailedPrecondition,
                "nonce",
            );
            let badly_named = register_naming(&stranger, &net, nonce, "Big Program", artifact);
            assert_status(
                net.rpc().register_program(badly_named).await,
                Code::InvalidArgument,
                "characters of a-z",
            );
        }
        assert_eq!(net.nonce(&stranger.address()).await, nonce, "a refusal uses no nonce");

        // With its nonce right, a program above the limit is refused unread, naming the limit.
        let too_big = register_naming(&stranger, &net, nonce, "big", &big_id);
        assert_status(
            net.rpc().register_program(too_big).await,
            Code::InvalidArgument,
            &format!("above this network's limit of {LIMIT} bytes"),
        );
        assert_eq!(net.nonce(&stranger.address()).await, nonce);
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn uploads_stay_within_their_declared_size_and_the_limits_of_their_kind() {
    bounded(async {
        let (net, stranger) = limited_net_and_stranger().await;
        let presign = |nonce, kind: proto::ArtifactKind, size, id: &ArtifactId| {
            let body = proto::PresignArtifactUploadBody {
                nonce,
                artifact_id: id.as_bytes().to_vec(),
                kind: kind as i32,
                size,
            };
            seal(&stranger, &net.domain, &body)
        };
        let body = vec![b'y'; LIMIT as usize + 1];
        let id = ArtifactId::of(&body);
        let nonce = net.nonce(&stranger.address()).await;
        for (kind, what) in
            [(proto::ArtifactKind::Program, "a program"), (proto::ArtifactKind::Proof, "a proof")]
        {
            let message = presign(nonce, kind, body.len() as u64, &id);
            assert_status(
                net.rpc().presign_artifact_upload(message).await,
                Code::InvalidArgument,
                &format!("limit of {LIMIT} bytes for {what}"),
            );
        }
        // Granted for 100 bytes, the URL takes no more.
        let message = presign(nonce, proto::ArtifactKind::Inputs, 100, &id);
        let url =
            net.rpc().presign_artifact_upload(message).await.expect("presign").into_inner().url;
        let refused = net.artifacts.upload_bytes(&url, body.clone().into()).await;
        let error = refused.expect_err("an upload above its declared size");
        assert!(error.to_string().contains("413"), "{error}");
        let stored = net.handle.state.artifacts.storage().meta(&id).await.expect("meta");
        assert!(stored.is_none(), "nothing of the refused upload is stored");
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn the_assigned_prover_cannot_make_the_network_read_a_proof_above_the_limit() {
    bounded(async {
        let net = Net::start_with(|config| config.max_proof_bytes = LIMIT).await;
        let requester = net.funded().await;
        let prover = net.prover().await;
        let program = net.program(&requester, &FIB, false).await;
        let mut events = net.events().await;
        let id = net.request(&requester, &program.spec(1)).await;
        events.executed(&id).await;
        net.bid(&prover, &id, 3).await.expect("Bid");
        events.assigned(&id).await;
        let big = vec![b'z'; 2 * LIMIT as usize];
        let big_id = net.upload(&prover.operator, &big, proto::ArtifactKind::Inputs).await;
        let nonce = net.nonce(&prover.operator.address()).await;
        let message = fulfil_naming(&prover.operator, &net, nonce, &id, &prover.owner, &big_id);
        assert_status(
            net.rpc().fulfill_proof(message).await,
            Code::InvalidArgument,
            &format!("proof artifact {big_id} is {} bytes, above this network's limit", big.len()),
        );
        assert_eq!(net.get(&id).await.status, proto::RequestStatus::Assigned as i32);
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_assembler_error_is_bounded_and_still_says_what_is_wrong() {
    bounded(async {
        let net = Net::start().await;
        let requester = net.funded().await;
        // 1.6 MB of source on one line that does not assemble: the report once quoted all of
        // it, and a message of megabytes does not fit in a gRPC status.
        let mut source = String::from("begin ");
        while source.len() < 1_600_000 {
            source.push_str("push.1 drop ");
        }
        source.push_str("no_such_instruction end");
        let artifact =
            net.upload(&requester, source.as_bytes(), proto::ArtifactKind::Program).await;
        let message = net
            .sign(&requester, |nonce| proto::RegisterProgramBody {
                nonce,
                name: "huge".into(),
                zkvm_version: "miden-0.23".into(),
                program_artifact_id: artifact.as_bytes().to_vec(),
            })
            .await;
        let status = net.rpc().register_program(message).await.expect_err("does not assemble");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("program does not assemble"), "{}", status.message());
        assert!(status.message().len() < 4096, "{} bytes", status.message().len());
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_flooding_account_is_limited_and_an_honest_one_is_not() {
    bounded(async {
        let net = Net::start_with(|config| {
            config.account_rate_limit =
                Some(provernet_network::RateLimit { per_second: 5, burst: 10 });
        })
        .await;
        let (flooder, honest) = (Signer::random(), Signer::random());
        net.track(flooder.address());
        net.track(honest.address());
        // Each call is signed for real and refused by the market (nothing to credit): the limit
        // counts calls whose signature holds, whatever they ask.
        let mut limited = 0;
        for _ in 0..40 {
            let body = proto::FaucetBody { nonce: 0, amount: "0".into() };
            match net.rpc().faucet(seal(&flooder, &net.domain, &body)).await {
                Err(status) if status.code() == Code::ResourceExhausted => {
                    assert!(status.message().contains("rate limit of 5"), "{}", status.message());
                    limited += 1;
                }
                _ => {}
            }
        }
        assert!(limited >= 25, "only {limited} of 40 calls were limited");
        // The honest account has its own allowance.
        for _ in 0..5 {
            net.faucet(&honest, 5).await;
        }
        assert_eq!(net.balance(&honest.address()).await, 25);
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_connection_holds_a_bounded_number_of_subscriptions() {
    bounded(async {
        let net = Net::start_with(|config| config.max_subscriptions_per_connection = 3).await;
        let mut open = Vec::new();
        for _ in 0..3 {
            open.push(net.events().await);
        }
        let refused =
            net.rpc().subscribe_requests(proto::SubscribeRequestsRequest::default()).await;
        assert_status(refused, Code::ResourceExhausted, "limit per connection");
        // A closed subscription gives its place back. The server learns of it when the client's
        // reset reaches it, which nothing here can await: retry, bounded.
        drop(open.pop());
        let mut tries = 0;
        loop {
            match net.rpc().subscribe_requests(proto::SubscribeRequestsRequest::default()).await {
                Ok(_) => break,
                Err(status) if status.code() == Code::ResourceExhausted && tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(status) => panic!("the place was not given back: {status:?}"),
            }
        }
        net.stop().await;
    })
    .await;
}
