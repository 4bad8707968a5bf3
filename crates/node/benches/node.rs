//! The node's performance evidence (BENCHMARKS.md, "Prover node"), on a real network and
//! ArtifactStore launched in this process on loopback:
//!
//! - **overhead**: one job mix proven (a) by calling the Miden backend directly, one job after
//!   the other, and (b) end to end — requests submitted to the network, executed there, won by
//!   one node, fetched, executed, proven, self-verified, submitted and verified by the network.
//!   PGUs/s of both and their ratio, in one run. Wall time of (b) runs from the first
//!   RequestProof to the last Fulfilled event, so it includes the first auction period (1 s).
//! - **bid-latency**: 1,000 requests; for each, from the moment the bench's own subscriber
//!   receives the network's `Executed` event (the request is published to provers) to the moment
//!   the network accepted the node's bid (`Bid.at_ms`, the network's clock: same machine).
//!   The auctions are long (an hour), so the node bids on all and wins none. Twice in one run:
//!   the node only bidding, then the node also winning, proving and submitting a hashchain
//!   proof (2^14 rows) requested every half second, its FulfillProof calls signed by the same
//!   operator key as its bids; the bids that waited while the network verified one of those
//!   proofs are reported apart (bids must not wait for verification).
//! - **pool**: the same job mix end to end through a node proving in-process and through a
//!   node whose one pool worker (same cores and memory, in this process) claims its proofs from
//!   PostgreSQL (`PROVERNET_BENCH_POSTGRES_URL`), alternated A B B A; their PGUs/s and ratio.
//!
//! Run: `cargo bench -p provernet-node --bench node [-- overhead|bid-latency|pool]`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use provernet_network::test_utils::{TestNetwork as Net, postgres};
use provernet_node::test_utils::{NodeSpec, TestNode as Prover, TestRequester as Requester, stop};
use provernet_node::{
    Resources,
    clock::now_secs as now,
    pool::{ClusterSecret, Worker, WorkerConfig},
};
use provernet_types::{RequestId, proto, proto::request_event::Event};
use provernet_zkvm::{
    MidenBackend, ProofMode, ProveJob, ZkVm, ZkVmRegistry,
    samples::{FIB, HASHCHAIN},
};

/// Hashchain lengths of the mix: 2^14, 2^15 and 2^16 rows, twice each.
const MIX: [u32; 6] = [500, 1000, 2000, 500, 1000, 2000];
const BID_REQUESTS: usize = 1_000;

