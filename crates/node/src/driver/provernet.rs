//! The driver for a provernet network (`provernet.v1`): the request stream is the only trigger
//! (no polling). After subscribing, and after a gap (the stream broke or said it lagged), it
//! lists what it may have missed: open executed requests, requests assigned to this prover, and
//! the fate of the requests the node tracks.

use std::{collections::HashMap, sync::Arc, time::Duration};

use proto::request_event::Event;
use provernet_artifacts::{ArtifactCache, ArtifactClient, public_url};
use provernet_types::{
    Address, Amount, ArtifactId, NetworkClient, RequestId, Signer, field, proto,
};

use super::{
    ClientError, DriverParts, Feed, Files, NetEvent, NetworkDriver, RequestRecord, RequestState,
    Stake, sent,
};
use crate::{NodeConfig, config::NetworkApi, error::NodeError, prover::JobError};

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long connecting may take before it counts as a failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A node's link to a provernet network.
#[derive(Debug)]
pub struct ProvernetDriver {
    client: NetworkClient,
    operator: Signer,
    prover: Address,
    artifacts: ArtifactClient,
    cache: Arc<ArtifactCache>,
}

impl ProvernetDriver {
    /// Connects, and checks that the prover is registered and the key may act for it.
    ///
    /// # Errors
    /// [`NodeError::Network`] (transient ones are retried by the caller), or
    /// [`NodeError::Setup`] naming what is wrong with the prover.
    pub async fn connect(
        config: &NodeConfig,
        parts: &DriverParts,
    ) -> Result<(Self, Address), NodeError> {
        let client = NetworkClient::connect(&config.network_url, CONNECT_TIMEOUT).await?;
        let prover = parts.prover.unwrap_or_else(|| parts.operator.address());
        check_registration(&client, &prover, &parts.operator).await?;
        let artifacts =
            ArtifactClient::new().map_err(|e| NodeError::Setup(format!("artifact client: {e}")))?;
        let driver = Self {
            client,
            operator: parts.operator.clone(),
            prover,
            artifacts,
            cache: parts.cache.clone(),
        };
        Ok((driver, prover))
    }

    /// Maps one stream event; returns whether the stream lagged (a resync is due).
    async fn on_event(
        &self,
        feed: &Feed,
        pending: &mut HashMap<RequestId, proto::ProofRequest>,
        event: proto::RequestEvent,
    ) -> bool {
        let Ok(id) = RequestId::from_slice(&event.request_id) else {
            return matches!(event.event, Some(Event::Lagged(_)));
        };
        let closed = |why: String| NetEvent::Closed { id, why };
        let out = match event.event {
            Some(Event::Created(created)) => {
                if let Some(request) = created.request {
                    pending.insert(id, request);
                }
                return false;
            }
            Some(Event::Executed(executed)) => match pending.remove(&id) {
                Some(mut request) => {
                    request.pgus = executed.pgus;
                    request.public_outputs = executed.public_outputs;
                    NetEvent::Offered(Box::new(RequestRecord::Provernet(Box::new(request))))
                }
                // Created before this node subscribed: read it, without holding up the stream.
                None => {
                    self.read_then(feed, id, "cannot read an executed request", |record| {
                        NetEvent::Offered(Box::new(record))
                    });
                    return false;
                }
            },
            Some(Event::Assigned(assigned)) => {
                let ours = Address::from_slice(&assigned.prover).ok() == Some(self.prover);
                if feed.send(NetEvent::Assigned { id, ours }).await && ours {
                    // The prover's job starts from the network's record (price and state).
                    self.read_then(feed, id, "won a request but cannot read it", |record| {
                        NetEvent::Won(Box::new(record))
                    });
                }
                return false;
            }
            Some(Event::Unexecutable(_)) => {
                pending.remove(&id);
                return false;
            }
            Some(Event::Fulfilled(_)) => closed("fulfilled".into()),
            Some(Event::Unfulfillable(u)) => closed(format!("unfulfillable: {}", u.reason)),
            Some(Event::Cancelled(_)) => closed("cancelled by the requester".into()),
            // The prover follows its own submissions through the request's status.
            Some(Event::ProofSubmitted(_) | Event::ProofRejected(_)) | None => return false,
            Some(Event::Lagged(lagged)) => {
                tracing::warn!(missed = lagged.missed, "the request stream lagged; resyncing");
                return true;
            }
        };
        if matches!(out, NetEvent::Closed { .. }) {
            pending.remove(&id);
        }
        feed.send(out).await;
        false
    }

