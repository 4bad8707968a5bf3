//! `provernet bench history`: the network's memory and restart time against the size of its
//! history (issue 18). For each size, a fresh SQLite database is seeded straight through the
//! store with that many closed requests (two bids each), then `provernet network` is started on
//! it as a child process: the time from spawn to its first answered call, its RSS, and the
//! latency of GetProofRequest and ListProofRequests over the history are measured over gRPC.

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Args;
use provernet_network::{
    market::{
        Assignment, Bid, Changes, Execution, LedgerTotals, NewBid, Request, Status, status_name,
    },
    store::SqlStore,
};
use provernet_types::{
    Address, Amount, ArtifactId, RequestId, RequestSpec,
    client::connect_channel,
    proto::{self, prover_network_client::ProverNetworkClient},
};
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use tonic::transport::Channel;

/// Requests written per store commit while seeding.
const SEED_BATCH: usize = 10_000;

/// Distinct requesters in the seeded history (for ListProofRequests' requester filter).
const REQUESTERS: u8 = 100;

/// How long a started network may take to answer its first call.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Flags of `provernet bench history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Closed requests in each history measured (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [0, 100_000, 1_000_000])]
    sizes: Vec<usize>,
    /// GetProofRequest calls timed at each size (random closed requests).
    #[arg(long, default_value_t = 2_000)]
    gets: usize,
    /// ListProofRequests calls timed at each size (100 per page, a random requester's, walking
    /// its cursor).
    #[arg(long, default_value_t = 500)]
    lists: usize,
    /// Seed of the history and of the reads.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep each seeded history in `<dir>/<size>/` and reuse it when run again with the same
    /// size and seed (seeding 1,000,000 requests takes minutes); default: a temp dir per run.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

/// What one size measured.
struct Measured {
    size: usize,
    seed_secs: f64,
    db_bytes: u64,
    ready_secs: f64,
    rss_ready: u64,
    rss_after: u64,
    get: Percentiles,
    list: Percentiles,
}

/// p50 and p99 of a set of latencies, in milliseconds.
#[derive(Clone, Copy)]
struct Percentiles {
    p50: f64,
    p99: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| {
            samples
                .get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        Self { p50: at(0.50), p99: at(0.99) }
    }
}

/// Runs the benchmark and prints its table.
pub async fn run(args: HistoryArgs) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for &size in &args.sizes {
        let measured = measure(&args, size).await?;
        println!(
            "{:>9} closed: seeded in {:.1} s ({:.0} MB), ready in {:.2} s, RSS {:.1} MB → {:.1} MB, get p50/p99 {:.2}/{:.2} ms, list p50/p99 {:.2}/{:.2} ms",
            measured.size,
            measured.seed_secs,
            measured.db_bytes as f64 / 1e6,
            measured.ready_secs,
            measured.rss_ready as f64 / 1e6,
            measured.rss_after as f64 / 1e6,
            measured.get.p50,
            measured.get.p99,
            measured.list.p50,
            measured.list.p99,
        );
        rows.push(measured);
    }
    let Some(base) = rows.first().map(|m| m.rss_after.max(1)) else { return Ok(()) };
    println!();
    println!(
        "| closed requests | database MB | restart s | RSS at ready MB | RSS after reads MB | RSS ÷ first size's | GetProofRequest p50 / p99 ms | ListProofRequests p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for m in &rows {
        println!(
            "| {} | {:.0} | {:.2} | {:.1} | {:.1} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
            m.size,
            m.db_bytes as f64 / 1e6,
            m.ready_secs,
            m.rss_ready as f64 / 1e6,
            m.rss_after as f64 / 1e6,
            m.rss_after as f64 / base as f64,
            m.get.p50,
            m.get.p99,
            m.list.p50,
            m.list.p99,
        );
    }
    Ok(())
}