fn inputs(n: u32) -> String {
    format!(r#"{{"stack": [{n}, 1, 2, 3, 4]}}"#)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let which: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let all = which.is_empty();
    if all || which.iter().any(|w| w == "overhead") {
        overhead().await;
    }
    if all || which.iter().any(|w| w == "bid-latency") {
        bid_latency().await;
    }
    if all || which.iter().any(|w| w == "pool") {
        pool().await;
    }
}

async fn overhead() {
    // (a) The backend alone.
    let backend = Arc::new(MidenBackend::new());
    let program: Arc<[u8]> = HASHCHAIN.source.as_bytes().into();
    let started = Instant::now();
    let mut direct_pgus = 0;
    for n in MIX {
        let job = ProveJob {
            program: program.clone(),
            inputs: inputs(n).as_bytes().into(),
            gas_limit: 1 << 16,
            mode: ProofMode::Default,
        };
        let b = backend.clone();
        let pgus = tokio::task::spawn_blocking(move || {
            let execution = b.execute(&job.program, &job.inputs, job.gas_limit).unwrap();
            b.prove(&job, &Default::default(), &|_| {}).unwrap();
            execution.pgus
        })
        .await
        .unwrap();
        direct_pgus += pgus;
    }
    let direct_secs = started.elapsed().as_secs_f64();

    // (b) End to end.
    let net = Net::start().await;
    let prover = register(&net, NodeSpec { pgus_per_second: 6_000.0, ..Default::default() }).await;
    let node = prover.launch().await;
    let requester = requester(&net).await;
    let first = requester.spec(&HASHCHAIN, &inputs(MIX[0]), 600).await;
    let (e2e_pgus, e2e_secs, busy_secs) = end_to_end(&net, &requester, &first).await;
    stop(node).await;
    net.stop().await;

    assert_eq!(direct_pgus, e2e_pgus, "the same work both ways");
    let direct = direct_pgus as f64 / direct_secs;
    let e2e = e2e_pgus as f64 / e2e_secs;
    let assigned = e2e_pgus as f64 / busy_secs;
    println!(
        "node overhead: {} jobs, {direct_pgus} PGUs (hashchain 2^14, 2^15, 2^16 rows, x2)",
        MIX.len()
    );
    println!("  {:<44} {:>8} {:>10} {:>7}", "", "seconds", "PGUs/s", "ratio");
    println!("  {:<44} {direct_secs:>8.2} {direct:>10.0} {:>7.3}", "backend directly", 1.0);
    println!(
        "  {:<44} {e2e_secs:>8.2} {e2e:>10.0} {:>7.3}",
        "end to end (first request to last proof)",
        e2e / direct
    );
    println!(
        "  {:<44} {busy_secs:>8.2} {assigned:>10.0} {:>7.3}",
        "end to end (first assignment to last proof)",
        assigned / direct
    );
}

/// Submits the job mix to `net`, where one node bids; returns the PGUs fulfilled, the seconds
/// from the first RequestProof to the last Fulfilled event, and from the first assignment.
async fn end_to_end(
    net: &Net,
    requester: &Requester,
    first: &provernet_types::RequestSpec,
) -> (u64, f64, f64) {
    let mut specs = Vec::new();
    for (i, n) in MIX.into_iter().enumerate() {
        let inputs_artifact_id =
            requester.upload(inputs(n).as_bytes(), proto::ArtifactKind::Inputs).await;
        // Distinct bodies, so distinct request ids for repeated sizes.
        specs.push(provernet_types::RequestSpec {
            inputs_artifact_id,
            deadline: now() + 600 + i as u64,
            ..first.clone()
        });
    }
    let mut events =
        net.client.subscribe(proto::SubscribeRequestsRequest::default()).await.unwrap();
    let started = Instant::now();
    let mut open = std::collections::HashSet::new();
    for spec in &specs {
        open.insert(requester.request(spec).await);
    }
    let mut first_assigned = None;
    let mut e2e_pgus = 0;
    while !open.is_empty() {
        let event = events.message().await.unwrap().unwrap();
        let Ok(id) = RequestId::from_slice(&event.request_id) else { continue };
        match event.event {
            Some(Event::Assigned(_)) => {
                first_assigned.get_or_insert_with(Instant::now);
            }
            Some(Event::Fulfilled(_)) if open.remove(&id) => {
                e2e_pgus += net.get(&id).await.pgus;
            }
            Some(Event::Unfulfillable(u)) if open.contains(&id) => {
                panic!("request {id} failed: {}", u.reason)
            }
            _ => {}
        }
    }
    let e2e_secs = started.elapsed().as_secs_f64();
    let busy_secs = first_assigned.map_or(e2e_secs, |t| t.elapsed().as_secs_f64());
    (e2e_pgus, e2e_secs, busy_secs)
}

/// The proving pool's coordination overhead: the same job mix end to end through a node that
/// proves in-process, and through a node whose one `Worker` (same cores, same memory) claims
/// its proofs from PostgreSQL; alternated A, B, B, A so drift in the machine's load falls on
/// both alike.
async fn pool() {
    let Ok(admin) = std::env::var("PROVERNET_BENCH_POSTGRES_URL") else {
        println!(
            "pool: not run; set PROVERNET_BENCH_POSTGRES_URL=postgres://user:pw@host/db (a \
             PostgreSQL it may create a database on)"
        );
        return;
    };
    let net = Net::start().await;
    let database = postgres::fresh_database_at(&admin, "pn_pool_bench").await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("cluster.secret");
    std::fs::write(&secret_file, ClusterSecret::generate()).unwrap();
    let spec = || NodeSpec { pgus_per_second: 6_000.0, ..Default::default() };
    let alone = register(&net, spec()).await;
    let mut pooled = register(&net, spec()).await;
    pooled.config.cluster.database_url = database.clone();
    pooled.config.cluster.secret_file = secret_file.clone();
    // One requester and program for every round (a program is registered once).
    let requester = requester(&net).await;
    let first = requester.spec(&HASHCHAIN, &inputs(MIX[0]), 600).await;
    let mut rows = Vec::new();
    for round in ["in-process", "pool", "pool", "in-process"] {
        let node = if round == "pool" { pooled.launch().await } else { alone.launch().await };
        let worker = if round == "pool" {
            let shutdown = tokio_util::sync::CancellationToken::new();
            let resources = Resources {
                cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
                memory_bytes: pooled.config.proving.memory_gib << 30,
                cores_per_slot: pooled.config.proving.cores_per_slot,
                gpus: 0,
                gpu_memory_bytes: 0,
            };
            let config = WorkerConfig {
                id: "bench-worker".into(),
                host: "bench".into(),
                database_url: database.clone(),
                secret: ClusterSecret::read(&secret_file).unwrap(),
                versions: Vec::new(),
                resources,
                pgus_per_second: [("miden-0.23".to_owned(), 6_000.0)].into_iter().collect(),
                cache_dir: dir.path().join("worker-cache"),
                cache_bytes: 256 << 20,
            };
            let worker = Worker::register(config, ZkVmRegistry::with_default_backends(), &shutdown)
                .await
                .unwrap();
            let run = tokio::spawn(Arc::new(worker).run(shutdown.clone()));
            // The node bids by the worker once it has read it.
            while node.0.context.core().pool().map_or(0, |p| p.workers) == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some((shutdown, run))
        } else {
            None
        };
        let (pgus, secs, busy) = end_to_end(&net, &requester, &first).await;
        stop(node).await;
        if let Some((shutdown, run)) = worker {
            shutdown.cancel();
            run.await.unwrap().unwrap();
        }
        rows.push((round, pgus, secs, busy));
    }
    net.stop().await;
    let rate = |name: &str| {
        let (pgus, secs) =
            rows.iter().filter(|r| r.0 == name).fold((0, 0.0), |(p, s), r| (p + r.1, s + r.2));
        pgus as f64 / secs
    };
    println!("proving pool overhead: the job mix ({} PGUs) end to end, A B B A", rows[0].1);
    println!("  {:<12} {:>8} {:>10} {:>22}", "", "seconds", "PGUs/s", "from first assignment");
    for (name, pgus, secs, busy) in &rows {
        println!("  {name:<12} {secs:>8.2} {:>10.0} {busy:>22.2}", *pgus as f64 / secs);
    }
    let (alone, pool) = (rate("in-process"), rate("pool"));
    println!("  one worker through the queue / in-process: {:.3}", pool / alone);
}

/// What one bid-latency run measured.
struct BidLatency {
    /// Published (`Executed` received) → bid accepted, ms, one per request.
    latencies: Vec<f64>,
    /// Requests submitted per second.
    rate: f64,
    /// Of `latencies`, the bids whose wait overlapped the network's verification of one of the
    /// node's proofs (from its `ProofSubmitted` to its `Fulfilled`, as the bench received them).
    during_verification: Vec<f64>,
    /// Of `latencies`, the bids whose wait overlapped none of those verifications but one of
    /// the node's proofs running (from its `Assigned` to its `ProofSubmitted`): the cores'
    /// contention alone, to compare with.
    during_proving: Vec<f64>,
    /// Proofs the node submitted and the network verified during the run.
    proofs: usize,
    /// Each proof's verification as the bench saw it: `ProofSubmitted` → `Fulfilled`, ms.
    verifications: Vec<f64>,
}

/// Bid latency twice in one run: the node only bidding, then the node bidding while it wins,
/// proves and submits proofs (signed by the same operator key) all along the stream.
async fn bid_latency() {
    let idle = bid_latency_run(false).await;
    let busy = bid_latency_run(true).await;
    let (i, b) = (percentiles(&idle.latencies), percentiles(&busy.latencies));
    println!(
        "bid latency: {BID_REQUESTS} requests, published (Executed event) -> bid accepted by the network"
    );
    println!(
        "  only bidding ({:.0} requests/s):          p50 {:.0} ms   p90 {:.0} ms   p99 {:.0} ms   max {:.0} ms",
        idle.rate, i[0], i[1], i[2], i[3]
    );
    println!(
        "  while submitting {} proofs ({:.0} requests/s): p50 {:.0} ms   p90 {:.0} ms   p99 {:.0} ms   max {:.0} ms",
        busy.proofs, busy.rate, b[0], b[1], b[2], b[3]
    );
    if busy.during_verification.is_empty() {
        println!("  no bid waited while the network verified one of the node's proofs");
    } else {
        print_waited(
            &busy.during_verification,
            "while the network verified one of the node's proofs",
        );
    }
    if !busy.during_proving.is_empty() {
        print_waited(&busy.during_proving, "while a proof ran but none was verified");
    }
    if !busy.verifications.is_empty() {
        let v = percentiles(&busy.verifications);
        println!(
            "  the network's verifications (ProofSubmitted -> Fulfilled): p50 {:.0} ms   max {:.0} ms",
            v[0], v[3]
        );
    }
    println!(
        "  while submitting / only bidding: p50 +{:.0} ms, p99 +{:.0} ms",
        b[0] - i[0],
        b[2] - i[2]
    );
}

/// One line for the bids of a subset: how many, and their p50, p99 and max.
fn print_waited(subset: &[f64], when: &str) {
    let d = percentiles(subset);
    println!(
        "  {} bids waited {when}: p50 {:.0} ms   p99 {:.0} ms   max {:.0} ms",
        subset.len(),
        d[0],
        d[2],
        d[3]
    );
}

/// p50, p90, p99 and max of `values`.
fn percentiles(values: &[f64]) -> [f64; 4] {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        sorted[((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1).min(sorted.len() - 1)]
    };
    [pct(0.50), pct(0.90), pct(0.99), sorted[sorted.len() - 1]]
}

/// One bid-latency run: [`BID_REQUESTS`] requests with hour-long auctions at 100/s that the
/// node bids on and never wins; with `submitting`, also a hashchain request (2^14 rows, 1 s
/// auction) every half second that the node wins, proves and submits during the stream.
async fn bid_latency_run(submitting: bool) -> BidLatency {
    let net = Net::start().await;
    let mut prover = register(&net, NodeSpec::default()).await;
    prover.config.bidding.committed_cap_pgus = u64::MAX / 4;
    let node = prover.launch().await;
    let requester = requester(&net).await;
    let mut spec = requester.spec(&FIB, FIB.inputs, 7_200).await;
    // Nobody wins within the bench: the node bids on every request and proves none.
    spec.min_auction_period = 3_600;
    spec.gas_limit = 1 << 12;
    let work = requester.spec(&HASHCHAIN, &inputs(500), 3_000).await;

    let mut events =
        net.client.subscribe(proto::SubscribeRequestsRequest::default()).await.unwrap();
    let seen: Arc<std::sync::Mutex<Seen>> = Arc::default();
    let watcher = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(event)) = events.message().await {
                let (Ok(id), Some(body)) = (RequestId::from_slice(&event.request_id), &event.event)
                else {
                    continue;
                };
                let mut seen = seen.lock().unwrap();
                match body {
                    Event::Executed(_) => _ = seen.published.insert(id, unix_ms()),
                    Event::Assigned(_) => _ = seen.assigned.insert(id, unix_ms()),
                    Event::ProofSubmitted(_) => _ = seen.submitted.insert(id, unix_ms()),
                    Event::Fulfilled(_) => _ = seen.fulfilled.insert(id, unix_ms()),
                    _ => {}
                }
            }
        })
    };
    let started = Instant::now();
    let mut ids = Vec::with_capacity(BID_REQUESTS);
    let mut proven = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(10));
    for i in 0..BID_REQUESTS {
        pace.tick().await;
        let mut s = spec.clone();
        s.deadline = now() + 7_200 + i as u64 % 600;
        s.base_fee = provernet_types::Amount::new(1_000 + i as u128);
        ids.push(requester.request(&s).await);
        if submitting && i % 50 == 0 {
            let mut w = work.clone();
            w.base_fee = provernet_types::Amount::new(2_000 + i as u128);
            proven.push(requester.request(&w).await);
        }
    }
    let rate = ids.len() as f64 / started.elapsed().as_secs_f64();
    // Wait until the node has bid on every request (each bid is one market operation).
    let deadline = Instant::now() + Duration::from_secs(120);
    let latencies = loop {
        let collected: Option<Vec<(u64, u64)>> = {
            let market = net.handle.state.market();
            let seen = seen.lock().unwrap();
            ids.iter()
                .map(|id| Some((*seen.published.get(id)?, market.request(id)?.bids.first()?.at_ms)))
                .collect()
        };
        if let Some(l) = collected {
            break l;
        }
        assert!(Instant::now() < deadline, "the node did not bid on every request");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for id in &proven {
        let fulfilled =
            |r: &proto::ProofRequest| r.status == proto::RequestStatus::Fulfilled as i32;
        net.wait_until_within(Duration::from_secs(300), id, "a proof of the node's", fulfilled)
            .await;
    }
    watcher.abort();
    stop(node).await;
    net.stop().await;

    let seen = seen.lock().unwrap();
    let windows: Vec<(u64, u64)> = proven
        .iter()
        .filter_map(|id| Some((*seen.submitted.get(id)?, *seen.fulfilled.get(id)?)))
        .collect();
    let proving: Vec<(u64, u64)> = proven
        .iter()
        .filter_map(|id| Some((*seen.assigned.get(id)?, *seen.submitted.get(id)?)))
        .collect();
    let overlaps = |spans: &[(u64, u64)], (from, to): (u64, u64)| {
        spans.iter().any(|&(s, f)| from <= f && s <= to)
    };
    let wait = |&(from, to): &(u64, u64)| to.saturating_sub(from) as f64;
    BidLatency {
        latencies: latencies.iter().map(wait).collect(),
        rate,
        during_verification: latencies
            .iter()
            .filter(|&&span| overlaps(&windows, span))
            .map(wait)
            .collect(),
        during_proving: latencies
            .iter()
            .filter(|&&span| !overlaps(&windows, span) && overlaps(&proving, span))
            .map(wait)
            .collect(),
        proofs: proven.len(),
        verifications: windows.iter().map(|&(s, f)| f.saturating_sub(s) as f64).collect(),
    }
}

/// When the bench's subscriber received each request's events, ms.
#[derive(Default)]
struct Seen {
    published: HashMap<RequestId, u64>,
    assigned: HashMap<RequestId, u64>,
    submitted: HashMap<RequestId, u64>,
    fulfilled: HashMap<RequestId, u64>,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A new prover (its own operator, funded and staked) and its node's config, as `spec` says.
async fn register(net: &Net, spec: NodeSpec) -> Prover {
    Prover::register(&net.client, net.funded().await, spec).await
}

/// A new funded requester.
async fn requester(net: &Net) -> Requester {
    Requester::new(&net.client, net.funded().await)
}
