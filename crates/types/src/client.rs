//! [`NetworkClient`]: the ProverNetwork's gRPC client with signing and nonces taken care of.
//!
//! Every state-changing call needs the signer's current nonce. The client keeps one counter per
//! signer and holds that signer's lock from reading the nonce until the network answers, so
//! concurrent calls by one signer (a node's bidder and prover share the operator key) reach the
//! network in nonce order. After any error the counter is dropped and read again from the
//! network on the next call, because a refused call does not consume the nonce but a call lost in
//! transit might have.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use tonic::{
    Code, Status,
    transport::{Channel, Endpoint, channel::Change},
};

use crate::{
    address::Address,
    amount::Amount,
    envelope::{SignedBody, seal},
    ids::{ArtifactId, RequestId},
    proto::{self, SignedMessage, prover_network_client::ProverNetworkClient},
    request::RequestSpec,
    signature::Domain,
    signer::Signer,
};

/// Largest response the client accepts (proof requests listed in pages stay far below).
const MAX_DECODING_BYTES: usize = 64 << 20;

/// Why a call to the network failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The network's URL is not a valid endpoint.
    #[error("invalid network URL {url:?}: {source}")]
    Url {
        /// The URL given.
        url: String,
        /// What was wrong with it.
        source: tonic::transport::Error,
    },
    /// The extra certificate authority named by [`TLS_CA_ENV`] cannot be read.
    #[error("cannot read the certificate authority {path} ({TLS_CA_ENV}): {source}")]
    TlsCa {
        /// The file named.
        path: String,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// Nothing answered at the network's URL.
    #[error("cannot reach the network at {url}: {source}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// The connection error.
        source: tonic::transport::Error,
    },
    /// The network answered a call with an error.
    #[error("{call}: {}: {}", status.code(), status.message())]
    Rpc {
        /// The call that failed.
        call: &'static str,
        /// The network's answer.
        status: Status,
    },
    /// The network answered with a message missing a field it always sets.
    #[error("{call}: the network's answer has no {field}")]
    Incomplete {
        /// The call.
        call: &'static str,
        /// The missing field.
        field: &'static str,
    },
}

impl ClientError {
    /// The gRPC status code, if the network answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }

    /// Whether trying again later may succeed (network down, overloaded, or timed out, or the
    /// connection broke under the call: the network process died), as opposed to a refusal that
    /// will repeat.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Rpc { status, .. } => match status.code() {
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Aborted => true,
                // What tonic answers when the connection fails under a call.
                Code::Unknown => std::error::Error::source(status)
                    .is_some_and(|e| e.is::<tonic::transport::Error>()),
                _ => false,
            },
            Self::Url { .. } | Self::TlsCa { .. } | Self::Incomplete { .. } => false,
        }
    }
}

/// A signer's nonce as last known: `None` until read from the network or after an error.
type NonceSlot = Arc<tokio::sync::Mutex<Option<u64>>>;

/// A connection to one ProverNetwork: typed calls, signed under its domain with managed nonces.
#[derive(Clone)]
pub struct NetworkClient {
    rpc: ProverNetworkClient<Channel>,
    url: String,
    info: Arc<proto::GetNetworkInfoResponse>,
    domain: Domain,
    nonces: Arc<std::sync::Mutex<HashMap<Address, NonceSlot>>>,
}

impl std::fmt::Debug for NetworkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkClient")
            .field("url", &self.url)
            .field("network_id", &self.info.network_id)
            .finish_non_exhaustive()
    }
}

