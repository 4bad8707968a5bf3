//! `provernet node status` against a real monitor endpoint, and against none.

use std::{process::Command, sync::Arc};

use provernet_node::{
    config::MonitorConfig,
    monitor::{BidStatus, JobStatus, Monitor, NodeHealth, NodeStatus, StatusReport, serve},
};
use tokio_util::sync::CancellationToken;

fn status(monitor: &str, json: bool) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provernet"));
    cmd.args(["node", "status", "--monitor", monitor]).env_remove("PROVERNET_NODE_MONITOR");
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run provernet: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_a_running_nodes_state_and_its_raw_report() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let health = Arc::new(NodeHealth::default());
    health.set_ready(true);
    health.set_subscription_up(true);
    health.record_job_failure();
    health.publish_status(NodeStatus {
        prover: "0x00000000000000000000000000000000000000aa".into(),
        versions: vec!["miden-0.23".into()],
        bidding: true,
        slots: 2,
        proving: 1,
        won: 1,
        lost: 1,
        earnings: "5000".into(),
        jobs: vec![JobStatus {
            request_id: format!("0x{}", "12".repeat(32)),
            state: "proving".into(),
            pgus: 4096,
            price_per_pgu: "7".into(),
            ..JobStatus::default()
        }],
        recent_bids: vec![BidStatus {
            request_id: "0x99".into(),
            price_per_pgu: Some("7".into()),
            outcome: "won".into(),
            ..BidStatus::default()
        }],
        ..NodeStatus::default()
    });
    let monitor = Arc::new(Monitor::new(health, MonitorConfig::default(), dir.path()));
    monitor.sample_once().await.unwrap_or_else(|e| panic!("{e}"));
    let listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://{}", listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
    let cancel = CancellationToken::new();
    let server = tokio::spawn(serve(listener, monitor, cancel.clone()));

    let (ok, stdout, stderr) = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || status(&url, false))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert!(ok, "status failed: {stderr}");
    for want in [
        "0x00000000000000000000000000000000000000aa",
        "miden-0.23",
        "ready        yes",
        "1 of 2 proving",
        "win rate 50.0%",
        "5000",
        "0x121212…1212",
        "4096",
        "0x99",
    ] {
        assert!(stdout.contains(want), "{want:?} missing from\n{stdout}");
    }

    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || status(&url, true))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ok, "status --json failed: {stderr}");
    let report: StatusReport =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report.status.won, 1);
    assert_eq!(report.health.consecutive_failures, 1);

    cancel.cancel();
    server.await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn status_without_a_node_names_the_address_and_what_to_do() {
    // A port that was free a moment ago: nothing listens there now.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("{e}"));
    let (ok, _, stderr) = status(&addr.to_string(), false);
    assert!(!ok);
    assert!(stderr.contains(&format!("http://{addr}")), "{stderr}");
    assert!(stderr.contains("may not be running"), "{stderr}");
}
