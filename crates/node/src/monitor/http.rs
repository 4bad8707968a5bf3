//! The monitor's HTTP endpoints (axum):
//! - `GET /metrics`: Prometheus text format;
//! - `GET /health/live`: 200 `ok` while the process runs;
//! - `GET /health/ready`: 200 when the node is ready and its request stream connected, else 503;
//!   both with a [`ReadyReport`] JSON body;
//! - `GET /status`: the [`StatusReport`] JSON that `provernet node status` reads.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{HealthSnapshot, service::Monitor};

/// The body of `/health/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyReport {
    /// Whether the node is ready to take work.
    pub ready: bool,
    /// What is not ready, in words; empty when ready.
    pub not_ready: Vec<String>,
}

impl ReadyReport {
    /// Readiness from the runtime's flags.
    pub fn from_health(health: &HealthSnapshot) -> Self {
        let mut not_ready = Vec::new();
        if !health.ready {
            not_ready.push(
                "the node is not ready (starting, or its store or network is unreachable)".into(),
            );
        }
        if !health.subscription_up {
            not_ready.push("the request stream from the network is disconnected".into());
        }
        Self { ready: not_ready.is_empty(), not_ready }
    }
}

/// The monitor's routes, for [`serve`] or for tests without a socket.
pub fn router(monitor: Arc<Monitor>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/status", get(status))
        .with_state(monitor)
}

/// Serves [`router`] on `listener` until `cancel`, then finishes the requests in flight.
///
/// # Errors
/// An I/O error of the listener.
pub async fn serve(
    listener: TcpListener,
    monitor: Arc<Monitor>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(monitor)).with_graceful_shutdown(cancel.cancelled_owned()).await
}

async fn metrics(State(monitor): State<Arc<Monitor>>) -> Response {
    // Fresh proving figures at each scrape; the system gauges come from the sampler.
    monitor.record_status_metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], monitor.render_metrics())
        .into_response()
}

async fn live() -> &'static str {
    "ok"
}

async fn ready(State(monitor): State<Arc<Monitor>>) -> Response {
    let report = ReadyReport::from_health(&monitor.health().snapshot());
    let code = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(report)).into_response()
}

async fn status(State(monitor): State<Arc<Monitor>>) -> Response {
    Json(monitor.report()).into_response()
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::{
        config::MonitorConfig,
        monitor::{JobStatus, NodeHealth, NodeStatus, service::StatusReport},
    };

    /// A bare HTTP/1.1 GET: (status code, body).
    async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        // axum sends fixed-length bodies for these responses, never chunked.
        assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
        (code, body.to_string())
    }

    #[tokio::test]
    async fn the_endpoints_answer_and_shut_down_on_cancel() {
        let dir = tempfile::tempdir().unwrap();
        let health = Arc::new(NodeHealth::default());
        let monitor =
            Arc::new(Monitor::new(Arc::clone(&health), MonitorConfig::default(), dir.path()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve(listener, Arc::clone(&monitor), cancel.clone()));

        assert_eq!(get(addr, "/health/live").await, (200, "ok".into()));

        let (code, body) = get(addr, "/health/ready").await;
        assert_eq!(code, 503);
        let report: ReadyReport = serde_json::from_str(&body).unwrap();
        assert!(!report.ready && report.not_ready.len() == 2, "{report:?}");

        health.set_ready(true);
        let (code, body) = get(addr, "/health/ready").await;
        assert_eq!(code, 503, "ready but the subscription is down");
        assert!(body.contains("request stream"), "{body}");

        health.set_subscription_up(true);
        let (code, body) = get(addr, "/health/ready").await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(serde_json::from_str::<ReadyReport>(&body).unwrap().not_ready.len(), 0);

        health.set_jobs_at_risk(1);
        health.publish_status(NodeStatus {
            prover: "0xabc".into(),
            won: 3,
            lost: 1,
            slots: 2,
            jobs: vec![JobStatus {
                request_id: "0x01".into(),
                state: "proving".into(),
                ..JobStatus::default()
            }],
            ..NodeStatus::default()
        });
        monitor.sample_once().await.unwrap();
        let (code, body) = get(addr, "/status").await;
        assert_eq!(code, 200);
        let report: StatusReport = serde_json::from_str(&body).unwrap();
        assert_eq!(report.status.prover, "0xabc");
        assert_eq!(report.health.jobs_at_risk, 1);
        assert!(report.alerts.iter().any(|a| a.code == "PN-DEADLINE-AT-RISK"), "{body}");
        assert!(report.system.is_some());

        let (code, text) = get(addr, "/metrics").await;
        assert_eq!(code, 200);
        for name in [
            "node_cpu_usage_percent",
            "node_memory_used_bytes",
            "node_memory_total_bytes",
            "node_alerts_active",
            r#"node_alert_active{code="PN-DEADLINE-AT-RISK"} 1"#,
            r#"node_alert_active{code="PN-CALIBRATION-DRIFT"} 0"#,
            "node_bidder_bids_won_total",
            "node_prover_slots",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }

        let (code, _) = get(addr, "/nope").await;
        assert_eq!(code, 404);

        cancel.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
