//! The Succinct-API facade: `network.ProverNetwork` and `artifact.ArtifactStore` as SP1's SDK
//! and Succinct-protocol nodes call them, served on the network's gRPC port beside
//! `provernet.v1`, driving the same market.
//!
//! What maps to what:
//! - accounts and nonces are the market's own (one nonce per account, whichever API it uses);
//! - a program is looked up by its SDK hash (`vk.hash_bytes()` for SP1, the program id for
//!   Miden); CreateProgram stores it under the name `vk-` and the hash's first 30 bytes;
//! - version `sp1-v6.1.0` is our `sp1-v6.1`; other versions are the same in both APIs;
//! - artifacts are slots (see [`slots`]) that CreateProgram and RequestProof name by URI;
//! - a request asks for at least [`SuccinctApiConfig::min_auction_period`] of auction (the SDK
//!   asks for 0);
//! - fulfilment statuses: Requested 1, Assigned 2, Fulfilled 3, Unfulfillable and Cancelled 4;
//!   execution statuses: Unexecuted 1, Executed 2, Unexecutable 3;
//! - request, bid and fulfilment bodies must name this network's EIP-712 domain.
//!
//! Left out: GROTH16/PLONK (INVALID_ARGUMENT: no gnark wrapper here), private stdin for
//! Succinct-protocol nodes (they read inputs by unauthenticated URL), proof composition, and
//! every RPC of the public service not in `crates/types/proto/succinct` (UNIMPLEMENTED).

/// The artifacts' byte formats, shared with the node.
pub use provernet_artifacts::succinct as formats;
pub mod slots;

use std::sync::Arc;

use provernet_types::{
    Address, Amount, RequestId, RequestSpec, field,
    succinct::{
        self, OpenError, SignedBody,
        proto::{
            artifact::{self as aproto, artifact_store_server::ArtifactStore},
            network::prover_network_server::ProverNetwork,
            types as sproto,
        },
    },
};
use tonic::{Request, Response, Status};

use self::slots::{Filled, SlotKind, Slots};
use super::{NetworkService, NetworkState, convert, rpc::ProofSource};
use crate::{
    SuccinctApiConfig,
    market::{
        Execution, Market, Program, Request as MarketRequest, RequestQuery, Status as RequestStatus,
    },
};

/// Most requests one GetFilteredProofRequests call returns.
const MAX_FILTER_LIMIT: u32 = 1_000;

/// How deep GetFilteredProofRequests pages (page × limit) may reach: a page is found by walking
/// the index past every request before it, so deeper ones would cost the network what they
/// skip. The `from`/`to` filters reach any part of the history instead.
const MAX_FILTER_DEPTH: usize = 100_000;
/// The longest FailFulfillment trace kept as the close reason, characters.
const MAX_FAIL_TRACE_CHARS: usize = 2_048;

/// The facade over a [`NetworkState`]: both services (they share the slots).
#[derive(Clone)]
pub struct SuccinctService {
    native: NetworkService,
    state: Arc<NetworkState>,
    config: Arc<SuccinctApiConfig>,
    domain: [u8; 32],
    slots: Arc<Slots>,
}

impl SuccinctService {
    /// The facade over `state`, configured by `config`.
    pub fn new(state: Arc<NetworkState>, config: SuccinctApiConfig) -> Self {
        let slots = Arc::new(Slots::new(
            state.config.presign_ttl,
            config.max_slots_per_account,
            config.max_slot_bytes,
        ));
        Self {
            native: NetworkService::new(state.clone()),
            domain: succinct::network_domain(config.chain_id),
            config: Arc::new(config),
            state,
            slots,
        }
    }

    /// The HTTP routes of its artifacts (uploads, program, stdin and proof downloads), to serve
    /// beside the ArtifactStore's.
    pub fn routes(&self) -> axum::Router {
        slots::router(self.state.clone(), self.slots.clone())
    }

    /// Opens a signed body: signature, then the domain where the body names one, then the
    /// account's rate limit. The nonce is the market's to check.
    fn open<B: SignedBody>(&self, signature: &[u8], body: &[u8]) -> Result<(Address, B), Status> {
        let (signer, body) = succinct::open::<B>(signature, body).map_err(open_status)?;
        if let Some(domain) = body.domain()
            && domain != self.domain
        {
            return Err(Status::permission_denied(format!(
                "domain: the body is signed for domain 0x{}, this network's is 0x{} (GetProofRequestParams)",
                hex::encode(domain),
                hex::encode(self.domain)
            )));
        }
        self.state.limits.admit_call(&signer)?;
        Ok((signer, body))
    }