    /// Lists what the stream may have missed: open executed requests, requests assigned to this
    /// prover, and the fate of the tracked requests.
    async fn resync(&self, feed: &Feed) -> Result<(), ClientError> {
        let open = self
            .client
            .list_all(proto::ListProofRequestsRequest {
                statuses: vec![proto::RequestStatus::Requested as i32],
                execution_statuses: vec![proto::ExecutionStatus::Executed as i32],
                ..Default::default()
            })
            .await?;
        for request in open {
            let version = request.body.as_ref().map_or("", |b| b.zkvm_version.as_str());
            if feed.versions.iter().any(|v| v == version) {
                feed.send(NetEvent::Offered(Box::new(RequestRecord::Provernet(Box::new(request)))))
                    .await;
            }
        }
        let mine = self
            .client
            .list_all(proto::ListProofRequestsRequest {
                statuses: vec![proto::RequestStatus::Assigned as i32],
                prover: self.prover.as_bytes().to_vec(),
                ..Default::default()
            })
            .await?;
        for request in mine {
            let Ok(id) = field::request_id("request_id", &request.request_id) else { continue };
            feed.send(NetEvent::Assigned { id, ours: true }).await;
            feed.send(NetEvent::Won(Box::new(RequestRecord::Provernet(Box::new(request))))).await;
        }
        for id in (feed.tracked)() {
            let record = self.request(&id).await?;
            let event = match record.state() {
                RequestState::Requested => continue,
                // Won: already listed above (or a job the prover holds).
                RequestState::Assigned(p) | RequestState::Fulfilled { prover: p, .. }
                    if p == self.prover =>
                {
                    continue;
                }
                RequestState::Assigned(_) | RequestState::Fulfilled { .. } => {
                    NetEvent::Assigned { id, ours: false }
                }
                RequestState::Closed(why) => NetEvent::Closed { id, why },
            };
            feed.send(event).await;
        }
        Ok(())
    }

    /// Reads request `id` in a task of its own and sends what `then` makes of it.
    fn read_then(
        &self,
        feed: &Feed,
        id: RequestId,
        failed: &'static str,
        then: impl FnOnce(RequestRecord) -> NetEvent + Send + 'static,
    ) {
        let client = self.client.clone();
        let net_event_tx = feed.net_event_tx.clone();
        tokio::spawn(async move {
            match client.proof_request(&id).await {
                Ok(request) => {
                    let _ =
                        net_event_tx.send(then(RequestRecord::Provernet(Box::new(request)))).await;
                }
                Err(e) => tracing::warn!(%id, "{failed}: {e}"),
            }
        });
    }

    async fn cached(&self, url: &str, id: &ArtifactId) -> Result<Arc<[u8]>, JobError> {
        let refused = |reason: String| JobError::Artifact { id: *id, reason };
        let path = self
            .cache
            .get_or_download(&self.artifacts, url, id, None)
            .await
            .map_err(|e| refused(e.to_string()))?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| refused(format!("cannot read the cached copy: {e}")))?;
        Ok(bytes.into())
    }
}

#[tonic::async_trait]
impl NetworkDriver for ProvernetDriver {
    fn api(&self) -> NetworkApi {
        NetworkApi::Provernet
    }

