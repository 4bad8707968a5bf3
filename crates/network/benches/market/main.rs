//! ProverNetwork market throughput on loopback (issue 4): signed RequestProof/s and Bid/s from
//! concurrent clients with p50/p99 latency, and the delay from an auction period's end to its
//! settlement. DESIGN.md's target: ≥ 5,000 signed bids/s on SQLite on the 2-core machine, and
//! auctions settled < 10 ms after their period ends.
//!
//! Run: `cargo bench -p provernet-network --bench market`
//!
//! Sizes (env; the defaults take about a minute):
//! - `MARKET_BENCH_REQUESTERS` (32): concurrent RequestProof clients, one account each;
//! - `MARKET_BENCH_REQUESTS` (10000): RequestProof calls in all (fib, auction period 1 h);
//! - `MARKET_BENCH_PROVERS` (32): concurrent bidding clients, one prover (operator key) each;
//! - `MARKET_BENCH_BID_REQUESTS` (1500): open, executed requests every prover bids on once;
//! - `MARKET_BENCH_AUCTIONS` (60), `MARKET_BENCH_AUCTION_RATE` (20 per s),
//!   `MARKET_BENCH_PERIOD` (2 s): each settlement run. It runs twice: on an idle network, then
//!   while all but 6 provers bid on the other open requests as fast as they can.
//!
//! State (env): SQLite by default; `MARKET_BENCH_DATABASE_URL=postgres://…` runs on a fresh
//! schema of that PostgreSQL, twice in the same run: the network alone, then with a standby on
//! the same database following the leader's journal (hot standby; in this process, on the
//! server's runtime); both `MARKET_BENCH_ROUNDS` (1) times, alternating.
//!
//! The network ([`provernet_network::launch`], its database and artifacts in a temp dir) runs in
//! this process on a tokio runtime of its own (threads `pn-server`, plus sqlx's SQLite threads),
//! the clients on another (`pn-client`), each client on its own connection. Every message is
//! signed before the timed loop (signing is reported apart), and every client sends its next
//! call when the previous one is answered. CPU time per side comes from
//! `/proc/self/task/*/schedstat`; both sides share the machine's cores.
//!
//! Layout: `setup` (network, accounts, program), `settle` (the settlement runs and their
//! background load), `stats` (percentiles, CPU, table), this file (sizes and phases 1–2).

mod settle;
mod setup;
mod stats;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use provernet_network::market::Execution;
use provernet_types::{RequestId, open, proto, proto::SignedMessage};
use settle::{Actors, BIDDERS_PER_AUCTION, Load};
use setup::{Account, Database, Net, Program, Prover};
use stats::{Role, Throughput, cpu_by_thread, cpu_delta, thread_cpu};
use tokio::sync::{Barrier, Mutex};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Thread-name prefix of the network's runtime.
const SERVER_THREADS: &str = "pn-server";
/// Thread-name prefix of the clients' runtime.
const CLIENT_THREADS: &str = "pn-client";
/// Auction period of the requests the throughput phases create: they stay open.
const LONG_PERIOD: u64 = 3_600;
/// Provers that bid in the settlement auctions; the others load the network meanwhile.
const SETTLE_PROVERS: usize = 6;
/// Bid rate the load clients are given pre-signed bids for (more than they can send).
const LOAD_BIDS_PER_SECOND: f64 = 8_000.0;
/// Longest wait for the executor or a settlement before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(300);

/// The benchmark's sizes.
struct Sizes {
    requesters: usize,
    requests: usize,
    provers: usize,
    bid_requests: usize,
    auctions: usize,
    auction_rate: f64,
    period: u64,
}

impl Sizes {
    fn from_env() -> Result<Self> {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
            match std::env::var(name) {
                Ok(text) => {
                    text.parse().map_err(|_| format!("{name}={text:?} is not valid").into())
                }
                Err(_) => Ok(default),
            }
        }
        let sizes = Self {
            requesters: var("MARKET_BENCH_REQUESTERS", 32)?,
            requests: var("MARKET_BENCH_REQUESTS", 10_000)?,
            provers: var("MARKET_BENCH_PROVERS", 32)?,
            bid_requests: var("MARKET_BENCH_BID_REQUESTS", 1_500)?,
            auctions: var("MARKET_BENCH_AUCTIONS", 60)?,
            auction_rate: var("MARKET_BENCH_AUCTION_RATE", 20.0)?,
            period: var("MARKET_BENCH_PERIOD", 2)?,
        };
        if sizes.requesters == 0 || sizes.provers < BIDDERS_PER_AUCTION || sizes.auction_rate <= 0.0
        {
            return Err(
                format!("need requesters ≥ 1, provers ≥ {BIDDERS_PER_AUCTION}, rate > 0").into()
            );
        }
        if sizes.bid_requests > sizes.requests {
            return Err("MARKET_BENCH_BID_REQUESTS must be at most MARKET_BENCH_REQUESTS".into());
        }
        Ok(sizes)
    }
}