    fn base_url(&self) -> &str {
        &self.state.config.artifact_base_url
    }

    /// A request as the Succinct API shows it.
    fn proof_request(&self, r: &MarketRequest, program: Option<&Program>) -> sproto::ProofRequest {
        let base = self.base_url();
        let program_url = slots::program_url(base, &r.spec.program_artifact_id);
        let stdin_url = slots::stdin_url(base, &r.id);
        let vk_hash = program
            .map(|p| p.sdk_hash.clone().unwrap_or_else(|| p.program_id.clone()))
            .unwrap_or_else(|| r.spec.program_id.clone());
        let (fulfillment, execution) = statuses(r);
        sproto::ProofRequest {
            request_id: r.id.as_bytes().to_vec(),
            vk_hash,
            version: formats::version_to_theirs(&r.spec.zkvm_version),
            mode: mode_of(&r.spec.proof_mode) as i32,
            strategy: sproto::FulfillmentStrategy::Auction as i32,
            program_uri: program_url.clone(),
            stdin_uri: stdin_url.clone(),
            deadline: r.spec.deadline,
            cycle_limit: r.spec.gas_limit,
            gas_price: r
                .assignment
                .as_ref()
                .and_then(|a| u64::try_from(a.price_per_pgu.get()).ok()),
            fulfillment_status: fulfillment as i32,
            execution_status: execution as i32,
            requester: r.requester.as_bytes().to_vec(),
            fulfiller: r.assignment.as_ref().map(|a| a.prover.as_bytes().to_vec()),
            program_name: program.map(|p| p.name.clone()),
            created_at: r.created_at,
            updated_at: r.closed_at.unwrap_or(r.created_at),
            fulfilled_at: (r.status == RequestStatus::Fulfilled).then_some(r.closed_at).flatten(),
            tx_hash: r.id.as_bytes().to_vec(),
            public_values_hash: None,
            deduction_amount: (r.status == RequestStatus::Fulfilled).then(|| r.paid.to_string()),
            gas_limit: r.spec.gas_limit,
            gas_used: r.pgus(),
            program_public_uri: program_url,
            stdin_public_uri: if r.spec.inputs_private { String::new() } else { stdin_url },
            min_auction_period: r.spec.min_auction_period,
            whitelist: r.spec.whitelist.iter().map(|a| a.as_bytes().to_vec()).collect(),
            base_fee: Some(r.spec.base_fee.to_string()),
            max_price_per_pgu: Some(r.spec.max_price_per_pgu.to_string()),
            is_canceled: r.status == RequestStatus::Cancelled,
            stdin_private: r.spec.inputs_private,
            // A proof the verifier rejected leaves the request assigned until its deadline: the
            // prover reads the verdict here (the API has no field of its own for it).
            error: match (&r.rejected_proof, &r.pending_proof, r.status) {
                (Some(_), None, RequestStatus::Assigned) => {
                    sproto::ProofRequestError::VerificationFailure as i32
                }
                _ => 0,
            },
            error_trace: match (&r.execution, &r.rejected_proof, &r.pending_proof) {
                (Execution::Unexecutable { reason }, _, _) => Some(reason.clone().into_bytes()),
                (_, Some(reason), None) if r.status == RequestStatus::Assigned => {
                    Some(reason.clone().into_bytes())
                }
                _ => r.close_reason.clone().map(String::into_bytes),
            },
            ..Default::default()
        }
    }
}

/// A request and the prover it is assigned to (FulfillProof and FailFulfillment name none:
/// the Succinct API leaves it to the network).
fn assigned<'m>(
    market: &'m Market,
    id: &RequestId,
) -> Result<(&'m MarketRequest, Address), Status> {
    let r =
        market.request(id).ok_or_else(|| Status::not_found(format!("no proof request {id}")))?;
    let prover = r.assignment.as_ref().map(|a| a.prover).ok_or_else(|| {
        Status::failed_precondition(format!("proof request {id} is not assigned"))
    })?;
    Ok((r, prover))
}

/// The fulfilment and execution statuses of a request, as the Succinct API numbers them.
fn statuses(r: &MarketRequest) -> (sproto::FulfillmentStatus, sproto::ExecutionStatus) {
    (fulfillment_status(r.status), execution_status(&r.execution))
}