    fn url(&self) -> &str {
        self.client.url()
    }

    fn limitations(&self) -> &'static [&'static str] {
        &[]
    }

    async fn follow(&self, feed: Feed) {
        let mut backoff = Duration::from_millis(100);
        // Requests created and not yet executed.
        let mut pending = HashMap::new();
        let filter = proto::SubscribeRequestsRequest {
            zkvm_versions: feed.versions.clone(),
            ..Default::default()
        };
        while !feed.cancel.is_cancelled() {
            let stream = tokio::select! {
                () = feed.cancel.cancelled() => break,
                s = self.client.subscribe(filter.clone()) => s,
            };
            match stream {
                Ok(mut stream) => {
                    feed.health.set_subscription_up(true);
                    tracing::info!("subscribed to the network's requests");
                    backoff = Duration::from_millis(100);
                    if let Err(e) = self.resync(&feed).await {
                        tracing::warn!("resync after connecting failed: {e}");
                    }
                    feed.set_up(true);
                    loop {
                        let message = tokio::select! {
                            () = feed.cancel.cancelled() => break,
                            m = stream.message() => m,
                        };
                        match message {
                            Ok(Some(event)) => {
                                if self.on_event(&feed, &mut pending, event).await
                                    && let Err(e) = self.resync(&feed).await
                                {
                                    tracing::warn!("resync after a lag failed: {e}");
                                }
                            }
                            Ok(None) => {
                                tracing::warn!(
                                    code = "PN-SUBSCRIPTION-DOWN",
                                    "the network closed the request stream"
                                );
                                break;
                            }
                            Err(status) => {
                                tracing::warn!(
                                    code = "PN-SUBSCRIPTION-DOWN",
                                    "request stream broke: {status}"
                                );
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(code = "PN-SUBSCRIPTION-DOWN", "cannot subscribe: {e}"),
            }
            feed.set_up(false);
            tokio::select! {
                () = feed.cancel.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        feed.health.set_subscription_up(false);
    }

    async fn request(&self, id: &RequestId) -> Result<RequestRecord, ClientError> {
        let request = self.client.proof_request(id).await?;
        Ok(RequestRecord::Provernet(Box::new(request)))
    }

    async fn bid(&self, id: &RequestId, price: Amount) -> Result<(), ClientError> {
        self.client.bid(&self.operator, &self.prover, id, price).await
    }

    async fn fetch(&self, record: &RequestRecord) -> Result<Files, JobError> {
        let RequestRecord::Provernet(request) = record else {
            return Err(JobError::Malformed("a Succinct-API record on a provernet network".into()));
        };
        let id = record.id().map_err(|e| JobError::Malformed(e.to_string()))?;
        let body = request.body.as_ref().ok_or_else(|| JobError::Malformed("no body".into()))?;
        let program_id = field::artifact_id("program_artifact_id", &body.program_artifact_id)
            .map_err(|e| JobError::Malformed(e.to_string()))?;
        let inputs_id = field::artifact_id("inputs_artifact_id", &body.inputs_artifact_id)
            .map_err(|e| JobError::Malformed(e.to_string()))?;
        let base = self.client.artifact_store_url();
        let program = self.cached(&public_url(base, &program_id), &program_id).await?;
        let inputs_url = if body.inputs_private {
            self.client.presign_download(&self.operator, &id, &inputs_id).await.map_err(
                |source| JobError::Network { what: "get the private inputs' URL", source },
            )?
        } else {
            public_url(base, &inputs_id)
        };
        let inputs = self.cached(&inputs_url, &inputs_id).await?;
        Ok((program, inputs))
    }

    async fn submission(&self, _: &RequestRecord, bundle: Vec<u8>) -> Result<Vec<u8>, JobError> {
        Ok(bundle)
    }

    async fn fulfill(&self, id: &RequestId, proof: &[u8]) -> Result<(), ClientError> {
        let result = self.client.fulfill(&self.operator, &self.prover, id, proof.to_vec()).await;
        sent(result.map(|_| ()))
    }

    async fn verdict(&self, id: &RequestId) -> Result<RequestRecord, ClientError> {
        let filter = proto::SubscribeRequestsRequest {
            prover: self.prover.as_bytes().to_vec(),
            ..Default::default()
        };
        let judged = |r: &proto::ProofRequest| {
            r.status != proto::RequestStatus::Assigned as i32
                || r.pending_proof_artifact_id.is_empty()
        };
        let request = self.client.wait_until(id, filter, judged).await?;
        Ok(RequestRecord::Provernet(Box::new(request)))
    }

    async fn fail(&self, id: &RequestId, reason: &str) -> Result<(), ClientError> {
        self.client.fail(&self.operator, &self.prover, id, reason).await
    }

    async fn network_time(&self) -> Option<u64> {
        self.client.network_info().await.ok().map(|info| info.now)
    }

    async fn forfeit(&self, record: &RequestRecord) -> Option<Amount> {
        let RequestRecord::Provernet(r) = record else { return None };
        let spec = provernet_types::RequestSpec::try_from(r.body.as_ref()?).ok()?;
        let bps = self.client.network_info().await.ok()?.collateral_bps;
        collateral(spec.max_cost().ok()?, bps)
    }

    async fn stake(&self) -> Result<Option<Stake>, ClientError> {
        let call = "GetAccount";
        let Some(info) = self.client.account(&self.prover).await?.prover else {
            return Ok(None);
        };
        let amount = |field: &'static str, text: &str| {
            text.parse::<Amount>().map_err(|_| ClientError::Incomplete { call, field })
        };
        Ok(Some(Stake {
            total: amount("prover.stake", &info.stake)?,
            free: amount("prover.free_stake", &info.free_stake)?,
        }))
    }
}

/// Checks that `prover` is registered and `operator` may act for it.
pub(super) async fn check_registration(
    client: &NetworkClient,
    prover: &Address,
    operator: &Signer,
) -> Result<(), NodeError> {
    let account = client.account(prover).await?;
    let Some(info) = account.prover else {
        return Err(NodeError::Setup(format!(
            "{prover} is not a registered prover on network {}: register it with \
             `provernet node register --stake <amount>`",
            client.info().network_id
        )));
    };
    let registered_operator = Address::from_slice(&info.operator).ok();
    let me = operator.address();
    if me != *prover && registered_operator != Some(me) {
        return Err(NodeError::Setup(format!(
            "the key {me} may not act for prover {prover}: its operator is {}",
            registered_operator.map_or_else(|| "unset".into(), |a| a.to_string())
        )));
    }
    Ok(())
}

/// Basis points in a whole.
const BPS: u128 = 10_000;

/// The collateral a winner's stake holds for a request whose worst case is `max_cost`:
/// `collateral_bps` of it, rounded down, as the network's market takes it (split into quotient
/// and remainder so no amount overflows).
fn collateral(max_cost: Amount, collateral_bps: u32) -> Option<Amount> {
    let (a, bps) = (max_cost.get(), u128::from(collateral_bps));
    let whole = (a / BPS).checked_mul(bps)?;
    whole.checked_add(a % BPS * bps / BPS).map(Amount::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collateral_is_the_networks_share_of_the_worst_case() {
        assert_eq!(collateral(Amount::new(12_345), 1_000), Some(Amount::new(1_234)));
        assert_eq!(collateral(Amount::new(99), 10_000), Some(Amount::new(99)));
        assert_eq!(collateral(Amount::new(5), 0), Some(Amount::ZERO));
        assert_eq!(collateral(Amount::new(u128::MAX), 1_000), Some(Amount::new(u128::MAX / 10)));
        assert_eq!(collateral(Amount::new(u128::MAX), u32::MAX), None, "past the ledger");
    }
}