fn main() -> Result<()> {
    let sizes = Sizes::from_env()?;
    let runtime = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
    };
    let server = runtime(SERVER_THREADS)?;
    let client = runtime(CLIENT_THREADS)?;
    let rounds: usize = match std::env::var("MARKET_BENCH_ROUNDS") {
        Ok(text) => text.parse().map_err(|_| format!("MARKET_BENCH_ROUNDS={text:?}"))?,
        Err(_) => 1,
    };
    // Alone and with a standby alternate, so neither has the warmer database every time.
    let databases = match std::env::var("MARKET_BENCH_DATABASE_URL") {
        Ok(url) => [false, true]
            .repeat(rounds)
            .into_iter()
            .map(|standby| Database::Postgres { url: url.clone(), standby })
            .collect(),
        Err(_) => vec![Database::Sqlite],
    };
    for database in &databases {
        if let Database::Postgres { standby, .. } = database {
            println!();
            println!(
                "## PostgreSQL, {}",
                if *standby { "with a standby process on the same database" } else { "alone" }
            );
        }
        client.block_on(run(&sizes, server.handle(), database))?;
    }
    Ok(())
}

async fn run(sizes: &Sizes, server: &tokio::runtime::Handle, database: &Database) -> Result<()> {
    let net = Net::start(server, database).await?;
    let mut rpc = net.connect().await?;
    eprintln!("setup: {} requesters, {} provers, the fib program", sizes.requesters, sizes.provers);
    let mut requesters: Vec<Account> = (0..sizes.requesters).map(|_| Account::random()).collect();
    for account in &mut requesters {
        account.fund(&net, &mut rpc).await?;
    }
    let mut provers = Vec::with_capacity(sizes.provers);
    for _ in 0..sizes.provers {
        provers.push(Prover::register(&net, &mut rpc).await?);
    }
    let program = Program::register(&net, &mut requesters[0]).await?;

    // 1. RequestProof/s.
    let spec = program.spec(LONG_PERIOD, 2 * LONG_PERIOD);
    let signing = thread_cpu();
    let batches: Vec<Vec<SignedMessage>> = requesters
        .iter_mut()
        .enumerate()
        .map(|(i, account)| {
            let n = share(sizes.requests, sizes.requesters, i);
            (0..n).map(|_| account.sign(&net.domain, |nonce| spec.to_body(nonce))).collect()
        })
        .collect();
    let request_signing = (thread_cpu() - signing) / sizes.requests.max(1) as u32;
    eprintln!("phase 1: {} RequestProof calls from {} clients", sizes.requests, sizes.requesters);
    let (requests, ids) = closed_loop(&net, "RequestProof", Call::RequestProof, batches).await?;
    let drained = Instant::now();
    wait_executed(&net, &ids).await?;
    let drain = drained.elapsed();

    // 2. Bid/s: every prover bids once on each of the first `bid_requests` requests, starting
    // at its own offset so that the provers spread over the requests.
    let targets = &ids[..sizes.bid_requests];
    let signing = thread_cpu();
    let batches: Vec<Vec<SignedMessage>> = provers
        .iter_mut()
        .enumerate()
        .map(|(p, prover)| {
            let offset = p * targets.len() / sizes.provers;
            (0..targets.len())
                .map(|k| {
                    let id = &targets[(offset + k) % targets.len()];
                    prover.sign_bid(&net.domain, id, 1 + (p % 10) as u128)
                })
                .collect()
        })
        .collect();
    let bids_signed = sizes.provers * targets.len();
    let bid_signing = (thread_cpu() - signing) / bids_signed.max(1) as u32;
    let recovery = time_recovery(&net, &batches);
    eprintln!("phase 2: {bids_signed} Bid calls from {} clients", sizes.provers);
    let (bids, _) = closed_loop(&net, "Bid", Call::Bid, batches).await?;

    // 3. Settlement: on an idle network, then under bids from the other provers.
    let load_provers = provers.split_off(SETTLE_PROVERS.min(provers.len()));
    let load = sign_load(&net, sizes, &ids[sizes.bid_requests..], load_provers);
    let actors = Actors {
        requesters: requesters.into_iter().map(|a| Arc::new(Mutex::new(a))).collect(),
        bidders: provers.into_iter().map(|p| Arc::new(Mutex::new(p))).collect(),
    };
    eprintln!(
        "phase 3: {} auctions of {} s, {} started per s, idle network",
        sizes.auctions, sizes.period, sizes.auction_rate
    );
    let mut settlements =
        vec![settle::measure(&net, sizes, &program, &actors, "idle".into()).await?];
    if !load.is_empty() {
        eprintln!("phase 3: again, under bids from {} more clients", load.len());
        let clients = load.len();
        let load = Load::start(&net, load).await?;
        let run = settle::measure(&net, sizes, &program, &actors, String::new()).await;
        let (rate, exhausted) = load.stop().await?;
        let mut run = run?;
        run.label = format!(
            "under {rate:.0} bids/s from {clients} clients{}",
            if exhausted { " (some ran out of bids before the end)" } else { "" }
        );
        settlements.push(run);
    }
    net.stop().await?;

    println!();
    stats::print_header();
    requests.print_row();
    bids.print_row();
    println!();
    println!(
        "- executor: {} fib executions drained {:.1} s after the last RequestProof answer",
        ids.len(),
        drain.as_secs_f64()
    );
    println!(
        "- client signing (one core): RequestProof {:.0} µs, Bid {:.0} µs per message",
        request_signing.as_secs_f64() * 1e6,
        bid_signing.as_secs_f64() * 1e6
    );
    println!(
        "- signature recovery + decode (`open`, one core, as the server does it): {:.0} µs per Bid",
        recovery.as_secs_f64() * 1e6
    );
    let server_us = bids.cpu_us_per_op(&[Role::Server, Role::Sqlite]);
    println!(
        "- Bid: server CPU {server_us:.0} µs/bid in all → at most {:.0} bids/s if the server had all {} cores to itself",
        stats::cores() * 1e6 / server_us,
        stats::cores()
    );
    settle::print(&settlements, sizes.period);
    Ok(())
}

