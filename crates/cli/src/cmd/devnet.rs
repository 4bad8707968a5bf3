//! `provernet devnet`: the whole market on this machine, in one command.
//!
//! Starts the ProverNetwork (SQLite in a fresh data folder) with its ArtifactStore (a local
//! folder), `--nodes` prover nodes with different cost profiles (the last on the Succinct API,
//! `--succinct-nodes`), funds every account from the
//! faucet, and submits a stream of requests built from the sample programs: mixed sizes, some
//! with private inputs, one unexecutable on purpose and one with a deadline nobody can meet.
//! Progress is a table refreshed in place on a terminal (plain lines otherwise); the summary
//! says what was fulfilled and verified here, what was not and why, the mean time to proof and
//! the total paid. The exit status is 0 only if every executable request with a feasible
//! deadline was fulfilled and its proof verified on the requester's side.
//!
//! Everything runs in this process, on loopback ports chosen at start; `--keep` leaves it up
//! as a local market for other processes and prints the endpoints and the funded keys.

use std::{
    collections::HashMap,
    io::{IsTerminal, Write},
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use provernet_artifacts::ArtifactClient;
use provernet_client::{Requester, Submission, close_reason, is_closed, status_name};
use provernet_network::{NetworkConfig, SuccinctApiConfig, launch as launch_network};
use provernet_node::{NodeConfig, NodeHandle, config::NetworkApi, launch as launch_node};
use provernet_types::{Address, Amount, NetworkClient, RequestId, Signer, proto};
use provernet_zkvm::{miden, samples};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::artifacts::shutdown_signal;
use crate::{keys::write_new_key, requester::explain};

/// The network id of every devnet.
const NETWORK_ID: &str = "provernet-devnet";
/// What each account gets from the faucet.
const FUNDS: u128 = 1_000_000_000_000;
/// Each prover's stake.
const STAKE: u128 = 10_000_000_000;
/// The deadline of a request any node can make, seconds from submission.
const FEASIBLE_SECS: u64 = 300;
/// The deadline nobody can meet, seconds from submission.
const IMPOSSIBLE_SECS: u64 = 4;
/// The deadline of an SP1 request: its CPU prover takes minutes to create, then ~1 min a proof.
#[cfg(feature = "sp1")]
const SP1_SECS: u64 = 1_200;

/// Flags of `provernet devnet`.
#[derive(Debug, clap::Args)]
pub struct DevnetArgs {
    /// Prover nodes to run (1-8).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=8))]
    nodes: u8,
    /// Requests to submit (1-500).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=500))]
    requests: u16,
    /// Where to keep the network's, nodes' and keys' files (must be empty or absent).
    /// Default: a new temporary folder, deleted at the end unless `--keep`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Stay up after the stream as a local market (until Ctrl-C), printing endpoints and keys.
    #[arg(long)]
    keep: bool,
    /// Add SP1 requests (fibonacci, and SHA-256 of private inputs) to the stream, proven by the
    /// first node. Needs a build with `--features sp1`, 12+ GiB of free memory, and minutes.
    #[arg(long)]
    sp1: bool,
    /// How many of the nodes (the last ones) speak the Succinct API rather than provernet's own
    /// (they poll, and skip private inputs). Default: 1 when there are 2 or more nodes, else 0.
    #[arg(long)]
    succinct_nodes: Option<u8>,
    /// Run node-1 as the coordinator of a proving pool with this many `provernet worker`
    /// processes (one proof at a time each), over the PostgreSQL at `--database-url`.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=16))]
    workers: u8,
    /// The PostgreSQL that node-1's pool and job store live in: each run creates a schema of
    /// its own there (`devnet_…`, dropped at the end unless `--keep`).
    #[arg(long, env = "PROVERNET_DEVNET_DATABASE_URL")]
    database_url: Option<String>,
}

/// A node's cost profile.
struct Profile {
    name: &'static str,
    cost_per_hour: u128,
    margin: f64,
}

const PROFILES: [Profile; 3] = [
    Profile { name: "budget", cost_per_hour: 240_000_000, margin: 0.1 },
    Profile { name: "standard", cost_per_hour: 300_000_000, margin: 0.2 },
    Profile { name: "premium", cost_per_hour: 360_000_000, margin: 0.3 },
];
/// Each node's cap on committed work: small, so that a busy node's load surcharge (and then
/// the cap) hands work to the others.
const COMMITTED_CAP_PGUS: u64 = 1 << 17;

/// What a request of the stream is expected to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Fulfilled,
    Unexecutable,
    Infeasible,
}

