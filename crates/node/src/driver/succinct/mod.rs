//! The driver for a Succinct-API network (`network.ProverNetwork`): a provernet network started
//! with `--succinct-api`, or any endpoint that speaks the API as Succinct-protocol nodes use it.
//!
//! - Following: the API has no push events, so the node polls ([`poll`]) every
//!   `network.poll_interval_ms`: open executed requests it has not bid on, requests assigned to
//!   it, and the fate of its bids and jobs.
//! - Inputs: the program from `program_public_uri` (`bincode(Vec<u8>)`, checked against the
//!   request's `vk_hash` with the backend's own hash) and the stdin from `stdin_public_uri`
//!   (`bincode(SP1Stdin)`, made the backend's inputs), both by plain HTTP(S) and size-capped.
//! - Proofs: SP1's as `bincode(SP1ProofWithPublicValues)`; Miden, which has no SDK of its own,
//!   as the provernet proof bundle (what a provernet network's facade takes).
//! - The verdict: the request's record, polled until it is fulfilled, closed, or shows the
//!   proof rejected (`error = VERIFICATION_FAILURE`, the reason in `error_trace`).
//!
//! What such a node cannot know or do is [`LIMITATIONS`], logged at start and shown in `/status`.

mod client;
mod poll;

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::Duration,
};

use lru::LruCache;

pub use client::SuccinctClient;
use provernet_artifacts::{ArtifactClient, succinct as formats};
use provernet_types::{
    Address, Amount, NetworkClient, RequestId, succinct::proto::types as sproto,
};
use provernet_zkvm::{ProofBundle, ZkVm, ZkVmRegistry};

use super::{
    ClientError, DriverParts, Feed, Files, NetworkDriver, RequestRecord, RequestState, Stake, sent,
    truncated,
};
use crate::{NodeConfig, config::NetworkApi, error::NodeError, prover::JobError};

/// What a node on the Succinct API cannot know or do.
pub const LIMITATIONS: &[&str] = &[
    "the API has no call to register or stake a prover: do it by other means (on a provernet \
     network, `provernet node register`, which uses the native API on the same port, where the \
     node also checks the registration at start)",
    "private inputs are not served to prover nodes: such requests are skipped (inputs unreachable)",
    "the API pushes no events: the node polls for requests every network.poll_interval_ms",
    "the API publishes no public outputs: before proving, execution is checked by its PGUs only",
    "a rejected proof is seen only where the network reports it (error VERIFICATION_FAILURE); \
     elsewhere the job waits until the request closes",
    "earnings are what the network reports as the request's deduction_amount",
    "inputs have no content id to check: they are fetched by http(s) URL, size-capped",
];

/// Largest program downloaded: a provernet network's program limit, and bincode's length.
const MAX_PROGRAM_BYTES: u64 = (16 << 20) + 8;
/// Largest stdin downloaded: a provernet network's artifact limit.
const MAX_STDIN_BYTES: u64 = 1 << 30;
/// Programs kept in memory by `vk_hash`, so that a program is fetched and hashed once per run.
const PROGRAMS_KEPT: NonZeroUsize = NonZeroUsize::new(16).unwrap();
/// How long connecting may take before it counts as a failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest FailFulfillment trace sent.
const MAX_TRACE_BYTES: usize = 2048;
/// First and longest waits between reads of a submitted request.
const VERDICT_POLL: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(2));

/// A node's link to a Succinct-API network.
#[derive(Debug)]
pub struct SuccinctDriver {
    client: SuccinctClient,
    prover: Address,
    artifacts: ArtifactClient,
    backends: ZkVmRegistry,
    poll_interval: Duration,
    /// Checked programs by `vk_hash`.
    programs: Mutex<LruCache<Vec<u8>, Arc<[u8]>>>,
}