/// A request status as the Succinct API's fulfilment status (it has no "cancelled").
fn fulfillment_status(status: RequestStatus) -> sproto::FulfillmentStatus {
    use sproto::FulfillmentStatus as F;
    match status {
        RequestStatus::Requested => F::Requested,
        RequestStatus::Assigned => F::Assigned,
        RequestStatus::Fulfilled => F::Fulfilled,
        RequestStatus::Unfulfillable | RequestStatus::Cancelled => F::Unfulfillable,
    }
}

/// An execution as the Succinct API numbers it.
fn execution_status(execution: &Execution) -> sproto::ExecutionStatus {
    use sproto::ExecutionStatus as E;
    match execution {
        Execution::Unexecuted => E::Unexecuted,
        Execution::Executed { .. } => E::Executed,
        Execution::Unexecutable { .. } => E::Unexecutable,
    }
}

/// Our proof mode name for a Succinct mode, or why it is refused.
fn mode_name(mode: i32) -> Result<&'static str, Status> {
    match sproto::ProofMode::try_from(mode) {
        Ok(sproto::ProofMode::Core) => Ok("core"),
        Ok(sproto::ProofMode::Compressed) => Ok("compressed"),
        Ok(m @ (sproto::ProofMode::Groth16 | sproto::ProofMode::Plonk)) => {
            Err(Status::invalid_argument(format!(
                "mode {}: this network does not wrap proofs for Ethereum (no gnark prover); ask for CORE or COMPRESSED",
                m.as_str_name()
            )))
        }
        _ => Err(Status::invalid_argument(format!(
            "mode {mode}: must be CORE (1) or COMPRESSED (2)"
        ))),
    }
}

/// The Succinct mode of one of our mode names (the default mode is a core proof).
fn mode_of(name: &str) -> sproto::ProofMode {
    match name {
        "compressed" => sproto::ProofMode::Compressed,
        "groth16" => sproto::ProofMode::Groth16,
        "plonk" => sproto::ProofMode::Plonk,
        _ => sproto::ProofMode::Core,
    }
}

fn open_status(e: OpenError) -> Status {
    Status::invalid_argument(e.to_string())
}

fn missing(field: &'static str) -> Status {
    Status::invalid_argument(format!("missing field {field}"))
}

/// A 32-byte hash field.
fn hash32(name: &'static str, bytes: &[u8]) -> Result<[u8; 32], Status> {
    bytes.try_into().map_err(|_| {
        Status::invalid_argument(format!("{name} must be 32 bytes, got {}", bytes.len()))
    })
}

/// A u64 decimal amount field.
fn amount(name: &'static str, text: &str) -> Result<Amount, Status> {
    Ok(field::amount(name, text)?)
}

/// The response hash of a signed call: `keccak256(signer ‖ body)`, the request id's rule.
fn tx_hash(signer: &Address, body: &[u8]) -> Vec<u8> {
    RequestId::derive(signer, body).as_bytes().to_vec()
}

/// An address as the Succinct API carries it (20 bytes).
fn bytes20(a: &Address) -> Vec<u8> {
    a.as_bytes().to_vec()
}

#[tonic::async_trait]
impl ArtifactStore for SuccinctService {
    async fn create_artifact(
        &self,
        request: Request<aproto::CreateArtifactRequest>,
    ) -> Result<Response<aproto::CreateArtifactResponse>, Status> {
        let request = request.into_inner();
        let signer =
            succinct::recover_message(succinct::CREATE_ARTIFACT_MESSAGE, &request.signature, true)
                .map_err(|e| Status::invalid_argument(format!("signature: {e}")))?;
        self.state.limits.admit_call(&signer)?;
        let kind = match aproto::ArtifactType::try_from(request.artifact_type) {
            Ok(aproto::ArtifactType::Program) => SlotKind::Program,
            Ok(aproto::ArtifactType::Stdin) => SlotKind::Stdin,
            Ok(aproto::ArtifactType::PrivateStdin) => SlotKind::PrivateStdin,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "artifact_type {}: this network takes PROGRAM (1), STDIN (2) and PRIVATE_STDIN (7)",
                    request.artifact_type
                )));
            }
        };
        let (uri, url) =
            self.slots.create(self.base_url(), signer, kind).map_err(|e| e.grpc_status())?;
        Ok(Response::new(aproto::CreateArtifactResponse {
            artifact_uri: uri,
            artifact_presigned_url: url,
        }))
    }
}

