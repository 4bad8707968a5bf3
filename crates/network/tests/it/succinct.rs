//! The Succinct-API facade (`network.ProverNetwork`, `artifact.ArtifactStore`) on the network's
//! gRPC port, driven as SP1's SDK and a Succinct-protocol node drive it: EIP-191 signed bodies,
//! artifact slots filled by HTTP PUT of `zstd(bincode(…))`, statuses polled, and a Miden request
//! taken from registration to a downloaded proof. Then hostile input: each refused with a
//! definite code and the market unchanged.

use prost::Message;
use provernet_network::SuccinctApiConfig;
use provernet_types::{
    Address, RequestId, Signer,
    succinct::{
        self, CREATE_ARTIFACT_MESSAGE, SignedBody,
        proto::{
            artifact::{
                ArtifactType, CreateArtifactRequest, CreateArtifactResponse,
                artifact_store_client::ArtifactStoreClient,
            },
            network::prover_network_client::ProverNetworkClient,
            types::*,
        },
    },
};
use provernet_zkvm::{MidenBackend, ZkVm};
use tonic::{Code, transport::Channel};

use crate::harness::{DEFAULT_SAMPLE, MIDEN, Net, assert_status, bounded, now_secs};

/// A network with the Succinct API on.
async fn start() -> Net {
    Net::start_with(|c| c.succinct = Some(SuccinctApiConfig::for_network(&c.network_id))).await
}

/// A Succinct-API client of `net`, as the SDK holds one: both services on one channel.
struct Sdk {
    network: ProverNetworkClient<Channel>,
    artifacts: ArtifactStoreClient<Channel>,
    http: reqwest::Client,
}

