//! A client of `network.ProverNetwork` as a prover node calls it: reads, and bodies signed with
//! EIP-191 `personal_sign` under the network's EIP-712 domain, with the operator's nonce kept
//! as the native client keeps it (read with GetNonce when unknown, +1 on success, read again
//! after any error).

use std::time::Duration;

use provernet_types::{
    Address, ClientError, RequestId, Signer,
    succinct::{
        self, SignedBody,
        proto::{network::prover_network_client::ProverNetworkClient, types as sproto},
    },
};
use tonic::{Request, Status, transport::Channel};

/// The largest reply read (a page of requests).
const MAX_DECODING_BYTES: usize = 64 << 20;
/// Each call's time limit, as reference nodes use.
const RPC_TIMEOUT: Duration = Duration::from_secs(15);
/// FulfillProof's: a network converts and checks an SP1 proof before it answers.
const FULFILL_TIMEOUT: Duration = Duration::from_secs(120);
/// Bodies are sent as prost bytes, signed as they are.
const BINARY: i32 = sproto::MessageFormat::Binary as i32;

/// The operator's connection to a Succinct-API network.
#[derive(Debug)]
pub struct SuccinctClient {
    rpc: ProverNetworkClient<Channel>,
    url: String,
    signer: Signer,
    domain: Vec<u8>,
    /// The operator's next nonce; `None` when unknown. Held across a signed call so that bids and
    /// proofs from the one key go out in nonce order.
    nonce: tokio::sync::Mutex<Option<u64>>,
}

/// A call's request, with the call's time limit.
fn timed<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

impl SuccinctClient {
    /// Connects to `url` and reads the network's signing domain (GetProofRequestParams).
    ///
    /// # Errors
    /// [`ClientError::Url`], [`ClientError::Unreachable`], or the call's error (UNIMPLEMENTED
    /// when the endpoint does not serve the Succinct API).
    pub async fn connect(
        url: &str,
        signer: Signer,
        timeout: Duration,
    ) -> Result<(Self, sproto::GetProofRequestParamsResponse), ClientError> {
        let channel = provernet_types::client::connect_channel(url, timeout).await?;
        let mut rpc =
            ProverNetworkClient::new(channel).max_decoding_message_size(MAX_DECODING_BYTES);
        let params = rpc
            .get_proof_request_params(timed(
                sproto::GetProofRequestParamsRequest { mode: sproto::ProofMode::Core as i32 },
                RPC_TIMEOUT,
            ))
            .await
            .map_err(|status| ClientError::Rpc { call: "GetProofRequestParams", status })?
            .into_inner();
        let client = Self {
            rpc,
            url: url.to_owned(),
            signer,
            domain: params.domain.clone(),
            nonce: tokio::sync::Mutex::new(None),
        };
        Ok((client, params))
    }

    /// The URL it connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The account `address` acts for (itself when it is nobody's delegate).
    ///
    /// # Errors
    /// The call's error, or a malformed owner.
    pub async fn owner(&self, address: &Address) -> Result<Address, ClientError> {
        let call = "GetOwner";
        let owner = self
            .rpc
            .clone()
            .get_owner(timed(
                sproto::GetOwnerRequest { address: address.as_bytes().to_vec() },
                RPC_TIMEOUT,
            ))
            .await
            .map_err(|status| ClientError::Rpc { call, status })?
            .into_inner()
            .owner;
        Address::from_slice(&owner).map_err(|e| ClientError::Rpc {
            call,
            status: Status::data_loss(format!("the owner is not an address: {e}")),
        })
    }

    /// One page of requests matching `filter`.
    ///
    /// # Errors
    /// The call's error.
    pub async fn filtered(
        &self,
        filter: sproto::GetFilteredProofRequestsRequest,
    ) -> Result<Vec<sproto::ProofRequest>, ClientError> {
        Ok(self
            .rpc
            .clone()
            .get_filtered_proof_requests(timed(filter, RPC_TIMEOUT))
            .await
            .map_err(|status| ClientError::Rpc { call: "GetFilteredProofRequests", status })?
            .into_inner()
            .requests)
    }