#[tonic::async_trait]
impl ProverNetwork for SuccinctService {
    async fn get_nonce(
        &self,
        request: Request<sproto::GetNonceRequest>,
    ) -> Result<Response<sproto::GetNonceResponse>, Status> {
        let address = field::address("address", &request.into_inner().address)?;
        let nonce = self.state.market().account(&address).nonce;
        Ok(Response::new(sproto::GetNonceResponse { nonce }))
    }

    async fn get_balance(
        &self,
        request: Request<sproto::GetBalanceRequest>,
    ) -> Result<Response<sproto::GetBalanceResponse>, Status> {
        let address = field::address("address", &request.into_inner().address)?;
        let balance = self.state.market().account(&address).balance;
        Ok(Response::new(sproto::GetBalanceResponse { amount: balance.to_string() }))
    }

    async fn get_owner(
        &self,
        request: Request<sproto::GetOwnerRequest>,
    ) -> Result<Response<sproto::GetOwnerResponse>, Status> {
        let address = field::address("address", &request.into_inner().address)?;
        let owner = self.state.market().owner_of(&address).unwrap_or(address);
        Ok(Response::new(sproto::GetOwnerResponse { owner: bytes20(&owner) }))
    }

    async fn get_proof_request_params(
        &self,
        request: Request<sproto::GetProofRequestParamsRequest>,
    ) -> Result<Response<sproto::GetProofRequestParamsResponse>, Status> {
        mode_name(request.into_inner().mode)?;
        let c = &self.config;
        // The SDK parses these as u64: clamp what a u128 configuration could hold.
        let as_u64 = |a: Amount| u64::try_from(a.get()).unwrap_or(u64::MAX).to_string();
        Ok(Response::new(sproto::GetProofRequestParamsResponse {
            domain: self.domain.to_vec(),
            auctioneer: bytes20(&c.auctioneer),
            executor: bytes20(&c.executor),
            verifier: bytes20(&c.verifier),
            treasury: bytes20(&c.treasury),
            max_price_per_pgu: as_u64(c.max_price_per_pgu),
            base_fee: as_u64(c.base_fee),
            tick_size: 1,
            network_floor_price_per_pgu: "0".into(),
        }))
    }

    async fn get_provers_by_uptime(
        &self,
        _: Request<sproto::GetProversByUptimeRequest>,
    ) -> Result<Response<sproto::GetProversByUptimeResponse>, Status> {
        // No whitelist by default: any registered prover may bid.
        Ok(Response::new(sproto::GetProversByUptimeResponse { provers: Vec::new() }))
    }

    async fn get_market_price_per_pgu(
        &self,
        _: Request<sproto::GetMarketPricePerPguRequest>,
    ) -> Result<Response<sproto::GetMarketPricePerPguResponse>, Status> {
        let price = self.state.market().recent_price().unwrap_or(self.config.max_price_per_pgu);
        Ok(Response::new(sproto::GetMarketPricePerPguResponse {
            price: price.to_string(),
            as_of: (super::now_ms() / 1000) as i64,
        }))
    }

    async fn get_program(
        &self,
        request: Request<sproto::GetProgramRequest>,
    ) -> Result<Response<sproto::GetProgramResponse>, Status> {
        let hash = request.into_inner().vk_hash;
        let market = self.state.market();
        let p = market.program_by_sdk_hash(&hash).ok_or_else(|| {
            Status::not_found(format!("no program with vk_hash 0x{}", hex::encode(&hash)))
        })?;
        Ok(Response::new(sproto::GetProgramResponse {
            program: Some(sproto::Program {
                vk_hash: hash.clone(),
                vk: Vec::new(),
                program_uri: slots::program_url(self.base_url(), &p.artifact_id),
                name: Some(p.name.clone()),
                owner: bytes20(&p.registered_by),
                created_at: p.registered_at,
            }),
        }))
    }

