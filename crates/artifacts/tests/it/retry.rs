//! The client retries transient failures with backoff, and only those.

use std::sync::{
    Arc,
    atomic::{AtomicU32, Ordering},
};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use provernet_artifacts::ArtifactId;
use tokio::net::TcpListener;

use crate::{client, within};

const BODY: &[u8] = b"flaky artifact";

/// Serves `BODY` at `/ok` after failing `failures` times with 503, and 404 at `/missing`.
async fn flaky_server(failures: u32) -> (String, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let app = Router::new()
        .route(
            "/ok",
            get(move |State(calls): State<Arc<AtomicU32>>| async move {
                if calls.fetch_add(1, Ordering::SeqCst) < failures {
                    Err(StatusCode::SERVICE_UNAVAILABLE)
                } else {
                    Ok(BODY)
                }
            }),
        )
        .route(
            "/missing",
            get(|State(calls): State<Arc<AtomicU32>>| async move {
                calls.fetch_add(1, Ordering::SeqCst);
                StatusCode::NOT_FOUND
            }),
        )
        .with_state(calls.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried() {
    within(async {
        let (base, calls) = flaky_server(2).await;
        let id = ArtifactId::of(BODY);
        let got =
            client().download_to_vec(&format!("{base}/ok"), &id, None).await.expect("third try");
        assert_eq!(got, BODY);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_are_not_retried() {
    within(async {
        let (base, calls) = flaky_server(0).await;
        let err = client()
            .download_to_vec(&format!("{base}/missing"), &ArtifactId::of(BODY), None)
            .await
            .expect_err("404");
        assert_eq!(err.status(), Some(404));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Nothing listening: connection refused is transient, retried, then reported.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let dead = format!("http://{}/ok", listener.local_addr().expect("addr"));
        drop(listener);
        let err = client()
            .download_to_vec(&dead, &ArtifactId::of(BODY), None)
            .await
            .expect_err("refused");
        assert!(err.is_retryable(), "{err}");
        assert!(!err.to_string().contains("127.0.0.1"), "URLs stay out of errors: {err}");
    })
    .await;
}
