//! Hot standby as processes over a real PostgreSQL: two `provernet network` processes on one
//! database, a node and a requester given both addresses; the leader is SIGKILLed mid-stream
//! and the standby takes over.
//!
//! `#[ignore]`d in `cargo test --workspace`, as it needs PostgreSQL; `.ci/run` runs it:
//! `PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test --workspace --test it -- --ignored
//! standby::`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    path::Path,
    time::{Duration, Instant},
};

use provernet_types::NetworkClient;

use crate::{
    e2e::{NodeDir, RequesterCli, STEP},
    pool::{assert_paid_once, balance, fresh_database, fulfilled_and_verified, submit},
    procs::{Proc, provernet},
};

/// A loopback port free now (the network binds it later: a standby binds once it leads).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `provernet network` number `name` on `database`, serving gRPC on `port`; both processes
/// share the artifacts' storage, secret and address (which the leader serves).
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
    let (a_port, b_port, artifacts) = (free_port(), free_port(), free_port());
    let mut leader = network(root.path(), "a", &database, a_port, artifacts);
    let epoch = leader.line_after("leader      epoch ", STEP);
    assert!(epoch.starts_with("1 "), "{epoch}");
    leader.line_after("network     grpc://", STEP);
    let standby = network(root.path(), "b", &database, b_port, artifacts);
    standby.line_after("standby     ", STEP);

    let urls = format!("http://127.0.0.1:{a_port},http://127.0.0.1:{b_port}");
    let client = NetworkClient::connect(&urls, Duration::from_secs(5)).await.unwrap();
    let node = NodeDir::init(root.path(), "node", &urls, "200000000");
    let (_node, _) = node.run();
    let requester = RequesterCli::new(root.path(), &urls);
    let funded = balance(&client, &requester).await;
    let first = submit(&requester, "fib", None);
    fulfilled_and_verified(&requester, root.path(), &first);

    // The leader dies; the standby loads what it committed and serves in its place.
    let killed = Instant::now();
    leader.kill();
    let epoch = standby.line_after("leader      epoch ", STEP);
    assert!(epoch.starts_with("2 "), "{epoch}");
    standby.line_after("network     grpc://", STEP);
    eprintln!(
        "standby serving {:.1} s after the leader was killed",
        killed.elapsed().as_secs_f64()
    );

    // Everything the old leader accepted is there, and the node and requester carry on
    // through the same client addresses.
    let second = submit(&requester, "fib", None);
    fulfilled_and_verified(&requester, root.path(), &second);
    fulfilled_and_verified(&requester, root.path(), &first);
    assert_paid_once(&client, &requester, funded, &[first, second]).await;
}
