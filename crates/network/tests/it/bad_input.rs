//! Refused calls: each gets a gRPC status with a clear message, and the stored state is exactly
//! as it was (the whole market, and what GetAccount and GetProofRequest show).

use prost::Message;
use provernet_network::market::Market;
use provernet_types::{
    Address, Amount, ArtifactId, Domain, RequestId, RequestSpec, Signer,
    proto::{self, SignedMessage},
    seal,
};
use provernet_zkvm::samples::{FIB, HASHCHAIN};
use tonic::{Code, Status};

use crate::harness::{
    NETWORK_ID, Net, Program, Prover, STAKE, assert_status, bid_body, bounded, now_secs,
};

/// The RPC a case calls.
#[derive(Debug, Clone, Copy)]
enum Rpc {
    Faucet,
    AdminDeposit,
    RegisterProver,
    WithdrawStake,
    RegisterProgram,
    RequestProof,
    CancelRequest,
    Bid,
    FulfillProof,
    FailFulfillment,
    PresignUpload,
    PresignDownload,
}

async fn send(net: &Net, rpc: Rpc, message: SignedMessage) -> Result<(), Status> {
    let mut client = net.rpc();
    match rpc {
        Rpc::Faucet => client.faucet(message).await.map(drop),
        Rpc::AdminDeposit => client.admin_deposit(message).await.map(drop),
        Rpc::RegisterProver => client.register_prover(message).await.map(drop),
        Rpc::WithdrawStake => client.withdraw_stake(message).await.map(drop),
        Rpc::RegisterProgram => client.register_program(message).await.map(drop),
        Rpc::RequestProof => client.request_proof(message).await.map(drop),
        Rpc::CancelRequest => client.cancel_request(message).await.map(drop),
        Rpc::Bid => client.bid(message).await.map(drop),
        Rpc::FulfillProof => client.fulfill_proof(message).await.map(drop),
        Rpc::FailFulfillment => client.fail_fulfillment(message).await.map(drop),
        Rpc::PresignUpload => client.presign_artifact_upload(message).await.map(drop),
        Rpc::PresignDownload => client.presign_artifact_download(message).await.map(drop),
    }
}

/// One refused call: what is wrong, the call, and the status it must get.
struct Case {
    what: &'static str,
    rpc: Rpc,
    message: SignedMessage,
    code: Code,
    says: &'static str,
}

/// Everything a refusal must leave as it was.
#[derive(Debug, PartialEq)]
struct Observed {
    market: Market,
    accounts: Vec<proto::Account>,
    requests: Vec<proto::ProofRequest>,
}

async fn observe(net: &Net, addresses: &[Address], ids: &[RequestId]) -> Observed {
    let market = net.handle.state.market().clone();
    let mut accounts = Vec::new();
    for a in addresses {
        accounts.push(net.account(a).await);
    }
    let mut requests = Vec::new();
    for id in ids {
        requests.push(net.get(id).await);
    }
    Observed { market, accounts, requests }
}

/// What the table needs: actors, a program, an open request and one assigned to `prover`.
struct World {
    requester: Signer,
    prover: Prover,
    other: Prover,
    stranger: Signer,
    program: Program,
    open: RequestId,
    whitelisted: RequestId,
    assigned: RequestId,
    not_masm: ArtifactId,
    /// Another program, uploaded by the stranger.
    hashchain: ArtifactId,
    /// A prover with the least stake, too little for any collateral here.
    poor: Prover,
}

async fn world(net: &Net) -> World {
    let requester = net.funded().await;
    let (prover, other) = (net.prover().await, net.prover().await);
    let stranger = Signer::random();
    net.track(stranger.address());
    let program = net.program(&requester, &FIB, false).await;
    let not_masm =
        net.upload(&requester, b"this is not miden assembly", proto::ArtifactKind::Program).await;
    let hashchain =
        net.upload(&stranger, HASHCHAIN.source.as_bytes(), proto::ArtifactKind::Program).await;
    let poor = net.prover_with_stake(1_000).await;
    let mut events = net.events().await;
    // Open for a while yet (no bids, so nothing settles), and one won by `prover`.
    let open = net.request(&requester, &program.spec(30)).await;
    let mut spec = program.spec(30);
    spec.whitelist = vec![other.address()];
    let whitelisted = net.request(&requester, &spec).await;
    let assigned = net.request(&requester, &program.spec(1)).await;
    events.executed(&assigned).await;
    net.bid(&prover, &assigned, 3).await.expect("Bid");
    events.assigned(&assigned).await;
    net.wait_until(&open, "Executed", |r| {
        r.execution_status == proto::ExecutionStatus::Executed as i32
    })
    .await;
    World {
        requester,
        prover,
        other,
        stranger,
        program,
        open,
        whitelisted,
        assigned,
        not_masm,
        hashchain,
        poor,
    }
}