/// One request of the stream.
#[derive(Clone)]
struct Planned {
    label: String,
    /// The program's name on the network.
    name: &'static str,
    program: &'static [u8],
    inputs: Vec<u8>,
    zkvm_version: &'static str,
    gas_limit: u64,
    private: bool,
    deadline_secs: u64,
    expect: Expect,
}

/// The stream: a cycle of sizes and kinds, with the unexecutable and the infeasible request
/// placed early so that a short stream has them too.
fn plan(n: usize) -> Vec<Planned> {
    let miden = |sample: samples::Sample, inputs: String| Planned {
        label: sample.name.to_owned(),
        name: sample.name,
        program: sample.source.as_bytes(),
        inputs: inputs.into_bytes(),
        zkvm_version: miden::VERSION,
        gas_limit: 1 << 16,
        private: false,
        deadline_secs: FEASIBLE_SECS,
        expect: Expect::Fulfilled,
    };
    let hashchain = |len: u32| Planned {
        label: format!("hashchain n={len}"),
        ..miden(samples::HASHCHAIN, format!(r#"{{"stack": [{len}, 1, 2, 3, 4]}}"#))
    };
    let of = |sample: samples::Sample, private: bool| Planned {
        label: format!("{}{}", sample.name, if private { " (private)" } else { "" }),
        private,
        ..miden(sample, sample.inputs.to_owned())
    };
    let cycle = [
        of(samples::FIB, false),
        hashchain(200),
        of(samples::ADVICE_FOLD, true),
        hashchain(1000),
        of(samples::FIB, true),
        hashchain(500),
        of(samples::ADVICE_FOLD, true),
        hashchain(2000),
    ];
    let mut stream: Vec<Planned> = cycle.iter().cycle().take(n).cloned().collect();
    if n >= 3 {
        let mut unexecutable = of(samples::ASSERT42, false);
        unexecutable.label = "assert42 (unexecutable)".into();
        unexecutable.expect = Expect::Unexecutable;
        let mut late = hashchain(2000);
        late.label = format!("hashchain n=2000, {IMPOSSIBLE_SECS} s deadline");
        late.deadline_secs = IMPOSSIBLE_SECS;
        late.expect = Expect::Infeasible;
        let (a, b) = if n >= 5 { (1, 4) } else { (0, 1) };
        stream[a] = unexecutable;
        stream[b] = late;
    }
    stream
}

/// The SP1 requests `--sp1` adds, submitted first: they take longest.
#[cfg(feature = "sp1")]
fn sp1_requests() -> anyhow::Result<Vec<Planned>> {
    use provernet_zkvm::sp1::{self, samples as guests};
    let request = |label: &str, name, program: &'static [u8], inputs, private| Planned {
        label: label.to_owned(),
        name,
        program,
        inputs,
        zkvm_version: sp1::VERSION,
        gas_limit: 10_000_000,
        private,
        deadline_secs: SP1_SECS,
        expect: Expect::Fulfilled,
    };
    let data: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(31) % 251) as u8).collect();
    Ok(vec![
        request("sp1 fib n=1000", "sp1-fib", guests::FIB_ELF, guests::fib_inputs(1000), false),
        request(
            "sp1 sha256 10 KB (private)",
            "sp1-sha256",
            guests::SHA256_ELF,
            guests::sha256_inputs(&data),
            true,
        ),
    ])
}