/// Client `i`'s part of `total` split over `clients`.
fn share(total: usize, clients: usize, i: usize) -> usize {
    total / clients + usize::from(i < total % clients)
}

/// Pre-signs, for each of `provers`, bids on open `targets` (from its own offset) for about as
/// long as a settlement run lasts at the target rate.
fn sign_load(
    net: &Net,
    sizes: &Sizes,
    targets: &[Vec<u8>],
    mut provers: Vec<Prover>,
) -> Vec<Vec<SignedMessage>> {
    if targets.is_empty() || provers.is_empty() {
        return Vec::new();
    }
    let seconds = sizes.auctions as f64 / sizes.auction_rate + sizes.period as f64 + 3.0;
    let each = ((LOAD_BIDS_PER_SECOND * seconds) as usize / provers.len()).min(targets.len());
    let count = provers.len();
    provers
        .iter_mut()
        .enumerate()
        .map(|(p, prover)| {
            let offset = p * targets.len() / count;
            (0..each)
                .map(|k| {
                    let id = &targets[(offset + k) % targets.len()];
                    prover.sign_bid(&net.domain, id, 1 + (p % 10) as u128)
                })
                .collect()
        })
        .collect()
}

/// Which RPC a closed loop calls.
#[derive(Clone, Copy)]
enum Call {
    RequestProof,
    Bid,
}

/// Runs one client per batch, each on its own connection, each sending its messages in order
/// and the next only once the previous is answered; all start together. Returns the
/// measurement and the ids of the requests created (RequestProof), in client-major order.
async fn closed_loop(
    net: &Net,
    name: &'static str,
    call: Call,
    batches: Vec<Vec<SignedMessage>>,
) -> Result<(Throughput, Vec<Vec<u8>>)> {
    let clients = batches.len();
    let start = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for batch in batches {
        let mut rpc = net.connect().await?;
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(batch.len());
            let mut ids = Vec::new();
            start.wait().await;
            for message in batch {
                let sent = Instant::now();
                match call {
                    Call::RequestProof => {
                        ids.push(rpc.request_proof(message).await?.into_inner().request_id)
                    }
                    Call::Bid => drop(rpc.bid(message).await?),
                }
                latencies.push(sent.elapsed());
            }
            Ok::<_, tonic::Status>((latencies, ids))
        }));
    }
    let cpu_before = cpu_by_thread();
    start.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut ids = Vec::new();
    for task in tasks {
        let (l, i) = task.await??;
        latencies.extend(l);
        ids.extend(i);
    }
    let wall = started.elapsed();
    let cpu = cpu_delta(&cpu_before, &cpu_by_thread());
    latencies.sort_unstable();
    Ok((Throughput { name, clients, ops: latencies.len(), wall, latencies, cpu }, ids))
}

/// Waits until the executor has run every request in `ids`.
async fn wait_executed(net: &Net, ids: &[Vec<u8>]) -> Result<()> {
    let ids: Vec<RequestId> =
        ids.iter().map(|id| RequestId::from_slice(id)).collect::<std::result::Result<_, _>>()?;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let pending = {
            let market = net.state.market();
            ids.iter()
                .filter(|id| {
                    market.request(id).is_none_or(|r| r.execution == Execution::Unexecuted)
                })
                .count()
        };
        match pending {
            0 => return Ok(()),
            _ if Instant::now() > deadline => {
                return Err(format!("{pending} requests still unexecuted").into());
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// CPU time of `open` (signature recovery and decoding) per Bid message, on one core.
fn time_recovery(net: &Net, batches: &[Vec<SignedMessage>]) -> Duration {
    let sample: Vec<&SignedMessage> = batches.iter().flatten().take(2_000).collect();
    let started = thread_cpu();
    for message in &sample {
        let opened = open::<proto::BidBody>(&net.domain, message);
        assert!(opened.is_ok(), "a pre-signed bid does not open");
    }
    (thread_cpu() - started) / sample.len().max(1) as u32
}
