//! The whole market as separate processes of the built binary: `provernet network`, two
//! `provernet node run`, and the requester commands, on loopback ports chosen at run time.
//! The node that wins the larger request is killed with SIGKILL while it works on it and
//! started again: it resumes the job from its store and the request is fulfilled exactly once.
//! Proofs are verified by `provernet request get`; balances are checked over gRPC.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use provernet_types::{Address, NetworkClient, RequestId, proto};

use crate::procs::{Proc, provernet};

/// The longest any one step may take on a loaded 2-core machine, short of a hang.
pub(crate) const STEP: Duration = Duration::from_secs(90);
/// What `node register --faucet` draws (the network's default faucet limit).
const FAUCET: u128 = 1_000_000_000_000;
const STAKE: u128 = 1_000_000_000;

/// `request submit` with room for the nodes' prices and a deadline that survives a restart.
pub(crate) const SUBMIT: [&str; 8] = [
    "request",
    "submit",
    "--deadline-secs",
    "600",
    "--gas-limit",
    "65536",
    "--max-price-per-pgu",
    "1000",
];

pub(crate) fn program(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../programs").join(name)
}

/// Runs `command` to completion (bounded); returns stdout, panicking with stderr on failure.
pub(crate) fn ok(mut command: Command) -> String {
    let out = command.output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{command:?} failed: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// A node's folder: config and key from `provernet node init`, registered with stake.
pub(crate) struct NodeDir {
    pub(crate) dir: PathBuf,
    pub(crate) address: Address,
}

impl NodeDir {
    pub(crate) fn init(root: &Path, name: &str, network: &str, cost_per_hour: &str) -> Self {
        let dir = root.join(name);
        let out = ok({
            let mut c = provernet();
            c.args(["node", "init", "--network", network]).arg("--dir").arg(&dir);
            c
        });
        let operator = out.split("(operator ").nth(1).unwrap().split(')').next().unwrap();
        let node = Self { dir, address: operator.parse().unwrap() };
        ok({
            let mut c = node.cmd("register");
            c.args(["--stake", &STAKE.to_string(), "--faucet"]);
            c
        });
        // Tuned through the environment and flags, as an operator would.
        node.set_in_file("bidding", "cost_per_hour", &format!("\"{cost_per_hour}\""));
        node
    }

    /// Edits one setting of the config file in place.
    pub(crate) fn set_in_file(&self, section: &str, key: &str, value: &str) {
        let path = self.dir.join("node.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut in_section = false;
        let edited: Vec<String> = text
            .lines()
            .map(|line| {
                if line.starts_with('[') {
                    in_section = line == format!("[{section}]");
                }
                if in_section && line.starts_with(&format!("{key} =")) {
                    format!("{key} = {value}")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        std::fs::write(&path, edited.join("\n")).unwrap();
    }

    fn cmd(&self, sub: &str) -> Command {
        let mut c = provernet();
        c.args(["node", sub, "--config"]).arg(self.dir.join("node.toml"));
        c
    }

    /// Starts `provernet node run`; returns once it follows the network, with its monitor URL.
    pub(crate) fn run(&self) -> (Proc, String) {
        self.run_with(&[])
    }

    /// [`Self::run`] with more flags.
    pub(crate) fn run_with(&self, extra: &[&str]) -> (Proc, String) {
        let mut c = self.cmd("run");
        c.args(extra);
        c.args(["--set", "monitor.listen=127.0.0.1:0", "--set", "proving.memory_gib=4"])
            .env("PROVERNET_NODE_PROVING_PGUS_PER_SECOND", "3000");
        let node = Proc::spawn(c);
        let status = node.line_after("monitor", STEP);
        (node, status.trim_end_matches("/status").to_owned())
    }
}

/// `provernet network` on loopback ports chosen at start, with a metrics endpoint if asked.
pub(crate) struct NetworkProc {
    /// Killed when dropped.
    _proc: Proc,
    /// Its gRPC URL.
    pub(crate) url: String,
    /// `http://<addr>/metrics`, when started with a metrics endpoint.
    pub(crate) metrics: Option<String>,
}

impl NetworkProc {
    pub(crate) fn start(root: &Path, metrics: bool) -> Self {
        let proc = Proc::spawn({
            let mut c = provernet();
            c.args(["network", "--listen", "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0"])
                .arg("--data-dir")
                .arg(root.join("network"));
            if metrics {
                c.args(["--metrics-listen", "127.0.0.1:0"]);
            }
            c
        });
        let metrics = metrics.then(|| proc.line_after("metrics     ", STEP));
        let grpc = proc.line_after("network     grpc://", STEP);
        let url = format!("http://{}", grpc.split_whitespace().next().unwrap());
        Self { _proc: proc, url, metrics }
    }
}

/// A requester's key (`request keygen`) funded from the faucet, used through the CLI.
pub(crate) struct RequesterCli {
    key: PathBuf,
    url: String,
    pub(crate) address: Address,
}

impl RequesterCli {
    pub(crate) fn new(root: &Path, url: &str) -> Self {
        let key = root.join("requester.key");
        let address = ok({
            let mut c = provernet();
            c.args(["request", "keygen"]).arg(&key);
            c
        })
        .trim()
        .parse()
        .unwrap();
        let requester = Self { key, url: url.to_owned(), address };
        ok(requester.cmd(&["request", "faucet"]));
        requester
    }

    /// `provernet <args> --network <url> --key-file <key>`.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = provernet();
        c.args(args).args(["--network", &self.url]).arg("--key-file").arg(&self.key);
        c
    }

    /// Submits a proof of `programs/fib` and waits until it is fulfilled.
    pub(crate) fn prove_fib(&self) {
        let id = ok({
            let mut c = self.cmd(&SUBMIT);
            c.arg(program("fib"));
            c
        });
        ok(self.cmd(&["request", "wait", id.trim(), "--timeout-secs", "300"]));
    }
}

pub(crate) fn status_json(monitor: &str) -> serde_json::Value {
    let out = ok({
        let mut c = provernet();
        c.args(["node", "status", "--json", "--monitor", monitor]);
        c
    });
    serde_json::from_str(&out).unwrap()
}

async fn wait_for_assignment(client: &NetworkClient, id: &RequestId) -> Address {
    let filter = proto::SubscribeRequestsRequest::default();
    let assigned = |r: &proto::ProofRequest| !r.assigned_prover.is_empty();
    let request = tokio::time::timeout(STEP, client.wait_until(id, filter, assigned))
        .await
        .expect("the request was assigned in time")
        .unwrap();
    Address::from_slice(&request.assigned_prover).unwrap()
}

fn balance(account: &proto::Account) -> u128 {
    account.balance.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_two_nodes_and_requester_as_processes_with_a_node_killed_mid_proof() {
    let root = tempfile::tempdir().unwrap();
    let network = NetworkProc::start(root.path(), false);
    let url = network.url.clone();
    let client = NetworkClient::connect(&url, Duration::from_secs(5)).await.unwrap();

    let nodes = [
        NodeDir::init(root.path(), "node-a", &url, "200000000"),
        NodeDir::init(root.path(), "node-b", &url, "300000000"),
    ];
    let mut running: Vec<(Proc, String)> = nodes.iter().map(NodeDir::run).collect();

    let requester_cli = RequesterCli::new(root.path(), &url);
    let requester = requester_cli.address;
    let requester_cmd = |args: &[&str]| requester_cli.cmd(args);
    let funded = balance(&client.account(&requester).await.unwrap());

    // A larger request (2^16 rows: seconds of proving) and a small one.
    let inputs = root.path().join("big.json");
    std::fs::write(&inputs, r#"{"stack": [2000, 1, 2, 3, 4]}"#).unwrap();
    let big: RequestId = ok({
        let mut c = requester_cmd(&SUBMIT);
        c.arg(program("hashchain")).arg("--inputs").arg(&inputs);
        c
    })
    .trim()
    .parse()
    .unwrap();
    let small: RequestId = ok({
        let mut c = requester_cmd(&SUBMIT);
        c.arg(program("fib"));
        c
    })
    .trim()
    .parse()
    .unwrap();

    // Kill the big request's winner while it works, and start it again.
    let winner = wait_for_assignment(&client, &big).await;
    let index = nodes.iter().position(|n| n.address == winner).expect("one of our nodes won");
    running[index].0.kill();
    assert_eq!(
        client.proof_request(&big).await.unwrap().status,
        proto::RequestStatus::Assigned as i32
    );
    running[index] = nodes[index].run();

    for id in [big, small] {
        ok(requester_cmd(&["request", "wait", &id.to_string(), "--timeout-secs", "300"]));
        let proof = root.path().join(format!("{id}.proof"));
        let out = ok({
            let mut c = requester_cmd(&["request", "get", &id.to_string()]);
            c.arg("--output").arg(&proof);
            c
        });
        assert!(out.contains("verified"), "{out}");
    }
    let big_request = client.proof_request(&big).await.unwrap();
    assert_eq!(big_request.status, proto::RequestStatus::Fulfilled as i32);
    assert_eq!(Address::from_slice(&big_request.assigned_prover).unwrap(), winner);

    // The restarted node reports the job it resumed.
    let report = status_json(&running[index].1);
    let known = report["status"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["request_id"] == big.to_string());
    assert!(known, "the restarted node knows the job: {report}");

    // Balances add up: what the requester paid is what the provers earned.
    let small_request = client.proof_request(&small).await.unwrap();
    let paid: u128 =
        [&big_request, &small_request].iter().map(|r| r.paid.parse::<u128>().unwrap()).sum();
    assert!(paid > 0);
    let spent = funded - balance(&client.account(&requester).await.unwrap());
    assert_eq!(spent, paid, "the requester paid exactly the two fulfilments");
    let mut earned = 0;
    for node in &nodes {
        let account = client.account(&node.address).await.unwrap();
        earned += balance(&account) - (FAUCET - STAKE);
    }
    assert_eq!(earned, paid, "the provers earned exactly what was paid");

    // SIGTERM: the node stops bidding, finishes and exits 0.
    for (node, _) in &mut running {
        let pid = node.child.id().to_string();
        ok({
            let mut c = Command::new("kill");
            c.args(["-TERM", &pid]);
            c
        });
        let status = node.child.wait().unwrap();
        assert!(status.success(), "a node exited with {status} on SIGTERM");
    }
    // Its store, flushed at exit, says the job it resumed is done.
    let store = provernet_node::store::JobStore::open(&nodes[index].dir.join("data/jobs.db"))
        .await
        .unwrap();
    let job = store.job(&big).await.unwrap().expect("the restarted node recorded the job");
    assert_eq!(job.state, provernet_node::store::JobState::Done, "{job:?}");
    drop(network);
}

/// `promtool check metrics` on `text`: what it found wrong, empty when nothing.
fn promtool_problems(text: &str) -> String {
    use std::io::Write as _;
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) is installed");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { said } else { format!("exit {}: {said}", out.status) }
}

/// The live `/metrics` of a network and a node that proved a request follow Prometheus's
/// conventions: `promtool check metrics` finds nothing; latencies are histograms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs promtool (Debian's prometheus): cargo test --workspace --test it -- --ignored e2e::live_metrics"]
async fn live_metrics_of_a_network_and_a_node_pass_promtool() {
    let root = tempfile::tempdir().unwrap();
    let network = NetworkProc::start(root.path(), true);
    let network_metrics = network.metrics.clone().unwrap();
    let node = NodeDir::init(root.path(), "node", &network.url, "200000000");
    let (_running, monitor) = node.run();
    RequesterCli::new(root.path(), &network.url).prove_fib();

    let http = reqwest::Client::new();
    for (what, url) in [("network", network_metrics), ("node", format!("{monitor}/metrics"))] {
        let text = http.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(promtool_problems(&text), "", "{what}'s /metrics:\n{text}");
        assert!(!text.contains("quantile="), "{what}: latencies are histograms:\n{text}");
        assert!(text.contains("_seconds_bucket{"), "{what} has latency buckets:\n{text}");
    }
    drop(network);
}

/// `provernet node run` reloads its config when the file changes and on SIGHUP; a file that
/// does not parse, or a change only a restart can make, is refused and the node carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_reloads_its_config_on_file_change_and_sighup() {
    let root = tempfile::tempdir().unwrap();
    let network = NetworkProc::start(root.path(), false);
    let node = NodeDir::init(root.path(), "node", &network.url, "200000000");
    let (running, monitor) = node.run();

    node.set_in_file("bidding", "margin", "0.9");
    assert_eq!(running.line_after("config    ", STEP), "reloaded: bidding.margin");
    let report = status_json(&monitor);
    assert_eq!(report["last_reload"]["changed"], serde_json::json!(["bidding.margin"]), "{report}");

    ok({
        let mut c = Command::new("kill");
        c.args(["-HUP", &running.child.id().to_string()]);
        c
    });
    assert_eq!(running.line_after("config    ", STEP), "reloaded: nothing changed");

    node.set_in_file("proving", "cache_mib", "1");
    let said = running.line_after("config    ", STEP);
    assert!(said.contains("refused") && said.contains("proving.cache_mib"), "{said}");

    let path = node.dir.join("node.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{good}\n[bidding\n")).unwrap();
    let said = running.line_after("config    ", STEP);
    assert!(said.contains("refused") && said.contains("node.toml"), "{said}");
    let report = status_json(&monitor);
    assert!(report["last_reload"]["refused"].as_str().unwrap().contains("node.toml"), "{report}");
    assert_eq!(report["health"]["ready"], true, "the node carries on: {report}");
    drop(running);
    drop(network);
}