/// Without the SP1 backend there is nothing to prove SP1 requests with.
#[cfg(not(feature = "sp1"))]
fn sp1_requests() -> anyhow::Result<Vec<Planned>> {
    bail!(
        "this build has no SP1 backend: run `cargo run --release --features sp1 -- devnet --sp1` \
         (the sp1 feature needs protoc: apt-get install protobuf-compiler)"
    )
}

/// A request being followed.
struct Row {
    planned: Planned,
    id: RequestId,
    submitted: Instant,
    request: Option<proto::ProofRequest>,
    finished: Option<Duration>,
    verified: Option<Result<(), String>>,
}

/// A node run by the devnet.
struct Node {
    name: String,
    key: Signer,
    handle: NodeHandle,
    shutdown: CancellationToken,
}

/// Runs the devnet.
pub async fn run(args: DevnetArgs) -> anyhow::Result<()> {
    let mut stream = if args.sp1 { sp1_requests()? } else { Vec::new() };
    stream.extend(plan(usize::from(args.requests)));
    let pool = match (args.workers, &args.database_url) {
        (0, _) => None,
        (_, Some(url)) => Some(url.clone()),
        (_, None) => bail!(
            "--workers needs a PostgreSQL for the pool's task queue: give --database-url \
             postgres://user:password@127.0.0.1/db. To get one on Debian or Ubuntu: `sudo apt-get \
             install postgresql`, then `sudo -u postgres createuser -s $USER` and `createdb \
             provernet` (the URL is then postgres:///provernet?host=/var/run/postgresql)"
        ),
    };
    let (dir, _temp) = data_dir(args.data_dir.as_ref(), args.keep)?;
    // Each run has its own schema: a pool (or job) left by an earlier run is not this one's.
    let pool = match pool {
        Some(url) => Some(RunSchema::create(&url).await?),
        None => None,
    };
    let started = Instant::now();

    // The network, with its ArtifactStore embedded.
    let grpc = TcpListener::bind("127.0.0.1:0").await.context("cannot bind a loopback port")?;
    let store = TcpListener::bind("127.0.0.1:0").await.context("cannot bind a loopback port")?;
    let artifacts_url = format!("http://{}", store.local_addr()?);
    let secret = Signer::random().secret_hex();
    let mut config = NetworkConfig::local(dir.join("network"), NETWORK_ID, &artifacts_url, &secret);
    // SP1's SDK and Succinct-protocol nodes can use the devnet too (NETWORK_RPC_URL).
    config.succinct = Some(SuccinctApiConfig::for_network(NETWORK_ID));
    let network_stop = CancellationToken::new();
    let network = launch_network(config, grpc, store, network_stop.clone())
        .await
        .context("cannot start the network")?;
    let network_url = format!("http://{}", network.grpc_addr);
    let client = NetworkClient::connect(&network_url, Duration::from_secs(5))
        .await
        .context("cannot reach the devnet's own network")?;
    eprintln!("network     {network_url}  (id {NETWORK_ID})");
    eprintln!("artifacts   {artifacts_url}");
    eprintln!("data        {}", dir.display());

    // The nodes: the last `succinct` on the Succinct API. One at least stays on the native API,
    // the only one that serves private inputs to provers.
    let succinct = usize::from(args.succinct_nodes.unwrap_or(u8::from(args.nodes >= 2)));
    if succinct >= usize::from(args.nodes) {
        anyhow::bail!(
            "--succinct-nodes {succinct} leaves no node on provernet's own API for the stream's \
             private inputs: use at most {}",
            args.nodes - 1
        );
    }
    let mut nodes = Vec::new();
    for i in 0..usize::from(args.nodes) {
        let api = if i + succinct >= usize::from(args.nodes) {
            NetworkApi::Succinct
        } else {
            NetworkApi::Provernet
        };
        // Profiles rotate so that the Succinct-API node is the budget one: it wins work, and
        // the devnet shows both APIs proving.
        let profile = &PROFILES[(i + succinct) % PROFILES.len()];
        let pool = pool.as_ref().map(|p| p.url.as_str()).filter(|_| i == 0);
        let node = start_node(&client, &dir, i, profile, args.sp1, api, pool).await?;
        eprintln!(
            "{:<11} prover {}  monitor http://{}/status",
            node.name,
            node.key.address(),
            node.handle.monitor_addr.map_or_else(|| "-".into(), |a| a.to_string())
        );
        nodes.push(node);
    }
    let names: HashMap<Address, String> =
        nodes.iter().map(|n| (n.key.address(), n.name.clone())).collect();
    let mut workers = Vec::new();
    if let Some(schema) = &pool {
        for k in 1..=args.workers {
            workers.push(start_worker(&dir, &schema.url, k)?);
        }
        // The stream starts once node-1 bids by every worker: a request is decided once.
        let live = || {
            nodes[0].handle.context.core().pool().map_or(0, |p| p.workers)
                >= usize::from(args.workers)
        };
        let until = Instant::now() + Duration::from_secs(120);
        while !live() {
            if Instant::now() > until {
                bail!("node-1's {} workers did not join its pool within 2 minutes", args.workers);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "pool        node-1 coordinates {} worker processes in PostgreSQL schema {}",
            args.workers, schema.name
        );
    }

    // The requester.
    let requester_key = write_new_key(&dir.join("requester.key"))?;
    client.faucet(&requester_key, Amount::new(FUNDS)).await.context("faucet")?;
    let artifacts = ArtifactClient::new().context("cannot set up the ArtifactStore client")?;
    let requester = Requester::from_parts(client.clone(), artifacts, Some(requester_key.clone()));
    eprintln!("requester   {}", requester_key.address());
    // A funded key for SP1's SDK, written to the data folder and printed for the walk-through
    // (a throwaway devnet key; `--sp1` or `--keep` only).
    let sdk_key = write_new_key(&dir.join("sdk.key"))?;
    client.faucet(&sdk_key, Amount::new(FUNDS)).await.context("faucet")?;
    if args.sp1 || args.keep {
        eprintln!(
            "sp1 sdk     NETWORK_RPC_URL={network_url} NETWORK_PRIVATE_KEY={}",
            sdk_key.secret_hex()
        );
    }
    eprintln!();

    let outcome = follow_stream(&client, &requester, &names, stream).await;
    let (rows, paid) = match outcome {
        Ok(done) => done,
        Err(e) => {
            shutdown(nodes, network_stop, network.join).await;
            return Err(e);
        }
    };
    let success = summary(&rows, paid, started.elapsed());

    if args.keep {
        print_endpoints(&network_url, &artifacts_url, &dir, &nodes, &requester_key);
        shutdown_signal().await;
    }
    shutdown(nodes, network_stop, network.join).await;
    drop(workers);
    if let Some(schema) = pool
        && !args.keep
    {
        schema.drop().await;
    }
    if !success {
        bail!("some executable requests with a feasible deadline were not fulfilled and verified");
    }
    Ok(())
}

/// The data folder: the one given (empty or absent), or a new temporary one.
fn data_dir(
    given: Option<&PathBuf>,
    keep: bool,
) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(dir) = given {
        let used = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
        if used {
            bail!("--data-dir {} is not empty: a devnet starts from a fresh folder", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        return Ok((dir.clone(), None));
    }
    let temp = tempfile::Builder::new()
        .prefix("provernet-devnet-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    if keep {
        let path = temp.keep();
        return Ok((path, None));
    }
    Ok((temp.path().to_path_buf(), Some(temp)))
}

/// A PostgreSQL schema of a run's own (a devnet's pool and node-1's job store, a benchmark's
/// network), in a database others may use.
pub(crate) struct RunSchema {
    /// The `--database-url` it was made in.
    base: String,
    /// Its name.
    name: String,
    /// The URL that puts a connection in it.
    pub(crate) url: String,
}

impl RunSchema {
    /// Creates a schema named for this run in the database at `base`.
    pub(crate) async fn create(base: &str) -> anyhow::Result<Self> {
        let name = format!("devnet_{}", hex::encode(rand::random::<[u8; 6]>()));
        let db = sqlx::PgPool::connect(base)
            .await
            .context("cannot reach the PostgreSQL at --database-url")?;
        sqlx::raw_sql(&format!("CREATE SCHEMA {name}"))
            .execute(&db)
            .await
            .with_context(|| format!("cannot create the run's schema {name} at --database-url"))?;
        db.close().await;
        let glue = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{glue}options[search_path]={name}");
        Ok(Self { base: base.to_owned(), name, url })
    }

    /// Drops the schema and everything in it (the run is over).
    pub(crate) async fn drop(self) {
        let dropped = async {
            let db = sqlx::PgPool::connect(&self.base).await?;
            sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", self.name)).execute(&db).await?;
            db.close().await;
            Ok::<_, sqlx::Error>(())
        };
        if let Err(e) = dropped.await {
            eprintln!("warning: cannot drop the run's schema {}: {e}", self.name);
        }
    }
}

/// Starts `provernet worker` number `k` of node-1's pool as a child process (killed when
/// dropped), one proof at a time.
fn start_worker(dir: &std::path::Path, url: &str, k: u8) -> anyhow::Result<tokio::process::Child> {
    let exe = std::env::current_exe().context("cannot find this program to start workers")?;
    tokio::process::Command::new(exe)
        .args(["worker", "--database-url", url, "--id", &format!("worker-{k}")])
        .args(["--cores", "1", "--memory-gib", "4", "--pgus-per-second", "4000"])
        .arg("--secret-file")
        .arg(dir.join("node-1").join("cluster.secret"))
        .arg("--data-dir")
        .arg(dir.join(format!("worker-{k}")))
        .env("RUST_LOG", "warn,miden_core::mast::serialization=off")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start worker-{k}"))
}

/// Funds, registers and launches node `i` (the coordinator of a proving pool at `pool`, if
/// given).
async fn start_node(
    client: &NetworkClient,
    dir: &std::path::Path,
    i: usize,
    profile: &Profile,
    sp1: bool,
    api: NetworkApi,
    pool: Option<&str>,
) -> anyhow::Result<Node> {
    let name = match api {
        NetworkApi::Provernet => format!("node-{} ({})", i + 1, profile.name),
        NetworkApi::Succinct => format!("node-{} ({}, succinct)", i + 1, profile.name),
    };
    let node_dir = dir.join(format!("node-{}", i + 1));
    std::fs::create_dir_all(&node_dir)
        .with_context(|| format!("cannot create {}", node_dir.display()))?;
    let key_file = node_dir.join("node.key");
    let key = write_new_key(&key_file)?;
    client.faucet(&key, Amount::new(FUNDS)).await.context("faucet")?;
    client
        .register_prover(&key, Amount::new(STAKE), &key.address())
        .await
        .with_context(|| format!("cannot register {name}"))?;
    let mut config = NodeConfig::new(client.url());
    config.key_file = key_file;
    config.data_dir = node_dir.join("data");
    config.bidding.cost_per_hour = Amount::new(profile.cost_per_hour);
    config.bidding.margin = profile.margin;
    // The nodes share this machine: each assumes a share of its throughput, and a modest
    // memory budget so that three fit.
    config.proving.pgus_per_second = 4_000.0;
    config.proving.memory_gib = 4;
    config.bidding.committed_cap_pgus = COMMITTED_CAP_PGUS;
    if sp1 {
        // The first node proves SP1 too: its proofs hold 12 GiB whatever their gas, and their
        // gas is far above the Miden cap (its queue's time still limits it).
        if i == 0 {
            config.proving.memory_gib = 16;
            config.bidding.committed_cap_pgus = 0;
        } else {
            config.proving.versions = vec![miden::VERSION.to_owned()];
        }
    }
    config.network.api = api;
    // Polled often enough to bid within the stream's 1 s auctions.
    config.network.poll_interval_ms = 250;
    config.monitor.listen = "127.0.0.1:0".into();
    if let Some(url) = pool {
        let secret = node_dir.join("cluster.secret");
        std::fs::write(&secret, provernet_node::pool::ClusterSecret::generate())
            .with_context(|| format!("cannot write {}", secret.display()))?;
        config.cluster.database_url = url.to_owned();
        config.cluster.secret_file = secret;
    }
    std::fs::write(node_dir.join("node.toml"), config.template())
        .with_context(|| format!("cannot write {name}'s config"))?;
    let monitor = TcpListener::bind("127.0.0.1:0").await.context("cannot bind a loopback port")?;
    let shutdown = CancellationToken::new();
    let handle =
        launch_node(config, Some(monitor), shutdown.clone()).await.with_context(|| match pool {
            Some(url) => format!("cannot start {name} with its proving pool at {url}"),
            None => format!("cannot start {name}"),
        })?;
    Ok(Node { name, key, handle, shutdown })
}

/// Submits the stream and follows every request until it closes; returns the rows and the
/// total paid.
async fn follow_stream(
    client: &NetworkClient,
    requester: &Requester,
    names: &HashMap<Address, String>,
    planned: Vec<Planned>,
) -> anyhow::Result<(Vec<Row>, u128)> {
    let mut events = client
        .subscribe(proto::SubscribeRequestsRequest::default())
        .await
        .context("cannot follow the network's requests")?;
    let mut table = Table::new(std::io::stdout().is_terminal());
    let mut rows: Vec<Row> = Vec::new();
    let n = planned.len();
    let last_deadline = planned.iter().map(|p| p.deadline_secs).max().unwrap_or(0);
    let limit = Instant::now() + Duration::from_secs(last_deadline + 60);
    let mut pending = planned.into_iter();
    let mut next_submit = tokio::time::Instant::now();
    loop {
        if rows.len() == n && rows.iter().all(|r| r.finished.is_some()) {
            break;
        }
        if Instant::now() > limit {
            bail!("the devnet's requests did not all close in time");
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_submit), if rows.len() < n => {
                if let Some(p) = pending.next() {
                    let row = submit(requester, client, p).await?;
                    table.line(&row, names);
                    rows.push(row);
                    next_submit = tokio::time::Instant::now() + Duration::from_millis(300);
                }
            }
            event = events.message() => {
                let Some(event) = event.context("the network's event stream broke")? else {
                    bail!("the network closed its event stream");
                };
                let Some(row) = rows.iter_mut().find(|r| r.id.as_bytes() == event.request_id.as_slice()) else {
                    continue;
                };
                let request = client.proof_request(&row.id).await?;
                let changed = row.request.as_ref().map(|r| (r.status, r.pgus)) != Some((request.status, request.pgus));
                if is_closed(&request) && row.finished.is_none() {
                    row.finished = Some(row.submitted.elapsed());
                }
                row.request = Some(request);
                if changed {
                    table.line(row, names);
                }
            }
        }
        table.redraw(&rows, names);
    }
    // Verify every proof here, as a requester would.
    let mut paid = 0u128;
    for row in &mut rows {
        let Some(request) = &row.request else { continue };
        paid += request.paid.parse::<u128>().unwrap_or(0);
        if request.status == proto::RequestStatus::Fulfilled as i32 {
            row.verified = Some(
                requester
                    .fetch_proof(&row.id)
                    .await
                    .map(drop)
                    .map_err(|e| format!("{:#}", anyhow::Error::new(e))),
            );
        }
    }
    table.redraw(&rows, names);
    Ok((rows, paid))
}

async fn submit(
    requester: &Requester,
    client: &NetworkClient,
    planned: Planned,
) -> anyhow::Result<Row> {
    let now = client.network_info().await?.now;
    let submission = Submission {
        program: planned.program.to_vec(),
        inputs: planned.inputs.clone(),
        private: planned.private,
        name: planned.name.to_owned(),
        zkvm_version: planned.zkvm_version.to_owned(),
        gas_limit: planned.gas_limit,
        deadline: now + planned.deadline_secs,
        max_price_per_pgu: Amount::new(1_000),
        base_fee: Amount::new(1_000),
        min_auction_period: 1,
        expected_outputs_hash: None,
    };
    let id = requester
        .submit(&submission)
        .await
        .map_err(explain)
        .with_context(|| format!("cannot submit {}", planned.label))?;
    Ok(Row {
        planned,
        id,
        submitted: Instant::now(),
        request: None,
        finished: None,
        verified: None,
    })
}

/// The live view: a table redrawn in place on a terminal, or one line per change otherwise.
struct Table {
    live: bool,
    drawn: usize,
    last: Instant,
}

impl Table {
    fn new(live: bool) -> Self {
        Self { live, drawn: 0, last: Instant::now() }
    }

    /// A state change, printed as a line when not live.
    fn line(&self, row: &Row, names: &HashMap<Address, String>) {
        if !self.live {
            println!("{}", format_row(row, names));
        }
    }

    /// Redraws the table (at most ten times a second) when live.
    fn redraw(&mut self, rows: &[Row], names: &HashMap<Address, String>) {
        let all_done = rows.iter().all(|r| r.finished.is_some());
        if !self.live || (self.last.elapsed() < Duration::from_millis(100) && !all_done) {
            return;
        }
        self.last = Instant::now();
        let mut out = std::io::stdout().lock();
        if self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A", self.drawn);
        }
        let _ = writeln!(out, "\x1b[2K{}", header());
        for row in rows {
            let _ = writeln!(out, "\x1b[2K{}", format_row(row, names));
        }
        let _ = out.flush();
        self.drawn = rows.len() + 1;
    }
}