    async fn create_program(
        &self,
        request: Request<sproto::CreateProgramRequest>,
    ) -> Result<Response<sproto::CreateProgramResponse>, Status> {
        let request = request.into_inner();
        let (signer, body) =
            self.open::<sproto::CreateProgramRequestBody>(&request.signature, &request.body)?;
        let vk_hash = hash32("vk_hash", &body.vk_hash)?;
        let name = format!("vk-{}", hex::encode(&vk_hash[..30]));
        self.state
            .market()
            .check_register_program(&signer, body.nonce, &name)
            .map_err(convert::market_status)?;
        let (_, filled) = self
            .slots
            .take(&body.program_uri, &signer, "program", &[SlotKind::Program])
            .map_err(|e| e.grpc_status())?;
        let Filled::Program(artifact_id) = filled else {
            return Err(Status::invalid_argument("program_uri does not name a program"));
        };
        let bytes = super::artifact::read_artifact(
            &self.state,
            &artifact_id,
            self.state.config.max_program_bytes,
        )
        .await
        .map_err(|e| Status::unavailable(format!("program {}: {e}", body.program_uri)))?;
        // An ELF is an SP1 program; anything else is Miden assembly.
        let version = self
            .state
            .zkvms
            .versions()
            .into_iter()
            .find(|v| formats::is_sp1(v) == bytes.starts_with(b"\x7fELF"))
            .ok_or_else(|| {
                Status::invalid_argument(format!(
                    "this network runs no zkVM for this program (it serves {})",
                    self.state.zkvms.versions().join(", ")
                ))
            })?;
        let backend =
            self.state.zkvms.get(&version).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (program_id, sdk_hash) = super::rpc::identify_program(backend, bytes).await?;
        if sdk_hash != vk_hash {
            return Err(Status::invalid_argument(format!(
                "vk_hash 0x{} is not the program's: its {version} key hashes to 0x{}",
                hex::encode(vk_hash),
                hex::encode(&sdk_hash)
            )));
        }
        let program = Program {
            sdk_hash: (sdk_hash != program_id.as_bytes()).then_some(sdk_hash),
            program_id: program_id.as_bytes().to_vec(),
            name,
            zkvm_version: version,
            artifact_id,
            registered_by: signer,
            registered_at: super::now_ms() / 1000,
        };
        self.state.apply(|m, _| Ok((m.register_program(signer, body.nonce, program)?, ()))).await?;
        self.slots.forget(&body.program_uri);
        Ok(Response::new(sproto::CreateProgramResponse {
            tx_hash: tx_hash(&signer, &request.body),
            body: Some(sproto::CreateProgramResponseBody {}),
        }))
    }