    /// Request `id` as the network records it.
    ///
    /// # Errors
    /// The call's error (NOT_FOUND for an unknown request, or a reply without one).
    pub async fn details(&self, id: &RequestId) -> Result<sproto::ProofRequest, ClientError> {
        let call = "GetProofRequestDetails";
        self.rpc
            .clone()
            .get_proof_request_details(timed(
                sproto::GetProofRequestDetailsRequest { request_id: id.as_bytes().to_vec() },
                RPC_TIMEOUT,
            ))
            .await
            .map_err(|status| ClientError::Rpc { call, status })?
            .into_inner()
            .request
            .ok_or_else(|| ClientError::Rpc {
                call,
                status: Status::not_found(format!("the network has no record of {id}")),
            })
    }

    /// Bids `amount` per PGU on request `id` for `prover`.
    ///
    /// # Errors
    /// The call's error.
    pub async fn bid(
        &self,
        id: &RequestId,
        amount: u128,
        prover: &Address,
    ) -> Result<(), ClientError> {
        let domain = self.domain.clone();
        self.signed(
            "Bid",
            |nonce| sproto::BidRequestBody {
                nonce,
                request_id: id.as_bytes().to_vec(),
                amount: amount.to_string(),
                domain,
                prover: prover.as_bytes().to_vec(),
                variant: sproto::TransactionVariant::BidVariant as i32,
            },
            |mut rpc, (signature, body)| async move {
                let message = sproto::BidRequest { format: BINARY, signature, body };
                rpc.bid(timed(message, RPC_TIMEOUT)).await.map(|_| ())
            },
        )
        .await
    }

    /// Submits `proof` (in the API's format for the request's version) for request `id`.
    ///
    /// # Errors
    /// The call's error.
    pub async fn fulfill(&self, id: &RequestId, proof: Vec<u8>) -> Result<(), ClientError> {
        let domain = self.domain.clone();
        self.signed(
            "FulfillProof",
            |nonce| sproto::FulfillProofRequestBody {
                nonce,
                request_id: id.as_bytes().to_vec(),
                proof,
                reserved_metadata: None,
                domain,
                variant: sproto::TransactionVariant::FulfillVariant as i32,
            },
            |mut rpc, (signature, body)| async move {
                let message = sproto::FulfillProofRequest { format: BINARY, signature, body };
                rpc.fulfill_proof(timed(message, FULFILL_TIMEOUT)).await.map(|_| ())
            },
        )
        .await
    }

    /// Gives up request `id` with `error` and `trace`.
    ///
    /// # Errors
    /// The call's error.
    pub async fn fail(
        &self,
        id: &RequestId,
        error: sproto::ProofRequestError,
        trace: &str,
    ) -> Result<(), ClientError> {
        self.signed(
            "FailFulfillment",
            |nonce| sproto::FailFulfillmentRequestBody {
                nonce,
                request_id: id.as_bytes().to_vec(),
                error: Some(error as i32),
                error_trace: Some(trace.as_bytes().to_vec()),
            },
            |mut rpc, (signature, body)| async move {
                let message = sproto::FailFulfillmentRequest { format: BINARY, signature, body };
                rpc.fail_fulfillment(timed(message, RPC_TIMEOUT)).await.map(|_| ())
            },
        )
        .await
    }

    /// Signs the body `body` makes of the operator's nonce and sends it with `send`, holding the
    /// nonce until the network answers.
    async fn signed<B, F, Fut>(
        &self,
        call: &'static str,
        body: impl FnOnce(u64) -> B,
        send: F,
    ) -> Result<(), ClientError>
    where
        B: SignedBody,
        F: FnOnce(ProverNetworkClient<Channel>, (Vec<u8>, Vec<u8>)) -> Fut,
        Fut: Future<Output = Result<(), Status>>,
    {
        let mut nonce = self.nonce.lock().await;
        let current = match *nonce {
            Some(n) => n,
            None => self.read_nonce().await?,
        };
        let sealed = succinct::seal(&self.signer, &body(current));
        match send(self.rpc.clone(), sealed).await {
            Ok(()) => {
                *nonce = Some(current + 1);
                Ok(())
            }
            Err(status) => {
                *nonce = None;
                Err(ClientError::Rpc { call, status })
            }
        }
    }

    async fn read_nonce(&self) -> Result<u64, ClientError> {
        Ok(self
            .rpc
            .clone()
            .get_nonce(timed(
                sproto::GetNonceRequest { address: self.signer.address().as_bytes().to_vec() },
                RPC_TIMEOUT,
            ))
            .await
            .map_err(|status| ClientError::Rpc { call: "GetNonce", status })?
            .into_inner()
            .nonce)
    }
}