fn header() -> String {
    format!(
        "{:<12} {:<34} {:<14} {:<25} {:>7} {:>8} {:>8}",
        "request", "what", "state", "winner", "price", "PGUs", "elapsed"
    )
}

fn format_row(row: &Row, names: &HashMap<Address, String>) -> String {
    let id = row.id.to_string();
    let (state, winner, price, pgus) = match &row.request {
        None => ("submitted".to_owned(), String::new(), String::new(), String::new()),
        Some(r) => {
            let winner = Address::from_slice(&r.assigned_prover)
                .ok()
                .map(|a| names.get(&a).cloned().unwrap_or_else(|| a.to_string()))
                .unwrap_or_default();
            let state = match &row.verified {
                Some(Ok(())) => "verified".to_owned(),
                Some(Err(_)) => "NOT VERIFIED".to_owned(),
                None => status_name(r).to_owned(),
            };
            (
                state,
                winner,
                r.winning_price_per_pgu.clone(),
                if r.pgus > 0 { r.pgus.to_string() } else { String::new() },
            )
        }
    };
    let elapsed = row.finished.unwrap_or_else(|| row.submitted.elapsed());
    format!(
        "{:<12} {:<34} {:<14} {:<25} {:>7} {:>8} {:>7.1}s",
        &id[..12.min(id.len())],
        row.planned.label,
        state,
        winner,
        price,
        pgus,
        elapsed.as_secs_f64()
    )
}