async fn measure(args: &HistoryArgs, size: usize) -> anyhow::Result<Measured> {
    let temp = tempfile::tempdir().context("creating a temp dir")?;
    let dir = match &args.dir {
        Some(dir) => dir.join(format!("{size}-{}", args.seed)),
        None => temp.path().to_path_buf(),
    };
    let db = dir.join("network.db");
    let url = format!("sqlite://{}", db.display());
    let started = Instant::now();
    // A kept history is complete once its marker is written, after the last commit.
    let seeded = dir.join("seeded");
    let ids = if seeded.exists() {
        ids_of(size, args.seed)
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).context("creating the history's folder")?;
        let ids = seed(&url, size, args.seed).await?;
        std::fs::write(&seeded, b"").context("marking the history seeded")?;
        ids
    };
    let seed_secs = started.elapsed().as_secs_f64();
    let db_bytes = folder_bytes(&dir);

    let (grpc, artifacts) = (free_port()?, free_port()?);
    let exe = std::env::current_exe().context("finding the provernet binary")?;
    let started = Instant::now();
    let child = Command::new(exe)
        .args(["network", "--listen", &format!("127.0.0.1:{grpc}")])
        .args(["--artifacts-listen", &format!("127.0.0.1:{artifacts}")])
        .arg("--data-dir")
        .arg(&dir)
        .args(["--database-url", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting provernet network")?;
    let mut child = Stopped(child);
    let mut client = ready(&format!("http://127.0.0.1:{grpc}"), &mut child.0).await?;
    let ready_secs = started.elapsed().as_secs_f64();
    let rss_ready = rss(child.0.id())?;

    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed);
    let mut gets = Vec::with_capacity(args.gets);
    for _ in 0..if ids.is_empty() { 0 } else { args.gets } {
        let id = ids[rng.gen_range(0..ids.len())];
        let call = Instant::now();
        let found = client
            .get_proof_request(proto::GetProofRequestRequest { request_id: id.as_bytes().to_vec() })
            .await
            .context("GetProofRequest")?
            .into_inner();
        gets.push(call.elapsed());
        if found.request.is_none() {
            bail!("request {id} is missing");
        }
    }
    let mut lists = Vec::with_capacity(args.lists);
    let mut cursor = String::new();
    let mut requester = requester_of(&mut rng);
    for _ in 0..args.lists {
        let call = Instant::now();
        let page = client
            .list_proof_requests(proto::ListProofRequestsRequest {
                requester: requester.as_bytes().to_vec(),
                cursor: cursor.clone(),
                limit: 100,
                ..Default::default()
            })
            .await
            .context("ListProofRequests")?
            .into_inner();
        lists.push(call.elapsed());
        cursor = page.next_cursor;
        if cursor.is_empty() {
            requester = requester_of(&mut rng);
        }
    }
    let rss_after = rss(child.0.id())?;
    Ok(Measured {
        size,
        seed_secs,
        db_bytes,
        ready_secs,
        rss_ready,
        rss_after,
        get: Percentiles::of(gets),
        list: Percentiles::of(lists),
    })
}

