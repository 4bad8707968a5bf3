//! The network seam: one node works against either API a network may speak, with the same
//! core, bidder, prover, job store and monitor.
//!
//! ```text
//!                      ┌─ provernet: subscribe (stream) + resync ─┐
//! network ─follow──▶  driver  ──NetEvent (offered, assigned, won, closed)──▶ bidder ─▶ core
//!                      └─ succinct: poll GetFilteredProofRequests ─┘
//! prover ─request/bid/fetch/fulfill/verdict/fail─▶ driver ─▶ network, artifacts
//! ```
//!
//! Layout:
//! - [`record`]: [`RequestRecord`], the network's record of a request, whichever API;
//! - [`provernet`]: the driver for `provernet.v1` (the request stream);
//! - [`succinct`]: the driver for the Succinct API (polled; what it cannot know, it says).

pub mod provernet;
pub mod record;
pub mod succinct;

use std::{sync::Arc, time::Duration};

use provernet_artifacts::ArtifactCache;
pub use provernet_types::ClientError;
use provernet_types::{Address, Amount, RequestId, Signer};
use provernet_zkvm::ZkVmRegistry;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use self::record::{RequestRecord, RequestState};
use crate::{
    NodeConfig, config::NetworkApi, error::NodeError, monitor::NodeHealth, prover::JobError,
};

/// A job's program and inputs bytes, in the backend's formats.
pub type Files = (Arc<[u8]>, Arc<[u8]>);

/// Events the driver sends the bidder (driver → bidder), before the bidder falls behind.
pub const NET_EVENT_CHANNEL_CAPACITY: usize = 1024;

/// The longest wait between attempts to reach the network at startup.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(10);

/// What happened on the network, as the bidder needs it, whichever API told.
#[derive(Debug)]
pub enum NetEvent {
    /// An executed open request of a version this node proves: decide on it (once).
    Offered(Box<RequestRecord>),
    /// A request was assigned (to this prover or another): its bids are resolved.
    Assigned {
        /// The request.
        id: RequestId,
        /// Whether this prover won it.
        ours: bool,
    },
    /// This prover won the request: the network's record, for the prover's job.
    Won(Box<RequestRecord>),
    /// A request closed (fulfilled, unfulfillable, cancelled): its bid expires, its job stops.
    Closed {
        /// The request.
        id: RequestId,
        /// Why.
        why: String,
    },
}

/// What a driver's [`NetworkDriver::follow`] works with (built by the bidder).
pub struct Feed {
    /// The zkVM versions this node proves (provernet's names).
    pub versions: Vec<String>,
    /// Where the driver sends what happened; read by the bidder.
    pub net_event_tx: mpsc::Sender<NetEvent>,
    /// Whether the feed is up (the stream subscribed, or the last polls answered); read by the
    /// runtime, which starts the node's readiness once it is.
    pub up: watch::Sender<bool>,
    /// The node's health, whose `subscription_up` follows the feed.
    pub health: Arc<NodeHealth>,
    /// Requests whose fate the node waits for: its open bids and its jobs.
    pub tracked: Arc<dyn Fn() -> Vec<RequestId> + Send + Sync>,
    /// Stops following.
    pub cancel: CancellationToken,
}

impl Feed {
    /// Sends `event` to the bidder; false when the bidder is gone (the node is stopping).
    async fn send(&self, event: NetEvent) -> bool {
        self.net_event_tx.send(event).await.is_ok()
    }

    /// Marks the feed up or down, for the runtime and the monitor.
    fn set_up(&self, up: bool) {
        self.health.set_subscription_up(up);
        self.up.send_replace(up);
    }
}

/// A network API, as the node uses it.
#[tonic::async_trait]
pub trait NetworkDriver: Send + Sync + std::fmt::Debug {
    /// The API it speaks.
    fn api(&self) -> NetworkApi;

    /// The network's URL, for logs and `/status`.
    fn url(&self) -> &str;