impl SuccinctDriver {
    /// Connects, reads the network's domain, and finds the prover the key acts for.
    ///
    /// # Errors
    /// [`NodeError::Network`] (transient ones are retried by the caller), or
    /// [`NodeError::Setup`] when the endpoint does not speak the API, its domain is malformed,
    /// or the key does not act for the configured prover.
    pub async fn connect(
        config: &NodeConfig,
        parts: &DriverParts,
    ) -> Result<(Self, Address), NodeError> {
        let url = &config.network_url;
        let (client, params) =
            match SuccinctClient::connect(url, parts.operator.clone(), CONNECT_TIMEOUT).await {
                Err(e) if e.code() == Some(tonic::Code::Unimplemented) => {
                    return Err(NodeError::Setup(format!(
                        "{url} does not serve the Succinct API (network.ProverNetwork): start \
                         the network with --succinct-api, or set network.api = \"provernet\""
                    )));
                }
                other => other?,
            };
        if params.domain.len() != 32 {
            return Err(NodeError::Setup(format!(
                "{url} gives a signing domain of {} bytes, not 32",
                params.domain.len()
            )));
        }
        let operator = parts.operator.address();
        let owner = client.owner(&operator).await?;
        let prover = parts.prover.unwrap_or(owner);
        if prover != owner && prover != operator {
            return Err(NodeError::Setup(format!(
                "the key {operator} acts for {owner} on {url}, not for prover {prover}: set \
                 `prover` to {owner}, or make {operator} {prover}'s operator"
            )));
        }
        // A provernet network answers its own API on the same port: there the prover's
        // registration can be checked as a native node checks it. Elsewhere nothing can.
        match NetworkClient::connect(url, CONNECT_TIMEOUT).await {
            Ok(native) => {
                super::provernet::check_registration(&native, &prover, &parts.operator).await?;
            }
            Err(_) => tracing::warn!(
                code = "PN-SUCCINCT-REGISTRATION",
                %prover,
                "the Succinct API cannot tell whether a prover is registered and staked: bids \
                 are refused until it is"
            ),
        }
        let artifacts =
            ArtifactClient::new().map_err(|e| NodeError::Setup(format!("artifact client: {e}")))?;
        let driver = Self {
            client,
            prover,
            artifacts,
            backends: parts.backends.clone(),
            poll_interval: Duration::from_millis(config.network.poll_interval_ms),
            programs: Mutex::new(LruCache::new(PROGRAMS_KEPT)),
        };
        Ok((driver, prover))
    }

    fn backend(&self, version: &str) -> Result<Arc<dyn ZkVm>, JobError> {
        self.backends
            .get(version)
            .map_err(|e| JobError::Backend { step: "backend lookup", reason: e.to_string() })
    }

    /// The request's program, fetched once per `vk_hash` and checked against it.
    async fn program(
        &self,
        request: &sproto::ProofRequest,
        backend: Arc<dyn ZkVm>,
    ) -> Result<Arc<[u8]>, JobError> {
        let kept =
            self.programs.lock().unwrap_or_else(|e| e.into_inner()).get(&request.vk_hash).cloned();
        if let Some(program) = kept {
            return Ok(program);
        }
        let url = &request.program_public_uri;
        let refused =
            |reason: String| JobError::Fetch { what: "program", url: url.clone(), reason };
        let bytes = self.download(url, MAX_PROGRAM_BYTES).await.map_err(refused)?;
        let program = formats::program_from_bincode(&bytes).map_err(|e| refused(e.to_string()))?;
        let program: Arc<[u8]> = program.into();
        let hashed = program.clone();
        let hash = tokio::task::spawn_blocking(move || backend.sdk_program_hash(&hashed))
            .await
            .map_err(|e| refused(format!("hashing panicked: {e}")))?
            .map_err(|e| refused(e.to_string()))?;
        if hash != request.vk_hash {
            return Err(refused(format!(
                "its hash is 0x{}, the request names 0x{}",
                hex::encode(&hash),
                hex::encode(&request.vk_hash)
            )));
        }
        self.programs.lock().unwrap_or_else(|e| e.into_inner()).put(hash, program.clone());
        Ok(program)
    }