/// Every refused call, signed with the nonces of now (a refusal uses none, so they all stay
/// current).
async fn cases(net: &Net, w: &World) -> Vec<Case> {
    let domain = &net.domain;
    let r = &w.requester;
    let nr = net.nonce(&r.address()).await;
    let np = net.nonce(&w.prover.operator.address()).await;
    let npo = net.nonce(&w.prover.owner.address()).await;
    let nq = net.nonce(&w.other.operator.address()).await;
    let ns = net.nonce(&w.stranger.address()).await;
    let npp = net.nonce(&w.poor.operator.address()).await;
    let faucet = |nonce: u64, amount: &str| proto::FaucetBody { nonce, amount: amount.into() };
    let good_faucet = seal(r, domain, &faucet(nr, "5"));
    let spec = w.program.spec(2);
    let request = |change: &dyn Fn(&mut RequestSpec)| {
        let mut spec = spec.clone();
        change(&mut spec);
        seal(r, domain, &spec.to_body(nr))
    };
    let request_body = |change: &dyn Fn(&mut proto::RequestProofBody)| {
        let mut body = spec.to_body(nr);
        change(&mut body);
        seal(r, domain, &body)
    };
    let fulfil = |signer: &Signer, nonce, id: &RequestId, prover: &Prover, proof| {
        let body = proto::FulfillProofBody {
            nonce,
            request_id: id.as_bytes().to_vec(),
            prover: prover.address().as_bytes().to_vec(),
            proof,
        };
        seal(signer, domain, &body)
    };
    let junk_proof = Some(proto::fulfill_proof_body::Proof::ProofBytes(vec![7; 64]));
    let cancel = |signer: &Signer, nonce, id: &RequestId| {
        seal(
            signer,
            domain,
            &proto::CancelRequestBody { nonce, request_id: id.as_bytes().to_vec() },
        )
    };
    let upload = |kind: proto::ArtifactKind, size| {
        let body = proto::PresignArtifactUploadBody {
            nonce: nr,
            artifact_id: ArtifactId::of(b"x").as_bytes().to_vec(),
            kind: kind as i32,
            size,
        };
        seal(r, domain, &body)
    };
    let register_program = |name: &str, version: &str, artifact: &ArtifactId| {
        let body = proto::RegisterProgramBody {
            nonce: nr,
            name: name.into(),
            zkvm_version: version.into(),
            program_artifact_id: artifact.as_bytes().to_vec(),
        };
        seal(r, domain, &body)
    };

    let with = |mut m: SignedMessage, change: &dyn Fn(&mut SignedMessage)| {
        change(&mut m);
        m
    };
    let case = |what, rpc, message, code, says| Case { what, rpc, message, code, says };
    use Code::*;
    use Rpc::*;
    vec![
        // The envelope.
        case(
            "no signature",
            Faucet,
            with(good_faucet.clone(), &|m| m.signature.clear()),
            InvalidArgument,
            "malformed signature: 0 bytes",
        ),
        case(
            "short signature",
            Faucet,
            with(good_faucet.clone(), &|m| m.signature.truncate(64)),
            InvalidArgument,
            "malformed signature: 64 bytes",
        ),
        case(
            "zero signature",
            Faucet,
            with(good_faucet.clone(), &|m| m.signature = vec![0; 65]),
            InvalidArgument,
            "r or s is zero",
        ),
        case(
            "bad recovery id",
            Faucet,
            with(good_faucet.clone(), &|m| m.signature[64] = 5),
            InvalidArgument,
            "recovery id",
        ),
        case(
            "no signer",
            Faucet,
            with(good_faucet.clone(), &|m| m.signer.clear()),
            InvalidArgument,
            "signer has 0 bytes",
        ),
        case(
            "tampered body",
            Faucet,
            with(good_faucet.clone(), &|m| m.body = faucet(nr, "50").encode_to_vec()),
            Unauthenticated,
            "signature does not match",
        ),
        case(
            "forged signer",
            Faucet,
            with(seal(&w.stranger, domain, &faucet(nr, "5")), &|m| {
                m.signer = r.address().as_bytes().to_vec()
            }),
            Unauthenticated,
            "signature does not match",
        ),
        case(
            "other domain",
            Faucet,
            seal(r, &Domain::new("other-net"), &faucet(nr, "5")),
            Unauthenticated,
            "signed for network \"other-net\"",
        ),
        case(
            "other domain, relabelled",
            Faucet,
            with(seal(r, &Domain::new("other-net"), &faucet(nr, "5")), &|m| {
                m.domain = NETWORK_ID.into()
            }),
            Unauthenticated,
            "signature does not match",
        ),
        case("another call's body", Bid, good_faucet.clone(), InvalidArgument, "this call takes"),
        case(
            "another call's body, relabelled",
            Bid,
            with(good_faucet.clone(), &|m| m.kind = "provernet.v1.BidBody".into()),
            Unauthenticated,
            "signature does not match",
        ),
        case(
            "undecodable body",
            Faucet,
            provernet_types::seal_bytes::<proto::FaucetBody>(r, domain, vec![0xff; 5]),
            InvalidArgument,
            "malformed body",
        ),
        // Nonces.
        case(
            "stale nonce",
            Faucet,
            seal(r, domain, &faucet(nr - 1, "5")),
            FailedPrecondition,
            "is not the current nonce",
        ),
        case(
            "future nonce",
            Faucet,
            seal(r, domain, &faucet(nr + 1, "5")),
            FailedPrecondition,
            "is not the current nonce",
        ),
        // Amounts.
        case(
            "malformed amount",
            Faucet,
            seal(r, domain, &faucet(nr, "12abc")),
            InvalidArgument,
            "not a plain decimal integer",
        ),
        case(
            "negative amount",
            Faucet,
            seal(r, domain, &faucet(nr, "-5")),
            InvalidArgument,
            "not a plain decimal integer",
        ),
        case("empty amount", Faucet, seal(r, domain, &faucet(nr, "")), InvalidArgument, "is empty"),
        case(
            "amount above u128",
            Faucet,
            seal(r, domain, &faucet(nr, "340282366920938463463374607431768211456")),
            InvalidArgument,
            "exceeds the maximum",
        ),
        case(
            "zero amount",
            Faucet,
            seal(r, domain, &faucet(nr, "0")),
            InvalidArgument,
            "must be above 0",
        ),
        case(
            "above the faucet's limit",
            Faucet,
            seal(r, domain, &faucet(nr, "10000000000000")),
            InvalidArgument,
            "faucet's limit",
        ),
        case(
            "worst-case cost overflows",
            RequestProof,
            request(&|s| s.max_price_per_pgu = Amount::new(u128::MAX / 2)),
            InvalidArgument,
            "overflow",
        ),
        case(
            "malformed price",
            RequestProof,
            request_body(&|b| b.max_price_per_pgu = "1e3".into()),
            InvalidArgument,
            "max_price_per_pgu",
        ),
        case(
            "balance too small",
            RequestProof,
            seal(&w.stranger, domain, &spec.to_body(ns)),
            FailedPrecondition,
            "spendable",
        ),
        // Request fields.
        case(
            "missing inputs id",
            RequestProof,
            request_body(&|b| b.inputs_artifact_id.clear()),
            InvalidArgument,
            "`inputs_artifact_id` is required",
        ),
        case(
            "short program artifact id",
            RequestProof,
            request_body(&|b| b.program_artifact_id.truncate(31)),
            InvalidArgument,
            "program_artifact_id",
        ),
        case(
            "past deadline",
            RequestProof,
            request(&|s| s.deadline = now_secs() - 10),
            InvalidArgument,
            "has passed",
        ),
        case(
            "auction longer than the deadline",
            RequestProof,
            request(&|s| s.min_auction_period = 600),
            InvalidArgument,
            "min_auction_period",
        ),
        case("zero gas", RequestProof, request(&|s| s.gas_limit = 0), InvalidArgument, "gas_limit"),
        case(
            "gas above the backend's",
            RequestProof,
            request(&|s| s.gas_limit = u64::MAX),
            InvalidArgument,
            "gas_limit",
        ),
        case(
            "unknown program",
            RequestProof,
            request(&|s| s.program_id = vec![9; 32]),
            NotFound,
            "is not registered",
        ),
        case(
            "program under another artifact",
            RequestProof,
            request(&|s| s.program_artifact_id = w.not_masm),
            InvalidArgument,
            "program_artifact_id",
        ),
        case(
            "unsupported zkvm version",
            RequestProof,
            request(&|s| s.zkvm_version = "miden-9.99".into()),
            InvalidArgument,
            "miden-9.99",
        ),
        case(
            "unsupported proof mode",
            RequestProof,
            request(&|s| s.proof_mode = "groth16".into()),
            InvalidArgument,
            "groth16",
        ),
        case(
            "inputs never uploaded",
            RequestProof,
            request(&|s| s.inputs_artifact_id = ArtifactId::of(b"nothing")),
            NotFound,
            "upload it first",
        ),
        // Programs, provers, artifacts.
        case(
            "program that is no Miden assembly",
            RegisterProgram,
            register_program("junk", "miden-0.23", &w.not_masm),
            InvalidArgument,
            "program does not assemble",
        ),
        case(
            "program never uploaded",
            RegisterProgram,
            register_program("junk", "miden-0.23", &ArtifactId::of(b"nothing")),
            NotFound,
            "upload it first",
        ),
        case(
            "program for an unsupported zkvm",
            RegisterProgram,
            register_program("junk", "risc0-1", &w.program.artifact_id),
            InvalidArgument,
            "risc0-1",
        ),
        case(
            "program name with a space",
            RegisterProgram,
            register_program("fib program", "miden-0.23", &w.program.artifact_id),
            InvalidArgument,
            "characters of a-z",
        ),
        case(
            "program name in capitals",
            RegisterProgram,
            register_program("Fib", "miden-0.23", &w.program.artifact_id),
            InvalidArgument,
            "characters of a-z",
        ),
        case(
            "program name of 65 characters",
            RegisterProgram,
            register_program(&"f".repeat(65), "miden-0.23", &w.program.artifact_id),
            InvalidArgument,
            "characters of a-z",
        ),
        case(
            "a version under another account's name",
            RegisterProgram,
            seal(
                &w.stranger,
                domain,
                &proto::RegisterProgramBody {
                    nonce: ns,
                    name: FIB.name.into(),
                    zkvm_version: "miden-0.23".into(),
                    program_artifact_id: w.hashchain.as_bytes().to_vec(),
                },
            ),
            PermissionDenied,
            "another account registered first",
        ),
        case(
            "a program registered twice",
            RegisterProgram,
            register_program("fib-again", "miden-0.23", &w.program.artifact_id),
            AlreadyExists,
            "already registered",
        ),
        case(
            "stake below the minimum",
            RegisterProver,
            seal(
                &w.stranger,
                domain,
                &proto::RegisterProverBody { nonce: ns, stake: "1".into(), operator: vec![] },
            ),
            InvalidArgument,
            "minimum stake",
        ),
        case(
            "registered twice",
            RegisterProver,
            seal(
                &w.prover.owner,
                domain,
                &proto::RegisterProverBody {
                    nonce: npo,
                    stake: STAKE.to_string(),
                    operator: vec![],
                },
            ),
            AlreadyExists,
            "already a registered prover",
        ),
        case(
            "withdraw collateral",
            WithdrawStake,
            seal(
                &w.prover.owner,
                domain,
                &proto::WithdrawStakeBody { nonce: npo, amount: STAKE.to_string() },
            ),
            FailedPrecondition,
            "cannot withdraw 1000000000: its free stake is",
        ),
        case(
            "upload of no kind",
            PresignUpload,
            upload(proto::ArtifactKind::Unspecified, 1),
            InvalidArgument,
            "kind must be",
        ),
        case(
            "upload above the size limit",
            PresignUpload,
            upload(proto::ArtifactKind::Inputs, 1 << 40),
            InvalidArgument,
            "above the store's limit",
        ),
        case(
            "download of another request's artifact",
            PresignDownload,
            seal(
                r,
                domain,
                &proto::PresignArtifactDownloadBody {
                    nonce: nr,
                    artifact_id: w.not_masm.as_bytes().to_vec(),
                    request_id: w.open.as_bytes().to_vec(),
                },
            ),
            InvalidArgument,
            "is not part of request",
        ),
        // Bids.
        case(
            "missing request id",
            Bid,
            seal(
                &w.prover.operator,
                domain,
                &proto::BidBody { request_id: vec![], ..bid_body(np, &w.open, &w.prover, 3) },
            ),
            InvalidArgument,
            "`request_id` is required",
        ),
        case(
            "missing prover",
            Bid,
            seal(
                &w.prover.operator,
                domain,
                &proto::BidBody { prover: vec![], ..bid_body(np, &w.open, &w.prover, 3) },
            ),
            InvalidArgument,
            "`prover` is required",
        ),
        case(
            "bid above the maximum",
            Bid,
            seal(&w.prover.operator, domain, &bid_body(np, &w.open, &w.prover, 11)),
            FailedPrecondition,
            "above the request's maximum",
        ),
        case(
            "bid on no request",
            Bid,
            seal(
                &w.prover.operator,
                domain,
                &bid_body(np, &RequestId::from_slice(&[3; 32]).expect("id"), &w.prover, 3),
            ),
            NotFound,
            "no proof request",
        ),
        case(
            "bid on an assigned request",
            Bid,
            seal(&w.other.operator, domain, &bid_body(nq, &w.assigned, &w.other, 3)),
            FailedPrecondition,
            "Assigned",
        ),
        case(
            "bid off the whitelist",
            Bid,
            seal(&w.prover.operator, domain, &bid_body(np, &w.whitelisted, &w.prover, 3)),
            PermissionDenied,
            "whitelist",
        ),
        case(
            "bid without the stake for the collateral",
            Bid,
            seal(&w.poor.operator, domain, &bid_body(npp, &w.open, &w.poor, 3)),
            FailedPrecondition,
            "free stake",
        ),
        // Who may call.
        case(
            "bid for a prover one does not operate",
            Bid,
            seal(&w.stranger, domain, &bid_body(ns, &w.open, &w.prover, 3)),
            PermissionDenied,
            "may not act for this prover",
        ),
        case(
            "bid for a prover by another's operator",
            Bid,
            seal(&w.other.operator, domain, &bid_body(nq, &w.open, &w.prover, 3)),
            PermissionDenied,
            "may not act for this prover",
        ),
        case(
            "bid for an unregistered prover",
            Bid,
            seal(
                &w.stranger,
                domain,
                &proto::BidBody {
                    prover: w.stranger.address().as_bytes().to_vec(),
                    ..bid_body(ns, &w.open, &w.prover, 3)
                },
            ),
            NotFound,
            "not a registered prover",
        ),
        case(
            "cancel someone else's request",
            CancelRequest,
            cancel(&w.stranger, ns, &w.open),
            PermissionDenied,
            "cancel another account's request",
        ),
        case(
            "cancel an assigned request",
            CancelRequest,
            cancel(r, nr, &w.assigned),
            FailedPrecondition,
            "cannot be cancelled",
        ),
        case(
            "fulfil a request assigned to another prover",
            FulfillProof,
            fulfil(&w.other.operator, nq, &w.assigned, &w.other, junk_proof.clone()),
            PermissionDenied,
            "assigned to another prover",
        ),
        case(
            "fulfil for the assigned prover with another key",
            FulfillProof,
            fulfil(&w.stranger, ns, &w.assigned, &w.prover, junk_proof.clone()),
            PermissionDenied,
            "may not act for this prover",
        ),
        case(
            "fulfil an unassigned request",
            FulfillProof,
            fulfil(&w.prover.operator, np, &w.open, &w.prover, junk_proof.clone()),
            FailedPrecondition,
            "Requested",
        ),
        case(
            "fulfil without a proof",
            FulfillProof,
            fulfil(&w.prover.operator, np, &w.assigned, &w.prover, None),
            InvalidArgument,
            "missing field proof",
        ),
        case(
            "fulfil with a proof never uploaded",
            FulfillProof,
            fulfil(
                &w.prover.operator,
                np,
                &w.assigned,
                &w.prover,
                Some(proto::fulfill_proof_body::Proof::ProofArtifactId(
                    ArtifactId::of(b"nothing").as_bytes().to_vec(),
                )),
            ),
            NotFound,
            "upload it first",
        ),
        case(
            "fail a request assigned to another prover",
            FailFulfillment,
            seal(
                &w.other.operator,
                domain,
                &proto::FailFulfillmentBody {
                    nonce: nq,
                    request_id: w.assigned.as_bytes().to_vec(),
                    prover: w.other.address().as_bytes().to_vec(),
                    reason: "no".into(),
                },
            ),
            PermissionDenied,
            "assigned to another prover",
        ),
        case(
            "admin deposit without being the admin",
            AdminDeposit,
            seal(
                r,
                domain,
                &proto::AdminDepositBody {
                    nonce: nr,
                    to: r.address().as_bytes().to_vec(),
                    amount: "5".into(),
                },
            ),
            PermissionDenied,
            "admin deposits",
        ),
    ]
}