    /// What a node on this API cannot know or do, one sentence each (logged at start, and in
    /// `/status`).
    fn limitations(&self) -> &'static [&'static str];

    /// Follows the network until `feed.cancel`: sends what happens as [`NetEvent`]s, keeps
    /// `feed.up` current, and catches up after a gap.
    async fn follow(&self, feed: Feed);

    /// The network's record of request `id`, read now.
    async fn request(&self, id: &RequestId) -> Result<RequestRecord, ClientError>;

    /// Bids `price` per PGU on request `id` for the node's prover.
    async fn bid(&self, id: &RequestId, price: Amount) -> Result<(), ClientError>;

    /// The job's program and inputs, checked as far as the API allows (by content id on
    /// provernet; by the program's hash on the Succinct API).
    async fn fetch(&self, record: &RequestRecord) -> Result<Files, JobError>;

    /// The proof bundle the node made and verified for `record`, in the form this API takes
    /// (provernet: the bundle; the Succinct API: SP1's `bincode(SP1ProofWithPublicValues)`).
    async fn submission(
        &self,
        record: &RequestRecord,
        bundle: Vec<u8>,
    ) -> Result<Vec<u8>, JobError>;

    /// Submits a [`submission`](Self::submission) for request `id`. A retry after an answer
    /// lost in transit ("already being verified") is success.
    async fn fulfill(&self, id: &RequestId, proof: &[u8]) -> Result<(), ClientError>;

    /// Waits for the network's verdict on this prover's submission for `id`: the record once
    /// the request is fulfilled, closed, or shows the proof rejected.
    async fn verdict(&self, id: &RequestId) -> Result<RequestRecord, ClientError>;

    /// Tells the network this prover gives up request `id`, and why.
    async fn fail(&self, id: &RequestId, reason: &str) -> Result<(), ClientError>;

    /// The prover's stake now; none where the API cannot tell.
    async fn stake(&self) -> Result<Option<Stake>, ClientError>;

    /// The network's clock now (unix seconds); none where the API does not tell it.
    async fn network_time(&self) -> Option<u64> {
        None
    }

    /// The collateral this prover forfeits by missing `record`'s deadline; none where the API
    /// cannot tell (the network unreachable, or an API that publishes no collateral rule).
    async fn forfeit(&self, _record: &RequestRecord) -> Option<Amount> {
        None
    }
}

/// A prover's stake as the network reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stake {
    /// All of it.
    pub total: Amount,
    /// What is not locked as collateral for assigned requests.
    pub free: Amount,
}

/// What a driver is built from.
pub struct DriverParts {
    /// The operator key: signs bids, proofs and failures.
    pub operator: Signer,
    /// The prover account the node works for, if the config names one.
    pub prover: Option<Address>,
    /// Verified program and inputs files.
    pub cache: Arc<ArtifactCache>,
    /// The proving backends (the Succinct driver checks programs and converts proofs).
    pub backends: ZkVmRegistry,
}

/// Connects to the network the config names with its API's driver, retrying until it answers
/// or `shutdown`, and checks the prover; returns the driver and the prover the node works for.
///
/// # Errors
/// [`NodeError`] naming what is wrong (the API not served, the prover not registered or the key
/// not its operator), or [`NodeError::Stopped`].
pub async fn connect(
    config: &NodeConfig,
    parts: DriverParts,
    shutdown: &CancellationToken,
) -> Result<(Arc<dyn NetworkDriver>, Address), NodeError> {
    let mut backoff = Duration::from_millis(200);
    loop {
        let attempt = match config.network.api {
            NetworkApi::Provernet => provernet::ProvernetDriver::connect(config, &parts)
                .await
                .map(|(d, p)| (Arc::new(d) as Arc<dyn NetworkDriver>, p)),
            NetworkApi::Succinct => succinct::SuccinctDriver::connect(config, &parts)
                .await
                .map(|(d, p)| (Arc::new(d) as Arc<dyn NetworkDriver>, p)),
        };
        match attempt {
            Ok(connected) => {
                for limitation in connected.0.limitations() {
                    tracing::info!(api = %config.network.api, "limitation: {limitation}");
                }
                return Ok(connected);
            }
            Err(NodeError::Network(e)) if e.is_transient() => {
                tracing::warn!(code = "PN-NETWORK-UNREACHABLE", "{e}; retrying in {backoff:?}");
            }
            Err(e) => return Err(e),
        }
        tokio::select! {
            () = shutdown.cancelled() => return Err(NodeError::Stopped),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_CONNECT_BACKOFF);
    }
}

/// Whether `result` of a FulfillProof counts as sent: a retry after an answer lost in transit
/// finds the first submission being verified.
pub(crate) fn sent(result: Result<(), ClientError>) -> Result<(), ClientError> {
    match result {
        Err(e)
            if e.code() == Some(tonic::Code::FailedPrecondition)
                && e.to_string().contains("being verified") =>
        {
            Ok(())
        }
        other => other,
    }
}

/// A reason cut to at most `max` bytes on a character boundary, as a network keeps it.
pub(crate) fn truncated(reason: &str, max: usize) -> &str {
    let mut end = reason.len().min(max);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}