    /// `url`'s bytes, at most `max`; only http(s) URLs.
    async fn download(&self, url: &str, max: u64) -> Result<bytes::Bytes, String> {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(format!("{url:?} is not an http(s) URL"));
        }
        self.artifacts.download_bounded(url, max).await.map_err(|e| e.to_string())
    }
}

#[tonic::async_trait]
impl NetworkDriver for SuccinctDriver {
    fn api(&self) -> NetworkApi {
        NetworkApi::Succinct
    }

    fn url(&self) -> &str {
        self.client.url()
    }

    fn limitations(&self) -> &'static [&'static str] {
        LIMITATIONS
    }

    async fn follow(&self, feed: Feed) {
        poll::follow(self, feed).await;
    }

    async fn request(&self, id: &RequestId) -> Result<RequestRecord, ClientError> {
        Ok(RequestRecord::Succinct(Box::new(self.client.details(id).await?)))
    }

    async fn bid(&self, id: &RequestId, price: Amount) -> Result<(), ClientError> {
        self.client.bid(id, price.get(), &self.prover).await
    }

    async fn fetch(&self, record: &RequestRecord) -> Result<Files, JobError> {
        let RequestRecord::Succinct(request) = record else {
            return Err(JobError::Malformed("a provernet record on a Succinct-API network".into()));
        };
        let version = record.zkvm_version();
        let backend = self.backend(&version)?;
        let program = self.program(request, backend).await?;
        let url = &request.stdin_public_uri;
        let refused = |reason: String| JobError::Fetch { what: "stdin", url: url.clone(), reason };
        if request.stdin_private || url.is_empty() {
            return Err(refused("private inputs are not served to prover nodes".into()));
        }
        let bytes = self.download(url, MAX_STDIN_BYTES).await.map_err(refused)?;
        let slices = formats::stdin_from_bincode(&bytes).map_err(|e| refused(e.to_string()))?;
        let inputs =
            formats::inputs_from_stdin(&version, slices).map_err(|e| refused(e.to_string()))?;
        Ok((program, inputs.into()))
    }

    async fn submission(
        &self,
        record: &RequestRecord,
        bundle: Vec<u8>,
    ) -> Result<Vec<u8>, JobError> {
        let version = record.zkvm_version();
        if !formats::is_sp1(&version) {
            // Miden has no SDK of its own: a provernet network's facade takes the bundle.
            return Ok(bundle);
        }
        let backend = self.backend(&version)?;
        let failed = |reason: String| JobError::Backend { step: "the SDK's proof format", reason };
        tokio::task::spawn_blocking(move || {
            let bundle = ProofBundle::decode(&bundle).map_err(|e| e.to_string())?;
            backend.sdk_proof(&bundle.proof).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| failed(format!("panicked: {e}")))?
        .map_err(failed)
    }

    async fn fulfill(&self, id: &RequestId, proof: &[u8]) -> Result<(), ClientError> {
        sent(self.client.fulfill(id, proof.to_vec()).await)
    }

    async fn verdict(&self, id: &RequestId) -> Result<RequestRecord, ClientError> {
        let mut wait = VERDICT_POLL.0;
        loop {
            let record = self.request(id).await?;
            let judged = match record.state() {
                RequestState::Assigned(p) if p == self.prover => record.rejection().is_some(),
                _ => true,
            };
            if judged {
                return Ok(record);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(VERDICT_POLL.1);
        }
    }

    async fn fail(&self, id: &RequestId, reason: &str) -> Result<(), ClientError> {
        let error = if reason.contains("execution") {
            sproto::ProofRequestError::ExecutionFailure
        } else {
            sproto::ProofRequestError::ProvingFailure
        };
        self.client.fail(id, error, truncated(reason, MAX_TRACE_BYTES)).await
    }

    /// The Succinct API has no call for a prover's stake.
    async fn stake(&self) -> Result<Option<Stake>, ClientError> {
        Ok(None)
    }
}
