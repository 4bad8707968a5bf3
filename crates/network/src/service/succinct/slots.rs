//! Artifact slots: the Succinct API names an artifact (CreateArtifact) before its bytes exist,
//! while provernet's ArtifactStore names artifacts by their content. A slot is the bridge: a
//! random id with an upload token, filled once by an HTTP PUT of `zstd(bincode(item))`, after
//! which CreateProgram or RequestProof names it by its URI.
//!
//! A program is stored in the ArtifactStore as soon as it arrives (its version is known from
//! its bytes later); an stdin is kept in the slot until a request names it, because its
//! provernet form depends on the request's version. Slots live in memory for the presigned-URL
//! lifetime: the SDK names a slot seconds after creating it, and a request, once made, holds
//! the content id. Each account holds a bounded number of slots and all slots a bounded number
//! of bytes.
//!
//! HTTP routes, beside the ArtifactStore's own:
//! - `PUT /v1/succinct/slots/{slot}?token=…`: fills a slot;
//! - `GET /v1/succinct/programs/{artifact}`: a program as `bincode(Vec<u8>)`;
//! - `GET /v1/succinct/stdins/{request}`: a request's public inputs as `bincode(SP1Stdin)`;
//! - `GET /v1/succinct/proofs/{request}`: a fulfilled request's proof, as the SDK reads it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, put},
};
use provernet_artifacts::{ArtifactKind, Visibility};
use provernet_types::{Address, ArtifactId, RequestId};
use rand::RngCore;

use super::formats::{self, FormatError};
use crate::service::{
    NetworkState,
    artifact::{read_artifact, store_bytes},
};

/// What a slot is for (the SDK's `ArtifactType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// A program (an ELF for SP1).
    Program,
    /// Inputs, readable by provers.
    Stdin,
    /// Inputs readable only by the assigned prover.
    PrivateStdin,
}

/// What a filled slot holds.
#[derive(Debug, Clone)]
pub enum Filled {
    /// A program, stored in the ArtifactStore.
    Program(ArtifactId),
    /// The stdin's slices, until a request names them.
    Stdin(Arc<Vec<Vec<u8>>>),
}

#[derive(Debug)]
struct Slot {
    kind: SlotKind,
    owner: Address,
    token: String,
    expires: Instant,
    filled: Option<Filled>,
    bytes: u64,
}

/// The open slots.
#[derive(Debug)]
pub struct Slots {
    slots: Mutex<HashMap<String, Slot>>,
    ttl: Duration,
    max_per_account: usize,
    max_bytes: u64,
}

/// Why a slot could not be created, filled or used.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// No such slot, or it expired.
    #[error("artifact {0} does not exist or has expired: create it again")]
    Unknown(String),
    /// The upload token is wrong.
    #[error("the upload token of artifact {0} is wrong")]
    Token(String),
    /// The slot was filled already.
    #[error("artifact {0} was uploaded already: artifacts are immutable")]
    Filled(String),
    /// The slot has no bytes yet.
    #[error("artifact {0} has not been uploaded yet: PUT its bytes to the presigned URL first")]
    Empty(String),
    /// The slot is for something else.
    #[error("artifact {uri} is a {kind:?} artifact, not a {wanted}")]
    Kind {
        /// The slot's URI.
        uri: String,
        /// What it is.
        kind: SlotKind,
        /// What the caller wanted.
        wanted: &'static str,
    },
    /// Another account created the slot.
    #[error("artifact {0} belongs to another account")]
    Owner(String),
    /// The account holds too many slots.
    #[error("{owner} already holds {max} open artifacts: use them, or wait for them to expire")]
    TooMany {
        /// The account.
        owner: Address,
        /// The limit.
        max: usize,
    },
    /// Too many slots are open on the whole network.
    #[error("{0} artifacts are open, the most this network holds: retry later")]
    Crowded(usize),
    /// The slots hold too many bytes.
    #[error(
        "uploaded inputs waiting for a request hold {held} bytes, the limit is {max}: retry later"
    )]
    Full {
        /// Bytes held.
        held: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes are not in the SDK's format.
    #[error("artifact {uri}: {source}")]
    Format {
        /// The slot's URI.
        uri: String,
        /// What is wrong.
        source: FormatError,
    },
    /// The ArtifactStore failed.
    #[error("cannot store artifact {uri}: {reason}")]
    Storage {
        /// The slot's URI.
        uri: String,
        /// Why.
        reason: String,
    },
}

