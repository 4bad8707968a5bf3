//! Calls to the network that retry transient failures with backoff, and the check of a job a
//! previous run submitted.

use std::{future::Future, time::Duration};

use provernet_types::{Address, ClientError};
use tokio_util::sync::CancellationToken;

use super::JobError;
use crate::{
    core::Confirmation,
    driver::{RequestRecord, RequestState},
};

/// First wait after a transient failure; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between attempts: a network restart takes seconds.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Calls `call` until it succeeds, fails for good, `attempts` are used up, or `cancel`.
///
/// # Errors
/// [`JobError::Network`] with the last error (retryable if attempts ran out on a transient
/// one), or [`JobError::Cancelled`].
pub async fn retry<T, F, Fut>(
    what: &'static str,
    attempts: u32,
    cancel: &CancellationToken,
    mut call: F,
) -> Result<T, JobError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(source) if source.is_transient() && attempt < attempts => {
                tracing::warn!(attempt, "{what} failed: {source}; retrying in {backoff:?}");
            }
            Err(source) => return Err(JobError::Network { what, source }),
        }
        tokio::select! {
            () = cancel.cancelled() => return Err(JobError::Cancelled(what)),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempt += 1;
    }
}

/// Whether a proof `prover` submitted in a previous run landed: reads the request, retrying
/// transient failures (`attempts` in all).
///
/// # Errors
/// [`JobError::Network`] when the network refuses the read, or keeps failing transiently.
pub async fn confirm<F, Fut>(
    prover: Address,
    attempts: u32,
    cancel: &CancellationToken,
    read: F,
) -> Result<Confirmation, JobError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<RequestRecord, ClientError>>,
{
    let request = retry("read the submitted request", attempts, cancel, read).await?;
    Ok(match request.state() {
        RequestState::Fulfilled { prover: p, paid } if p == prover => Confirmation::Fulfilled(paid),
        RequestState::Assigned(p) if p == prover => Confirmation::Assigned,
        RequestState::Closed(why) => Confirmation::Closed(why),
        RequestState::Requested => Confirmation::Closed("request is open again".into()),
        RequestState::Assigned(p) | RequestState::Fulfilled { prover: p, .. } => {
            Confirmation::Closed(format!("request is another prover's ({p})"))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use provernet_types::{Amount, proto};
    use tonic::Status;

    use super::*;

    fn fulfilled_by(prover: Address) -> RequestRecord {
        RequestRecord::Provernet(Box::new(proto::ProofRequest {
            status: proto::RequestStatus::Fulfilled as i32,
            assigned_prover: prover.as_bytes().to_vec(),
            paid: "1500".into(),
            ..Default::default()
        }))
    }

    /// A read that answers `failures` errors (made by `error`) before the request.
    fn flaky(
        failures: u32,
        error: fn() -> Status,
        request: RequestRecord,
    ) -> (Arc<AtomicU32>, impl FnMut() -> std::future::Ready<Result<RequestRecord, ClientError>>)
    {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let read = move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            std::future::ready(if n < failures {
                Err(ClientError::Rpc { call: "GetProofRequest", status: error() })
            } else {
                Ok(request.clone())
            })
        };
        (calls, read)
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_read_failure_is_retried_not_fatal() {
        let prover = Address::from_bytes([7; 20]);
        let (calls, read) = flaky(2, || Status::unavailable("restarting"), fulfilled_by(prover));
        let status = confirm(prover, 5, &CancellationToken::new(), read).await.unwrap();
        assert_eq!(status, Confirmation::Fulfilled(Amount::new(1500)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fatal_read_failure_is_not_retried() {
        let prover = Address::from_bytes([7; 20]);
        let (calls, read) = flaky(1, || Status::not_found("no such request"), fulfilled_by(prover));
        let err = confirm(prover, 5, &CancellationToken::new(), read).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_attempt_limit_and_say_so() {
        let prover = Address::from_bytes([7; 20]);
        let (calls, read) = flaky(10, || Status::unavailable("down"), fulfilled_by(prover));
        let err = confirm(prover, 3, &CancellationToken::new(), read).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn another_provers_fulfilment_closes_the_job() {
        let (_, read) = flaky(0, || Status::ok(""), fulfilled_by(Address::from_bytes([8; 20])));
        let status = confirm(Address::from_bytes([7; 20]), 5, &CancellationToken::new(), read)
            .await
            .unwrap();
        assert!(matches!(status, Confirmation::Closed(_)), "{status:?}");
    }
}