/// Prints the summary; returns whether every request did what it should.
fn summary(rows: &[Row], paid: u128, elapsed: Duration) -> bool {
    let fulfilled: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            r.request.as_ref().is_some_and(|q| q.status == proto::RequestStatus::Fulfilled as i32)
        })
        .collect();
    let verified = fulfilled.iter().filter(|r| matches!(r.verified, Some(Ok(())))).count();
    let mean = if fulfilled.is_empty() {
        0.0
    } else {
        fulfilled.iter().filter_map(|r| r.finished).map(|d| d.as_secs_f64()).sum::<f64>()
            / fulfilled.len() as f64
    };
    println!();
    println!("requests        {}", rows.len());
    println!("fulfilled       {}", fulfilled.len());
    println!("verified here   {verified}");
    let mut ok = true;
    for row in rows {
        let Some(request) = &row.request else { continue };
        let is_fulfilled = request.status == proto::RequestStatus::Fulfilled as i32;
        if !is_fulfilled {
            println!(
                "not fulfilled   {} ({}): {} — {}",
                row.id,
                row.planned.label,
                status_name(request),
                close_reason(request).unwrap_or("no reason given")
            );
        }
        if let Some(Err(e)) = &row.verified {
            println!("NOT VERIFIED    {} ({}): {e}", row.id, row.planned.label);
        }
        let as_expected = match row.planned.expect {
            Expect::Fulfilled => is_fulfilled && matches!(row.verified, Some(Ok(()))),
            Expect::Unexecutable | Expect::Infeasible => !is_fulfilled,
        };
        ok &= as_expected;
    }
    println!("mean to proof   {mean:.1} s");
    println!("total paid      {paid}");
    println!("wall time       {:.1} s", elapsed.as_secs_f64());
    println!(
        "{}",
        if ok {
            "devnet: every executable request with a feasible deadline was proven and verified"
        } else {
            "devnet: FAILED — see above"
        }
    );
    ok
}

