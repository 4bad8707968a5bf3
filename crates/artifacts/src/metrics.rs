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