/// A gRPC channel to `url` (`http://host:port`, or `https://` with TLS: the system's
/// certificate authorities and those in [`TLS_CA_ENV`]'s file), for any of a network's
/// services; gives up after `timeout` when nothing answers.
///
/// `url` may list several addresses separated by commas, the processes of one network with hot
/// standby ([`network_urls`]): the channel then goes to whichever of them leads and follows a new
/// leader ([`FAILOVER_PROBE`]); it connects when first used, so nothing is checked here but the
/// URLs.
///
/// # Errors
/// [`ClientError::Url`], [`ClientError::TlsCa`] or [`ClientError::Unreachable`].
pub async fn connect_channel(url: &str, timeout: Duration) -> Result<Channel, ClientError> {
    let extra_ca = extra_ca()?;
    match network_urls(url)[..] {
        [] => connect_channel_trusting(url.trim(), timeout, extra_ca.as_deref()).await,
        [one] => connect_channel_trusting(one, timeout, extra_ca.as_deref()).await,
        ref several => {
            let endpoints = several
                .iter()
                .map(|u| endpoint(u, timeout, extra_ca.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(failover_channel(endpoints))
        }
    }
}

/// The environment variable naming a PEM file of certificate authorities that clients trust
/// beside the system's (a network with a certificate of a private CA, or self-signed).
pub const TLS_CA_ENV: &str = "PROVERNET_TLS_CA";

/// The PEM of [`TLS_CA_ENV`]'s file, if it names one.
///
/// # Errors
/// [`ClientError::TlsCa`] if the file cannot be read.
pub fn extra_ca() -> Result<Option<Vec<u8>>, ClientError> {
    let Some(path) = std::env::var_os(TLS_CA_ENV).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    std::fs::read(&path)
        .map(Some)
        .map_err(|source| ClientError::TlsCa { path: path.to_string_lossy().into_owned(), source })
}

/// [`connect_channel`], trusting the certificate authorities in `extra_ca` (PEM) beside the
/// system's for an `https://` URL; `http://` is plain h2c.
///
/// # Errors
/// [`ClientError::Url`] or [`ClientError::Unreachable`] (a certificate that does not verify
/// is a connection error).
pub async fn connect_channel_trusting(
    url: &str,
    timeout: Duration,
    extra_ca: Option<&[u8]>,
) -> Result<Channel, ClientError> {
    endpoint(url, timeout, extra_ca)?
        .connect()
        .await
        .map_err(|source| ClientError::Unreachable { url: url.to_owned(), source })
}

/// The endpoint of `url`, with TLS for `https://` (trusting `extra_ca` beside the system's).
fn endpoint(
    url: &str,
    timeout: Duration,
    extra_ca: Option<&[u8]>,
) -> Result<Endpoint, ClientError> {
    let url_err = |source| ClientError::Url { url: url.to_owned(), source };
    let mut endpoint = Endpoint::from_shared(url.to_owned()).map_err(url_err)?;
    if url.starts_with("https:") {
        let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if let Some(pem) = extra_ca {
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls).map_err(url_err)?;
    }
    Ok(endpoint.connect_timeout(timeout).tcp_nodelay(true))
}

/// How often a client of several network addresses checks which of them serve.
pub const FAILOVER_PROBE: Duration = Duration::from_millis(250);

/// A channel to whichever of `endpoints` leads the network: a task asks each for its health
/// every [`FAILOVER_PROBE`] (the standard gRPC health check of the `ProverNetwork` service,
/// which a standby reports NOT_SERVING while it serves reads) and keeps only those SERVING in
/// the channel's set, so calls go to the leader and follow a new one. The task ends with the
/// channel.
fn failover_channel(endpoints: Vec<Endpoint>) -> Channel {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let (channel, changes) = Channel::balance_channel::<usize>(endpoints.len());
    tokio::spawn(async move {
        let mut probes: Vec<HealthClient<Channel>> =
            endpoints.iter().map(|e| HealthClient::new(e.connect_lazy())).collect();
        let mut serving = vec![false; endpoints.len()];
        loop {
            for (k, endpoint) in endpoints.iter().enumerate() {
                let check = probes[k].check(HealthCheckRequest {
                    service: proto::prover_network_server::SERVICE_NAME.to_owned(),
                });
                let up = matches!(
                    tokio::time::timeout(Duration::from_secs(1), check).await,
                    Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32
                );
                if up == serving[k] {
                    continue;
                }
                serving[k] = up;
                let change = match up {
                    true => Change::Insert(k, endpoint.clone()),
                    false => Change::Remove(k),
                };
                if changes.send(change).await.is_err() {
                    return;
                }
            }
            if changes.is_closed() {
                return;
            }
            tokio::time::sleep(FAILOVER_PROBE).await;
        }
    });
    channel
}

/// The network's addresses in `urls`: one URL, or several separated by commas (the processes
/// of a network with hot standby, [`NetworkClient::connect`]).
pub fn network_urls(urls: &str) -> Vec<&str> {
    urls.split(',').map(str::trim).filter(|u| !u.is_empty()).collect()
}

impl NetworkClient {
    /// Connects to the network at `url` (`http://host:port`) and reads its info (network id,
    /// versions, ArtifactStore URL). Gives up after `timeout` when nothing answers.
    ///
    /// # Errors
    /// [`ClientError::Url`], [`ClientError::Unreachable`], or the GetNetworkInfo call's error.
    ///
    /// `url` may list several addresses separated by commas, the processes of one network with
    /// hot standby: the client then keeps a connection to whichever of them leads (by their
    /// gRPC health checks: a standby serves reads but reports NOT_SERVING) and moves to the new
    /// leader by itself when the old one goes (a call already sent to one that died fails as unavailable, which callers
    /// retry); a call made while none serves waits for one (the first for `timeout`).
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, ClientError> {
        let channel = connect_channel(url, timeout).await?;
        let mut rpc =
            ProverNetworkClient::new(channel).max_decoding_message_size(MAX_DECODING_BYTES);
        let info =
            tokio::time::timeout(timeout, rpc.get_network_info(proto::GetNetworkInfoRequest {}))
                .await
                .unwrap_or_else(|_| {
                    Err(Status::unavailable(format!(
                        "no process of the network at {url} answered within {timeout:?}"
                    )))
                })
                .map_err(|status| ClientError::Rpc { call: "GetNetworkInfo", status })?
                .into_inner();
        Ok(Self {
            rpc,
            url: url.to_owned(),
            domain: Domain::new(info.network_id.as_str()),
            info: Arc::new(info),
            nonces: Arc::default(),
        })
    }

    /// The generated gRPC client, for calls this type does not wrap.
    pub fn rpc(&self) -> ProverNetworkClient<Channel> {
        self.rpc.clone()
    }

    /// The URL this client connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The network's info as read at connection.
    pub fn info(&self) -> &proto::GetNetworkInfoResponse {
        &self.info
    }

    /// The domain messages are signed under (the network's id).
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The ArtifactStore's base URL as the network announces it.
    pub fn artifact_store_url(&self) -> &str {
        &self.info.artifact_store_url
    }

    // --- reading ---

    /// The network's info, read now (its clock, in `now`).
    ///
    /// # Errors
    /// The call's error.
    pub async fn network_info(&self) -> Result<proto::GetNetworkInfoResponse, ClientError> {
        let call = "GetNetworkInfo";
        self.rpc()
            .get_network_info(proto::GetNetworkInfoRequest {})
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| ClientError::Rpc { call, status })
    }

    /// The account at `address` (zero balance and nonce if never used).
    ///
    /// # Errors
    /// The call's error.
    pub async fn account(&self, address: &Address) -> Result<proto::Account, ClientError> {
        let call = "GetAccount";
        self.rpc()
            .get_account(proto::GetAccountRequest { address: address.as_bytes().to_vec() })
            .await
            .map_err(|status| ClientError::Rpc { call, status })?
            .into_inner()
            .account
            .ok_or(ClientError::Incomplete { call, field: "account" })
    }

    /// The proof request `id`.
    ///
    /// # Errors
    /// `NotFound` for an unknown id, or the call's error.
    pub async fn proof_request(&self, id: &RequestId) -> Result<proto::ProofRequest, ClientError> {
        let call = "GetProofRequest";
        self.rpc()
            .get_proof_request(proto::GetProofRequestRequest { request_id: id.as_bytes().to_vec() })
            .await
            .map_err(|status| ClientError::Rpc { call, status })?
            .into_inner()
            .request
            .ok_or(ClientError::Incomplete { call, field: "request" })
    }

    /// One page of proof requests matching `filter`.
    ///
    /// # Errors
    /// The call's error.
    pub async fn list(
        &self,
        filter: proto::ListProofRequestsRequest,
    ) -> Result<proto::ListProofRequestsResponse, ClientError> {
        let call = "ListProofRequests";
        self.rpc()
            .list_proof_requests(filter)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| ClientError::Rpc { call, status })
    }

    /// Every proof request matching `filter`, following the cursor to the end.
    ///
    /// # Errors
    /// The first failing page's error.
    pub async fn list_all(
        &self,
        mut filter: proto::ListProofRequestsRequest,
    ) -> Result<Vec<proto::ProofRequest>, ClientError> {
        let mut all = Vec::new();
        loop {
            let page = self.list(filter.clone()).await?;
            all.extend(page.requests);
            if page.next_cursor.is_empty() {
                return Ok(all);
            }
            filter.cursor = page.next_cursor;
        }
    }

    /// The programs found by name (every version) or by program id.
    ///
    /// # Errors
    /// `NotFound`, or the call's error.
    pub async fn program(
        &self,
        query: proto::GetProgramRequest,
    ) -> Result<proto::GetProgramResponse, ClientError> {
        let call = "GetProgram";
        self.rpc()
            .get_program(query)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| ClientError::Rpc { call, status })
    }

    /// The stream of request events matching `filter`.
    ///
    /// # Errors
    /// The call's error.
    pub async fn subscribe(
        &self,
        filter: proto::SubscribeRequestsRequest,
    ) -> Result<tonic::Streaming<proto::RequestEvent>, ClientError> {
        let call = "SubscribeRequests";
        self.rpc()
            .subscribe_requests(filter)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| ClientError::Rpc { call, status })
    }

    /// Waits until request `id` satisfies `done` and returns it: subscribes first (with
    /// `filter`, narrowed to `id`'s events), so that no change is missed, reads the request,
    /// then reads it again after each of its events or a lag notice — never polling. `done` sees
    /// every read, so a caller can also report changes from it.
    ///
    /// # Errors
    /// A failed read or subscription; an ended stream (the network stopping) is `UNAVAILABLE`,
    /// so [`ClientError::is_transient`] holds for it.
    pub async fn wait_until(
        &self,
        id: &RequestId,
        filter: proto::SubscribeRequestsRequest,
        mut done: impl FnMut(&proto::ProofRequest) -> bool,
    ) -> Result<proto::ProofRequest, ClientError> {
        use proto::request_event::Event;
        let filter =
            proto::SubscribeRequestsRequest { request_ids: vec![id.as_bytes().to_vec()], ..filter };
        let mut events = self.subscribe(filter).await?;
        loop {
            let request = self.proof_request(id).await?;
            if done(&request) {
                return Ok(request);
            }
            loop {
                let event = events
                    .message()
                    .await
                    .map_err(|status| ClientError::Rpc { call: "SubscribeRequests", status })?
                    .ok_or_else(|| ClientError::Rpc {
                        call: "SubscribeRequests",
                        status: Status::unavailable("the network ended the event stream"),
                    })?;
                // The filter passes only this request's events, but a lag notice too: after a
                // lag, this request's events may be among those dropped.
                if event.request_id == id.as_bytes()
                    || matches!(event.event, Some(Event::Lagged(_)))
                {
                    break;
                }
            }
        }
    }

    // --- signing ---

    /// Signs the body made by `body` from `signer`'s current nonce and sends it with `send`,
    /// holding the signer's nonce until the network answers.
    ///
    /// # Errors
    /// The call's error, named `call`.
    pub async fn signed<B, T, F, Fut>(
        &self,
        call: &'static str,
        signer: &Signer,
        body: impl FnOnce(u64) -> B,
        send: F,
    ) -> Result<T, ClientError>
    where
        B: SignedBody,
        F: FnOnce(ProverNetworkClient<Channel>, SignedMessage) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let address = signer.address();
        let slot = self
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(address)
            .or_default()
            .clone();
        let mut nonce = slot.lock().await;
        let current = match *nonce {
            Some(n) => n,
            None => self.account(&address).await?.nonce,
        };
        let message = seal(signer, &self.domain, &body(current));
        match send(self.rpc(), message).await {
            Ok(response) => {
                *nonce = Some(current + 1);
                Ok(response.into_inner())
            }
            Err(status) => {
                *nonce = None;
                Err(ClientError::Rpc { call, status })
            }
        }
    }

    /// Credits `amount` to `signer` from the faucet (devnets only).
    ///
    /// # Errors
    /// The call's error.
    pub async fn faucet(&self, signer: &Signer, amount: Amount) -> Result<(), ClientError> {
        self.signed(
            "Faucet",
            signer,
            |nonce| proto::FaucetBody { nonce, amount: amount.to_string() },
            |mut rpc, m| async move { rpc.faucet(m).await },
        )
        .await
        .map(drop)
    }

    /// Registers `owner` as a prover with `stake`, bidding and proving through `operator`.
    ///
    /// # Errors
    /// The call's error (`AlreadyExists` when already registered).
    pub async fn register_prover(
        &self,
        owner: &Signer,
        stake: Amount,
        operator: &Address,
    ) -> Result<(), ClientError> {
        self.signed(
            "RegisterProver",
            owner,
            |nonce| proto::RegisterProverBody {
                nonce,
                stake: stake.to_string(),
                operator: operator.as_bytes().to_vec(),
            },
            |mut rpc, m| async move { rpc.register_prover(m).await },
        )
        .await
        .map(drop)
    }

    /// Registers the program stored as `artifact` under `name` for `zkvm_version`.
    ///
    /// # Errors
    /// The call's error (`AlreadyExists`, `InvalidArgument` for a program that does not load).
    pub async fn register_program(
        &self,
        signer: &Signer,
        name: &str,
        zkvm_version: &str,
        artifact: &ArtifactId,
    ) -> Result<proto::Program, ClientError> {
        let call = "RegisterProgram";
        self.signed(
            call,
            signer,
            |nonce| proto::RegisterProgramBody {
                nonce,
                name: name.to_owned(),
                zkvm_version: zkvm_version.to_owned(),
                program_artifact_id: artifact.as_bytes().to_vec(),
            },
            |mut rpc, m| async move { rpc.register_program(m).await },
        )
        .await?
        .program
        .ok_or(ClientError::Incomplete { call, field: "program" })
    }

    /// Asks for a proof of `spec`; returns the request's id.
    ///
    /// # Errors
    /// The call's error.
    pub async fn request_proof(
        &self,
        signer: &Signer,
        spec: &RequestSpec,
    ) -> Result<RequestId, ClientError> {
        let call = "RequestProof";
        let response = self
            .signed(
                call,
                signer,
                |nonce| spec.to_body(nonce),
                |mut rpc, m| async move { rpc.request_proof(m).await },
            )
            .await?;
        RequestId::from_slice(&response.request_id)
            .map_err(|_| ClientError::Incomplete { call, field: "request_id" })
    }

    /// Cancels request `id` (before it is assigned).
    ///
    /// # Errors
    /// The call's error.
    pub async fn cancel(&self, signer: &Signer, id: &RequestId) -> Result<(), ClientError> {
        self.signed(
            "CancelRequest",
            signer,
            |nonce| proto::CancelRequestBody { nonce, request_id: id.as_bytes().to_vec() },
            |mut rpc, m| async move { rpc.cancel_request(m).await },
        )
        .await
        .map(drop)
    }

    /// Bids `price_per_pgu` on request `id` for `prover`, signed by `operator`.
    ///
    /// # Errors
    /// The call's error.
    pub async fn bid(
        &self,
        operator: &Signer,
        prover: &Address,
        id: &RequestId,
        price_per_pgu: Amount,
    ) -> Result<(), ClientError> {
        self.signed(
            "Bid",
            operator,
            |nonce| proto::BidBody {
                nonce,
                request_id: id.as_bytes().to_vec(),
                price_per_pgu: price_per_pgu.to_string(),
                prover: prover.as_bytes().to_vec(),
            },
            |mut rpc, m| async move { rpc.bid(m).await },
        )
        .await
        .map(drop)
    }

    /// Submits a proof bundle for request `id` on behalf of `prover`.
    ///
    /// # Errors
    /// The call's error (`InvalidArgument` for a proof that does not verify).
    pub async fn fulfill(
        &self,
        operator: &Signer,
        prover: &Address,
        id: &RequestId,
        bundle: Vec<u8>,
    ) -> Result<proto::FulfillProofResponse, ClientError> {
        self.signed(
            "FulfillProof",
            operator,
            |nonce| proto::FulfillProofBody {
                nonce,
                request_id: id.as_bytes().to_vec(),
                prover: prover.as_bytes().to_vec(),
                proof: Some(proto::fulfill_proof_body::Proof::ProofBytes(bundle)),
            },
            |mut rpc, m| async move { rpc.fulfill_proof(m).await },
        )
        .await
    }

    /// Gives up request `id` on behalf of `prover`, saying why.
    ///
    /// # Errors
    /// The call's error.
    pub async fn fail(
        &self,
        operator: &Signer,
        prover: &Address,
        id: &RequestId,
        reason: &str,
    ) -> Result<(), ClientError> {
        self.signed(
            "FailFulfillment",
            operator,
            |nonce| proto::FailFulfillmentBody {
                nonce,
                request_id: id.as_bytes().to_vec(),
                prover: prover.as_bytes().to_vec(),
                reason: reason.to_owned(),
            },
            |mut rpc, m| async move { rpc.fail_fulfillment(m).await },
        )
        .await
        .map(drop)
    }

    /// A presigned URL to upload `size` bytes with id `artifact` of `kind`.
    ///
    /// # Errors
    /// The call's error.
    pub async fn presign_upload(
        &self,
        signer: &Signer,
        artifact: &ArtifactId,
        kind: proto::ArtifactKind,
        size: u64,
    ) -> Result<String, ClientError> {
        self.signed(
            "PresignArtifactUpload",
            signer,
            |nonce| proto::PresignArtifactUploadBody {
                nonce,
                artifact_id: artifact.as_bytes().to_vec(),
                kind: kind as i32,
                size,
            },
            |mut rpc, m| async move { rpc.presign_artifact_upload(m).await },
        )
        .await
        .map(|r| r.url)
    }

    /// A presigned URL to read `artifact` of request `id` (private inputs: requester and
    /// assigned prover only).
    ///
    /// # Errors
    /// The call's error.
    pub async fn presign_download(
        &self,
        signer: &Signer,
        id: &RequestId,
        artifact: &ArtifactId,
    ) -> Result<String, ClientError> {
        self.signed(
            "PresignArtifactDownload",
            signer,
            |nonce| proto::PresignArtifactDownloadBody {
                nonce,
                artifact_id: artifact.as_bytes().to_vec(),
                request_id: id.as_bytes().to_vec(),
            },
            |mut rpc, m| async move { rpc.presign_artifact_download(m).await },
        )
        .await
        .map(|r| r.url)
    }
}