    async fn request_proof(
        &self,
        request: Request<sproto::RequestProofRequest>,
    ) -> Result<Response<sproto::RequestProofResponse>, Status> {
        let request = request.into_inner();
        let (signer, body) =
            self.open::<sproto::RequestProofRequestBody>(&request.signature, &request.body)?;
        match sproto::FulfillmentStrategy::try_from(body.strategy) {
            Ok(
                sproto::FulfillmentStrategy::Auction
                | sproto::FulfillmentStrategy::UnspecifiedFulfillmentStrategy,
            ) => {}
            _ => {
                return Err(Status::invalid_argument(format!(
                    "strategy {}: this network runs auctions only (AUCTION = 3)",
                    body.strategy
                )));
            }
        }
        let proof_mode = mode_name(body.mode)?;
        let c = &self.config;
        for (name, value, ours) in [
            ("auctioneer", &body.auctioneer, c.auctioneer),
            ("executor", &body.executor, c.executor),
            ("verifier", &body.verifier, c.verifier),
            ("treasury", &body.treasury, c.treasury),
        ] {
            if value.as_slice() != ours.as_bytes() {
                return Err(Status::invalid_argument(format!(
                    "{name} 0x{} is not this network's {name} {ours} (GetProofRequestParams)",
                    hex::encode(value)
                )));
            }
        }
        let max_price_per_pgu = amount("max_price_per_pgu", &body.max_price_per_pgu)?;
        let base_fee = amount("base_fee", &body.base_fee)?;
        // Who is calling and whether it can pay, before any work on its inputs.
        let worst_case =
            provernet_types::request::cost(base_fee, max_price_per_pgu, body.gas_limit)
                .map_err(|e| Status::invalid_argument(format!("worst-case cost: {e}")))?;
        self.state
            .market()
            .check_request(&signer, body.nonce, worst_case)
            .map_err(convert::market_status)?;
        let vk_hash = hash32("vk_hash", &body.vk_hash)?;
        let (program_id, program_artifact_id, zkvm_version) = {
            let market = self.state.market();
            let p = market.program_by_sdk_hash(&vk_hash).ok_or_else(|| {
                Status::not_found(format!(
                    "no program with vk_hash 0x{}: register it (CreateProgram) first",
                    hex::encode(vk_hash)
                ))
            })?;
            (p.program_id.clone(), p.artifact_id, p.zkvm_version.clone())
        };
        let version = formats::version_to_ours(&body.version);
        if version != zkvm_version {
            return Err(Status::invalid_argument(format!(
                "version {:?}: the program runs on {}",
                body.version,
                formats::version_to_theirs(&zkvm_version)
            )));
        }
        let (kind, filled) = self
            .slots
            .take(&body.stdin_uri, &signer, "stdin", &[SlotKind::Stdin, SlotKind::PrivateStdin])
            .map_err(|e| e.grpc_status())?;
        let Filled::Stdin(slices) = filled else {
            return Err(Status::invalid_argument("stdin_uri does not name an stdin"));
        };
        let private = kind == SlotKind::PrivateStdin || body.stdin_private;
        // The SDK's CORE is a backend's plain proof: Miden has one mode, its default.
        let backend =
            self.state.zkvms.get(&version).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let proof_mode = match proof_mode.parse::<provernet_zkvm::ProofMode>() {
            Ok(m) if backend.proof_modes().contains(&m) => proof_mode,
            Ok(provernet_zkvm::ProofMode::Core) => "",
            _ => proof_mode,
        };
        let inputs = formats::inputs_from_stdin(&version, slices.as_ref().clone())
            .map_err(|e| Status::invalid_argument(format!("stdin {}: {e}", body.stdin_uri)))?;
        let whitelist = body
            .whitelist
            .iter()
            .map(|a| field::address("whitelist", a))
            .collect::<Result<Vec<_>, _>>()?;
        let spec = RequestSpec {
            program_id,
            zkvm_version: version,
            program_artifact_id,
            inputs_artifact_id: provernet_types::ArtifactId::of(&inputs),
            inputs_private: private,
            deadline: body.deadline,
            gas_limit: body.gas_limit,
            max_price_per_pgu,
            base_fee,
            min_auction_period: body.min_auction_period.max(c.min_auction_period),
            whitelist,
            expected_outputs_hash: None,
            proof_mode: proof_mode.to_owned(),
        };
        // The market's checks that need no bytes (nonce, timing, funds) run in open_request
        // after the inputs are stored; refuse a bad deadline before storing anything.
        spec.check_timing(super::now_ms() / 1000)?;
        let visibility = if private {
            provernet_artifacts::Visibility::Private
        } else {
            provernet_artifacts::Visibility::Public
        };
        super::artifact::store_bytes(
            &self.state,
            inputs,
            provernet_artifacts::ArtifactKind::Inputs,
            visibility,
            self.state.config.max_artifact_bytes,
        )
        .await
        .map_err(|e| Status::unavailable(format!("cannot store the stdin: {e}")))?;
        let id = RequestId::derive(&signer, &request.body);
        self.native.open_request(signer, body.nonce, id, spec).await?;
        self.slots.forget(&body.stdin_uri);
        tracing::info!(target: "provernet::network", request_id = %id, requester = %signer, api = "succinct", "proof requested");
        Ok(Response::new(sproto::RequestProofResponse {
            tx_hash: id.as_bytes().to_vec(),
            body: Some(sproto::RequestProofResponseBody { request_id: id.as_bytes().to_vec() }),
        }))
    }

    async fn get_proof_request_status(
        &self,
        request: Request<sproto::GetProofRequestStatusRequest>,
    ) -> Result<Response<sproto::GetProofRequestStatusResponse>, Status> {
        let id = field::request_id("request_id", &request.into_inner().request_id)?;
        let r = self
            .state
            .request(&id)
            .await?
            .ok_or_else(|| Status::not_found(format!("no proof request {id}")))?;
        let (fulfillment, execution) = statuses(&r);
        let proof_uri = r.proof_artifact_id.map(|_| slots::proof_url(self.base_url(), &id));
        Ok(Response::new(sproto::GetProofRequestStatusResponse {
            fulfillment_status: fulfillment as i32,
            execution_status: execution as i32,
            request_tx_hash: id.as_bytes().to_vec(),
            deadline: r.spec.deadline,
            fulfill_tx_hash: r.proof_artifact_id.map(|a| a.as_bytes().to_vec()),
            proof_public_uri: proof_uri.clone(),
            proof_uri,
            public_values_hash: None,
        }))
    }

    async fn get_proof_request_details(
        &self,
        request: Request<sproto::GetProofRequestDetailsRequest>,
    ) -> Result<Response<sproto::GetProofRequestDetailsResponse>, Status> {
        let id = field::request_id("request_id", &request.into_inner().request_id)?;
        let r = self
            .state
            .request(&id)
            .await?
            .ok_or_else(|| Status::not_found(format!("no proof request {id}")))?;
        let request = self.proof_request(&r, self.state.market().program(&r.spec.program_id));
        Ok(Response::new(sproto::GetProofRequestDetailsResponse { request: Some(request) }))
    }