/// Writes `size` closed requests (fulfilled, unfulfillable, cancelled in turn; two bids each)
/// through the store; returns their ids.
async fn seed(url: &str, size: usize, seed: u64) -> anyhow::Result<Vec<RequestId>> {
    let store = SqlStore::open(url).await.context("opening the database")?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ids = Vec::with_capacity(size);
    let start = 1_700_000_000u64;
    let mut n = 0usize;
    let mut closed = std::collections::BTreeMap::<String, u64>::new();
    while n < size {
        let mut changes = Changes::default();
        for _ in 0..SEED_BATCH.min(size - n) {
            let (id, requester) = draw(&mut rng);
            let status = [Status::Fulfilled, Status::Unfulfillable, Status::Cancelled][n % 3];
            *closed.entry(status_name(status).to_owned()).or_insert(0) += 1;
            let created_at = start + (n / 10) as u64;
            let bids: Vec<Bid> = (0..2u8)
                .map(|b| Bid {
                    prover: Address::from_bytes([200 + b; 20]),
                    price_per_pgu: Amount::new(3 + u128::from(b)),
                    at_ms: created_at * 1000 + u64::from(b),
                })
                .collect();
            changes.bids.extend(bids.iter().enumerate().map(|(index, bid)| NewBid {
                request: id,
                index: index as u32,
                bid: bid.clone(),
            }));
            let assigned = status != Status::Cancelled;
            changes.requests.push(Request {
                id,
                requester,
                spec: RequestSpec {
                    program_id: vec![7; 32],
                    zkvm_version: "miden-0.23".into(),
                    program_artifact_id: ArtifactId::of(b"program"),
                    inputs_artifact_id: ArtifactId::of(&id.as_bytes()[..]),
                    inputs_private: false,
                    deadline: created_at + 600,
                    gas_limit: 1 << 20,
                    max_price_per_pgu: Amount::new(10),
                    base_fee: Amount::new(1_000),
                    min_auction_period: 2,
                    whitelist: Vec::new(),
                    expected_outputs_hash: None,
                    proof_mode: String::new(),
                },
                status,
                execution: Execution::Executed { pgus: 65_536, outputs: vec![1, 0, 0, 0] },
                lock: Amount::new(656_360),
                created_at,
                bids,
                assignment: assigned.then(|| Assignment {
                    prover: Address::from_bytes([200; 20]),
                    price_per_pgu: Amount::new(3),
                    collateral: Amount::new(65_636),
                    at_ms: (created_at + 2) * 1000,
                }),
                closed_at: Some(created_at + 30),
                close_reason: (status != Status::Fulfilled).then(|| "seeded".to_owned()),
                paid: if status == Status::Fulfilled { Amount::new(197_608) } else { Amount::ZERO },
                proof_artifact_id: (status == Status::Fulfilled)
                    .then(|| ArtifactId::of(&[&id.as_bytes()[..], b"proof"].concat())),
                pending_proof: None,
                rejected_proof: None,
                proof_deleted_at: None,
            });
            ids.push(id);
            n += 1;
        }
        store.commit(&[changes]).await.context("seeding the history")?;
    }
    // The counts a network keeps as requests close.
    let ledger = LedgerTotals {
        closed_requests: (!closed.is_empty()).then_some(closed),
        ..LedgerTotals::default()
    };
    store
        .commit(&[Changes { ledger: Some(ledger), ..Changes::default() }])
        .await
        .context("seeding the history")?;
    store.close().await;
    Ok(ids)
}

/// The ids [`seed`] writes for `size` and `seed`, without writing them (the same draws).
fn ids_of(size: usize, seed: u64) -> Vec<RequestId> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..size).map(|_| draw(&mut rng).0).collect()
}

/// The next seeded request's id and requester.
fn draw(rng: &mut StdRng) -> (RequestId, Address) {
    (RequestId::from_bytes(rng.r#gen()), requester_of(rng))
}

/// Requester `n` of the seeded history.
fn requester(n: u8) -> Address {
    Address::from_bytes([n; 20])
}

fn requester_of(rng: &mut StdRng) -> Address {
    requester(rng.gen_range(0..REQUESTERS))
}

/// A port free on loopback now (the network binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0").context("finding a free port")?.local_addr()?.port())
}

/// The network's client once it answers a call; fails if the process exits or takes longer
/// than [`START_TIMEOUT`]. Polls: a started process has no other signal to give.
async fn ready(url: &str, child: &mut Child) -> anyhow::Result<ProverNetworkClient<Channel>> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("provernet network exited at start: {status}");
        }
        if let Ok(channel) = connect_channel(url, Duration::from_secs(1)).await {
            let mut client = ProverNetworkClient::new(channel);
            let answer = client
                .list_proof_requests(proto::ListProofRequestsRequest {
                    limit: 1,
                    ..Default::default()
                })
                .await;
            if answer.is_ok() {
                return Ok(client);
            }
        }
        if Instant::now() > deadline {
            bail!("provernet network did not answer within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The resident set of process `pid`, in bytes.
fn rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading the network's /proc status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .context("no VmRSS in /proc status")?;
    Ok(kb * 1024)
}

/// Bytes of the files in `dir` (the database and its WAL).
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// The started network, stopped when dropped.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