#[tokio::test]
async fn refused_calls_say_why_and_change_nothing() {
    bounded(async {
        let net = Net::start().await;
        let w = world(&net).await;
        let addresses = [
            w.requester.address(),
            w.prover.address(),
            w.prover.operator.address(),
            w.other.address(),
            w.other.operator.address(),
            w.stranger.address(),
            w.poor.address(),
            w.poor.operator.address(),
        ];
        let ids = [w.open, w.whitelisted, w.assigned];
        let before = observe(&net, &addresses, &ids).await;
        let cases = cases(&net, &w).await;
        let mut failures = Vec::new();
        for case in cases {
            let result = send(&net, case.rpc, case.message).await;
            match &result {
                Err(s) if s.code() == case.code && s.message().contains(case.says) => {}
                _ => failures.push(format!(
                    "{}: expected {:?} saying {:?}, got {result:?}",
                    case.what, case.code, case.says
                )),
            }
            if let Err(s) = &result {
                assert!(!s.message().is_empty(), "{}: a status without a message", case.what);
            }
            if observe(&net, &addresses, &ids).await != before {
                failures.push(format!("{}: the state changed", case.what));
            }
        }
        assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));

        // After all that, the requester's nonce is still the one to use, once.
        let nonce = net.nonce(&w.requester.address()).await;
        let replay =
            seal(&w.requester, &net.domain, &proto::FaucetBody { nonce, amount: "5".into() });
        net.faucet(&w.requester, 5).await;
        assert_status(net.rpc().faucet(replay).await, Code::FailedPrecondition, "nonce");
        net.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_oversize_message_is_refused_and_the_network_carries_on() {
    const LIMIT: usize = 16 << 10;
    bounded(async {
        let net = Net::start_with(|config| config.max_message_bytes = LIMIT).await;
        let info = net.rpc().get_network_info(proto::GetNetworkInfoRequest {}).await;
        assert_eq!(info.expect("GetNetworkInfo").into_inner().max_message_bytes, LIMIT as u64);
        let requester = net.funded().await;
        let program = net.program(&requester, &FIB, false).await;
        let before = observe(&net, &[requester.address()], &[]).await;

        let nonce = net.nonce(&requester.address()).await;
        let mut spec = program.spec(2);
        spec.whitelist = (0..LIMIT / 20).map(|i| Address::from_bytes([i as u8; 20])).collect();
        let huge_request = seal(&requester, &net.domain, &spec.to_body(nonce));
        let huge_proof = seal(
            &requester,
            &net.domain,
            &proto::FulfillProofBody {
                nonce,
                request_id: vec![1; 32],
                prover: requester.address().as_bytes().to_vec(),
                proof: Some(proto::fulfill_proof_body::Proof::ProofBytes(vec![0; 2 * LIMIT])),
            },
        );
        for (what, rpc, message) in
            [("request", Rpc::RequestProof, huge_request), ("proof", Rpc::FulfillProof, huge_proof)]
        {
            let result = send(&net, rpc, message).await;
            // tonic refuses a message over the server's decoding limit with OUT_OF_RANGE.
            assert_status(result, Code::OutOfRange, "message length too large");
            assert_eq!(observe(&net, &[requester.address()], &[]).await, before, "{what}");
        }
        // The connection and the network still serve.
        net.faucet(&requester, 5).await;
        net.stop().await;
    })
    .await;
}
