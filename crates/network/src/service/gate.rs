//! The standby gate: while this process stands by, only reads and subscriptions reach the
//! services; every other call is answered [`standby_refusal`] before any of its work is done
//! (no body is decoded, no signature checked).

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{Either, Ready, ready};
use tonic::codegen::http;
use tower::{Layer, Service};

use super::{NetworkState, standby_refusal};

/// The calls a standby serves: those that change nothing. Any other path, including one added
/// later, is refused while standing by.
const READS: &[&str] = &[
    "/provernet.v1.ProverNetwork/GetNetworkInfo",
    "/provernet.v1.ProverNetwork/GetAccount",
    "/provernet.v1.ProverNetwork/GetProgram",
    "/provernet.v1.ProverNetwork/GetProofRequest",
    "/provernet.v1.ProverNetwork/ListProofRequests",
    "/provernet.v1.ProverNetwork/SubscribeRequests",
    "/network.ProverNetwork/GetProofRequestStatus",
    "/network.ProverNetwork/GetProofRequestDetails",
    "/network.ProverNetwork/GetFilteredProofRequests",
    "/network.ProverNetwork/GetNonce",
    "/network.ProverNetwork/GetProgram",
    "/network.ProverNetwork/GetProofRequestParams",
    "/network.ProverNetwork/GetProversByUptime",
    "/network.ProverNetwork/GetOwner",
    "/network.ProverNetwork/GetBalance",
    "/network.ProverNetwork/GetMarketPricePerPgu",
];

/// Services a standby serves whole: health (how clients find the leader) and reflection.
const SERVED_WHOLE: &[&str] = &["/grpc.health.v1.Health/", "/grpc.reflection."];

/// Whether a standby serves the call at `path`.
fn served_standing_by(path: &str) -> bool {
    READS.contains(&path) || SERVED_WHOLE.iter().any(|prefix| path.starts_with(prefix))
}

/// Wraps the gRPC services in a [`StandbyGate`].
#[derive(Clone)]
pub struct StandbyGateLayer {
    state: Arc<NetworkState>,
}

impl StandbyGateLayer {
    /// A gate that lets everything through once `state` leads.
    pub fn new(state: Arc<NetworkState>) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for StandbyGateLayer {
    type Service = StandbyGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StandbyGate { inner, state: self.state.clone() }
    }
}

/// Refuses calls that change the market while this process stands by.
#[derive(Clone)]
pub struct StandbyGate<S> {
    inner: S,
    state: Arc<NetworkState>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for StandbyGate<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<S::Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        if self.state.leads() || served_standing_by(request.uri().path()) {
            Either::Right(self.inner.call(request))
        } else {
            Either::Left(ready(Ok(standby_refusal().into_http())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::served_standing_by;

    #[test]
    fn a_standby_serves_reads_and_health_only() {
        assert!(served_standing_by("/provernet.v1.ProverNetwork/GetProofRequest"));
        assert!(served_standing_by("/provernet.v1.ProverNetwork/SubscribeRequests"));
        assert!(served_standing_by("/grpc.health.v1.Health/Check"));
        assert!(served_standing_by("/network.ProverNetwork/GetNonce"));
        for write in [
            "/provernet.v1.ProverNetwork/Bid",
            "/provernet.v1.ProverNetwork/RequestProof",
            "/provernet.v1.ProverNetwork/FulfillProof",
            "/provernet.v1.ProverNetwork/RegisterProgram",
            "/provernet.v1.ProverNetwork/PresignArtifactUpload",
            "/network.ProverNetwork/RequestProof",
            "/network.ProverNetwork/CreateProgram",
            "/artifact.ArtifactStore/CreateArtifact",
            "/provernet.v1.ProverNetwork/SomethingNew",
        ] {
            assert!(!served_standing_by(write), "{write} must be refused");
        }
    }
}
