//! The prover node against a real network and ArtifactStore on loopback: every test launches
//! the network in this process on ports chosen at run time, registers provers with real keys,
//! launches nodes from their configs, and requests proofs through the network's gRPC API.
//! Waits are on the network's event stream, bounded in time.
//!
//! (A node killed with SIGKILL mid-proof and restarted is tested on the binary, in
//! `crates/cli/tests`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod sdk;
mod sp1;
mod succinct;

use harness::*;
use provernet_node::store::JobState;
use provernet_types::{Address, proto::RequestStatus};
use provernet_zkvm::samples::{ASSERT42, FIB, HASHCHAIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_wins_proves_and_is_paid() {
    bounded(async {
        let net = start().await;
        let prover = register(&net, NodeSpec::default()).await;
        let node = prover.launch().await;
        let mut finished = node.0.prover.finished();
        let requester = requester(&net).await;
        let spec = requester.spec(&FIB, FIB.inputs, 60).await;
        let before = net.balance(&prover.address()).await;
        let id = requester.request(&spec).await;
        let done = net.wait_until(&id, "fulfilled", is_closed).await;
        assert_eq!(status(&done), RequestStatus::Fulfilled, "{done:?}");
        assert_eq!(Address::from_slice(&done.assigned_prover).unwrap(), prover.address());
        let price: u128 = done.winning_price_per_pgu.parse().unwrap();
        let paid = spec.cost(provernet_types::Amount::new(price), done.pgus).unwrap().get();
        assert!(price > 0 && price <= 1_000);
        assert_eq!(net.balance(&prover.address()).await, before + paid, "paid price × PGUs + fee");
        // The requester downloads the node's proof and verifies it on its own.
        let proof = requester.fetch_proof(&id).await;
        assert_eq!(proof.outputs.0, done.public_outputs, "the proof attests the executed outputs");
        // The network answers FulfillProof before the node records `done`: wait for the node.
        let (ended, state) = tokio::time::timeout(WAIT, finished.recv()).await.unwrap().unwrap();
        assert_eq!((ended, state), (id, JobState::Done));
        // Earnings are what the network paid, base fee included (the spec's is 1,000).
        assert_eq!(node.0.context.core().book().earnings.get(), paid, "earnings as paid");
        // The economics: paid, a proving cost, one bid won; within the hour as since start.
        let economics = node.0.context.health.economics(now());
        for t in [&economics.last_hour, &economics.since_start] {
            assert_eq!(t.revenue, paid.to_string(), "{economics:?}");
            assert_eq!((t.bids, t.won, t.lost, t.deadline_misses), (1, 1, 0, 0), "{economics:?}");
            assert!(t.busy_secs > 0.0 && t.cost.parse::<u128>().unwrap() > 0, "{economics:?}");
        }
        let job = node.0.context.store.job(&id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Done);
        let bids = node.0.context.store.recent_bids(10).await.unwrap();
        assert!(bids.iter().any(|b| b.id == id && b.outcome == "won"), "{bids:?}");
        stop(node).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_nodes_the_cheaper_wins() {
    bounded(async {
        let net = start().await;
        let cheap =
            register(&net, NodeSpec { cost_per_hour: 100_000_000, ..Default::default() }).await;
        let dear =
            register(&net, NodeSpec { cost_per_hour: 900_000_000, ..Default::default() }).await;
        let cheap_node = cheap.launch().await;
        let dear_node = dear.launch().await;
        let mut finished = cheap_node.0.prover.finished();
        let requester = requester(&net).await;
        let mut spec = requester.spec(&FIB, FIB.inputs, 60).await;
        // An auction that settles on a bid arriving after its period (a busy executor) goes to
        // that bid: a longer period lets both nodes bid first.
        spec.min_auction_period = 15;
        let id = requester.request(&spec).await;
        let done = net.wait_until(&id, "fulfilled", is_closed).await;
        assert_eq!(status(&done), RequestStatus::Fulfilled);
        assert_eq!(Address::from_slice(&done.assigned_prover).unwrap(), cheap.address());
        let lost = dear_node.0.context.store.recent_bids(10).await.unwrap();
        assert!(lost.iter().any(|b| b.id == id && b.outcome == "lost"), "{lost:?}");
        assert_eq!(dear_node.0.context.core().book().lost, 1);
        // Each node's /metrics counts its own work only, though both run in this process.
        let (ended, state) = tokio::time::timeout(WAIT, finished.recv()).await.unwrap().unwrap();
        assert_eq!((ended, state), (id, JobState::Done));
        let cheap_metrics = cheap_node.0.context.health.metrics().render();
        let dear_metrics = dear_node.0.context.health.metrics().render();
        assert!(cheap_metrics.contains(r#"node_jobs_total{result="done"} 1"#), "{cheap_metrics}");
        assert!(cheap_metrics.contains("node_prover_proof_duration_seconds_count 1"));
        assert!(dear_metrics.contains(r#"node_jobs_total{result="done"} 0"#), "{dear_metrics}");
        assert!(!dear_metrics.contains("node_prover_proof_duration_seconds_count"));
        for text in [&cheap_metrics, &dear_metrics] {
            assert!(text.contains(r#"node_bids_total{outcome="bid"} 1"#), "{text}");
        }
        stop(cheap_node).await;
        stop(dear_node).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexecutable_request_is_never_bid_on() {
    bounded(async {
        let net = start().await;
        let prover = register(&net, NodeSpec::default()).await;
        let node = prover.launch().await;
        let requester = requester(&net).await;
        let bad = requester.spec(&ASSERT42, ASSERT42.inputs, 60).await;
        let bad_id = requester.request(&bad).await;
        // A good request after it: once the node has proven it, it has seen the bad one.
        let good = requester.spec(&FIB, FIB.inputs, 60).await;
        let good_id = requester.request(&good).await;
        net.wait_until(&good_id, "fulfilled", is_closed).await;
        let closed = net.wait_until(&bad_id, "closed", is_closed).await;
        assert_eq!(status(&closed), RequestStatus::Unfulfillable, "{closed:?}");
        let bids = node.0.context.store.recent_bids(10).await.unwrap();
        assert!(
            bids.iter().all(|b| b.id != bad_id),
            "decided on an unexecutable request: {bids:?}"
        );
        assert!(!node.0.context.core().book().decided.contains_key(&bad_id));
        stop(node).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_closed_mid_proof_stops_the_proof() {
    bounded(async {
        let net = start().await;
        // A node that believes it is far faster than it is: it bids on a deadline it cannot make.
        let prover = register(&net, NodeSpec { pgus_per_second: 1e9, ..Default::default() }).await;
        let node = prover.launch().await;
        let mut finished = node.0.prover.finished();
        let requester = requester(&net).await;
        // 2^16 rows: several seconds of proving; 4 s to the deadline, 1 s of auction.
        let spec = requester.spec(&HASHCHAIN, r#"{"stack": [2000, 1, 2, 3, 4]}"#, 4).await;
        let id = requester.request(&spec).await;
        net.wait_until(&id, "assigned", |r| status(r) == RequestStatus::Assigned || is_closed(r))
            .await;
        let closed = net.wait_until(&id, "closed", is_closed).await;
        assert_eq!(status(&closed), RequestStatus::Unfulfillable, "{closed:?}");
        // The job stops (its slot freed) rather than proving on.
        let (ended, state) = tokio::time::timeout(WAIT, finished.recv()).await.unwrap().unwrap();
        assert_eq!((ended, state), (id, JobState::Failed));
        let job = node.0.context.store.job(&id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed, "{job:?}");
        let error = job.error.unwrap_or_default();
        assert!(error.contains("deadline") || error.contains("unfulfillable"), "{error}");
        assert_eq!(node.0.context.core().proving(), 0);
        stop(node).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_carries_on_after_the_network_restarts() {
    bounded(async {
        let net = start().await;
        let prover = register(&net, NodeSpec::default()).await;
        let node = prover.launch().await;
        let requester = requester(&net).await;
        let spec = requester.spec(&FIB, FIB.inputs, 60).await;
        let first = requester.request(&spec).await;
        net.wait_until(&first, "fulfilled", is_closed).await;

        let mut subscribed = node.0.subscribed.clone();
        let net = net.restart().await;
        tokio::time::timeout(WAIT, subscribed.wait_for(|up| *up)).await.unwrap().unwrap();
        let spec = RequestSpecExt::fresh(&spec);
        let second = requester.request(&spec).await;
        let done = net.wait_until(&second, "fulfilled after the restart", is_closed).await;
        assert_eq!(status(&done), RequestStatus::Fulfilled, "{done:?}");
        assert_eq!(Address::from_slice(&done.assigned_prover).unwrap(), prover.address());
        stop(node).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_artifact_is_refused_and_reported() {
    bounded(async {
        let net = start().await;
        let prover = register(&net, NodeSpec::default()).await;
        let requester = requester(&net).await;
        let inputs = r#"{"stack": [17, 1, 2, 3, 4]}"#;
        let mut spec = requester.spec(&HASHCHAIN, inputs, 60).await;
        spec.min_auction_period = 2;
        let id = requester.request(&spec).await;
        net.wait_until(&id, "executed", |r| r.pgus > 0).await;
        // After the network executed it, a byte of the stored inputs flips.
        let path = net
            .dir()
            .join("artifacts")
            .join(provernet_artifacts::ArtifactStorage::object_key(&spec.inputs_artifact_id));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[2] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
        let node = prover.launch().await;
        let closed = net.wait_until(&id, "closed", is_closed).await;
        assert_eq!(status(&closed), RequestStatus::Unfulfillable, "{closed:?}");
        assert!(
            closed.unfulfillable_reason.contains(&spec.inputs_artifact_id.to_string()),
            "the failure names the artifact: {}",
            closed.unfulfillable_reason
        );
        let job = node.0.context.store.job(&id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert!(
            !node.0.context.cache.contains(&spec.inputs_artifact_id),
            "nothing corrupt is kept"
        );
        stop(node).await;
        net.stop().await;
    })
    .await;
}

/// A copy of a request spec with a fresh deadline (a new request id).
trait RequestSpecExt {
    fn fresh(&self) -> Self;
}

impl RequestSpecExt for provernet_types::RequestSpec {
    fn fresh(&self) -> Self {
        Self { deadline: now() + 61, ..self.clone() }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_setups_are_refused_with_what_is_wrong() {
    bounded(async {
        let net = start().await;
        let prover = register(&net, NodeSpec::default()).await;
        let dir = tempfile::tempdir().unwrap();

        let mut config = prover.config.clone();
        config.key_file = dir.path().join("missing.key");
        let err = launch_refused(config).await;
        assert!(err.contains("missing.key"), "{err}");

        let mut config = prover.config.clone();
        config.key_file = dir.path().join("bad.key");
        std::fs::write(&config.key_file, "not hex").unwrap();
        let err = launch_refused(config).await;
        assert!(err.contains("bad.key"), "{err}");

        // A key that is not a registered prover.
        let mut config = prover.config.clone();
        config.key_file = dir.path().join("other.key");
        let stranger = provernet_types::Signer::random();
        std::fs::write(&config.key_file, stranger.secret_hex()).unwrap();
        let err = launch_refused(config.clone()).await;
        assert!(err.contains("not a registered prover") && err.contains("node register"), "{err}");

        // ... or one that may not act for the prover it names.
        config.prover = Some(prover.address());
        let err = launch_refused(config).await;
        assert!(
            err.contains(&stranger.address().to_string()) && err.contains("may not act"),
            "{err}"
        );

        let mut config = prover.config.clone();
        config.proving.versions = vec!["sp1-v9".into()];
        let err = launch_refused(config).await;
        assert!(err.contains("sp1-v9"), "{err}");

        let mut config = prover.config.clone();
        config.bidding.margin = f64::NAN;
        let err = launch_refused(config).await;
        assert!(err.contains("bidding.margin"), "{err}");
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reprices_the_next_bids_and_a_bad_one_changes_nothing() {
    bounded(async {
        let net = start().await;
        let prover = register(&net, NodeSpec::default()).await;
        let node = prover.launch().await;
        let reloader = node.0.reloader();
        let requester = requester(&net).await;
        let spec = requester.spec(&FIB, FIB.inputs, 60).await;
        let bid_price = |id| {
            let store = &node.0.context.store;
            async move {
                let bids = store.recent_bids(10).await.unwrap();
                let bid = bids.iter().find(|b| b.id == id).expect("the node bid");
                bid.price_per_pgu.expect("a price").get()
            }
        };
        let first = requester.request(&spec).await;
        net.wait_until(&first, "fulfilled", is_closed).await;
        let before = bid_price(first).await;

        // Refused, each with the reason: the config in force stays.
        let running = node.0.context.config();
        let mut moved = running.clone();
        moved.network_url = "http://127.0.0.1:1".into();
        let mut negative = running.clone();
        negative.bidding.margin = -1.0;
        for (read, says) in [
            (Ok(moved), "network_url"),
            (Ok(negative), "bidding.margin"),
            (Err("node.toml: expected `=`".to_owned()), "expected `=`"),
        ] {
            let reload = reloader.reload(read);
            let reason = reload.refused.as_deref().expect("refused");
            assert!(reason.contains(says), "{reason}");
            assert!(reload.changed.is_empty());
            assert_eq!(node.0.context.config(), running, "the config in force is kept");
            assert_eq!(node.0.context.health.last_reload(), Some(reload));
        }

        // Twice the cost per hour: the next bid is twice the price.
        let mut dearer = running.clone();
        dearer.bidding.cost_per_hour = running.bidding.cost_per_hour.checked_mul_u64(2).unwrap();
        let reload = reloader.reload(Ok(dearer.clone()));
        assert_eq!(
            (reload.changed.as_slice(), reload.refused),
            (&["bidding.cost_per_hour".to_owned()][..], None)
        );
        assert_eq!(node.0.context.config(), dearer);
        let second = requester.request(&spec.fresh()).await;
        net.wait_until(&second, "fulfilled", is_closed).await;
        let after = bid_price(second).await;
        assert!(after > before * 3 / 2, "bid {before} per PGU, then {after} at twice the cost");
        stop(node).await;
        net.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_configured_far_too_fast_learns_its_speed_from_its_proofs() {
    bounded(async {
        let net = start().await;
        // A thousand times what this machine proves: its deadlines would be a fiction.
        let spec = NodeSpec { pgus_per_second: 5_000_000.0, ..NodeSpec::default() };
        let prover = register(&net, spec).await;
        let node = prover.launch().await;
        let version = node.0.context.versions[0].clone();
        let requester = requester(&net).await;
        let spec = requester.spec(&FIB, FIB.inputs, 120).await;
        let mut ids = Vec::new();
        for _ in 0..provernet_node::core::calibration::MIN_SAMPLES {
            ids.push(requester.request(&spec.fresh()).await);
        }
        for id in &ids {
            let done = net.wait_until(id, "fulfilled", is_closed).await;
            assert_eq!(status(&done), RequestStatus::Fulfilled, "{done:?}");
        }
        let calibration = node.0.context.core().calibration();
        let mine = calibration.iter().find(|c| c.version == version).unwrap();
        assert!(mine.in_use, "{mine:?}");
        assert_eq!(mine.measured.samples, provernet_node::core::calibration::MIN_SAMPLES);
        assert!(mine.measured.pgus_per_second < 500_000.0, "measured: {mine:?}");
        // The one program proved has an estimate of its own, in use.
        assert_eq!((mine.programs.len(), mine.programs_in_use()), (1, 1), "{mine:?}");
        let program = mine.programs[0].program;
        let alert = provernet_node::monitor::alerts::calibration_drift(
            &calibration,
            &provernet_node::config::MonitorConfig::default(),
        );
        assert!(alert.is_some_and(|a| a.code == "PN-CALIBRATION-DRIFT"), "{calibration:?}");
        // Kept in the store for the next start.
        let kept = node.0.context.store.calibration().await.unwrap();
        let row = |program| kept.iter().find(|(k, _)| k.version == version && k.program == program);
        assert!(row(None).is_some_and(|(_, e)| e.throughput == mine.measured), "{kept:?}");
        let own = row(Some(program)).map(|(_, e)| e.throughput.samples);
        assert_eq!(own, Some(provernet_node::core::calibration::MIN_SAMPLES), "{kept:?}");
        let metrics = node.0.context.health.metrics();
        metrics.status(&node.0.context.health.status(), &node.0.context.health.snapshot());
        let text = metrics.render();
        assert!(text.contains("node_prover_estimate_error_ratio_count"), "{text}");
        stop(node).await;
        net.stop().await;
    })
    .await;
}

/// A machine clock `.0` seconds ahead of the real one.
#[derive(Debug)]
struct Ahead(u64);

impl provernet_node::clock::Clock for Ahead {
    fn now_secs(&self) -> u64 {
        now() + self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_clock_is_30_s_ahead_decides_by_the_networks_time() {
    use provernet_node::clock::{Clock, NetworkTime};
    bounded(async {
        let net = start().await;
        let prover = register(&net, NodeSpec::default()).await;
        let time = std::sync::Arc::new(NetworkTime::new(std::sync::Arc::new(Ahead(30))));
        let node = prover.launch_with_clock(time.clone()).await;
        assert!((-31..=-29).contains(&time.offset_secs()), "{}", time.offset_secs());
        let requester = requester(&net).await;
        // 25 s to the deadline: past already by the machine's clock.
        let spec = requester.spec(&FIB, FIB.inputs, 25).await;
        let id = requester.request(&spec).await;
        let done = net.wait_until(&id, "fulfilled", is_closed).await;
        assert_eq!(status(&done), RequestStatus::Fulfilled, "{done:?}");
        assert_eq!(Address::from_slice(&done.assigned_prover).unwrap(), prover.address());
        stop(node).await;
        net.stop().await;
    })
    .await;
}

/// A TCP link to `target` that delays every chunk it carries by `delay` each way, and can cut
/// every connection through it (as a flaky route does).
struct SlowLink {
    url: String,
    /// Connections made through the link so far.
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowLink {
    async fn to(target: std::net::SocketAddr, delay: std::time::Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(target).await else { return };
                    let (a_read, a_write) = inbound.into_split();
                    let (b_read, b_write) = outbound.into_split();
                    tokio::select! {
                        () = carry(a_read, b_write, delay) => {}
                        () = carry(b_read, a_write, delay) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { url, connections, cut, task }
    }

    /// Cuts every connection through the link (new ones go through).
    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, each chunk `delay` late.
async fn carry(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: std::time::Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            return;
        }
        tokio::time::sleep(delay).await;
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_a_slow_link_that_is_cut_carries_on_and_is_paid_once_each() {
    bounded(async {
        let net = start().await;
        let mut prover = register(&net, NodeSpec::default()).await;
        // 100 ms each way between the node and the network.
        let link = SlowLink::to(net.handle.grpc_addr, std::time::Duration::from_millis(100)).await;
        prover.config.network_url = link.url.clone();
        let node = prover.launch().await;
        let requester = requester(&net).await;
        let before = net.balance(&prover.address()).await;
        let mut paid = 0;
        let spec = requester.spec(&FIB, FIB.inputs, 60).await;
        for round in 0..3 {
            let id = requester.request(&spec).await;
            let connections = link.connections.load(std::sync::atomic::Ordering::SeqCst);
            if round == 1 {
                // Mid-auction: the node's subscription and calls in flight break.
                link.cut();
            }
            let done = net.wait_until(&id, "fulfilled", is_closed).await;
            assert_eq!(status(&done), RequestStatus::Fulfilled, "round {round}: {done:?}");
            if round == 1 {
                let now = link.connections.load(std::sync::atomic::Ordering::SeqCst);
                assert!(now > connections, "the node connected again after the cut");
            }
            let price = provernet_types::Amount::new(done.winning_price_per_pgu.parse().unwrap());
            paid += spec.cost(price, done.pgus).unwrap().get();
        }
        assert_eq!(net.balance(&prover.address()).await, before + paid, "each paid once");
        stop(node).await;
        net.stop().await;
    })
    .await;
}