fn print_endpoints(
    network: &str,
    artifacts: &str,
    dir: &std::path::Path,
    nodes: &[Node],
    requester: &Signer,
) {
    println!();
    println!("The devnet stays up until Ctrl-C.");
    println!("  network     {network}");
    println!("  artifacts   {artifacts}");
    println!("  data        {}", dir.display());
    for node in nodes {
        println!(
            "  {:<25} {}  key {}",
            node.name,
            node.key.address(),
            dir.join(node.name.split(' ').next().unwrap_or("node")).join("node.key").display()
        );
    }
    println!(
        "  requester   {}  key {} (funded)",
        requester.address(),
        dir.join("requester.key").display()
    );
    println!(
        "Try: provernet request submit programs/fib --network {network} --key-file {} --wait",
        dir.join("requester.key").display()
    );
    println!(
        "SP1's SDK (Succinct API on the same port): NETWORK_RPC_URL={network} NETWORK_PRIVATE_KEY=$(cat {})",
        dir.join("sdk.key").display()
    );
}

async fn shutdown(
    nodes: Vec<Node>,
    network_stop: CancellationToken,
    network: tokio::task::JoinHandle<()>,
) {
    for node in &nodes {
        node.shutdown.cancel();
    }
    for node in nodes {
        let _ = node.handle.join.await;
    }
    network_stop.cancel();
    let _ = network.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_has_one_unexecutable_and_one_infeasible_request() {
        for n in [3, 5, 10, 40] {
            let stream = plan(n);
            assert_eq!(stream.len(), n);
            let count = |e| stream.iter().filter(|p| p.expect == e).count();
            assert_eq!((count(Expect::Unexecutable), count(Expect::Infeasible)), (1, 1), "{n}");
            assert!(stream.iter().any(|p| p.private), "{n}: some private inputs");
        }
        assert!(plan(2).iter().all(|p| p.expect == Expect::Fulfilled));
        assert_eq!(plan(1).len(), 1);
    }

    #[cfg(not(feature = "sp1"))]
    #[test]
    fn sp1_requests_need_the_sp1_build() {
        let err = sp1_requests().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("--features sp1"), "{err}");
    }

    #[cfg(feature = "sp1")]
    #[test]
    fn sp1_requests_execute_within_their_gas_limit() {
        use provernet_zkvm::ZkVm;
        let backend = provernet_zkvm::Sp1Backend::new();
        let requests = sp1_requests().unwrap_or_default();
        assert_eq!(requests.len(), 2);
        assert!(requests.iter().any(|p| p.private));
        for p in requests {
            let run = backend.execute(p.program, &p.inputs, p.gas_limit);
            assert!(run.is_ok(), "{}: {run:?}", p.label);
        }
    }
}
