//! [`Requester::wait_until`] and [`Requester::wait`]: the network's one wait
//! ([`NetworkClient::wait_until`]), with a timeout, change reports and one reopening.
//!
//! [`NetworkClient::wait_until`]: provernet_types::NetworkClient::wait_until

use std::time::Duration;

use provernet_types::{RequestId, proto};

use crate::{
    Requester,
    error::{RequesterError, Result},
    is_closed, status_name,
};

impl Requester {
    /// Waits until request `id` satisfies `done`, at most `timeout`; calls `on_change` with the
    /// request on the first read and whenever its status or execution status changes. Built on
    /// [`NetworkClient::wait_until`]: subscribed to this request's events before each read, so no
    /// change is missed and nothing is polled. A subscription that ends transiently (the network
    /// restarting) is reopened once.
    ///
    /// # Errors
    /// [`RequesterError::TimedOut`] naming the last status seen, [`RequesterError::NotFound`],
    /// [`RequesterError::StreamLost`] when the stream ends a second time, or a call's error.
    ///
    /// [`NetworkClient::wait_until`]: provernet_types::NetworkClient::wait_until
    pub async fn wait_until(
        &self,
        id: &RequestId,
        timeout: Duration,
        mut done: impl FnMut(&proto::ProofRequest) -> bool,
        mut on_change: impl FnMut(&proto::ProofRequest),
    ) -> Result<proto::ProofRequest> {
        let mut last: Option<(i32, i32)> = None;
        let mut status = "unknown";
        let mut observe = |request: &proto::ProofRequest| {
            let now = (request.status, request.execution_status);
            if last != Some(now) {
                on_change(request);
            }
            last = Some(now);
            status = status_name(request);
            done(request)
        };
        let wait = async {
            let mut reopened = false;
            loop {
                let filter = proto::SubscribeRequestsRequest::default();
                match self.client.wait_until(id, filter, &mut observe).await {
                    Ok(request) => return Ok(request),
                    Err(e) if e.is_transient() && !reopened => reopened = true,
                    Err(e) if e.is_transient() => return Err(RequesterError::StreamLost(e)),
                    Err(e) => return Err(self.not_found(id, e)),
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(result) => result,
            Err(_) => Err(RequesterError::TimedOut { id: *id, status, waited: timeout }),
        }
    }

    /// Waits until request `id` is closed (fulfilled, unfulfillable or cancelled), at most
    /// `timeout`, reporting changes to `on_change`: [`wait_until`](Self::wait_until) closed.
    ///
    /// # Errors
    /// As [`wait_until`](Self::wait_until).
    pub async fn wait(
        &self,
        id: &RequestId,
        timeout: Duration,
        on_change: impl FnMut(&proto::ProofRequest),
    ) -> Result<proto::ProofRequest> {
        self.wait_until(id, timeout, is_closed, on_change).await
    }
}
