//! The proving pool as processes of the built binary over a real PostgreSQL: `provernet
//! network`, one `provernet node run` with `[cluster]`, `provernet worker`s, and the requester
//! commands, on loopback ports chosen at run time. The test also plays a rogue worker through
//! SQL (it knows the cluster secret, as a worker that proves wrongly would) and corrupts an
//! artifact in the pool.
//!
//! `#[ignore]`d in `cargo test --workspace`, as they need PostgreSQL; `.ci/run` installs and
//! starts it and runs them: `PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test --workspace
//! --test it -- --ignored pool::`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use provernet_node::pool::{ClusterSecret, Coordinator};
use provernet_types::{NetworkClient, RequestId, proto};
use sqlx::PgPool;

use crate::{
    e2e::{NetworkProc, NodeDir, RequesterCli, STEP, SUBMIT, ok, program, status_json},
    procs::{Proc, provernet},
};

/// The lease the tests' node gives a claim: a killed worker's task is claimable 3 s later.
const LEASE_SECS: &str = "3";

/// A fresh database on the test PostgreSQL (`PROVERNET_TEST_POSTGRES_URL`, which `.ci/run`
/// sets), left for the CI machine to discard.
pub(crate) async fn fresh_database() -> String {
    provernet_network::test_utils::postgres::fresh_database("pn_cli").await
}

fn write_secret(path: &Path) {
    ok({
        let mut c = provernet();
        c.arg("worker").arg("--write-secret").arg(path);
        c
    });
}

/// `provernet worker` as `id`, one proof at a time, started and registered.
fn worker(root: &Path, database: &str, secret: &Path, id: &str) -> Proc {
    let proc = Proc::spawn(worker_cmd(root, database, secret, id));
    let line = proc.line_after("worker    ", STEP);
    assert!(line.starts_with(&format!("{id} proves")), "{line}");
    proc
}

fn worker_cmd(root: &Path, database: &str, secret: &Path, id: &str) -> Command {
    let mut c = provernet();
    c.args(["worker", "--database-url", database, "--id", id, "--cores", "1"])
        .args(["--memory-gib", "4", "--pgus-per-second", "3000"])
        .arg("--secret-file")
        .arg(secret)
        .arg("--data-dir")
        .arg(root.join(id));
    c
}