    async fn get_filtered_proof_requests(
        &self,
        request: Request<sproto::GetFilteredProofRequestsRequest>,
    ) -> Result<Response<sproto::GetFilteredProofRequestsResponse>, Status> {
        let q = request.into_inner();
        let optional = |name, bytes: &Option<Vec<u8>>| -> Result<Option<Address>, Status> {
            bytes.as_deref().map(|b| field::address(name, b)).transpose().map_err(Status::from)
        };
        let requester = optional("requester", &q.requester)?;
        let fulfiller = optional("fulfiller", &q.fulfiller)?;
        let not_bid_by = optional("not_bid_by", &q.not_bid_by)?;
        let version = q.version.as_deref().map(formats::version_to_ours);
        let mode = q.mode.map(mode_name).transpose()?;
        let limit = q.limit.unwrap_or(100).clamp(1, MAX_FILTER_LIMIT) as usize;
        let skip = (q.page.unwrap_or(0) as usize).saturating_mul(limit);
        if skip > MAX_FILTER_DEPTH {
            return Err(Status::invalid_argument(format!(
                "page {} of {limit}: deeper than {MAX_FILTER_DEPTH} requests; narrow the range with from/to",
                q.page.unwrap_or(0)
            )));
        }
        // The statuses a fulfilment status and `is_canceled` leave (see `statuses`).
        let statuses = [
            RequestStatus::Requested,
            RequestStatus::Assigned,
            RequestStatus::Fulfilled,
            RequestStatus::Unfulfillable,
            RequestStatus::Cancelled,
        ]
        .into_iter()
        .filter(|s| {
            q.fulfillment_status.is_none_or(|f| f == fulfillment_status(*s) as i32)
                && q.is_canceled.is_none_or(|c| c == (*s == RequestStatus::Cancelled))
        })
        .collect();
        let executions = [Execution::Unexecuted, Execution::Unexecutable { reason: String::new() }]
            .into_iter()
            .chain([Execution::Executed { pgus: 0, outputs: Vec::new() }])
            .filter(|e| q.execution_status.is_none_or(|s| s == execution_status(e) as i32))
            .map(|e| e.name())
            .collect();
        let program_id = match &q.vk_hash {
            None => None,
            Some(hash) => match self.state.market().program_by_sdk_hash(hash) {
                Some(p) => Some(p.program_id.clone()),
                // No program goes by that hash: no request does either.
                None => {
                    return Ok(Response::new(sproto::GetFilteredProofRequestsResponse::default()));
                }
            },
        };
        let query = RequestQuery {
            statuses: Some(statuses),
            executions: Some(executions),
            zkvm_version: version,
            requester,
            prover: fulfiller,
            not_bid_by,
            program_id,
            // CORE is the default mode, which a request may leave empty.
            proof_modes: mode.map(|m| {
                if m == "core" { vec![m.to_owned(), String::new()] } else { vec![m.to_owned()] }
            }),
            min_deadline: q.minimum_deadline,
            created_from: q.from,
            created_to: q.to,
            after: None,
        };
        // Oldest first, as a prover wants them: the earliest deadlines are the most urgent.
        let (matching, _) = self.state.page(&query, skip, limit).await?;
        let market = self.state.market();
        let requests = matching
            .iter()
            .map(|r| self.proof_request(r, market.program(&r.spec.program_id)))
            .collect();
        Ok(Response::new(sproto::GetFilteredProofRequestsResponse { requests }))
    }

    async fn cancel_request(
        &self,
        request: Request<sproto::CancelRequestRequest>,
    ) -> Result<Response<sproto::CancelRequestResponse>, Status> {
        let request = request.into_inner();
        let (signer, body) =
            self.open::<sproto::CancelRequestRequestBody>(&request.signature, &request.body)?;
        let id = field::request_id("request_id", &body.request_id)?;
        let _recalled = self.state.recall(id).await?;
        self.state.apply(|m, now| Ok((m.cancel(signer, body.nonce, id, now)?, ()))).await?;
        Ok(Response::new(sproto::CancelRequestResponse {
            tx_hash: tx_hash(&signer, &request.body),
            body: Some(sproto::CancelRequestResponseBody {}),
        }))
    }

