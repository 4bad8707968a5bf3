//! The dashboards and alert rules of `deploy/` against the real thing: a real Prometheus
//! (Debian's `prometheus`) scrapes a network and a node run as processes of the built binary.
//! `promtool check rules` accepts the rules; every query of every panel of
//! `deploy/grafana/*.json` and every alert expression of `deploy/prometheus/alerts.yml` returns
//! data through Prometheus's HTTP API; and an alert the test provokes (`PN-DISK-LOW`, its
//! threshold set to 100% free) is seen firing there.
//!
//! `#[ignore]`d in `cargo test --workspace`, as it needs `prometheus` and `promtool`; `.ci/run`
//! installs them and runs it: `cargo test --workspace --test it -- --ignored observability::`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    e2e::{NetworkProc, NodeDir, RequesterCli},
    procs::Proc,
};

/// How long Prometheus may take to have scraped every series twice and evaluated every rule.
const SCRAPED: Duration = Duration::from_secs(90);

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(path)
}

/// Every panel query of a Grafana dashboard file.
fn panel_queries(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queries.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(!queries.is_empty(), "{} has panels", path.display());
    queries
}

/// A rule's `<query> <comparison> <number>` with the comparison made `bool`: a sample per series
/// whether or not the alert condition holds, so "returns data" means the series exist.
fn with_bool(expr: &str) -> String {
    let at = ["==", "!=", ">=", "<=", ">", "<"]
        .iter()
        .filter_map(|op| expr.rfind(op).map(|i| (i, op.len())))
        .max_by_key(|&(i, len)| (i + len, len))
        .unwrap_or_else(|| panic!("{expr:?} has no comparison"));
    let end = at.0 + at.1;
    format!("{} bool{}", &expr[..end], &expr[end..])
}

/// A free loopback port (bound and released: Prometheus cannot report the port it chose).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The `data` of a Prometheus API answer.
async fn api(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    query: &[(&str, &str)],
) -> serde_json::Value {
    let text =
        http.get(format!("{base}{path}")).query(query).send().await.unwrap().text().await.unwrap();
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["status"], "success", "{path} {query:?}: {answer}");
    answer["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus and promtool (Debian's prometheus): cargo test --workspace --test it -- --ignored observability::"]
async fn dashboards_and_alert_rules_hold_against_a_live_network_and_node() {
    let rules = deploy("prometheus/alerts.yml");
    let check = Command::new("promtool").arg("check").arg("rules").arg(&rules).output();
    let check = check.expect("promtool (Debian's prometheus package) is installed");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));

    let root = tempfile::tempdir().unwrap();
    let network = NetworkProc::start(root.path(), true);
    let network_metrics = network.metrics.clone().unwrap();
    let node = NodeDir::init(root.path(), "node", &network.url, "200000000");
    // Provoked: no disk has 100% free.
    node.set_in_file("monitor", "disk_min_free_percent", "100");
    node.set_in_file("monitor", "interval_secs", "1");
    let (_running, monitor) = node.run();
    // One request proven, so that every histogram has samples.
    RequesterCli::new(root.path(), &network.url).prove_fib();

    let port = free_port();
    let config = root.path().join("prometheus.yml");
    let target =
        |url: &str| url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [{rules:?}]\n\
             scrape_configs:\n\
             - job_name: provernet-network\n  static_configs: [{{targets: [{network:?}]}}]\n\
             - job_name: provernet-node\n  static_configs: [{{targets: [{node:?}]}}]\n",
            network = target(&network_metrics),
            node = target(&monitor),
        ),
    )
    .unwrap();
    let _prometheus = Proc::spawn({
        let mut c = Command::new("prometheus");
        c.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", root.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stderr(Stdio::null());
        c
    });
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let mut queries: Vec<String> = Vec::new();
    for dashboard in ["grafana/node.json", "grafana/network.json"] {
        queries.extend(panel_queries(&deploy(dashboard)));
    }
    let until = Instant::now() + SCRAPED;
    let ready = loop {
        let up = http.get(format!("{base}/-/ready")).send().await;
        if up.is_ok_and(|r| r.status().is_success()) {
            break true;
        }
        if Instant::now() > until {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(ready, "Prometheus answered /-/ready within {SCRAPED:?}");

    // Until every query has data and the provoked alert fires, or the bound: Prometheus gives
    // no signal for "scraped twice", so it is asked again every half second.
    let (mut empty, mut firing) = (Vec::new(), false);
    while Instant::now() < until {
        let rule_queries: Vec<String> = api(&http, &base, "/api/v1/rules", &[]).await["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .map(|r| with_bool(r["query"].as_str().unwrap()))
            .collect();
        let written = std::fs::read_to_string(&rules).unwrap().matches("- alert:").count();
        assert_eq!(rule_queries.len(), written, "every rule of {} is loaded", rules.display());
        let gpus = api(&http, &base, "/api/v1/query", &[("query", "sum(node_gpus)")]).await;
        let no_gpu = gpus["result"][0]["value"][1] == "0";
        empty.clear();
        for query in queries.iter().chain(&rule_queries) {
            // GPU series exist only where there is a GPU; `node_gpus` itself always does.
            if no_gpu && query.contains("node_gpu_") {
                continue;
            }
            let data = api(&http, &base, "/api/v1/query", &[("query", query)]).await;
            if data["result"].as_array().is_none_or(Vec::is_empty) {
                empty.push(query.clone());
            }
        }
        let alerts = api(&http, &base, "/api/v1/alerts", &[]).await;
        firing = alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["labels"]["alertname"] == "ProvernetDiskLow" && a["state"] == "firing");
        if empty.is_empty() && firing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(empty.is_empty(), "queries without data after {SCRAPED:?}: {empty:#?}");
    assert!(firing, "ProvernetDiskLow (PN-DISK-LOW, provoked) fires in Prometheus");
    drop(network);
}

#[test]
fn a_rule_is_checked_with_its_comparison_made_bool() {
    assert_eq!(with_bool("node_ready == 0"), "node_ready == bool 0");
    assert_eq!(with_bool("sum(rate(x[5m])) >= 2"), "sum(rate(x[5m])) >= bool 2");
    assert_eq!(with_bool(r#"a{code="X"} > 0"#), r#"a{code="X"} > bool 0"#);
}
