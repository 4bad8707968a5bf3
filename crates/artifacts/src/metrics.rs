//! HTTP metrics of the store (scope `artifacts.http`), recorded through the `metrics` facade.
//! No exporter is installed here: the process embedding the store installs one.
//!
//! - `artifacts_http_requests_total{method,route,status}`: requests answered;
//! - `artifacts_http_request_duration_seconds{method,route,status}`: time to the response head
//!   (for PUT this includes receiving and storing the whole body);
//! - `artifacts_http_bytes_in_total`: artifact bytes received by PUT;
//! - `artifacts_http_bytes_out_total`: artifact bytes sent by GET.
//!
//! Routes are the matched route templates (`/v1/artifacts/{id}`), never ids.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

/// Name of the request counter.
pub const REQUESTS_TOTAL: &str = "artifacts_http_requests_total";
/// Name of the request latency histogram.
pub const REQUEST_DURATION_SECONDS: &str = "artifacts_http_request_duration_seconds";
/// Name of the counter of uploaded bytes.
pub const BYTES_IN_TOTAL: &str = "artifacts_http_bytes_in_total";
/// Name of the counter of downloaded bytes.
pub const BYTES_OUT_TOTAL: &str = "artifacts_http_bytes_out_total";

/// The store's metrics. Resolved on each use, so an exporter installed after the server was
/// built still sees them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ArtifactsHttpMetrics;

impl ArtifactsHttpMetrics {
    /// Registers the metric descriptions with the current recorder.
    pub fn describe() {
        describe_counter!(
            REQUESTS_TOTAL,
            Unit::Count,
            "HTTP requests answered by the artifact store"
        );
        describe_histogram!(
            REQUEST_DURATION_SECONDS,
            Unit::Seconds,
            "Time from request to response head (PUT: includes storing the body)"
        );
        describe_counter!(BYTES_IN_TOTAL, Unit::Bytes, "Artifact bytes received by PUT");
        describe_counter!(BYTES_OUT_TOTAL, Unit::Bytes, "Artifact bytes sent by GET");
    }

    /// Adds `bytes` received by an upload.
    pub fn bytes_in(bytes: u64) {
        counter!(BYTES_IN_TOTAL).increment(bytes);
    }

    /// Adds `bytes` sent by a download.
    pub fn bytes_out(bytes: u64) {
        counter!(BYTES_OUT_TOTAL).increment(bytes);
    }
}

/// Middleware recording the request counter and latency, keyed by matched route.
pub async fn track(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    counter!(REQUESTS_TOTAL, &labels).increment(1);
    histogram!(REQUEST_DURATION_SECONDS, &labels).record(start.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        sync::{
            Arc, Mutex,
            atomic::{AtomicU64, Ordering},
        },
    };

    use axum::{
        body::Body,
        http::{Method, Request},
    };
    use metrics::{
        Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString,
    };
    use provernet_types::ArtifactId;
    use tower::ServiceExt;

    use super::*;
    use crate::{
        ArtifactKind, ArtifactServer, ArtifactStorage, ArtifactStoreConfig, UrlSigner, Visibility,
        router,
    };

    /// Counts everything recorded, keyed by `name{label=value,...}`.
    #[derive(Default)]
    struct TestRecorder {
        counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
        histograms: Mutex<HashMap<String, Arc<Samples>>>,
    }

    #[derive(Default)]
    struct Samples(AtomicU64);

    impl HistogramFn for Samples {
        fn record(&self, _value: f64) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn render(key: &Key) -> String {
        let labels: Vec<String> =
            key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl Recorder for TestRecorder {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            Counter::from_arc(counters.entry(render(key)).or_default().clone())
        }

        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }

        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            let mut histograms = self.histograms.lock().unwrap_or_else(|e| e.into_inner());
            Histogram::from_arc(histograms.entry(render(key)).or_default().clone())
        }
    }

    impl TestRecorder {
        fn counter(&self, key: &str) -> u64 {
            let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
            counters.get(key).map_or(0, |c| c.load(Ordering::Relaxed))
        }
    }

    #[test]
    fn requests_bytes_and_latency_are_recorded_without_ids() {
        let recorder = TestRecorder::default();
        let signer = UrlSigner::new("metrics-test-secret-0123").expect("signer");
        let server = ArtifactServer::from_parts(
            ArtifactStorage::memory(),
            signer.clone(),
            &ArtifactStoreConfig::default(),
        );
        let data = vec![9u8; 10_000];
        let id = ArtifactId::of(&data);
        let put = signer.presign_put(
            id,
            ArtifactKind::Proof,
            Visibility::Public,
            std::time::Duration::from_secs(60),
            None,
        );
        let requests = [
            (Method::PUT, format!("{}?{}", put.path(), put.query()), Body::from(data)),
            (Method::GET, put.path(), Body::empty()),
            (Method::GET, crate::presign::artifact_path(&ArtifactId::of(b"none")), Body::empty()),
        ];

        // The local recorder is per thread: drive the router on a current-thread runtime here.
        metrics::with_local_recorder(&recorder, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                for (method, uri, body) in requests {
                    let request =
                        Request::builder().method(method).uri(uri).body(body).expect("request");
                    let response = router(server.clone()).oneshot(request).await.expect("response");
                    axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
                }
            });
        });

        let route = "route=/v1/artifacts/{id}";
        assert_eq!(
            recorder.counter(&format!("{REQUESTS_TOTAL}{{method=PUT,{route},status=201}}")),
            1
        );
        assert_eq!(
            recorder.counter(&format!("{REQUESTS_TOTAL}{{method=GET,{route},status=200}}")),
            1
        );
        assert_eq!(
            recorder.counter(&format!("{REQUESTS_TOTAL}{{method=GET,{route},status=404}}")),
            1
        );
        assert_eq!(recorder.counter(&format!("{BYTES_IN_TOTAL}{{}}")), 10_000);
        assert_eq!(recorder.counter(&format!("{BYTES_OUT_TOTAL}{{}}")), 10_000);
        let histograms = recorder.histograms.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(histograms.values().map(|s| s.0.load(Ordering::Relaxed)).sum::<u64>(), 3);
        let counters = recorder.counters.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            counters.keys().chain(histograms.keys()).all(|k| !k.contains("0x")),
            "no ids in labels"
        );
    }
}
