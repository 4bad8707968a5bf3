//! The `ProverNetwork` gRPC service: each RPC opens its envelope, checks what needs more than
//! the market (versions, artifacts, proofs), and applies one market operation.

use std::{collections::HashSet, pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};
use provernet_artifacts::{ArtifactKind, Visibility};
use provernet_types::{
    Address, ArtifactId, RequestId, RequestSpec, SignedBody, field, open,
    proto::{self, prover_network_server::ProverNetwork},
};
use provernet_zkvm::ProofMode;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::{
    NetworkState, Published,
    artifact::{ReadError, read_artifact, store_bytes},
    convert, verifier,
};
use crate::market::{Market, Program, RequestQuery, Status as RequestStatus};

/// Most requests one List call returns.
const MAX_LIST_LIMIT: usize = 1_000;
/// Most request ids one subscription may filter on: enough for a requester's batch, and a bound
/// on the set each event is looked up in.
const MAX_SUBSCRIBED_IDS: usize = 256;

/// The gRPC service over a [`NetworkState`].
#[derive(Clone)]
pub struct NetworkService {
    state: Arc<NetworkState>,
}

impl NetworkService {
    /// The service over `state`.
    pub fn new(state: Arc<NetworkState>) -> Self {
        Self { state }
    }

    fn open<B: SignedBody>(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<(Address, B, Vec<u8>), Status> {
        let message = request.into_inner();
        let (signer, body) = open::<B>(&self.state.domain, &message)?;
        self.state.limits.admit_call(&signer)?;
        Ok((signer, body, message.body))
    }

    /// Opens a proof request: the checks that need more than the market (backend, proof mode,
    /// gas limit, the inputs artifact), the executor queue's admission, then the market.
    pub(super) async fn open_request(
        &self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        spec: RequestSpec,
    ) -> Result<(), Status> {
        let backend = self
            .state
            .zkvms
            .get(&spec.zkvm_version)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mode: ProofMode = spec
            .proof_mode
            .parse()
            .map_err(|e: provernet_zkvm::ZkVmError| Status::invalid_argument(e.to_string()))?;
        backend.check_mode(mode).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if spec.gas_limit > backend.max_gas_limit() {
            return Err(Status::invalid_argument(format!(
                "gas_limit {} is above {}'s maximum {}",
                spec.gas_limit,
                backend.version(),
                backend.max_gas_limit()
            )));
        }
        match self.state.artifacts.storage().meta(&spec.inputs_artifact_id).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(Status::not_found(format!(
                    "inputs artifact {} is not in the ArtifactStore: upload it first",
                    spec.inputs_artifact_id
                )));
            }
            Err(e) => {
                return Err(Status::unavailable(format!("cannot check the inputs artifact: {e}")));
            }
        }
        self.state.limits.executions.admit()?;
        self.state.apply(|m, now| Ok((m.request_proof(signer, nonce, id, spec, now)?, ()))).await
    }

    /// Takes a proof for verification: who may fulfil first (before any work that grows with
    /// the proof), then the bundle's claims, then it is stored and handed to the verifier.
    pub(super) async fn submit_proof(
        &self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        prover: Address,
        source: ProofSource,
    ) -> Result<ArtifactId, Status> {
        let _recalled = self.state.recall(id).await?;
        // Who may fulfil, before any work that grows with the proof (reading, decoding,
        // verifying): a stranger must not make the network read an artifact it uploaded.
        let claims = {
            let market = self.state.market();
            market.check_fulfil(&signer, nonce, &id, &prover).map_err(convert::market_status)?;
            let r = market
                .request(&id)
                .ok_or_else(|| Status::not_found(format!("no proof request {id}")))?;
            verifier::Claims::of(r).ok_or_else(|| {
                Status::failed_precondition(format!("proof request {id} is not executed"))
            })?
        };
        self.state.limits.verifications.admit()?;
        let (bundle_bytes, stored) = match source {
            ProofSource::Bytes(bytes) => (bytes, None),
            ProofSource::Artifact(artifact) => {
                let bytes = self
                    .read_artifact(&artifact, "proof", self.state.config.max_proof_bytes)
                    .await?;
                (bytes, Some(artifact))
            }
        };
        // What the bundle claims is checked now, so that a proof of something else is refused
        // at once; whether the proof holds is the verifier's to say.
        claims.check(&bundle_bytes).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let proof_id = match stored {
            Some(artifact) => artifact,
            None => store_bytes(
                &self.state,
                bundle_bytes,
                ArtifactKind::Proof,
                Visibility::Public,
                self.state.config.max_proof_bytes,
            )
            .await
            .map_err(|e| Status::unavailable(format!("cannot store the proof: {e}")))?,
        };
        self.state
            .apply(|m, now| Ok((m.submit_proof(signer, nonce, id, prover, proof_id, now)?, ())))
            .await?;
        Ok(proof_id)
    }

    /// Reads a whole artifact of at most `max_bytes` from the embedded store.
    async fn read_artifact(
        &self,
        id: &ArtifactId,
        what: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>, Status> {
        read_artifact(&self.state, id, max_bytes).await.map_err(|e| match e {
            ReadError::Missing => Status::not_found(format!(
                "{what} artifact {id} is not in the ArtifactStore: upload it first"
            )),
            ReadError::TooLarge { size, max } => Status::invalid_argument(format!(
                "{what} artifact {id} is {size} bytes, above this network's limit of {max} bytes for a {what}"
            )),
            ReadError::Corrupt => Status::data_loss(format!(
                "the stored bytes of {what} artifact {id} do not match their id: upload it again"
            )),
            ReadError::Storage(e) => {
                Status::unavailable(format!("cannot read {what} artifact {id}: {e}"))
            }
        })
    }
}