/// Waits (bounded) until `check` holds (a poll: what it reads has no event to await).
pub(crate) async fn until<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + STEP;
    while !check().await {
        assert!(Instant::now() < end, "not in time: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until `id`'s task is in `state`.
async fn until_task(db: &PgPool, id: &RequestId, state: &str, what: &str) {
    until(what, || async { task_field(db, id, "state").await.as_deref() == Some(state) }).await;
}

/// The inputs of a 2^16-row hashchain request: seconds of proving, time to kill something.
pub(crate) fn big_inputs(root: &Path) -> PathBuf {
    let inputs = root.join("big.json");
    std::fs::write(&inputs, r#"{"stack": [2000, 1, 2, 3, 4]}"#).unwrap();
    inputs
}

/// Submits a 2^16-row hashchain request and `small` fib ones.
fn submit_mix(requester: &RequesterCli, root: &Path, small: usize) -> (RequestId, Vec<RequestId>) {
    let big = submit(requester, "hashchain", Some(&big_inputs(root)));
    (big, (0..small).map(|_| submit(requester, "fib", None)).collect())
}

pub(crate) async fn balance(client: &NetworkClient, requester: &RequesterCli) -> u128 {
    client.account(&requester.address).await.unwrap().balance.parse().unwrap()
}

/// Each of `ids` fulfilled and paid once: what the requester spent since it had `funded` is
/// what the network says it paid for them.
pub(crate) async fn assert_paid_once(
    client: &NetworkClient,
    requester: &RequesterCli,
    funded: u128,
    ids: &[RequestId],
) {
    let mut paid = 0u128;
    for id in ids {
        let request = client.proof_request(id).await.unwrap();
        assert_eq!(request.status, proto::RequestStatus::Fulfilled as i32);
        paid += request.paid.parse::<u128>().unwrap();
    }
    let spent = funded - balance(client, requester).await;
    assert_eq!(spent, paid, "every request was paid exactly once");
}

async fn task_field(db: &PgPool, id: &RequestId, column: &str) -> Option<String> {
    let sql = format!("SELECT {column}::text FROM pool_tasks WHERE request_id = $1");
    sqlx::query_scalar::<_, Option<String>>(&sql)
        .bind(id.as_bytes().to_vec())
        .fetch_optional(db)
        .await
        .unwrap()
        .flatten()
}

pub(crate) fn submit(requester: &RequesterCli, name: &str, inputs: Option<&Path>) -> RequestId {
    ok({
        let mut c = requester.cmd(&SUBMIT);
        c.arg(program(name));
        if let Some(inputs) = inputs {
            c.arg("--inputs").arg(inputs);
        }
        c
    })
    .trim()
    .parse()
    .unwrap()
}

/// Waits until `id` is fulfilled and checks its proof with `request get`.
pub(crate) fn fulfilled_and_verified(requester: &RequesterCli, root: &Path, id: &RequestId) {
    ok(requester.cmd(&["request", "wait", &id.to_string(), "--timeout-secs", "300"]));
    let proof = root.join(format!("{id}.proof"));
    let out = ok({
        let mut c = requester.cmd(&["request", "get", &id.to_string()]);
        c.arg("--output").arg(&proof);
        c
    });
    assert!(out.contains("verified"), "{out}");
}

async fn metric(monitor: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{monitor}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// The node's pool node config: cluster on `database`, a short lease, room for retries.
fn pool_flags<'a>(database: &'a str, secret: &'a Path) -> Vec<String> {
    vec![
        "--set".into(),
        format!("cluster.database_url={database}"),
        "--set".into(),
        format!("cluster.secret_file={}", secret.display()),
        "--set".into(),
        format!("cluster.lease_secs={LEASE_SECS}"),
        "--set".into(),
        "cluster.max_attempts=5".into(),
    ]
}

/// Plays a live worker through SQL (what any process with the database and the secret can
/// do): registered with the secret's MAC and heartbeating until dropped.
struct RogueWorker {
    heartbeat: tokio::task::JoinHandle<()>,
}

impl RogueWorker {
    async fn register(db: &PgPool, secret: &ClusterSecret) -> Self {
        sqlx::query(
            "INSERT INTO pool_workers (id, host, auth, versions, cores, slots, memory_bytes, gpus,
                 rates, started_at, heartbeat_at)
             VALUES ('rogue', 'test', $1, ARRAY['miden-0.23'], 1, 1, $2, 0,
                 '{\"miden-0.23\": 3000}', now(), now())",
        )
        .bind(secret.registration_mac("rogue").to_vec())
        .bind(4_i64 << 30)
        .execute(db)
        .await
        .unwrap();
        let db = db.clone();
        let heartbeat = tokio::spawn(async move {
            loop {
                let _ =
                    sqlx::query("UPDATE pool_workers SET heartbeat_at = now() WHERE id = 'rogue'")
                        .execute(&db)
                        .await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Self { heartbeat }
    }

    /// Claims `id` as the real claim does and hands back `bundle` with a valid MAC.
    async fn claim_and_hand_back(
        db: &PgPool,
        secret: &ClusterSecret,
        id: &RequestId,
        bundle: &[u8],
    ) {
        let attempt: i32 = sqlx::query_scalar(
            "UPDATE pool_tasks SET state = 'claimed', worker_id = 'rogue',
                 attempts = attempts + 1, lease_until = now() + interval '30 seconds'
             WHERE request_id = $1 AND state = 'queued' RETURNING attempts",
        )
        .bind(id.as_bytes().to_vec())
        .fetch_one(db)
        .await
        .unwrap();
        let mac = secret.hand_back_mac(id, attempt as u32, bundle);
        sqlx::query(
            "UPDATE pool_tasks SET state = 'proved', proof = $2, proof_mac = $3, prove_secs = 1
             WHERE request_id = $1 AND worker_id = 'rogue'",
        )
        .bind(id.as_bytes().to_vec())
        .bind(bundle)
        .bind(mac.to_vec())
        .execute(db)
        .await
        .unwrap();
        sqlx::query("SELECT pg_notify('provernet_pool_done', '')").execute(db).await.unwrap();
    }
}

impl Drop for RogueWorker {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test --test it -- --ignored pool:: (.ci/run runs it)"]
async fn a_node_with_a_pool_refuses_a_wrong_proof_survives_a_corrupt_artifact_and_a_killed_worker()
{
    let root = tempfile::tempdir().unwrap();
    let database = fresh_database().await;
    let db = PgPool::connect(&database).await.unwrap();
    let secret_file = root.path().join("cluster.secret");
    write_secret(&secret_file);
    let secret = ClusterSecret::read(&secret_file).unwrap();

    let network = NetworkProc::start(root.path(), false);
    let client = NetworkClient::connect(&network.url, Duration::from_secs(5)).await.unwrap();
    let node = NodeDir::init(root.path(), "node", &network.url, "200000000");
    let flags = pool_flags(&database, &secret_file);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (mut node_proc, monitor) = node.run_with(&flags);
    let requester = RequesterCli::new(root.path(), &network.url);
    let funded = balance(&client, &requester).await;

    // With no worker, the pool holds nothing (the node bids on nothing).
    until("the node reads the empty pool", || async {
        status_json(&monitor)["status"]["pool"] == serde_json::json!([])
    })
    .await;

    // A rogue worker: the node bids on its capacity, and the test takes the task and hands
    // back a proof of another run (valid MAC, wrong proof).
    let rogue = RogueWorker::register(&db, &secret).await;
    until("the node sees the rogue live", || async {
        status_json(&monitor)["status"]["pool"][0]["state"] == "live"
    })
    .await;
    let first = submit(&requester, "fib", None);
    until_task(&db, &first, "queued", "the node queues the task").await;
    // A real proof, that verifies, of the same program on other inputs: a wrong result.
    let other_inputs = root.path().join("fib40.json");
    std::fs::write(&other_inputs, r#"{"stack": [40]}"#).unwrap();
    let wrong_file = root.path().join("wrong.proof");
    ok({
        let mut c = provernet();
        c.arg("prove").arg(program("fib")).arg("--inputs").arg(&other_inputs);
        c.arg("--output").arg(&wrong_file);
        c
    });
    let wrong = std::fs::read(&wrong_file).unwrap();
    RogueWorker::claim_and_hand_back(&db, &secret, &first, &wrong).await;
    until("the node refuses the rogue's proof and queues the task again", || async {
        task_field(&db, &first, "state").await.as_deref() == Some("queued")
            && task_field(&db, &first, "excluded").await.as_deref() == Some("{rogue}")
    })
    .await;
    let why = task_field(&db, &first, "last_error").await.unwrap();
    assert!(why.contains("rogue's proof was refused") && why.contains("outputs differ"), "{why}");
    // And one that is not a proof bundle at all, for the request's next claim by the rogue
    // (excluded now: the claim below is the test's, as a second rogue would make it).
    sqlx::query("UPDATE pool_tasks SET excluded = '{}' WHERE request_id = $1")
        .bind(first.as_bytes().to_vec())
        .execute(&db)
        .await
        .unwrap();
    RogueWorker::claim_and_hand_back(&db, &secret, &first, b"PNPROOF1 not a bundle").await;
    until("the node refuses the malformed bundle too", || async {
        task_field(&db, &first, "state").await.as_deref() == Some("queued")
            && task_field(&db, &first, "excluded").await.as_deref() == Some("{rogue}")
    })
    .await;
    let why = task_field(&db, &first, "last_error").await.unwrap();
    assert!(why.contains("malformed"), "{why}");

    // The task's inputs are corrupted in the pool before a real worker reads them.
    sqlx::query(
        "UPDATE pool_blobs SET bytes = 'garbage'
         WHERE id = (SELECT inputs FROM pool_tasks WHERE request_id = $1)",
    )
    .bind(first.as_bytes().to_vec())
    .execute(&db)
    .await
    .unwrap();
    let mut one = worker(root.path(), &database, &secret_file, "w1");
    fulfilled_and_verified(&requester, root.path(), &first);
    // Four claims: the rogue's two, the corrupt artifact's, the proof.
    assert_eq!(metric(&monitor, "node_pool_task_retries_total").await, 3.0);
    drop(rogue);

    // A second worker; the one holding the larger request is killed mid-proof: its task is
    // claimed again after the lease, and every request is fulfilled once.
    let mut two = worker(root.path(), &database, &secret_file, "w2");
    let (big, small) = submit_mix(&requester, root.path(), 3);
    until_task(&db, &big, "claimed", "a worker claims the larger request").await;
    let holder = task_field(&db, &big, "worker_id").await.unwrap();
    let (killed, survivor) = if holder == "w1" { (&mut one, "w2") } else { (&mut two, "w1") };
    killed.kill();
    for id in std::iter::once(&big).chain(&small) {
        fulfilled_and_verified(&requester, root.path(), id);
    }
    assert!(
        metric(&monitor, "node_pool_task_retries_total").await >= 4.0,
        "the killed claim counted"
    );
    let status = status_json(&monitor);
    let workers = status["status"]["pool"].as_array().unwrap();
    let state = |id: &str| {
        workers.iter().find(|w| w["id"] == id).map(|w| w["state"].as_str().unwrap().to_owned())
    };
    assert_eq!(state(&holder).as_deref(), Some("lost"), "{status}");
    assert_eq!(state(survivor).as_deref(), Some("live"), "{status}");
    assert_eq!(state("rogue").as_deref(), Some("lost"), "{status}");

    // The node SIGKILLed while a worker holds its task: the worker hands the proof back, and
    // the node restarted on another machine (its key and config, an empty data folder) finds
    // the job in the cluster's database and submits the proof once.
    let last = submit(&requester, "hashchain", Some(&big_inputs(root.path())));
    until_task(&db, &last, "claimed", "the survivor claims the last request").await;
    node_proc.kill();
    let job_state = |id: RequestId| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT state FROM node_jobs WHERE request_id = $1")
                .bind(id.to_string())
                .fetch_optional(&db)
                .await
                .unwrap()
        }
    };
    assert!(job_state(last).await.is_some(), "the won job is in the cluster's database");
    until_task(&db, &last, "proved", "the survivor hands the proof back with the node down").await;
    std::fs::remove_dir_all(node.dir.join("data")).unwrap();
    let (restarted, _) = node.run_with(&flags);
    fulfilled_and_verified(&requester, root.path(), &last);
    until("the restarted node records the job done", || async {
        job_state(last).await.as_deref() == Some("done")
    })
    .await;
    assert!(!node.dir.join("data").join("jobs.db").exists(), "no SQLite store beside the pool");

    let ids: Vec<RequestId> = [first, big, last].into_iter().chain(small).collect();
    assert_paid_once(&client, &requester, funded, &ids).await;
    drop((restarted, one, two, network));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test --test it -- --ignored pool:: (.ci/run runs it)"]
async fn a_worker_with_a_wrong_secret_or_an_unknown_version_is_refused_with_the_reason() {
    let root = tempfile::tempdir().unwrap();
    let database = fresh_database().await;
    let node_secret = root.path().join("node.secret");
    write_secret(&node_secret);
    let _pool = Coordinator::open(
        &database,
        ClusterSecret::read(&node_secret).unwrap(),
        "0x0000000000000000000000000000000000000001",
        &["miden-0.23".to_owned()],
        3,
        3,
    )
    .await
    .unwrap();
    let refused = |secret: &PathBuf, extra: &[&str]| {
        let mut c = worker_cmd(root.path(), &database, secret, "w");
        c.args(extra);
        let out = c.output().unwrap();
        assert!(!out.status.success(), "{c:?} was not refused");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let other = root.path().join("other.secret");
    write_secret(&other);
    let error = refused(&other, &[]);
    assert!(error.contains("[PN-POOL-SECRET]"), "{error}");
    let error = refused(&node_secret, &["--versions", "zkvm-9"]);
    assert!(error.contains("[PN-POOL-VERSION]") && error.contains("zkvm-9"), "{error}");
    let short = root.path().join("short.secret");
    std::fs::write(&short, "tiny").unwrap();
    let error = refused(&short, &[]);
    assert!(error.contains("at least 16"), "{error}");
}

/// A TCP proxy to PostgreSQL on a loopback port, which can play the server restarting: every
/// connection through it is cut, and new ones are refused, for a while.
pub(crate) struct DatabaseLink {
    port: u16,
    restarts: tokio::sync::mpsc::UnboundedSender<(Duration, tokio::sync::oneshot::Sender<usize>)>,
    task: tokio::task::JoinHandle<()>,
}

impl DatabaseLink {
    pub(crate) async fn to(database: &str) -> Self {
        let url = url::Url::parse(database).unwrap();
        let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        type Restart = (Duration, tokio::sync::oneshot::Sender<usize>);
        let (restarts, mut commands) = tokio::sync::mpsc::unbounded_channel::<Restart>();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            let mut listener = Some(listener);
            let mut cut = tokio_util::sync::CancellationToken::new();
            loop {
                let accepted = async {
                    match &listener {
                        Some(l) => l.accept().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    Ok((mut inbound, _)) = accepted => {
                        let target = target.clone();
                        let cut = cut.clone();
                        let open = open.clone();
                        tokio::spawn(async move {
                            let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                                return;
                            };
                            open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                () = cut.cancelled() => {}
                            }
                            open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        });
                    }
                    Some((down, done)) = commands.recv() => {
                        let was_open = open.load(std::sync::atomic::Ordering::SeqCst);
                        cut.cancel();
                        cut = tokio_util::sync::CancellationToken::new();
                        drop(listener.take());
                        tokio::time::sleep(down).await;
                        let socket = tokio::net::TcpSocket::new_v4().unwrap();
                        socket.set_reuseaddr(true).unwrap();
                        socket.bind(([127, 0, 0, 1], port).into()).unwrap();
                        listener = Some(socket.listen(64).unwrap());
                        let _ = done.send(was_open);
                    }
                }
            }
        });
        Self { port, restarts, task }
    }

    /// `database` as reached through the link.
    pub(crate) fn url(&self, database: &str) -> String {
        let mut url = url::Url::parse(database).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }

    /// Cuts every connection and refuses new ones for `down`, as a restarting server does;
    /// returns how many were cut.
    pub(crate) async fn restart(&self, down: Duration) -> usize {
        let (done, restarted) = tokio::sync::oneshot::channel();
        self.restarts.send((down, done)).unwrap();
        restarted.await.unwrap()
    }
}

impl Drop for DatabaseLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test --test it -- --ignored pool:: (.ci/run runs it)"]
async fn the_node_and_its_worker_ride_out_postgresql_restarting_mid_proof() {
    let root = tempfile::tempdir().unwrap();
    let database = fresh_database().await;
    let db = PgPool::connect(&database).await.unwrap();
    let link = DatabaseLink::to(&database).await;
    let through = link.url(&database);
    let secret_file = root.path().join("cluster.secret");
    write_secret(&secret_file);

    let network = NetworkProc::start(root.path(), false);
    let client = NetworkClient::connect(&network.url, Duration::from_secs(5)).await.unwrap();
    let node = NodeDir::init(root.path(), "node", &network.url, "200000000");
    let mut flags = pool_flags(&through, &secret_file);
    // A lease longer than the outage: the worker's claim survives it.
    flags[5] = "cluster.lease_secs=10".into();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (_node_proc, monitor) = node.run_with(&flags);
    let _worker = worker(root.path(), &through, &secret_file, "w1");
    until("the node sees its worker", || async {
        status_json(&monitor)["status"]["pool"][0]["state"] == "live"
    })
    .await;
    let requester = RequesterCli::new(root.path(), &network.url);
    let funded = balance(&client, &requester).await;

    let (big, small) = submit_mix(&requester, root.path(), 2);
    until_task(&db, &big, "claimed", "the worker claims the larger request").await;
    // PostgreSQL "restarts" while the proof runs: every connection of node and worker is cut.
    let cut = link.restart(Duration::from_secs(3)).await;
    assert!(cut >= 2, "the node's and the worker's connections were cut: {cut}");
    for id in std::iter::once(&big).chain(&small) {
        fulfilled_and_verified(&requester, root.path(), id);
    }
    let ids: Vec<RequestId> = std::iter::once(big).chain(small).collect();
    assert_paid_once(&client, &requester, funded, &ids).await;
    // Nothing doubled: each request's task was claimed once.
    assert_eq!(metric(&monitor, "node_pool_task_retries_total").await, 0.0);
    drop(network);
}