impl Sdk {
    async fn connect(net: &Net) -> Self {
        let channel = Channel::from_shared(format!("http://{}", net.handle.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            network: ProverNetworkClient::new(channel.clone()).max_decoding_message_size(64 << 20),
            artifacts: ArtifactStoreClient::new(channel),
            http: reqwest::Client::new(),
        }
    }

    async fn nonce(&self, who: &Signer) -> u64 {
        let request = GetNonceRequest { address: who.address().as_bytes().to_vec() };
        self.network.clone().get_nonce(request).await.unwrap().into_inner().nonce
    }

    /// CreateArtifact signed by `who`, with `v` of the signature as given by `v`.
    async fn create_artifact(
        &self,
        who: &Signer,
        kind: ArtifactType,
        v: impl FnOnce(u8) -> u8,
    ) -> Result<CreateArtifactResponse, tonic::Status> {
        let mut signature = succinct::sign_message(who, CREATE_ARTIFACT_MESSAGE);
        signature[64] = v(signature[64]);
        let request = CreateArtifactRequest { signature, artifact_type: kind as i32 };
        Ok(self.artifacts.clone().create_artifact(request).await?.into_inner())
    }

    /// CreateArtifact as the SDK signs it (v offset twice), then PUT `zstd(item)`.
    async fn upload(&self, who: &Signer, kind: ArtifactType, bincode_item: &[u8]) -> String {
        let created = self.create_artifact(who, kind, |v| v + 27).await.unwrap();
        let packed = zstd::encode_all(bincode_item, 3).unwrap();
        let put = self.http.put(&created.artifact_presigned_url).body(packed).send().await.unwrap();
        assert!(put.status().is_success(), "PUT: {}", put.status());
        created.artifact_uri
    }

    async fn get(&self, url: &str) -> Vec<u8> {
        let response = self.http.get(url).send().await.unwrap();
        assert!(response.status().is_success(), "GET {url}: {}", response.status());
        response.bytes().await.unwrap().to_vec()
    }

    async fn params(&self) -> GetProofRequestParamsResponse {
        let request = GetProofRequestParamsRequest { mode: ProofMode::Core as i32 };
        self.network.clone().get_proof_request_params(request).await.unwrap().into_inner()
    }

    async fn status(&self, id: &[u8]) -> GetProofRequestStatusResponse {
        let request = GetProofRequestStatusRequest { request_id: id.to_vec() };
        self.network.clone().get_proof_request_status(request).await.unwrap().into_inner()
    }
}

fn bincode_bytes(bytes: &[u8]) -> Vec<u8> {
    bincode::serialize(bytes).unwrap()
}

/// `bincode(SP1Stdin)` of one slice.
fn stdin_of(slice: &[u8]) -> Vec<u8> {
    bincode::serialize(&(vec![slice.to_vec()], 0u64, 0u64)).unwrap()
}

/// A RequestProof body for `vk_hash` as the SDK fills it from `params`.
fn request_body(
    nonce: u64,
    vk_hash: &[u8],
    stdin_uri: &str,
    params: &GetProofRequestParamsResponse,
) -> RequestProofRequestBody {
    RequestProofRequestBody {
        nonce,
        vk_hash: vk_hash.to_vec(),
        version: MIDEN.into(),
        mode: ProofMode::Core as i32,
        strategy: FulfillmentStrategy::Auction as i32,
        stdin_uri: stdin_uri.into(),
        deadline: now_secs() + 60,
        cycle_limit: 1 << 16,
        gas_limit: 1 << 16,
        min_auction_period: 0,
        whitelist: Vec::new(),
        domain: params.domain.clone(),
        auctioneer: params.auctioneer.clone(),
        executor: params.executor.clone(),
        verifier: params.verifier.clone(),
        public_values_hash: None,
        base_fee: params.base_fee.clone(),
        max_price_per_pgu: "10".into(),
        variant: TransactionVariant::RequestVariant as i32,
        treasury: params.treasury.clone(),
        stdin_private: false,
    }
}

/// Registers the default sample through CreateProgram; returns its vk hash (the program id).
async fn register(sdk: &Sdk, requester: &Signer) -> Vec<u8> {
    let source = DEFAULT_SAMPLE.source.as_bytes();
    let vk_hash = MidenBackend::new().program_id(source).unwrap().as_bytes().to_vec();
    let uri = sdk.upload(requester, ArtifactType::Program, &bincode_bytes(source)).await;
    let body = CreateProgramRequestBody {
        nonce: sdk.nonce(requester).await,
        vk_hash: vk_hash.clone(),
        vk: Vec::new(),
        program_uri: uri,
    };
    let (signature, body) = succinct::seal(requester, &body);
    let request = CreateProgramRequest { format: MessageFormat::Binary as i32, signature, body };
    sdk.network.clone().create_program(request).await.unwrap();
    vk_hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miden_request_goes_from_registration_to_a_downloaded_proof() {
    bounded(async {
        let net = start().await;
        let sdk = Sdk::connect(&net).await;
        let requester = net.funded().await;
        let prover = net.prover().await;
        let source = DEFAULT_SAMPLE.source.as_bytes();
        let vk_hash = MidenBackend::new().program_id(source).unwrap().as_bytes().to_vec();

        let lookup = GetProgramRequest { vk_hash: vk_hash.clone() };
        let missing = sdk.network.clone().get_program(lookup.clone()).await.unwrap_err();
        assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
        register(&sdk, &requester).await;
        let program = sdk.network.clone().get_program(lookup).await.unwrap().into_inner();
        let program = program.program.unwrap();
        assert_eq!(program.owner, requester.address().as_bytes());
        assert_eq!(sdk.get(&program.program_uri).await, bincode_bytes(source));

        let params = sdk.params().await;
        assert_eq!(params.domain, succinct::network_domain(1));
        for address in [&params.auctioneer, &params.executor, &params.verifier, &params.treasury] {
            assert_eq!(address.len(), 20);
        }
        assert!(
            params.base_fee.parse::<u64>().is_ok()
                && params.max_price_per_pgu.parse::<u64>().is_ok()
        );

        let inputs = DEFAULT_SAMPLE.inputs.as_bytes();
        let stdin_uri = sdk.upload(&requester, ArtifactType::Stdin, &stdin_of(inputs)).await;
        let body = request_body(sdk.nonce(&requester).await, &vk_hash, &stdin_uri, &params);
        let (signature, bytes) = succinct::seal(&requester, &body);
        let response = sdk
            .network
            .clone()
            .request_proof(RequestProofRequest {
                format: MessageFormat::Binary as i32,
                signature,
                body: bytes.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let id = RequestId::derive(&requester.address(), &bytes);
        assert_eq!(response.body.unwrap().request_id, id.as_bytes());
        assert_eq!(response.tx_hash.len(), 32);
        let status = sdk.status(id.as_bytes()).await;
        assert_eq!(status.deadline, body.deadline);
        assert_eq!(status.fulfillment_status, FulfillmentStatus::Requested as i32);

        net.wait_until(&id, "executed", |r| r.pgus > 0).await;
        let stored = net.get(&id).await;
        assert!(stored.body.unwrap().min_auction_period >= 2, "the network's minimum auction");

        // A Succinct-protocol node: find it, read its artifacts, bid.
        let owner = prover.address();
        let owner_of = sdk
            .network
            .clone()
            .get_owner(GetOwnerRequest { address: prover.operator.address().as_bytes().to_vec() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(owner_of.owner, owner.as_bytes());
        let open = GetFilteredProofRequestsRequest {
            version: Some(MIDEN.into()),
            fulfillment_status: Some(FulfillmentStatus::Requested as i32),
            minimum_deadline: Some(now_secs()),
            not_bid_by: Some(owner.as_bytes().to_vec()),
            limit: Some(10),
            ..Default::default()
        };
        let found = sdk.network.clone().get_filtered_proof_requests(open.clone()).await.unwrap();
        let found = found.into_inner().requests;
        let listed = found.iter().find(|r| r.request_id == id.as_bytes()).expect("listed");
        assert_eq!(listed.execution_status, ExecutionStatus::Executed as i32);
        assert_eq!(sdk.get(&listed.stdin_public_uri).await, stdin_of(inputs));
        assert_eq!(sdk.get(&listed.program_public_uri).await, bincode_bytes(source));

        let bid = BidRequestBody {
            nonce: sdk.nonce(&prover.operator).await,
            request_id: id.as_bytes().to_vec(),
            amount: "7".into(),
            domain: params.domain.clone(),
            prover: owner.as_bytes().to_vec(),
            variant: TransactionVariant::BidVariant as i32,
        };
        let (signature, body) = succinct::seal(&prover.operator, &bid);
        sdk.network
            .clone()
            .bid(BidRequest { format: MessageFormat::Binary as i32, signature, body })
            .await
            .unwrap();
        let again = sdk.network.clone().get_filtered_proof_requests(open).await.unwrap();
        assert!(again.into_inner().requests.iter().all(|r| r.request_id != id.as_bytes()));
        // Pages past the depth limit are refused, naming the way around it.
        let deep = GetFilteredProofRequestsRequest {
            page: Some(1_000),
            limit: Some(1_000),
            ..Default::default()
        };
        assert_status(
            sdk.network.clone().get_filtered_proof_requests(deep).await,
            Code::InvalidArgument,
            "from/to",
        );
        net.wait_until(&id, "assigned", |r| !r.assigned_prover.is_empty()).await;

        // It proves and fulfils through the facade; the requester downloads the proof.
        let proven = crate::harness::Program {
            program_id: vk_hash.clone(),
            zkvm_version: MIDEN.into(),
            artifact_id: provernet_types::ArtifactId::of(source),
            source: source.to_vec(),
            inputs: inputs.to_vec(),
            inputs_id: provernet_types::ArtifactId::of(inputs),
            private: false,
        };
        let bundle = proven.prove(inputs.to_vec()).await;
        let fulfil = FulfillProofRequestBody {
            nonce: sdk.nonce(&prover.operator).await,
            request_id: id.as_bytes().to_vec(),
            proof: bundle.clone(),
            reserved_metadata: None,
            domain: params.domain.clone(),
            variant: TransactionVariant::FulfillVariant as i32,
        };
        let (signature, body) = succinct::seal(&prover.operator, &fulfil);
        sdk.network
            .clone()
            .fulfill_proof(FulfillProofRequest {
                format: MessageFormat::Binary as i32,
                signature,
                body,
            })
            .await
            .unwrap();
        net.wait_until(&id, "fulfilled", |r| !r.proof_artifact_id.is_empty()).await;
        let status = sdk.status(id.as_bytes()).await;
        assert_eq!(status.fulfillment_status, FulfillmentStatus::Fulfilled as i32);
        assert_eq!(status.execution_status, ExecutionStatus::Executed as i32);
        assert_eq!(sdk.get(&status.proof_uri.unwrap()).await, bundle);
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_proof_and_a_given_up_request_read_as_a_succinct_node_needs() {
    bounded(async {
        let net = start().await;
        let sdk = Sdk::connect(&net).await;
        let crate::scenarios::Won { prover, program, id, mut events, .. } =
            crate::scenarios::won(&net, &provernet_zkvm::samples::FIB, false).await;
        let details = |id: RequestId| {
            let mut client = sdk.network.clone();
            async move {
                let request = GetProofRequestDetailsRequest { request_id: id.as_bytes().to_vec() };
                client
                    .get_proof_request_details(request)
                    .await
                    .unwrap()
                    .into_inner()
                    .request
                    .unwrap()
            }
        };
        assert_eq!(details(id).await.error, 0, "no verdict yet");

        // A proof that does not verify: the request stays assigned, and its record says why.
        let bundle = program.prove(program.inputs.clone()).await;
        let proof_len = provernet_zkvm::ProofBundle::decode(&bundle).unwrap().proof.len();
        let mut flipped = bundle.clone();
        let at = bundle.len() - proof_len / 2;
        flipped[at] ^= 0x01;
        net.fulfill(&prover, &id, flipped).await.expect("submitted for verification");
        let reason = events.verdict(&id).await.expect_err("rejected");
        let shown = details(id).await;
        assert_eq!(shown.fulfillment_status, FulfillmentStatus::Assigned as i32);
        assert_eq!(shown.error, ProofRequestError::VerificationFailure as i32);
        assert_eq!(shown.error_trace.as_deref(), Some(reason.as_bytes()));

        // The prover gives up with a trace: it becomes the request's close reason.
        let give_up = FailFulfillmentRequestBody {
            nonce: sdk.nonce(&prover.operator).await,
            request_id: id.as_bytes().to_vec(),
            error: Some(ProofRequestError::ProvingFailure as i32),
            error_trace: Some("out of memory at 2^20 rows".as_bytes().to_vec()),
        };
        let (signature, body) = succinct::seal(&prover.operator, &give_up);
        let format = MessageFormat::Binary as i32;
        sdk.network
            .clone()
            .fail_fulfillment(FailFulfillmentRequest { format, signature, body })
            .await
            .unwrap();
        let closed = net.get(&id).await;
        assert!(
            closed.unfulfillable_reason.contains("PROVING_FAILURE")
                && closed.unfulfillable_reason.contains("out of memory at 2^20 rows"),
            "{}",
            closed.unfulfillable_reason
        );
        let shown = details(id).await;
        assert_eq!(shown.fulfillment_status, FulfillmentStatus::Unfulfillable as i32);
        assert_eq!(shown.error, 0, "closed: no longer a pending verdict");
        net.stop().await;
    })
    .await;
}

/// What a refused call must leave alone: the signer's nonce and balance.
async fn account_of(net: &Net, who: &Address) -> (u64, u128) {
    (net.nonce(who).await, net.balance(who).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_are_refused_with_a_definite_code_and_change_nothing() {
    bounded(async {
        let net = start().await;
        let sdk = Sdk::connect(&net).await;
        let requester = net.funded().await;
        let vk_hash = register(&sdk, &requester).await;
        let params = sdk.params().await;
        let stdin_uri = sdk
            .upload(&requester, ArtifactType::Stdin, &stdin_of(DEFAULT_SAMPLE.inputs.as_bytes()))
            .await;
        let before = account_of(&net, &requester.address()).await;
        let nonce = before.0;
        let send = |body: RequestProofRequestBody, signer: &Signer, tamper: bool| {
            let (signature, mut bytes) = succinct::seal(signer, &body);
            if tamper {
                // max_price_per_pgu (field 18) "10" becomes "11": still a valid body, but
                // the signature now recovers another address.
                let at = bytes.windows(5).position(|w| w == [0x92, 0x01, 2, b'1', b'0']).unwrap();
                bytes[at + 4] = b'1';
            }
            let mut client = sdk.network.clone();
            async move {
                client
                    .request_proof(RequestProofRequest {
                        format: MessageFormat::Binary as i32,
                        signature,
                        body: bytes,
                    })
                    .await
                    .unwrap_err()
            }
        };
        let good = request_body(nonce, &vk_hash, &stdin_uri, &params);
        let cases: Vec<(&str, RequestProofRequestBody, bool, Code, &str)> = vec![
            (
                "another network's domain",
                RequestProofRequestBody {
                    domain: succinct::network_domain(5).to_vec(),
                    ..good.clone()
                },
                false,
                Code::PermissionDenied,
                "domain",
            ),
            (
                "a used nonce",
                RequestProofRequestBody { nonce: nonce.wrapping_sub(1), ..good.clone() },
                false,
                Code::FailedPrecondition,
                "nonce",
            ),
            ("a tampered body", good.clone(), true, Code::FailedPrecondition, "nonce"),
            (
                "GROTH16",
                RequestProofRequestBody { mode: ProofMode::Groth16 as i32, ..good.clone() },
                false,
                Code::InvalidArgument,
                "gnark",
            ),
            (
                "a short vk hash",
                RequestProofRequestBody { vk_hash: vec![1; 31], ..good.clone() },
                false,
                Code::InvalidArgument,
                "vk_hash must be 32 bytes",
            ),
            (
                "an unknown program",
                RequestProofRequestBody { vk_hash: vec![1; 32], ..good.clone() },
                false,
                Code::NotFound,
                "CreateProgram",
            ),
            (
                "an unknown stdin",
                RequestProofRequestBody { stdin_uri: "s3://elsewhere/x".into(), ..good.clone() },
                false,
                Code::NotFound,
                "does not exist",
            ),
            (
                "another treasury",
                RequestProofRequestBody { treasury: vec![9; 20], ..good.clone() },
                false,
                Code::InvalidArgument,
                "treasury",
            ),
            (
                "a hosted strategy",
                RequestProofRequestBody {
                    strategy: FulfillmentStrategy::Hosted as i32,
                    ..good.clone()
                },
                false,
                Code::InvalidArgument,
                "auctions only",
            ),
            (
                "a price that is not a number",
                RequestProofRequestBody { max_price_per_pgu: "ten".into(), ..good.clone() },
                false,
                Code::InvalidArgument,
                "max_price_per_pgu",
            ),
            (
                "a deadline in the past",
                RequestProofRequestBody { deadline: 1, ..good.clone() },
                false,
                Code::InvalidArgument,
                "deadline",
            ),
        ];
        for (what, body, tamper, code, says) in cases {
            let e = send(body, &requester, tamper).await;
            assert_eq!(e.code(), code, "{what}: {e:?}");
            assert!(e.message().contains(says), "{what}: {:?} does not say {says:?}", e.message());
            assert_eq!(account_of(&net, &requester.address()).await, before, "{what}: changed");
        }
        // An unfunded signer is refused for its funds, before its stdin is stored.
        let stranger = Signer::random();
        let e = send(RequestProofRequestBody { nonce: 0, ..good.clone() }, &stranger, false).await;
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("spendable"), "{e:?}");

        // Malformed envelopes.
        let mut client = sdk.network.clone();
        let (signature, _) = succinct::seal(&requester, &good);
        for (what, signature, body, says) in [
            ("no body", signature.clone(), Vec::new(), "missing"),
            ("a body that is not a message", signature.clone(), vec![0xff; 7], "decode"),
            ("a short signature", signature[..64].to_vec(), good.encode_to_vec(), "65"),
        ] {
            let e = client
                .request_proof(RequestProofRequest { format: 1, signature, body })
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
            assert!(e.message().contains(says), "{what}: {:?}", e.message());
        }

        // CreateArtifact: v 54/55 is the SDK's; anything else is refused.
        let e = sdk.create_artifact(&requester, ArtifactType::Stdin, |_| 56).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

        // Uploads: a wrong token, a second fill, bytes that are not zstd.
        let created =
            sdk.create_artifact(&requester, ArtifactType::Stdin, |v| v + 27).await.unwrap();
        let put = |url: String, body: Vec<u8>| {
            let http = sdk.http.clone();
            async move { http.put(url).body(body).send().await.unwrap().status().as_u16() }
        };
        let packed = zstd::encode_all(&stdin_of(b"{}")[..], 3).unwrap();
        assert_eq!(put(format!("{}?token=00", created.artifact_uri), packed.clone()).await, 403);
        let unknown = format!("{}0", created.artifact_uri);
        // Refused before the body is read: the answer is 404, or, when the server has closed
        // the connection before the client finished sending, a cut-off send. On a client of
        // its own: the connection the server closes must not go back to the SDK's pool.
        match reqwest::Client::new().put(unknown).body(vec![0u8; 1 << 20]).send().await {
            Ok(response) => assert_eq!(response.status().as_u16(), 404),
            Err(e) => assert!(e.is_request(), "{e:?}"),
        }
        assert_eq!(put(created.artifact_presigned_url.clone(), b"not zstd".to_vec()).await, 422);
        assert_eq!(put(created.artifact_presigned_url.clone(), packed.clone()).await, 200);
        assert_eq!(put(created.artifact_presigned_url.clone(), packed).await, 409);

        // An RPC of the public API that this network does not serve.
        let channel = Channel::from_shared(format!("http://{}", net.handle.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();
        let e = grpc
            .unary(
                tonic::Request::new(GetNonceRequest::default()),
                tonic::codegen::http::uri::PathAndQuery::from_static(
                    "/network.ProverNetwork/GetStakerStats",
                ),
                tonic_prost::ProstCodec::<GetNonceRequest, GetNonceResponse>::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unimplemented, "{e:?}");

        assert_eq!(account_of(&net, &requester.address()).await, before);
        net.stop().await;
    })
    .await;
}

/// The trait is implemented for every signed body the facade opens.
#[test]
fn bodies_name_their_domain_where_they_have_one() {
    let bid = BidRequestBody { domain: vec![1; 32], ..Default::default() };
    assert_eq!(bid.domain(), Some(&[1; 32][..]));
    assert_eq!(CancelRequestRequestBody::default().domain(), None);
}

/// SP1 through the facade (feature `sp1`; named `sp1::…` so that CI runs it alone: SP1's setup
/// takes both cores): the SDK's vk hash, version and stdin mapped onto the market, the stdin
/// served back to nodes as the SDK wrote it, and a malformed SP1 proof refused by FulfillProof
/// without touching the request.
#[cfg(feature = "sp1")]
mod sp1 {
    use provernet_zkvm::sp1::{Sp1Backend, samples};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_sp1_request_is_registered_requested_and_a_bad_proof_refused() {
        tokio::time::timeout(std::time::Duration::from_secs(600), async {
            let net = start().await;
            let sdk = Sdk::connect(&net).await;
            let requester = net.funded().await;
            let prover = net.prover().await;
            let elf = samples::FIB_ELF;
            let vk_hash = tokio::task::spawn_blocking(|| Sp1Backend::new().sdk_program_hash(elf))
                .await
                .unwrap()
                .unwrap();
            let program_id = Sp1Backend::new().program_id(elf).unwrap();
            assert_ne!(vk_hash, program_id.as_bytes(), "the SDK names SP1 programs otherwise");

            let uri = sdk.upload(&requester, ArtifactType::Program, &bincode_bytes(elf)).await;
            let body = CreateProgramRequestBody {
                nonce: sdk.nonce(&requester).await,
                vk_hash: vk_hash.clone(),
                vk: Vec::new(),
                program_uri: uri,
            };
            let (signature, body) = succinct::seal(&requester, &body);
            sdk.network
                .clone()
                .create_program(CreateProgramRequest { format: 1, signature, body })
                .await
                .unwrap();
            let found = sdk
                .network
                .clone()
                .get_program(GetProgramRequest { vk_hash: vk_hash.clone() })
                .await
                .unwrap();
            assert_eq!(found.into_inner().program.unwrap().vk_hash, vk_hash);

            let n20 = 20u32.to_le_bytes();
            let stdin_uri = sdk.upload(&requester, ArtifactType::Stdin, &stdin_of(&n20)).await;
            let params = sdk.params().await;
            let body = RequestProofRequestBody {
                version: "sp1-v6.1.0".into(),
                gas_limit: 1_000_000,
                ..request_body(sdk.nonce(&requester).await, &vk_hash, &stdin_uri, &params)
            };
            let (signature, bytes) = succinct::seal(&requester, &body);
            sdk.network
                .clone()
                .request_proof(RequestProofRequest { format: 1, signature, body: bytes.clone() })
                .await
                .unwrap();
            let id = RequestId::derive(&requester.address(), &bytes);
            let executed = net.wait_until(&id, "executed", |r| r.pgus > 0).await;
            assert_eq!(executed.body.unwrap().zkvm_version, "sp1-v6.1");
            let details = sdk
                .network
                .clone()
                .get_proof_request_details(GetProofRequestDetailsRequest {
                    request_id: id.as_bytes().to_vec(),
                })
                .await
                .unwrap()
                .into_inner()
                .request
                .unwrap();
            assert_eq!((details.version.as_str(), &details.vk_hash), ("sp1-v6.1.0", &vk_hash));
            assert_eq!(sdk.get(&details.stdin_public_uri).await, stdin_of(&n20));
            assert_eq!(sdk.get(&details.program_public_uri).await, bincode_bytes(elf));

            net.bid(&prover, &id, 7).await.unwrap();
            net.wait_until(&id, "assigned", |r| !r.assigned_prover.is_empty()).await;
            let operator = prover.operator.address();
            let before = account_of(&net, &operator).await;
            let fulfil = FulfillProofRequestBody {
                nonce: before.0,
                request_id: id.as_bytes().to_vec(),
                proof: vec![7; 1000],
                reserved_metadata: None,
                domain: params.domain.clone(),
                variant: TransactionVariant::FulfillVariant as i32,
            };
            let (signature, body) = succinct::seal(&prover.operator, &fulfil);
            let e = sdk
                .network
                .clone()
                .fulfill_proof(FulfillProofRequest { format: 1, signature, body })
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            assert!(e.message().contains("SP1ProofWithPublicValues"), "{e:?}");
            assert_eq!(account_of(&net, &operator).await, before);
            assert!(net.get(&id).await.pending_proof_artifact_id.is_empty());
            net.stop().await;
        })
        .await
        .expect("the test did not finish in time");
    }
}