/// A program's id and the hash its zkVM's SDK names it by, computed off the async threads
/// (SP1's setup takes seconds); bytes that are not a valid program are INVALID_ARGUMENT.
pub(super) async fn identify_program(
    backend: std::sync::Arc<dyn provernet_zkvm::ZkVm>,
    bytes: Vec<u8>,
) -> Result<(provernet_zkvm::ProgramId, Vec<u8>), Status> {
    tokio::task::spawn_blocking(move || {
        Ok::<_, provernet_zkvm::ZkVmError>((
            backend.program_id(&bytes)?,
            backend.sdk_program_hash(&bytes)?,
        ))
    })
    .await
    .map_err(|e| Status::internal(e.to_string()))?
    .map_err(|e| Status::invalid_argument(e.to_string()))
}

/// Where a submitted proof bundle is: inline, or an artifact the prover uploaded.
pub(super) enum ProofSource {
    /// The bundle's bytes.
    Bytes(Vec<u8>),
    /// An artifact holding the bundle.
    Artifact(ArtifactId),
}

fn shutting_down() -> Status {
    Status::unavailable("the network is shutting down: subscribe again once it is back")
}

fn missing(field: &'static str) -> Status {
    Status::invalid_argument(format!("missing field {field}"))
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::RequestEvent, Status>> + Send>>;

#[tonic::async_trait]
impl ProverNetwork for NetworkService {
    async fn get_network_info(
        &self,
        _: Request<proto::GetNetworkInfoRequest>,
    ) -> Result<Response<proto::GetNetworkInfoResponse>, Status> {
        let config = &self.state.config;
        let market = self.state.market();
        let rules = market.config();
        Ok(Response::new(proto::GetNetworkInfoResponse {
            network_id: config.network_id.clone(),
            zkvm_versions: self.state.zkvms.versions(),
            artifact_store_url: config.artifact_base_url.clone(),
            faucet_enabled: rules.faucet_limit.is_some(),
            faucet_max_amount: rules.faucet_limit.map(|a| a.to_string()).unwrap_or_default(),
            min_prover_stake: rules.min_stake.to_string(),
            collateral_bps: rules.collateral_bps,
            now: super::now_ms() / 1000,
            max_message_bytes: config.max_message_bytes as u64,
        }))
    }

    async fn get_account(
        &self,
        request: Request<proto::GetAccountRequest>,
    ) -> Result<Response<proto::GetAccountResponse>, Status> {
        let address = field::address("address", &request.into_inner().address)?;
        let market = self.state.market();
        let account = convert::account(&market.account(&address), market.prover(&address));
        Ok(Response::new(proto::GetAccountResponse { account: Some(account) }))
    }

    async fn faucet(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::FaucetResponse>, Status> {
        let (signer, body, _) = self.open::<proto::FaucetBody>(request)?;
        let amount = field::amount("amount", &body.amount)?;
        let balance = self
            .state
            .apply(|m, _| {
                m.deposit(signer, body.nonce, signer, amount)
                    .map(|o| (o, m.account(&signer).balance))
            })
            .await?;
        Ok(Response::new(proto::FaucetResponse { balance: balance.to_string() }))
    }

    async fn admin_deposit(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::AdminDepositResponse>, Status> {
        let (signer, body, _) = self.open::<proto::AdminDepositBody>(request)?;
        let to = field::address("to", &body.to)?;
        let amount = field::amount("amount", &body.amount)?;
        let balance = self
            .state
            .apply(|m, _| {
                m.admin_deposit(signer, body.nonce, to, amount).map(|o| (o, m.account(&to).balance))
            })
            .await?;
        Ok(Response::new(proto::AdminDepositResponse { balance: balance.to_string() }))
    }

    async fn register_prover(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::RegisterProverResponse>, Status> {
        let (signer, body, _) = self.open::<proto::RegisterProverBody>(request)?;
        let stake = field::amount("stake", &body.stake)?;
        let operator = field::optional_address("operator", &body.operator)?;
        let prover = self
            .state
            .apply(|m, now| {
                let outcome = m.register_prover(signer, body.nonce, stake, operator, now)?;
                Ok((outcome, m.prover(&signer).map(convert::prover_info)))
            })
            .await?;
        Ok(Response::new(proto::RegisterProverResponse { prover }))
    }

    async fn add_stake(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::AddStakeResponse>, Status> {
        let (signer, body, _) = self.open::<proto::AddStakeBody>(request)?;
        let amount = field::amount("amount", &body.amount)?;
        let prover = self
            .state
            .apply(|m, _| {
                Ok((
                    m.change_stake(signer, body.nonce, amount, true)?,
                    m.prover(&signer).map(convert::prover_info),
                ))
            })
            .await?;
        Ok(Response::new(proto::AddStakeResponse { prover }))
    }

    async fn withdraw_stake(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::WithdrawStakeResponse>, Status> {
        let (signer, body, _) = self.open::<proto::WithdrawStakeBody>(request)?;
        let amount = field::amount("amount", &body.amount)?;
        let prover = self
            .state
            .apply(|m, _| {
                Ok((
                    m.change_stake(signer, body.nonce, amount, false)?,
                    m.prover(&signer).map(convert::prover_info),
                ))
            })
            .await?;
        Ok(Response::new(proto::WithdrawStakeResponse { prover }))
    }

    async fn register_program(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::RegisterProgramResponse>, Status> {
        let (signer, body, _) = self.open::<proto::RegisterProgramBody>(request)?;
        let artifact_id = field::artifact_id("program_artifact_id", &body.program_artifact_id)?;
        let backend = self
            .state
            .zkvms
            .get(&body.zkvm_version)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        // Who is calling, before any work that grows with the program: reading and assembling
        // a program costs time and memory in proportion to its size.
        self.state
            .market()
            .check_register_program(&signer, body.nonce, &body.name)
            .map_err(convert::market_status)?;
        let bytes = self
            .read_artifact(&artifact_id, "program", self.state.config.max_program_bytes)
            .await?;
        let (program_id, sdk_hash) = identify_program(backend, bytes).await?;
        let program = Program {
            program_id: program_id.as_bytes().to_vec(),
            name: body.name.clone(),
            zkvm_version: body.zkvm_version.clone(),
            artifact_id,
            registered_by: signer,
            registered_at: super::now_ms() / 1000,
            sdk_hash: (sdk_hash != program_id.as_bytes()).then_some(sdk_hash),
        };
        let message = self
            .state
            .apply(|m, _| {
                let outcome = m.register_program(signer, body.nonce, program.clone())?;
                let version = m.programs_named(&program.name).len() as u32;
                Ok((outcome, convert::program(&program, version)))
            })
            .await?;
        Ok(Response::new(proto::RegisterProgramResponse { program: Some(message) }))
    }

    async fn get_program(
        &self,
        request: Request<proto::GetProgramRequest>,
    ) -> Result<Response<proto::GetProgramResponse>, Status> {
        use proto::get_program_request::Lookup;
        let market = self.state.market();
        let programs = match request
            .into_inner()
            .lookup
            .ok_or_else(|| missing("lookup (name or program_id)"))?
        {
            Lookup::Name(name) => {
                let found = market.programs_named(&name);
                if found.is_empty() {
                    return Err(Status::not_found(format!("no program named {name:?}")));
                }
                found.iter().enumerate().map(|(i, p)| convert::program(p, i as u32 + 1)).collect()
            }
            Lookup::ProgramId(id) => {
                let p = market.program(&id).ok_or_else(|| {
                    Status::not_found(format!("no program 0x{}", hex::encode(&id)))
                })?;
                let version = market
                    .programs_named(&p.name)
                    .iter()
                    .position(|q| q.program_id == id)
                    .map_or(1, |i| i as u32 + 1);
                vec![convert::program(p, version)]
            }
        };
        Ok(Response::new(proto::GetProgramResponse { programs }))
    }

    async fn request_proof(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::RequestProofResponse>, Status> {
        let (signer, body, bytes) = self.open::<proto::RequestProofBody>(request)?;
        let spec = RequestSpec::try_from(&body)?;
        let id = RequestId::derive(&signer, &bytes);
        self.open_request(signer, body.nonce, id, spec).await?;
        tracing::info!(target: "provernet::network", request_id = %id, requester = %signer, "proof requested");
        Ok(Response::new(proto::RequestProofResponse { request_id: id.as_bytes().to_vec() }))
    }

    async fn cancel_request(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::CancelRequestResponse>, Status> {
        let (signer, body, _) = self.open::<proto::CancelRequestBody>(request)?;
        let id = field::request_id("request_id", &body.request_id)?;
        let _recalled = self.state.recall(id).await?;
        self.state.apply(|m, now| Ok((m.cancel(signer, body.nonce, id, now)?, ()))).await?;
        Ok(Response::new(proto::CancelRequestResponse {}))
    }

    async fn get_proof_request(
        &self,
        request: Request<proto::GetProofRequestRequest>,
    ) -> Result<Response<proto::GetProofRequestResponse>, Status> {
        let id = field::request_id("request_id", &request.into_inner().request_id)?;
        let r = self
            .state
            .request(&id)
            .await?
            .ok_or_else(|| Status::not_found(format!("no proof request {id}")))?;
        Ok(Response::new(proto::GetProofRequestResponse { request: Some(convert::request(&r)) }))
    }

    async fn list_proof_requests(
        &self,
        request: Request<proto::ListProofRequestsRequest>,
    ) -> Result<Response<proto::ListProofRequestsResponse>, Status> {
        let q = request.into_inner();
        let requester = field::optional_address("requester", &q.requester)?;
        let prover = field::optional_address("prover", &q.prover)?;
        // The cursor is the last (created_at, id) returned, as "secs:0xid".
        let after = if q.cursor.is_empty() {
            None
        } else {
            let (secs, id) = q
                .cursor
                .split_once(':')
                .ok_or_else(|| Status::invalid_argument("malformed cursor"))?;
            let secs: u64 =
                secs.parse().map_err(|_| Status::invalid_argument("malformed cursor"))?;
            let id: RequestId =
                id.parse().map_err(|_| Status::invalid_argument("malformed cursor"))?;
            Some((secs, id))
        };
        let limit = if q.limit == 0 { 100 } else { (q.limit as usize).min(MAX_LIST_LIMIT) };
        let query = RequestQuery {
            // Values outside the enums match nothing, as a status no request has.
            statuses: (!q.statuses.is_empty())
                .then(|| q.statuses.iter().filter_map(|s| convert::status_from(*s)).collect()),
            executions: (!q.execution_statuses.is_empty()).then(|| {
                q.execution_statuses.iter().filter_map(|e| convert::execution_from(*e)).collect()
            }),
            zkvm_version: (!q.zkvm_version.is_empty()).then(|| q.zkvm_version.clone()),
            requester,
            prover,
            after,
            ..RequestQuery::default()
        };
        let (matching, more) = self.state.page(&query, 0, limit).await?;
        let next_cursor = match (more, matching.last()) {
            (true, Some(last)) => format!("{}:{}", last.created_at, last.id),
            _ => String::new(),
        };
        let requests = matching.iter().map(convert::request).collect();
        Ok(Response::new(proto::ListProofRequestsResponse { requests, next_cursor }))
    }

    type SubscribeRequestsStream = EventStream;

    async fn subscribe_requests(
        &self,
        request: Request<proto::SubscribeRequestsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let peer = request.remote_addr();
        let filter = Subscription::read(request.into_inner())?;
        let closing = self.state.closing().clone();
        if closing.is_cancelled() {
            return Err(shutting_down());
        }
        // Held by the stream: its place is given back when the subscriber goes.
        let place = self.state.limits.admit_subscription(peer)?;
        let state = self.state.clone();
        let rx = self.state.subscribe();
        let stream = futures::stream::unfold((rx, place), move |(mut rx, place)| {
            let state = state.clone();
            let filter = filter.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(event) => {
                            if passes(&state.market(), &filter, &event) {
                                return Some((Ok(event.message), (rx, place)));
                            }
                        }
                        Err(RecvError::Lagged(missed)) => {
                            let lagged = proto::RequestEvent {
                                event: Some(proto::request_event::Event::Lagged(proto::Lagged {
                                    missed,
                                })),
                                at: super::now_ms() / 1000,
                                ..Default::default()
                            };
                            return Some((Ok(lagged), (rx, place)));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        });
        // A subscription never ends by itself; end it when the network stops, so that the
        // server's graceful shutdown can finish, and say why so that the subscriber reconnects.
        let stream = stream
            .take_until(closing.cancelled_owned())
            .chain(futures::stream::once(async { Err(shutting_down()) }));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn bid(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::BidResponse>, Status> {
        let (signer, body, _) = self.open::<proto::BidBody>(request)?;
        let id = field::request_id("request_id", &body.request_id)?;
        let prover = field::address("prover", &body.prover)?;
        let price = field::amount("price_per_pgu", &body.price_per_pgu)?;
        let _recalled = self.state.recall(id).await?;
        self.state
            .apply(|m, now| Ok((m.bid(signer, body.nonce, id, prover, price, now)?, ())))
            .await?;
        crate::metrics::bid_accepted();
        Ok(Response::new(proto::BidResponse {}))
    }

    async fn fulfill_proof(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::FulfillProofResponse>, Status> {
        use proto::fulfill_proof_body::Proof;
        let (signer, body, _) = self.open::<proto::FulfillProofBody>(request)?;
        let id = field::request_id("request_id", &body.request_id)?;
        let prover = field::address("prover", &body.prover)?;
        let proof = body.proof.clone().ok_or_else(|| missing("proof"))?;
        let source = match proof {
            Proof::ProofBytes(bytes) => ProofSource::Bytes(bytes),
            Proof::ProofArtifactId(a) => {
                ProofSource::Artifact(field::artifact_id("proof_artifact_id", &a)?)
            }
        };
        let proof_id = self.submit_proof(signer, body.nonce, id, prover, source).await?;
        tracing::info!(target: "provernet::network", request_id = %id, %prover, "proof submitted");
        Ok(Response::new(proto::FulfillProofResponse {
            proof_artifact_id: proof_id.as_bytes().to_vec(),
        }))
    }

    async fn fail_fulfillment(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::FailFulfillmentResponse>, Status> {
        let (signer, body, _) = self.open::<proto::FailFulfillmentBody>(request)?;
        let id = field::request_id("request_id", &body.request_id)?;
        let prover = field::address("prover", &body.prover)?;
        let _recalled = self.state.recall(id).await?;
        self.state
            .apply(|m, now| Ok((m.fail(signer, body.nonce, id, prover, &body.reason, now)?, ())))
            .await?;
        Ok(Response::new(proto::FailFulfillmentResponse {}))
    }

    async fn presign_artifact_upload(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::PresignArtifactUploadResponse>, Status> {
        let (signer, body, _) = self.open::<proto::PresignArtifactUploadBody>(request)?;
        let id = field::artifact_id("artifact_id", &body.artifact_id)?;
        let (kind, visibility) = match proto::ArtifactKind::try_from(body.kind) {
            Ok(proto::ArtifactKind::Program) => (ArtifactKind::Program, Visibility::Public),
            Ok(proto::ArtifactKind::Inputs) => (ArtifactKind::Inputs, Visibility::Public),
            Ok(proto::ArtifactKind::PrivateInputs) => (ArtifactKind::Inputs, Visibility::Private),
            Ok(proto::ArtifactKind::Proof) => (ArtifactKind::Proof, Visibility::Public),
            _ => {
                return Err(Status::invalid_argument(
                    "kind must be program, inputs, private inputs or proof",
                ));
            }
        };
        let config = &self.state.config;
        let (limit, of_what) = match kind {
            ArtifactKind::Program => (config.max_program_bytes, "a program"),
            ArtifactKind::Proof => (config.max_proof_bytes, "a proof"),
            _ => (config.max_artifact_bytes, "an artifact"),
        };
        if body.size > limit {
            return Err(Status::invalid_argument(format!(
                "size {} is above the store's limit of {limit} bytes for {of_what}",
                body.size
            )));
        }
        self.state.apply(|m, _| Ok((m.consume_nonce(signer, body.nonce)?, ()))).await?;
        // The URL takes exactly the declared size: an upload nobody paid for stays bounded by
        // what its signer asked for, within the per-kind limits above.
        let url = self.state.artifacts.signer().sign(provernet_artifacts::Grant {
            method: provernet_artifacts::Method::Put,
            id,
            kind,
            visibility,
            expires: (super::now_ms() / 1000).saturating_add(config.presign_ttl.as_secs()),
            retain_until: None,
            max_bytes: Some(body.size),
        });
        Ok(Response::new(proto::PresignArtifactUploadResponse {
            url: url.url(&config.artifact_base_url),
            expires_at: url.grant.expires,
        }))
    }

    async fn presign_artifact_download(
        &self,
        request: Request<proto::SignedMessage>,
    ) -> Result<Response<proto::PresignArtifactDownloadResponse>, Status> {
        let (signer, body, _) = self.open::<proto::PresignArtifactDownloadBody>(request)?;
        let artifact = field::artifact_id("artifact_id", &body.artifact_id)?;
        let id = field::request_id("request_id", &body.request_id)?;
        {
            let r = self
                .state
                .request(&id)
                .await?
                .ok_or_else(|| Status::not_found(format!("no proof request {id}")))?;
            let market = self.state.market();
            let names_artifact = [
                Some(r.spec.inputs_artifact_id),
                Some(r.spec.program_artifact_id),
                r.proof_artifact_id,
            ]
            .contains(&Some(artifact));
            if !names_artifact {
                return Err(Status::invalid_argument(format!(
                    "artifact {artifact} is not part of request {id}"
                )));
            }
            let assigned = r.assignment.as_ref().and_then(|a| market.prover(&a.prover));
            let allowed = r.requester == signer
                || assigned.is_some_and(|p| p.owner == signer || p.operator == signer);
            if !allowed {
                return Err(Status::permission_denied(format!(
                    "{signer} may not read artifacts of request {id}: only its requester and assigned prover may"
                )));
            }
        }
        self.state.apply(|m, _| Ok((m.consume_nonce(signer, body.nonce)?, ()))).await?;
        let ttl = self.state.config.presign_ttl;
        let url = self.state.artifacts.signer().presign_get(
            artifact,
            ArtifactKind::Inputs,
            Visibility::Private,
            ttl,
        );
        Ok(Response::new(proto::PresignArtifactDownloadResponse {
            url: url.url(&self.state.config.artifact_base_url),
            expires_at: url.grant.expires,
        }))
    }
}

/// The status an event leaves its request in (`None` for a lag notice).
fn event_status(event: &proto::RequestEvent) -> Option<RequestStatus> {
    use proto::request_event::Event as E;
    Some(match event.event.as_ref()? {
        E::Created(_) | E::Executed(_) => RequestStatus::Requested,
        E::Assigned(_) | E::ProofSubmitted(_) | E::ProofRejected(_) => RequestStatus::Assigned,
        E::Fulfilled(_) => RequestStatus::Fulfilled,
        E::Unexecutable(_) | E::Unfulfillable(_) => RequestStatus::Unfulfillable,
        E::Cancelled(_) => RequestStatus::Cancelled,
        E::Lagged(_) => return None,
    })
}

/// A subscriber's filter, its bytes fields read once when it subscribes.
#[derive(Debug, Clone)]
struct Subscription {
    /// The filter as sent (its zkVM versions and statuses are used as they are).
    filter: proto::SubscribeRequestsRequest,
    /// The prover whose requests are wanted, if set.
    prover: Option<Address>,
    /// The requests whose events are wanted; empty means any.
    request_ids: HashSet<RequestId>,
}

impl Subscription {
    /// Reads `filter`, refusing a malformed prover or request id, or too many request ids.
    fn read(filter: proto::SubscribeRequestsRequest) -> Result<Self, field::FieldError> {
        let prover = field::optional_address("prover", &filter.prover)?;
        if filter.request_ids.len() > MAX_SUBSCRIBED_IDS {
            return Err(field::FieldError::Invalid {
                field: "request_ids",
                reason: format!(
                    "{} ids, at most {MAX_SUBSCRIBED_IDS} are allowed",
                    filter.request_ids.len()
                ),
            });
        }
        let request_ids = filter
            .request_ids
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                RequestId::from_slice(bytes).map_err(|e| field::FieldError::Invalid {
                    field: "request_ids",
                    reason: format!("item {i}: {e}"),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { filter, prover, request_ids })
    }
}

/// Whether a subscriber with `subscription` wants `event`: judged on its request as it is now,
/// or as it was when the event happened once it has left memory.
fn passes(market: &Market, subscription: &Subscription, published: &Published) -> bool {
    let Subscription { filter, prover, request_ids } = subscription;
    let event = &published.message;
    // A lag notice is about no request: every subscriber needs it.
    let Ok(id) = RequestId::from_slice(&event.request_id) else { return true };
    if !request_ids.is_empty() && !request_ids.contains(&id) {
        return false;
    }
    let Some(r) = market.request(&id).or(published.request.as_deref()) else { return true };
    if !filter.zkvm_versions.is_empty() && !filter.zkvm_versions.contains(&r.spec.zkvm_version) {
        return false;
    }
    // The status the event left the request in: by the time a slow subscriber reads it, the
    // request may have moved on.
    let status = event_status(event).unwrap_or(r.status);
    if !filter.statuses.is_empty() && !filter.statuses.contains(&(convert::status(status) as i32)) {
        return false;
    }
    if let Some(p) = prover {
        if !r.spec.admits(p) {
            return false;
        }
        if let Some(a) = &r.assignment {
            return a.prover == *p;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use provernet_types::{Amount, ArtifactId};

    use super::*;
    use crate::market::{Assignment, Execution, MarketConfig, Request, Snapshot};

    #[test]
    fn a_status_filter_sees_the_status_the_event_left_not_the_current_one() {
        let id = RequestId::from_bytes([1; 32]);
        let prover = Address::from_bytes([2; 20]);
        let spec = RequestSpec {
            program_id: vec![7; 32],
            zkvm_version: "miden-0.23".into(),
            program_artifact_id: ArtifactId::of(b"program"),
            inputs_artifact_id: ArtifactId::of(b"inputs"),
            inputs_private: false,
            deadline: 2_000_000_000,
            gas_limit: 1024,
            max_price_per_pgu: Amount::new(5),
            base_fee: Amount::new(1),
            min_auction_period: 1,
            whitelist: Vec::new(),
            expected_outputs_hash: None,
            proof_mode: String::new(),
        };
        // Fulfilled by the time the subscriber reads the Assigned event.
        let request = Request {
            id,
            requester: Address::from_bytes([3; 20]),
            spec,
            status: RequestStatus::Fulfilled,
            execution: Execution::Executed { pgus: 512, outputs: vec![] },
            lock: Amount::new(5_121),
            created_at: 1_700_000_000,
            bids: Vec::new(),
            assignment: Some(Assignment {
                prover,
                price_per_pgu: Amount::new(3),
                collateral: Amount::new(512),
                at_ms: 1_700_000_001_000,
            }),
            closed_at: Some(1_700_000_002),
            close_reason: None,
            paid: Amount::new(1_537),
            proof_artifact_id: None,
            pending_proof: None,
            rejected_proof: None,
            proof_deleted_at: None,
        };
        let snapshot = Snapshot { requests: vec![request.clone()], ..Snapshot::default() };
        let market = Market::new(MarketConfig::default(), snapshot);
        let event = |body| Published {
            message: proto::RequestEvent {
                request_id: id.as_bytes().to_vec(),
                sequence: 1,
                at: 1_700_000_001,
                event: Some(body),
            },
            request: None,
        };
        let assigned = event(proto::request_event::Event::Assigned(proto::RequestAssigned {
            prover: prover.as_bytes().to_vec(),
            price_per_pgu: "3".into(),
        }));
        let fulfilled = event(proto::request_event::Event::Fulfilled(proto::RequestFulfilled {
            proof_artifact_id: vec![],
        }));
        let only = |status: proto::RequestStatus, prover: Option<Address>| {
            Subscription::read(proto::SubscribeRequestsRequest {
                statuses: vec![status as i32],
                prover: prover.map(|p| p.as_bytes().to_vec()).unwrap_or_default(),
                ..Default::default()
            })
            .expect("a well-formed filter")
        };
        let assigned_only = only(proto::RequestStatus::Assigned, None);
        assert!(passes(&market, &assigned_only, &assigned));
        assert!(!passes(&market, &assigned_only, &fulfilled));
        assert!(passes(&market, &only(proto::RequestStatus::Fulfilled, None), &fulfilled));
        assert!(passes(&market, &only(proto::RequestStatus::Assigned, Some(prover)), &assigned));
        // The same answers once the request has left memory: the event carries it.
        let empty = Market::default();
        let carried = |mut published: Published| {
            published.request = Some(Arc::new(request.clone()));
            published
        };
        let (assigned, fulfilled) = (carried(assigned), carried(fulfilled));
        assert!(passes(&empty, &assigned_only, &assigned));
        assert!(!passes(&empty, &assigned_only, &fulfilled));
        assert!(passes(&empty, &only(proto::RequestStatus::Assigned, Some(prover)), &assigned));
        let stranger = Some(Address::from_bytes([9; 20]));
        assert!(!passes(&empty, &only(proto::RequestStatus::Assigned, stranger), &assigned));
    }

    #[test]
    fn a_request_id_filter_passes_its_requests_and_lag_notices_only() {
        let (mine, other) = (RequestId::from_bytes([1; 32]), RequestId::from_bytes([2; 32]));
        let created = |id: RequestId| Published {
            message: proto::RequestEvent {
                request_id: id.as_bytes().to_vec(),
                sequence: 1,
                at: 1_700_000_000,
                event: Some(proto::request_event::Event::Created(Default::default())),
            },
            request: None,
        };
        let lagged = Published {
            message: proto::RequestEvent {
                event: Some(proto::request_event::Event::Lagged(proto::Lagged { missed: 3 })),
                ..Default::default()
            },
            request: None,
        };
        let read = |request_ids: Vec<Vec<u8>>| {
            Subscription::read(proto::SubscribeRequestsRequest {
                request_ids,
                ..Default::default()
            })
        };
        let market = Market::default();
        let only_mine = read(vec![mine.as_bytes().to_vec()]).expect("one id");
        assert!(passes(&market, &only_mine, &created(mine)));
        assert!(!passes(&market, &only_mine, &created(other)));
        assert!(passes(&market, &only_mine, &lagged));
        let any = read(Vec::new()).expect("no ids");
        assert!(passes(&market, &any, &created(other)));

        let err = read(vec![mine.as_bytes().to_vec(), vec![7; 5]]).expect_err("5 bytes");
        assert_eq!(err.field(), "request_ids");
        assert!(err.to_string().contains("item 1"), "{err}");
        let ids = (0..=MAX_SUBSCRIBED_IDS).map(|i| vec![i as u8; 32]).collect();
        let err = read(ids).expect_err("too many");
        assert_eq!(err.field(), "request_ids");
        assert!(err.to_string().contains("at most 256"), "{err}");
    }
}