impl SlotError {
    /// The HTTP status of an upload refused for this reason.
    fn http_status(&self) -> StatusCode {
        match self {
            Self::Unknown(_) | Self::Empty(_) => StatusCode::NOT_FOUND,
            Self::Token(_) | Self::Owner(_) => StatusCode::FORBIDDEN,
            Self::Filled(_) => StatusCode::CONFLICT,
            Self::TooMany { .. } | Self::Crowded(_) | Self::Full { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Kind { .. } => StatusCode::BAD_REQUEST,
            Self::Format { source: FormatError::TooLarge { .. }, .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::Format { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Storage { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The gRPC status of a call refused for this reason.
    pub fn grpc_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self {
            Self::Unknown(_) | Self::Empty(_) => tonic::Status::not_found(message),
            Self::Token(_) | Self::Owner(_) => tonic::Status::permission_denied(message),
            Self::TooMany { .. } | Self::Crowded(_) | Self::Full { .. } => {
                tonic::Status::resource_exhausted(message)
            }
            Self::Storage { .. } => tonic::Status::unavailable(message),
            Self::Filled(_) | Self::Kind { .. } | Self::Format { .. } => {
                tonic::Status::invalid_argument(message)
            }
        }
    }
}

/// Most slots open on the whole network: each is small, but keys cost nothing to make.
const MAX_SLOTS: usize = 100_000;

/// The URI path prefix of slots.
const SLOT_PATH: &str = "/v1/succinct/slots/";

impl Slots {
    /// Slots that live `ttl`, at most `max_per_account` per account and `max_bytes` of stdin.
    pub fn new(ttl: Duration, max_per_account: usize, max_bytes: u64) -> Self {
        Self { slots: Mutex::new(HashMap::new()), ttl, max_per_account, max_bytes }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens a slot for `owner`: its URI and its presigned upload URL, under `base_url`.
    pub fn create(
        &self,
        base_url: &str,
        owner: Address,
        kind: SlotKind,
    ) -> Result<(String, String), SlotError> {
        let now = Instant::now();
        let mut slots = self.lock();
        slots.retain(|_, s| s.expires > now);
        if slots.len() >= MAX_SLOTS {
            return Err(SlotError::Crowded(MAX_SLOTS));
        }
        if slots.values().filter(|s| s.owner == owner).count() >= self.max_per_account {
            return Err(SlotError::TooMany { owner, max: self.max_per_account });
        }
        let id = random_hex(16);
        let token = random_hex(16);
        let uri = format!("{}{SLOT_PATH}{id}", base_url.trim_end_matches('/'));
        let url = format!("{uri}?token={token}");
        slots.insert(
            id,
            Slot { kind, owner, token, expires: now + self.ttl, filled: None, bytes: 0 },
        );
        Ok((uri, url))
    }

    /// The slot id named by `uri`, if it is one of ours.
    fn id_of(uri: &str) -> Option<&str> {
        uri.rsplit_once(SLOT_PATH).map(|(_, id)| id).filter(|id| !id.is_empty())
    }

    /// What the slot at `uri` holds, checking that `owner` created it and it is of `kind`.
    pub fn take(
        &self,
        uri: &str,
        owner: &Address,
        wanted: &'static str,
        kinds: &[SlotKind],
    ) -> Result<(SlotKind, Filled), SlotError> {
        let id = Self::id_of(uri).ok_or_else(|| SlotError::Unknown(uri.to_owned()))?;
        let slots = self.lock();
        let slot = slots
            .get(id)
            .filter(|s| s.expires > Instant::now())
            .ok_or_else(|| SlotError::Unknown(uri.to_owned()))?;
        if slot.owner != *owner {
            return Err(SlotError::Owner(uri.to_owned()));
        }
        if !kinds.contains(&slot.kind) {
            return Err(SlotError::Kind { uri: uri.to_owned(), kind: slot.kind, wanted });
        }
        let filled = slot.filled.clone().ok_or_else(|| SlotError::Empty(uri.to_owned()))?;
        Ok((slot.kind, filled))
    }

    /// Fills slot `id` with an upload, after checking its token and that it is empty.
    /// Checks that slot `id` exists, takes `token` and is empty: before a byte of the upload is
    /// read, so that nobody without the token makes the network receive a body.
    fn check_upload(&self, id: &str, token: &str) -> Result<SlotKind, SlotError> {
        let slots = self.lock();
        let slot = slots
            .get(id)
            .filter(|s| s.expires > Instant::now())
            .ok_or_else(|| SlotError::Unknown(id.to_owned()))?;
        if slot.token != token {
            return Err(SlotError::Token(id.to_owned()));
        }
        if slot.filled.is_some() {
            return Err(SlotError::Filled(id.to_owned()));
        }
        Ok(slot.kind)
    }

    /// The largest upload body a slot of `kind` takes (compressed, so at most what it may
    /// decompress to).
    fn body_limit(&self, state: &NetworkState, kind: SlotKind) -> u64 {
        match kind {
            SlotKind::Program => state.config.max_program_bytes.saturating_add(8),
            SlotKind::Stdin | SlotKind::PrivateStdin => self.max_bytes,
        }
    }

    /// Fills slot `id` (of `kind`, checked by [`Slots::check_upload`]) with an upload.
    async fn fill(
        &self,
        state: &NetworkState,
        id: &str,
        kind: SlotKind,
        body: Bytes,
    ) -> Result<(), SlotError> {
        let uri = id.to_owned();
        let config = &state.config;
        let format = |source| SlotError::Format { uri: uri.clone(), source };
        let filled = match kind {
            SlotKind::Program => {
                let packed = formats::unzstd(&body, config.max_program_bytes.saturating_add(8))
                    .map_err(format)?;
                let program = formats::program_from_bincode(&packed).map_err(format)?;
                let id = store_bytes(
                    state,
                    program,
                    ArtifactKind::Program,
                    Visibility::Public,
                    config.max_program_bytes,
                )
                .await
                .map_err(|e| SlotError::Storage { uri: uri.clone(), reason: e.to_string() })?;
                (Filled::Program(id), 0)
            }
            SlotKind::Stdin | SlotKind::PrivateStdin => {
                let packed = formats::unzstd(&body, self.max_bytes).map_err(format)?;
                let slices = formats::stdin_from_bincode(&packed).map_err(format)?;
                let bytes = slices.iter().map(|s| s.len() as u64).sum();
                (Filled::Stdin(Arc::new(slices)), bytes)
            }
        };
        let mut slots = self.lock();
        let held: u64 = slots.values().map(|s| s.bytes).sum();
        if held.saturating_add(filled.1) > self.max_bytes {
            return Err(SlotError::Full { held, max: self.max_bytes });
        }
        let slot = slots.get_mut(id).ok_or_else(|| SlotError::Unknown(uri.clone()))?;
        if slot.filled.is_some() {
            return Err(SlotError::Filled(uri));
        }
        slot.filled = Some(filled.0);
        slot.bytes = filled.1;
        Ok(())
    }

    /// Forgets the slot at `uri` (its inputs are stored with the request now).
    pub fn forget(&self, uri: &str) {
        if let Some(id) = Self::id_of(uri) {
            self.lock().remove(id);
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Where a program stored as `artifact` is served, as `bincode(Vec<u8>)`.
pub fn program_url(base: &str, artifact: &ArtifactId) -> String {
    format!("{}/v1/succinct/programs/{artifact}", base.trim_end_matches('/'))
}

/// Where a request's public inputs are served, as `bincode(SP1Stdin)`.
pub fn stdin_url(base: &str, request: &RequestId) -> String {
    format!("{}/v1/succinct/stdins/{request}", base.trim_end_matches('/'))
}

/// Where a fulfilled request's proof is served, as the SDK reads it.
pub fn proof_url(base: &str, request: &RequestId) -> String {
    format!("{}/v1/succinct/proofs/{request}", base.trim_end_matches('/'))
}

/// What the HTTP routes share.
#[derive(Clone)]
struct Routes {
    state: Arc<NetworkState>,
    slots: Arc<Slots>,
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// A refusal as plain text with its status.
fn refuse(status: StatusCode, message: String) -> Response {
    (status, message).into_response()
}

async fn put_slot(
    State(routes): State<Routes>,
    Path(id): Path<String>,
    Query(query): Query<TokenQuery>,
    body: axum::body::Body,
) -> Response {
    let kind = match routes.slots.check_upload(&id, &query.token) {
        Ok(kind) => kind,
        Err(e) => return refuse(e.http_status(), e.to_string()),
    };
    let limit = routes.slots.body_limit(&routes.state, kind);
    let Ok(body) = axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX)).await
    else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("artifact {id}: the upload is above {limit} bytes, or was cut off"),
        );
    };
    match routes.slots.fill(&routes.state, &id, kind, body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => refuse(e.http_status(), e.to_string()),
    }
}

async fn get_program(State(routes): State<Routes>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<ArtifactId>() else {
        return refuse(StatusCode::BAD_REQUEST, format!("{id:?} is not an artifact id"));
    };
    let known = routes.state.market().has_program_artifact(&id);
    if !known {
        return refuse(StatusCode::NOT_FOUND, format!("no program is stored as artifact {id}"));
    }
    match read_artifact(&routes.state, &id, routes.state.config.max_program_bytes).await {
        Ok(program) => formats::program_to_bincode(&program).into_response(),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, format!("program {id}: {e}")),
    }
}

async fn get_stdin(State(routes): State<Routes>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<RequestId>() else {
        return refuse(StatusCode::BAD_REQUEST, format!("{id:?} is not a request id"));
    };
    let (artifact, version, private) = match routes.state.request(&id).await {
        Ok(Some(r)) => (r.spec.inputs_artifact_id, r.spec.zkvm_version, r.spec.inputs_private),
        Ok(None) => return refuse(StatusCode::NOT_FOUND, format!("no proof request {id}")),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.message().to_owned()),
    };
    if private {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "the inputs of {id} are private: the assigned prover reads them through provernet's API"
            ),
        );
    }
    let inputs =
        match read_artifact(&routes.state, &artifact, routes.state.config.max_artifact_bytes).await
        {
            Ok(inputs) => inputs,
            Err(e) => {
                return refuse(StatusCode::SERVICE_UNAVAILABLE, format!("inputs of {id}: {e}"));
            }
        };
    match formats::stdin_from_inputs(&version, &inputs) {
        Ok(slices) => formats::stdin_to_bincode(&slices).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("inputs of {id}: {e}")),
    }
}

async fn get_proof(State(routes): State<Routes>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<RequestId>() else {
        return refuse(StatusCode::BAD_REQUEST, format!("{id:?} is not a request id"));
    };
    let r = match routes.state.request(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => return refuse(StatusCode::NOT_FOUND, format!("no proof request {id}")),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.message().to_owned()),
    };
    let Some(artifact) = r.proof_artifact_id else {
        return refuse(StatusCode::NOT_FOUND, format!("proof request {id} is not fulfilled"));
    };
    if let Some(at) = r.proof_deleted_at {
        return refuse(
            StatusCode::GONE,
            format!(
                "the proof of {id} was deleted at {at} (unix seconds) by the network's proof retention"
            ),
        );
    }
    let version = r.spec.zkvm_version;
    let bundle = match read_artifact(&routes.state, &artifact, routes.state.config.max_proof_bytes)
        .await
    {
        Ok(bundle) => bundle,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, format!("proof of {id}: {e}")),
    };
    let backend = match routes.state.zkvms.get(&version) {
        Ok(backend) => backend,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if !formats::is_sp1(&version) {
        // No SDK of its own: the provernet bundle, which `provernet verify` checks.
        return bundle.into_response();
    }
    match provernet_zkvm::ProofBundle::decode(&bundle).and_then(|b| backend.sdk_proof(&b.proof)) {
        Ok(proof) => proof.into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, format!("proof of {id}: {e}")),
    }
}

/// The facade's HTTP routes, to serve beside the ArtifactStore's.
pub fn router(state: Arc<NetworkState>, slots: Arc<Slots>) -> Router {
    let limit = state.config.max_program_bytes.max(slots.max_bytes) as usize;
    Router::new()
        .route("/v1/succinct/slots/{slot}", put(put_slot))
        .route("/v1/succinct/programs/{artifact}", get(get_program))
        .route("/v1/succinct/stdins/{request}", get(get_stdin))
        .route("/v1/succinct/proofs/{request}", get(get_proof))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Routes { state, slots })
}
