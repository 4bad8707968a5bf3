//! [`RetryPolicy`]: exponential backoff for transient failures only.

use std::{future::Future, time::Duration};

use crate::error::ClientError;

/// How the client retries: up to `max_attempts` tries, waiting `initial_backoff`, then twice as
/// long each time up to `max_backoff`, with up to 25% random jitter so that many clients failing
/// together do not retry in lockstep. Only [`ClientError::is_retryable`] errors are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, including the first. Default: 4.
    pub max_attempts: u32,
    /// Wait before the first retry. Default: 200 ms.
    pub initial_backoff: Duration,
    /// Longest wait between tries. Default: 5 s.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The wait after failed try number `attempt` (1-based), before jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// Runs `op` (given the 1-based try number) until it succeeds, fails for good, or the tries
    /// run out; returns the last error.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, ClientError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut attempt = 1;
        loop {
            match op(attempt).await {
                Ok(value) => return Ok(value),
                Err(err) if err.is_retryable() && attempt < self.max_attempts.max(1) => {
                    let wait = jitter(self.backoff(attempt));
                    tracing::debug!(target: "provernet::artifacts", %err, attempt, ?wait, what, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// Adds up to 25% to `wait`, from the clock's nanoseconds (good enough to spread clients).
fn jitter(wait: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    wait + wait.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn unavailable() -> ClientError {
        ClientError::Status { status: 503, code: "x".into(), message: "busy".into() }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1), Duration::from_millis(200));
        assert_eq!(policy.backoff(2), Duration::from_millis(400));
        assert_eq!(policy.backoff(10), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_only() {
        let policy = RetryPolicy::default();
        let calls = AtomicU32::new(0);
        let result = policy
            .run("test", |attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { if attempt < 3 { Err(unavailable()) } else { Ok(attempt) } }
            })
            .await;
        assert_eq!(result.expect("third try succeeds"), 3);

        calls.store(0, Ordering::SeqCst);
        let result: Result<(), _> = policy
            .run("test", |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    Err(ClientError::Status { status: 403, code: "x".into(), message: "no".into() })
                }
            })
            .await;
        assert_eq!(result.err().and_then(|e| e.status()), Some(403));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "403 is final");

        calls.store(0, Ordering::SeqCst);
        let result: Result<(), _> = policy
            .run("test", |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(unavailable()) }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4, "gives up after max_attempts");
    }
}
