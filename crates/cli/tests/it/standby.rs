//! Hot standby as processes over a real PostgreSQL: two `provernet network` processes on one
//! database, a node and a requester given both addresses; the leader is SIGKILLed between
//! requests, mid-auction, mid-proof and mid-execution, each time the standby takes over and the
//! killed process comes back as the standby. And one network process riding out PostgreSQL
//! restarting while auctions settle.
//!
//! `#[ignore]`d in `cargo test --workspace`, as it needs PostgreSQL; `.ci/run` runs it:
//! `PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test --workspace --test it -- --ignored
//! standby::`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    path::Path,
    time::{Duration, Instant},
};

use provernet_types::{NetworkClient, RequestId, proto};

use crate::{
    e2e::{NodeDir, RequesterCli, STEP, SUBMIT, ok, program},
    pool::{
        DatabaseLink, assert_paid_once, balance, big_inputs, fresh_database,
        fulfilled_and_verified, submit, until,
    },
    procs::{Proc, provernet},
};

/// A loopback port free now (the network binds it later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `provernet network` number `name` on `database`, serving gRPC on `port`; both processes
/// share the artifacts' storage, secret and address (which the leader binds).
fn network(root: &Path, name: &str, database: &str, port: u16, artifacts: u16) -> Proc {
    Proc::spawn({
        let mut c = provernet();
        c.args(["network", "--database-url", database])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--artifacts-listen", &format!("127.0.0.1:{artifacts}")])
            .args(["--artifacts-url", &format!("http://127.0.0.1:{artifacts}")])
            .arg("--artifact-storage")
            .arg(root.join("artifacts"))
            .arg("--data-dir")
            .arg(root.join(name))
            .env("PROVERNET_ARTIFACTS_SECRET", "a secret both network processes are given");
        c
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test --test it -- --ignored standby:: (.ci/run runs it)"]
async fn a_standby_takes_over_from_a_killed_leader_and_clients_follow_it() {
    let root = tempfile::tempdir().unwrap();
    let database = fresh_database().await;
    let ports = [free_port(), free_port()];
    let artifacts = free_port();
    let start = |k: usize| network(root.path(), &format!("n{k}"), &database, ports[k], artifacts);
    let mut leader = start(0);
    assert!(leader.line_after("leader      epoch ", STEP).starts_with("1 "));
    leader.line_after("network     grpc://", STEP);
    let mut standby = start(1);
    standby.line_after("standby     ", STEP);
    // A standby serves reads on its own port from the start.
    standby.line_after("network     grpc://", STEP);
    let mut serving = 0;

    let urls = format!("http://127.0.0.1:{},http://127.0.0.1:{}", ports[0], ports[1]);
    let client = NetworkClient::connect(&urls, Duration::from_secs(5)).await.unwrap();
    let node = NodeDir::init(root.path(), "node", &urls, "200000000");
    let (_node, _) = node.run();
    let requester = RequesterCli::new(root.path(), &urls);
    let funded = balance(&client, &requester).await;
    let first = submit(&requester, "fib", None);
    fulfilled_and_verified(&requester, root.path(), &first);

    // Kills the leader: the standby, which followed what it committed, leads in its place, and
    // the killed process comes back as the standby.
    let mut epoch = 1;
    let mut fail_over = || {
        let killed = Instant::now();
        leader.kill();
        epoch += 1;
        let took = standby.line_after("leader      epoch ", STEP);
        assert!(took.starts_with(&format!("{epoch} ")), "{took}");
        eprintln!(
            "epoch {epoch}: serving {:.2} s after the leader was killed",
            killed.elapsed().as_secs_f64()
        );
        serving = 1 - serving;
        leader = std::mem::replace(&mut standby, start(1 - serving));
        standby.line_after("standby     ", STEP);
        standby.line_after("network     grpc://", STEP);
    };

    // Between requests: everything the old leader accepted is there, and the node and the
    // requester carry on through the same addresses.
    fail_over();
    let second = submit(&requester, "fib", None);
    fulfilled_and_verified(&requester, root.path(), &second);
    fulfilled_and_verified(&requester, root.path(), &first);

    // Mid-auction: the new leader re-arms the auction, which settles on the node's bid.
    let auctioned: RequestId = ok({
        let mut c = requester.cmd(&SUBMIT);
        c.args(["--auction-secs", "4"]).arg(program("fib"));
        c
    })
    .trim()
    .parse()
    .unwrap();
    fail_over();
    fulfilled_and_verified(&requester, root.path(), &auctioned);

    // Mid-proof: the node proves through the failover and submits to the new leader, once.
    let proving = submit(&requester, "hashchain", Some(&big_inputs(root.path())));
    until("the node wins the larger request", || async {
        client
            .proof_request(&proving)
            .await
            .is_ok_and(|r| r.status == proto::RequestStatus::Assigned as i32)
    })
    .await;
    fail_over();
    fulfilled_and_verified(&requester, root.path(), &proving);

    // Mid-execution: killed as soon as it has taken a request whose program runs longer; the new
    // leader executes it (again, if the old one had begun).
    let executing = submit(&requester, "hashchain", Some(&big_inputs(root.path())));
    fail_over();
    fulfilled_and_verified(&requester, root.path(), &executing);

    assert_paid_once(&client, &requester, funded, &[first, second, auctioned, proving, executing])
        .await;
    drop((leader, standby));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test --test it -- --ignored standby:: (.ci/run runs it)"]
async fn a_network_on_postgresql_rides_out_the_database_restarting_under_load() {
    let root = tempfile::tempdir().unwrap();
    let database = fresh_database().await;
    let link = DatabaseLink::to(&database).await;
    let (port, artifacts) = (free_port(), free_port());
    let mut network = network(root.path(), "n0", &link.url(&database), port, artifacts);
    assert!(network.line_after("leader      epoch ", STEP).starts_with("1 "));
    network.line_after("network     grpc://", STEP);
    let url = format!("http://127.0.0.1:{port}");
    let client = NetworkClient::connect(&url, Duration::from_secs(5)).await.unwrap();
    let node = NodeDir::init(root.path(), "node", &url, "200000000");
    let (_node, _) = node.run();
    let requester = RequesterCli::new(root.path(), &url);
    let funded = balance(&client, &requester).await;

    // Auctions that settle while the database is away: their assignments (and the node's bids
    // on them) wait for it, and land once it is back.
    let ids: Vec<RequestId> = (0..3)
        .map(|_| {
            ok({
                let mut c = requester.cmd(&SUBMIT);
                c.args(["--auction-secs", "2"]).arg(program("fib"));
                c
            })
            .trim()
            .parse()
            .unwrap()
        })
        .collect();
    let cut = link.restart(Duration::from_secs(4)).await;
    assert!(cut >= 1, "the network's connections were cut: {cut}");
    for id in &ids {
        fulfilled_and_verified(&requester, root.path(), id);
    }
    let after = submit(&requester, "fib", None);
    fulfilled_and_verified(&requester, root.path(), &after);
    let all: Vec<RequestId> = ids.into_iter().chain([after]).collect();
    assert_paid_once(&client, &requester, funded, &all).await;
    assert!(network.child.try_wait().unwrap().is_none(), "the network kept its lead and ran on");
}