    async fn bid(
        &self,
        request: Request<sproto::BidRequest>,
    ) -> Result<Response<sproto::BidResponse>, Status> {
        let request = request.into_inner();
        let (signer, body) =
            self.open::<sproto::BidRequestBody>(&request.signature, &request.body)?;
        let id = field::request_id("request_id", &body.request_id)?;
        let prover = field::address("prover", &body.prover)?;
        let price = amount("amount", &body.amount)?;
        let _recalled = self.state.recall(id).await?;
        self.state
            .apply(|m, now| Ok((m.bid(signer, body.nonce, id, prover, price, now)?, ())))
            .await?;
        crate::metrics::bid_accepted();
        Ok(Response::new(sproto::BidResponse {
            tx_hash: tx_hash(&signer, &request.body),
            body: Some(sproto::BidResponseBody {}),
        }))
    }

    async fn fulfill_proof(
        &self,
        request: Request<sproto::FulfillProofRequest>,
    ) -> Result<Response<sproto::FulfillProofResponse>, Status> {
        let request = request.into_inner();
        let (signer, body) =
            self.open::<sproto::FulfillProofRequestBody>(&request.signature, &request.body)?;
        let id = field::request_id("request_id", &body.request_id)?;
        if body.proof.is_empty() {
            return Err(missing("proof"));
        }
        let _recalled = self.state.recall(id).await?;
        let (prover, version, program_artifact) = {
            let market = self.state.market();
            let (r, prover) = assigned(&market, &id)?;
            // Who may fulfil, before any work that grows with the proof.
            market
                .check_fulfil(&signer, body.nonce, &id, &prover)
                .map_err(convert::market_status)?;
            (prover, r.spec.zkvm_version.clone(), r.spec.program_artifact_id)
        };
        let bundle = if formats::is_sp1(&version) {
            // bincode(SP1ProofWithPublicValues), as SP1 nodes send it: with the program's key
            // (cached by the program's hash) it becomes a provernet bundle.
            let program = super::artifact::read_artifact(
                &self.state,
                &program_artifact,
                self.state.config.max_program_bytes,
            )
            .await
            .map_err(|e| Status::unavailable(format!("program of {id}: {e}")))?;
            let backend = self
                .state
                .zkvms
                .get(&version)
                .map_err(|e| Status::failed_precondition(e.to_string()))?;
            let sdk_proof = body.proof;
            let proof =
                tokio::task::spawn_blocking(move || backend.proof_from_sdk(&program, &sdk_proof))
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?
                    .map_err(|e| Status::invalid_argument(format!("proof: {e}")))?;
            provernet_zkvm::ProofBundle::new(&version, proof).encode()
        } else {
            // Miden has no SDK of its own: the proof is a provernet proof bundle.
            body.proof
        };
        // Checked like a native submission: the caller again, then the bundle's claims.
        self.native
            .submit_proof(signer, body.nonce, id, prover, ProofSource::Bytes(bundle))
            .await?;
        Ok(Response::new(sproto::FulfillProofResponse {
            tx_hash: tx_hash(&signer, &request.body),
            body: Some(sproto::FulfillProofResponseBody {}),
        }))
    }

    async fn fail_fulfillment(
        &self,
        request: Request<sproto::FailFulfillmentRequest>,
    ) -> Result<Response<sproto::FailFulfillmentResponse>, Status> {
        let request = request.into_inner();
        let (signer, body) =
            self.open::<sproto::FailFulfillmentRequestBody>(&request.signature, &request.body)?;
        let id = field::request_id("request_id", &body.request_id)?;
        let _recalled = self.state.recall(id).await?;
        let prover = assigned(&self.state.market(), &id)?.1;
        let kind = body.error.and_then(|e| sproto::ProofRequestError::try_from(e).ok());
        let trace = body.error_trace.as_deref().map(String::from_utf8_lossy);
        // The reason is kept (bounded) and shown to the requester as the close reason.
        let trace =
            trace.as_deref().map(|t| t.chars().take(MAX_FAIL_TRACE_CHARS).collect::<String>());
        let reason = match (kind, trace) {
            (Some(e), Some(t)) => format!("the prover gave up ({}): {t}", e.as_str_name()),
            (Some(e), None) => format!("the prover gave up ({})", e.as_str_name()),
            (None, Some(t)) => format!("the prover gave up: {t}"),
            (None, None) => "the prover gave up".to_owned(),
        };
        self.state
            .apply(|m, now| Ok((m.fail(signer, body.nonce, id, prover, &reason, now)?, ())))
            .await?;
        Ok(Response::new(sproto::FailFulfillmentResponse {
            tx_hash: tx_hash(&signer, &request.body),
            body: Some(sproto::FailFulfillmentResponseBody {}),
        }))
    }
}
