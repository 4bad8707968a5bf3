//! The market's store on real databases: [`SqlStore`] and [`StoreWriter`] on a file-backed
//! SQLite in a temp dir, and on PostgreSQL at `PROVERNET_TEST_POSTGRES_URL` (a server where the
//! role may create databases). Every check runs on both engines; each PostgreSQL test gets a
//! database of its own, dropped at its end.
//!
//! The PostgreSQL tests are `#[ignore]`d, since a fresh machine has no server; `.ci/run` starts
//! one and runs them, where they fail if the URL is missing:
//! `PROVERNET_TEST_POSTGRES_URL=postgres://user:pass@host/db cargo test -p provernet-network --test store -- --ignored`

// Helpers too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::FutureExt;
use provernet_network::{
    leader::{self, Leadership},
    market::{
        Account, Assignment, Bid, Changes, Event, Execution, LedgerTotals, NewBid, Program, Prover,
        Request, RequestQuery, Snapshot, Status,
    },
    store::{CHANGES_CHANNEL_CAPACITY, Followed, SqlStore, StoreError, StoreWriter},
    test_utils::postgres as test_pg,
};
use provernet_types::{Address, Amount, ArtifactId, RequestId, RequestSpec};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

/// Every test's bound: generous for a loaded 2-core machine, short of a hang.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Entities

fn address(n: u8) -> Address {
    Address::from_bytes([n; 20])
}

fn account(n: u8, nonce: u64) -> Account {
    Account {
        address: address(n),
        balance: Amount::new(1_000_000_000_000_000_000_000 + u128::from(n)),
        locked: Amount::new(u128::from(nonce) * 7),
        nonce,
    }
}

fn prover(n: u8) -> Prover {
    Prover {
        owner: address(n),
        operator: address(n.wrapping_add(100)),
        stake: Amount::new(5_000),
        collateral: Amount::new(1_250),
        misses: vec![1_700_000_000, 1_700_000_100],
        suspended_until: 1_700_003_600,
        registered_at: 1_699_999_999,
    }
}

fn program(n: u8) -> Program {
    Program {
        program_id: vec![n; 32],
        name: format!("fib-{n}"),
        zkvm_version: "miden-0.23".into(),
        artifact_id: ArtifactId::of(&[n]),
        registered_by: address(n),
        registered_at: 1_700_000_000 + u64::from(n),
        sdk_hash: None,
    }
}

fn spec(n: u8) -> RequestSpec {
    RequestSpec {
        program_id: vec![n; 32],
        zkvm_version: "miden-0.23".into(),
        program_artifact_id: ArtifactId::of(b"program"),
        inputs_artifact_id: ArtifactId::of(&[n, n]),
        inputs_private: n.is_multiple_of(2),
        deadline: 1_700_001_000,
        gas_limit: 131_072,
        max_price_per_pgu: Amount::new(10),
        base_fee: Amount::new(1_000),
        min_auction_period: 2,
        whitelist: vec![address(7), address(8)],
        expected_outputs_hash: Some([n; 32]),
        proof_mode: String::new(),
    }
}

fn request_id(n: u32) -> RequestId {
    let mut bytes = [0xab; 32];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    RequestId::from_bytes(bytes)
}

/// A request in `status`, with every optional part filled when it is past the auction.
fn request(n: u32, status: Status) -> Request {
    let tag = n.to_le_bytes()[0];
    let assigned = !matches!(status, Status::Requested | Status::Cancelled);
    Request {
        id: request_id(n),
        requester: address(tag),
        spec: spec(tag),
        status,
        execution: if assigned {
            Execution::Executed { pgus: 65_536, outputs: vec![1, 2, 3] }
        } else {
            Execution::Unexecuted
        },
        lock: Amount::new(1_311_720),
        created_at: 1_700_000_000 + u64::from(n),
        bids: if assigned {
            vec![
                Bid { prover: address(7), price_per_pgu: Amount::new(4), at_ms: 1 },
                Bid { prover: address(8), price_per_pgu: Amount::new(3), at_ms: 2 },
            ]
        } else {
            Vec::new()
        },
        assignment: assigned.then(|| Assignment {
            prover: address(8),
            price_per_pgu: Amount::new(3),
            collateral: Amount::new(100),
            at_ms: 2_000,
        }),
        closed_at: status.is_closed().then_some(1_700_000_500),
        close_reason: (status == Status::Unfulfillable).then(|| "deadline passed".to_owned()),
        paid: if status == Status::Fulfilled { Amount::new(197_608) } else { Amount::ZERO },
        proof_artifact_id: (status == Status::Fulfilled).then(|| ArtifactId::of(b"proof")),
        pending_proof: None,
        rejected_proof: None,
        proof_deleted_at: None,
    }
}

fn ledger(deposits: u128) -> LedgerTotals {
    LedgerTotals {
        deposits: Amount::new(deposits),
        treasury: Amount::new(17),
        closed_requests: None,
    }
}

fn accounts_only(accounts: Vec<Account>) -> Changes {
    Changes { accounts, ..Changes::default() }
}

/// `requests` as an operation writes them: each with its bids as new bid rows.
fn with_bids(requests: Vec<Request>) -> Changes {
    let bids = requests
        .iter()
        .flat_map(|r| {
            r.bids.iter().enumerate().map(|(index, bid)| NewBid {
                request: r.id,
                index: index as u32,
                bid: bid.clone(),
            })
        })
        .collect();
    Changes { requests, bids, ..Changes::default() }
}

// ---------------------------------------------------------------------------------------------
// Engines

/// Runs `check` against a fresh file-backed SQLite database in a temp dir.
async fn on_sqlite<F, Fut>(check: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("network.db").display());
    tokio::time::timeout(TEST_TIMEOUT, check(url)).await.expect("test timed out");
}

/// Runs `check` against a fresh PostgreSQL database, created for it and dropped after it; fails
/// without `PROVERNET_TEST_POSTGRES_URL`.
async fn on_postgres<F, Fut>(check: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin = test_pg::server_url();
    let url = test_pg::fresh_database_at(&admin, "provernet_t").await;
    // Catch a failed check's panic so that its database is dropped all the same.
    let outcome = AssertUnwindSafe(tokio::time::timeout(TEST_TIMEOUT, check(url.clone())))
        .catch_unwind()
        .await;
    test_pg::drop_database(&admin, &url).await;
    match outcome {
        Ok(result) => result.expect("test timed out"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs `sql` on its own connection to the database at `url`, outside the store.
async fn exec_raw(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut conn).await?;
        conn.close().await
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut conn).await?;
        conn.close().await
    }
}

/// The plain columns of request `id`: status, requester, zkvm_version, created_at.
async fn request_columns(url: &str, id: &RequestId) -> (String, String, String, i64) {
    let sql = "SELECT status, requester, zkvm_version, created_at FROM requests WHERE id = $1";
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).bind(id.to_string()).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).bind(id.to_string()).fetch_one(&mut conn).await.unwrap()
    }
}

/// Makes every insert of request `id` fail inside the database.
async fn reject_request_in_db(url: &str, id: &RequestId) {
    let sql = if url.starts_with("sqlite") {
        format!(
            "CREATE TRIGGER reject_request BEFORE INSERT ON requests WHEN NEW.id = '{id}' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    } else {
        format!(
            "CREATE FUNCTION reject_request() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.id = '{id}' THEN RAISE EXCEPTION 'injected failure'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER reject_request BEFORE INSERT ON requests \
             FOR EACH ROW EXECUTE FUNCTION reject_request();"
        )
    };
    exec_raw(url, &sql).await.unwrap();
}

/// Declares each check as a test on SQLite and on PostgreSQL.
macro_rules! on_both_engines {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $check() { super::on_sqlite(super::$check).await } )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test -p provernet-network --test store -- --ignored"]
                async fn $check() { super::on_postgres(super::$check).await }
            )*
        }
    };
}

on_both_engines!(
    every_entity_round_trips_and_survives_reopening,
    later_change_wins,
    failed_batch_writes_nothing,
    concurrent_submits_are_all_durable_in_order,
    writer_failure_answers_everyone_and_stops,
    shutdown_writes_what_was_queued,
    reserve_waits_for_a_free_slot,
    corrupt_rows_are_named,
    unique_violation_is_mapped,
    history_queries_agree_with_memory,
    bids_are_inserted_once,
    rows_from_before_the_bids_table_are_upgraded,
);

#[tokio::test]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test -p provernet-network --test store -- --ignored"]
async fn postgres_one_leader_at_a_time_and_a_deposed_one_commits_nothing() {
    on_postgres(one_leader_at_a_time_and_a_deposed_one_commits_nothing).await
}

/// Hot standby: the second process waits while the first leads; once it leads, the first
/// one's commits are refused whatever connection they use, and the second's land.
async fn one_leader_at_a_time_and_a_deposed_one_commits_nothing(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    let never = CancellationToken::new();
    let first = Leadership::acquire(&url, "first", &never).await.unwrap().unwrap();
    assert_eq!(first.epoch(), 1);
    let old = store.clone().fenced(first.epoch());
    old.commit(&[accounts_only(vec![account(1, 1)])]).await.unwrap();

    // The second waits while the first holds the lock, and gives up when told to.
    let stop = CancellationToken::new();
    let waiting = tokio::spawn({
        let (url, stop) = (url.clone(), stop.clone());
        async move { Leadership::acquire(&url, "second", &stop).await.unwrap().map(|l| l.epoch()) }
    });
    tokio::time::sleep(leader::POLL * 3).await;
    assert!(!waiting.is_finished(), "a standby took over from a live leader");
    stop.cancel();
    assert_eq!(waiting.await.unwrap(), None);

    // The first's lock connection goes (its process died, or a partition); its store's pooled
    // connections still work, but not its commits.
    let (release, step_down) = (CancellationToken::new(), CancellationToken::new());
    release.cancel();
    first.hold(release, step_down).await;
    let second = Leadership::acquire(&url, "second", &never).await.unwrap().unwrap();
    assert_eq!(second.epoch(), 2);
    let refused = old.commit(&[accounts_only(vec![account(1, 7)])]).await.unwrap_err();
    assert!(matches!(refused, StoreError::Deposed { ours: 1, current: Some(2) }), "{refused:?}");
    assert!(refused.to_string().contains("PN-STORE-012"), "{refused}");
    let new = store.fenced(second.epoch());
    new.commit(&[accounts_only(vec![account(2, 1)])]).await.unwrap();
    assert_eq!(new.load().await.unwrap().accounts, vec![account(1, 1), account(2, 1)]);
}

#[tokio::test]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test -p provernet-network --test store -- --ignored"]
async fn postgres_the_journal_holds_each_commit_in_order_for_standbys() {
    on_postgres(the_journal_holds_each_commit_in_order_for_standbys).await
}

/// Each commit is one journal row holding its operations (events included) in order; a standby
/// reads them after the last it applied, and is told when rows it needs are gone.
async fn the_journal_holds_each_commit_in_order_for_standbys(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    let follower = SqlStore::open_follower(&url).await.unwrap();
    assert_eq!(follower.journal_head().await.unwrap(), 0);
    let created = Changes {
        events: vec![Event::Created(request_id(1)), Event::Assigned(request_id(1))],
        ..with_bids(vec![request(1, Status::Assigned)])
    };
    store.commit(std::slice::from_ref(&created)).await.unwrap();
    let batch = [accounts_only(vec![account(1, 1)]), accounts_only(vec![account(1, 2)])];
    store.commit(&batch).await.unwrap();
    // Nothing changed, nothing written.
    store.commit(&[Changes::default()]).await.unwrap();

    let Followed::Entries(entries) = follower.journal_after(0, 10).await.unwrap() else {
        panic!("nothing is lost yet")
    };
    let operations: Vec<Vec<Changes>> = entries.iter().map(|e| e.operations.clone()).collect();
    // A request's bids travel as bids of their own, not inside the request.
    let mut journalled = created.clone();
    journalled.requests.iter_mut().for_each(|r| r.bids.clear());
    assert!(!journalled.bids.is_empty());
    assert_eq!(operations, vec![vec![journalled], batch.to_vec()]);
    let head = follower.journal_head().await.unwrap();
    assert_eq!(head, entries[1].seq);
    assert_eq!(follower.journal_after(head, 10).await.unwrap(), Followed::Entries(Vec::new()));
    let Followed::Entries(rest) = follower.journal_after(entries[0].seq, 10).await.unwrap() else {
        panic!("nothing is lost yet")
    };
    assert_eq!(rest, entries[1..]);

    // Rows a standby has not read are gone (the leader keeps the last JOURNAL_KEEP): it is told
    // to load the market again, not handed what is left.
    exec_raw(&url, &format!("DELETE FROM network_journal WHERE seq <= {}", entries[0].seq))
        .await
        .unwrap();
    assert_eq!(follower.journal_after(0, 10).await.unwrap(), Followed::Lost);
    let Followed::Entries(rest) = follower.journal_after(entries[0].seq, 10).await.unwrap() else {
        panic!("a standby at the deleted row needs nothing deleted")
    };
    assert_eq!(rest, entries[1..]);
}

// ---------------------------------------------------------------------------------------------
// Checks

async fn every_entity_round_trips_and_survives_reopening(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    assert_eq!(store.load().await.unwrap(), Snapshot::default());

    let statuses = [
        Status::Requested,
        Status::Assigned,
        Status::Fulfilled,
        Status::Unfulfillable,
        Status::Cancelled,
    ];
    let requests: Vec<Request> =
        statuses.iter().enumerate().map(|(i, s)| request(i as u32 + 1, *s)).collect();
    let mut unexecutable = request(9, Status::Unfulfillable);
    unexecutable.execution = Execution::Unexecutable { reason: "over gas limit".into() };
    // The snapshot holds the open requests; the closed ones are counted, and read by id.
    let expected = Snapshot {
        accounts: vec![account(1, 3), account(2, 0)],
        provers: vec![prover(3), prover(4)],
        programs: vec![program(5), program(6)],
        requests: requests[..2].to_vec(),
        // Written without counts (as by a network from before they were kept): counted once
        // at load from the closed requests.
        ledger: LedgerTotals {
            closed_requests: Some(
                [("cancelled", 1), ("fulfilled", 1), ("unfulfillable", 2)]
                    .map(|(s, n)| (s.to_owned(), n))
                    .into(),
            ),
            ..ledger(u128::MAX)
        },
    };
    let closed: Vec<Request> =
        requests[2..].iter().cloned().chain([unexecutable.clone()]).collect();
    let closed_ids: Vec<RequestId> = closed.iter().map(|r| r.id).collect();
    let batch = [
        Changes {
            accounts: expected.accounts.clone(),
            provers: expected.provers.clone(),
            programs: expected.programs.clone(),
            ..Changes::default()
        },
        Changes { ledger: Some(ledger(u128::MAX)), ..with_bids(requests.clone()) },
        with_bids(vec![unexecutable]),
    ];
    store.commit(&batch).await.unwrap();
    assert_eq!(store.load().await.unwrap(), expected);
    assert_eq!(store.requests(&closed_ids).await.unwrap(), closed);
    // Counted by status, those closed before a time only (all closed at 1_700_000_500).
    assert_eq!(
        store.closed_counts(1_700_000_501).await.unwrap(),
        vec![(Status::Cancelled, 1), (Status::Fulfilled, 1), (Status::Unfulfillable, 2)]
    );
    assert_eq!(store.closed_counts(1_700_000_500).await.unwrap(), vec![]);
    store.close().await;
    drop(store);

    // Durable: a new store on the same database sees everything.
    let reopened = SqlStore::open(&url).await.unwrap();
    assert_eq!(reopened.load().await.unwrap(), expected);
    assert_eq!(reopened.requests(&closed_ids).await.unwrap(), closed);
    for r in &requests {
        assert_eq!(reopened.request(&r.id).await.unwrap().as_ref(), Some(r));
    }
    assert_eq!(reopened.request(&request_id(999)).await.unwrap(), None);

    // The plain columns follow the entity, for operators' queries.
    let (status, requester, zkvm_version, created_at) = request_columns(&url, &request_id(2)).await;
    assert_eq!(status, "Assigned");
    assert_eq!(requester, address(2).to_string());
    assert_eq!(zkvm_version, "miden-0.23");
    assert_eq!(created_at, 1_700_000_002);
    reopened.close().await;
}

async fn later_change_wins(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    // Within one batch.
    store
        .commit(&[
            accounts_only(vec![account(1, 1), account(2, 1)]),
            accounts_only(vec![account(1, 2)]),
            with_bids(vec![request(1, Status::Requested)]),
            with_bids(vec![request(1, Status::Assigned)]),
            Changes { ledger: Some(ledger(1)), ..Changes::default() },
            Changes { ledger: Some(ledger(2)), ..Changes::default() },
            Changes::default(),
        ])
        .await
        .unwrap();
    let snapshot = store.load().await.unwrap();
    assert_eq!(snapshot.accounts, vec![account(1, 2), account(2, 1)]);
    assert_eq!(snapshot.requests, vec![request(1, Status::Assigned)]);
    assert_eq!(snapshot.ledger, ledger(2));
    // Across batches, plain columns included.
    store
        .commit(&[Changes {
            accounts: vec![account(2, 9)],
            requests: vec![request(1, Status::Fulfilled)],
            ..Changes::default()
        }])
        .await
        .unwrap();
    let snapshot = store.load().await.unwrap();
    assert_eq!(snapshot.accounts, vec![account(1, 2), account(2, 9)]);
    assert_eq!(snapshot.requests, vec![]);
    assert_eq!(store.closed_counts(u64::MAX).await.unwrap(), vec![(Status::Fulfilled, 1)]);
    assert_eq!(store.request(&request_id(1)).await.unwrap(), Some(request(1, Status::Fulfilled)));
    assert_eq!(request_columns(&url, &request_id(1)).await.0, "Fulfilled");
    // An empty batch writes nothing and succeeds.
    store.commit(&[]).await.unwrap();
    store.close().await;
}

async fn failed_batch_writes_nothing(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    store.commit(&[accounts_only(vec![account(1, 1)])]).await.unwrap();
    reject_request_in_db(&url, &request_id(66)).await;

    // The first Changes is written inside the transaction before the second one's insert
    // fails in the database: the whole batch must roll back.
    let err = store
        .commit(&[
            Changes {
                accounts: vec![account(1, 2), account(3, 1)],
                provers: vec![prover(4)],
                ..Changes::default()
            },
            Changes { requests: vec![request(66, Status::Requested)], ..Changes::default() },
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(!err.is_retryable());

    let snapshot = store.load().await.unwrap();
    assert_eq!(snapshot.accounts, vec![account(1, 1)]);
    assert!(snapshot.provers.is_empty() && snapshot.requests.is_empty());

    // The store is still usable.
    store.commit(&[accounts_only(vec![account(3, 1)])]).await.unwrap();
    assert_eq!(store.load().await.unwrap().accounts.len(), 2);
    store.close().await;
}

async fn concurrent_submits_are_all_durable_in_order(url: String) {
    const TASKS: u8 = 8;
    const OPS_PER_TASK: u64 = 150;

    let store = SqlStore::open(&url).await.unwrap();
    let cancel = CancellationToken::new();
    let (handle, writer) = StoreWriter::spawn(store.clone(), cancel.clone());

    // A stand-in for the market: a counter account that every task bumps under one std mutex,
    // submitting its change before releasing the lock, plus an account of the task's own.
    let market = Arc::new(Mutex::new(0_u64));
    let mut tasks = Vec::new();
    for task in 1..=TASKS {
        let handle = handle.clone();
        let market = Arc::clone(&market);
        tasks.push(tokio::spawn(async move {
            for op in 1..=OPS_PER_TASK {
                let durable = {
                    let mut counter = market.lock().unwrap();
                    *counter += 1;
                    handle.submit(accounts_only(vec![account(0, *counter), account(task, op)]))
                };
                durable.await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = u64::from(TASKS) * OPS_PER_TASK;
    assert_eq!(*market.lock().unwrap(), total);

    // Every change is durable, and the last one applied is the one stored.
    let snapshot = SqlStore::open(&url).await.unwrap().load().await.unwrap();
    let mut expected = vec![account(0, total)];
    expected.extend((1..=TASKS).map(|task| account(task, OPS_PER_TASK)));
    assert_eq!(snapshot.accounts, expected);

    cancel.cancel();
    writer.await.unwrap().unwrap();
    assert!(handle.is_closed());
    let err = handle.submit(accounts_only(vec![account(1, 0)])).await.unwrap_err();
    assert!(matches!(err, StoreError::WriterStopped), "{err:?}");
    store.close().await;
}

async fn writer_failure_answers_everyone_and_stops(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    reject_request_in_db(&url, &request_id(66)).await;

    // Queue three changes before the writer runs, so that they form one batch.
    let (writer, handle) = StoreWriter::new(store.clone());
    let good = handle.submit(accounts_only(vec![account(1, 1)]));
    let bad = handle
        .submit(Changes { requests: vec![request(66, Status::Requested)], ..Changes::default() });
    let also_good = handle.submit(accounts_only(vec![account(2, 1)]));
    let err = writer.run(CancellationToken::new()).await.unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    for waiter in [good.await, bad.await, also_good.await] {
        let waiter_err = waiter.unwrap_err();
        assert!(waiter_err.to_string().contains("injected failure"), "{waiter_err}");
    }
    // Stopped: later changes are refused, and nothing of the batch was written.
    assert!(handle.is_closed());
    let late = handle.submit(accounts_only(vec![account(3, 1)])).await.unwrap_err();
    assert!(matches!(late, StoreError::WriterStopped), "{late:?}");
    assert!(matches!(handle.reserve().await.unwrap_err(), StoreError::WriterStopped));
    assert_eq!(store.load().await.unwrap(), Snapshot::default());
    store.close().await;
}

async fn shutdown_writes_what_was_queued(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    let (writer, handle) = StoreWriter::new(store.clone());
    let cancel = CancellationToken::new();
    // Cancelled before it starts: it must still write what was queued before it stopped.
    let waiters: Vec<_> = (1..=3_000_u64)
        .map(|nonce| handle.submit(accounts_only(vec![account((nonce % 50) as u8, nonce)])))
        .collect();
    cancel.cancel();
    writer.run(cancel).await.unwrap();
    for waiter in waiters {
        waiter.await.unwrap();
    }
    let snapshot = store.load().await.unwrap();
    assert_eq!(snapshot.accounts.len(), 50);
    assert!(
        snapshot
            .accounts
            .iter()
            .all(|a| a.nonce > 2_900 && a.nonce % 50 == u64::from(a.address.as_bytes()[0]))
    );
    store.close().await;
}

async fn reserve_waits_for_a_free_slot(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    let (writer, handle) = StoreWriter::new(store.clone());
    let mut slots = Vec::new();
    for _ in 0..CHANGES_CHANNEL_CAPACITY {
        slots.push(handle.reserve().await.unwrap());
    }
    // Full: a reservation waits …
    let more = tokio::time::timeout(Duration::from_millis(100), handle.reserve()).await;
    assert!(more.is_err(), "reserve should wait while the queue is full");
    // … while submit still queues, over capacity, in call order.
    let over = handle.submit(accounts_only(vec![account(1, 1)]));
    let waiters: Vec<_> = slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| slot.submit(accounts_only(vec![account(1, i as u64 + 2)])))
        .collect();
    let cancel = CancellationToken::new();
    let running = tokio::spawn(writer.run(cancel.clone()));
    // Slots come back as changes are written.
    let slot = handle.reserve().await.unwrap();
    let last = CHANGES_CHANNEL_CAPACITY as u64 + 2;
    slot.submit(accounts_only(vec![account(1, last)])).await.unwrap();
    over.await.unwrap();
    for waiter in waiters {
        waiter.await.unwrap();
    }
    assert_eq!(store.load().await.unwrap().accounts, vec![account(1, last)]);
    cancel.cancel();
    running.await.unwrap().unwrap();
    store.close().await;
}

async fn corrupt_rows_are_named(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    store.commit(&[accounts_only(vec![account(1, 1)])]).await.unwrap();
    exec_raw(
        &url,
        "INSERT INTO provers (owner, operator, data) VALUES ('0xbad', '0x0', '{not json')",
    )
    .await
    .unwrap();
    match store.load().await.unwrap_err() {
        StoreError::Corrupt { table, key, .. } => {
            assert_eq!((table, key.as_str()), ("provers", "0xbad"))
        }
        other => panic!("expected a corrupt row, got {other:?}"),
    }
    exec_raw(&url, "DELETE FROM provers").await.unwrap();
    // Valid JSON under another key.
    let data = serde_json::to_string(&account(2, 0)).unwrap();
    exec_raw(&url, &format!("INSERT INTO accounts (address, data) VALUES ('0xa1', '{data}')"))
        .await
        .unwrap();
    let err = store.load().await.unwrap_err();
    let StoreError::KeyMismatch { table, key, found } = &err else {
        panic!("expected a key mismatch, got {err:?}");
    };
    assert_eq!((*table, key.as_str()), ("accounts", "0xa1"));
    assert_eq!(*found, address(2).to_string());
    assert!(err.to_string().contains("0xa1"));
    store.close().await;
}

async fn unique_violation_is_mapped(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    store.commit(&[accounts_only(vec![account(1, 1)])]).await.unwrap();
    let insert = format!("INSERT INTO accounts (address, data) VALUES ('{}', '{{}}')", address(1));
    let err = StoreError::from_sqlx(exec_raw(&url, &insert).await.unwrap_err());
    assert!(matches!(err, StoreError::UniqueViolation { .. }), "{err:?}");
    assert!(!err.is_retryable());
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// Engine-specific

#[tokio::test]
async fn sqlite_memory_store_works_from_spawned_tasks() {
    tokio::time::timeout(TEST_TIMEOUT, memory_store_from_spawned_tasks()).await.unwrap();
}

async fn memory_store_from_spawned_tasks() {
    // Spawned, as the network does: the store's futures must be `Send` for other crates too.
    let store = tokio::spawn(SqlStore::open("sqlite::memory:")).await.unwrap().unwrap();
    let writing = store.clone();
    tokio::spawn(async move { writing.commit(&[accounts_only(vec![account(1, 1)])]).await })
        .await
        .unwrap()
        .unwrap();
    let reading = store.clone();
    let snapshot = tokio::spawn(async move { reading.load().await }).await.unwrap().unwrap();
    assert_eq!(snapshot.accounts, vec![account(1, 1)]);
    // The in-memory database lives as long as the store.
    assert_eq!(store.load().await.unwrap().accounts, vec![account(1, 1)]);
}

#[tokio::test]
async fn sqlite_busy_database_is_retryable() {
    on_sqlite(|url| async move {
        let store = SqlStore::open(&url).await.unwrap();
        // Another connection holds the write lock past the busy timeout.
        let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut other).await.unwrap();
        let err = store.commit(&[accounts_only(vec![account(1, 1)])]).await.unwrap_err();
        assert!(matches!(err, StoreError::Busy { .. }), "{err:?}");
        assert!(err.is_retryable());
        sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
        store.commit(&[accounts_only(vec![account(1, 1)])]).await.unwrap();
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn sqlite_writer_retries_a_busy_database() {
    on_sqlite(|url| async move {
        let store = SqlStore::open(&url).await.unwrap();
        let (handle, writer) = StoreWriter::spawn(store.clone(), CancellationToken::new());
        // Hold the write lock past one busy timeout (5 s), not past the retry that follows.
        let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut other).await.unwrap();
        let durable = handle.submit(accounts_only(vec![account(1, 1)]));
        let release = async {
            tokio::time::sleep(Duration::from_millis(5_500)).await;
            sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
        };
        let (result, ()) = tokio::join!(durable, release);
        result.unwrap();
        assert_eq!(store.load().await.unwrap().accounts, vec![account(1, 1)]);
        assert!(!handle.is_closed() && !writer.is_finished());
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn open_failures_name_the_url_without_its_password() {
    tokio::time::timeout(TEST_TIMEOUT, open_failures()).await.unwrap();
}

async fn open_failures() {
    let err = SqlStore::open("mysql://root:hunter2@localhost/x").await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("mysql://root:***@localhost/x"), "{err}");

    // A missing folder is created; a folder that cannot be is an open failure.
    let dir = tempfile::tempdir().unwrap();
    let nested = format!("sqlite://{}/new/folder/network.db", dir.path().display());
    SqlStore::open(&nested).await.unwrap().close().await;
    assert!(dir.path().join("new/folder/network.db").is_file());
    std::fs::write(dir.path().join("a-file"), b"").unwrap();
    let under_a_file = format!("sqlite://{}/a-file/network.db", dir.path().display());
    let err = SqlStore::open(&under_a_file).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(!err.is_retryable());

    // Nothing listens on port 1.
    let err =
        SqlStore::open("postgres://provernet:hunter2@127.0.0.1:1/provernet").await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// A varied history: every status, two requesters, two versions, two modes, some assigned to
/// one prover or another, bids from several.
fn history() -> Vec<Request> {
    let statuses = [
        Status::Requested,
        Status::Assigned,
        Status::Fulfilled,
        Status::Unfulfillable,
        Status::Cancelled,
    ];
    (0..60u32)
        .map(|n| {
            let mut r = request(n + 100, statuses[n as usize % statuses.len()]);
            r.requester = address((n % 2) as u8 + 1);
            r.created_at = 1_700_000_000 + u64::from(n / 3);
            if n % 4 == 0 {
                r.spec.zkvm_version = "sp1-v6.1".into();
                r.spec.program_id = vec![9; 32];
            }
            r.spec.proof_mode = ["", "core", "compressed"][n as usize % 3].into();
            r.spec.deadline = 1_700_000_000 + u64::from(n * 7 % 50);
            if let Some(a) = &mut r.assignment {
                a.prover = address(7 + (n % 3) as u8);
            }
            if n % 7 == 0 {
                r.execution = Execution::Unexecutable { reason: "x".into() };
            }
            if n % 5 == 1 {
                r.bids.push(Bid { prover: address(9), price_per_pgu: Amount::new(2), at_ms: 3 });
            }
            r
        })
        .collect()
}

async fn history_queries_agree_with_memory(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    let history = history();
    store.commit(&[with_bids(history.clone())]).await.unwrap();
    let mut sorted = history.clone();
    sorted.sort_by_key(|r| (r.created_at, r.id));
    let middle = (sorted[20].created_at, sorted[20].id);
    let queries = [
        RequestQuery::default(),
        RequestQuery {
            statuses: Some(vec![Status::Fulfilled, Status::Cancelled]),
            ..Default::default()
        },
        RequestQuery { statuses: Some(vec![]), ..Default::default() },
        RequestQuery { executions: Some(vec!["Unexecutable"]), ..Default::default() },
        RequestQuery { zkvm_version: Some("sp1-v6.1".into()), ..Default::default() },
        RequestQuery { requester: Some(address(2)), ..Default::default() },
        RequestQuery { prover: Some(address(8)), ..Default::default() },
        RequestQuery { not_bid_by: Some(address(9)), ..Default::default() },
        RequestQuery {
            not_bid_by: Some(address(7)),
            statuses: Some(vec![Status::Assigned]),
            ..Default::default()
        },
        RequestQuery { program_id: Some(vec![9; 32]), ..Default::default() },
        RequestQuery {
            proof_modes: Some(vec!["core".into(), String::new()]),
            ..Default::default()
        },
        RequestQuery { min_deadline: Some(1_700_000_030), ..Default::default() },
        RequestQuery {
            created_from: Some(1_700_000_005),
            created_to: Some(1_700_000_012),
            ..Default::default()
        },
        RequestQuery { after: Some(middle), ..Default::default() },
        RequestQuery {
            after: Some(middle),
            requester: Some(address(1)),
            statuses: Some(vec![Status::Requested, Status::Unfulfillable]),
            ..Default::default()
        },
    ];
    for query in &queries {
        let expected: Vec<(u64, RequestId)> =
            sorted.iter().filter(|r| query.matches(r)).map(|r| (r.created_at, r.id)).collect();
        assert_eq!(store.request_keys(query, 1_000).await.unwrap(), expected, "{query:?}");
        let first: Vec<_> = expected.iter().take(3).copied().collect();
        assert_eq!(store.request_keys(query, 3).await.unwrap(), first, "{query:?}, limit 3");
    }
    // Pages by cursor walk the whole history once, in order.
    let mut seen = Vec::new();
    let mut query = RequestQuery::default();
    loop {
        let page = store.request_keys(&query, 7).await.unwrap();
        let Some(last) = page.last().copied() else { break };
        seen.extend(page);
        query.after = Some(last);
    }
    assert_eq!(seen, sorted.iter().map(|r| (r.created_at, r.id)).collect::<Vec<_>>());
    store.close().await;
}

async fn bids_are_inserted_once(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    let mut r = request(1, Status::Requested);
    store.commit(&[with_bids(vec![r.clone()])]).await.unwrap();
    let bid = Bid { prover: address(7), price_per_pgu: Amount::new(4), at_ms: 10 };
    r.bids.push(bid.clone());
    let new = Changes { bids: vec![NewBid { request: r.id, index: 0, bid }], ..Changes::default() };
    // A batch written twice (a retried commit) holds each bid once.
    store.commit(&[new.clone(), new]).await.unwrap();
    assert_eq!(store.load().await.unwrap().requests, vec![r.clone()]);
    store.commit(&[with_bids(vec![r.clone()])]).await.unwrap();
    assert_eq!(store.request(&r.id).await.unwrap(), Some(r));
    store.close().await;
}

async fn rows_from_before_the_bids_table_are_upgraded(url: String) {
    let store = SqlStore::open(&url).await.unwrap();
    let history = history();
    store.commit(&[with_bids(history.clone())]).await.unwrap();
    store.close().await;
    drop(store);
    // As a database from before migration 0002 has them: bids inside the JSON, no columns.
    let mut sql = String::from(
        "DELETE FROM bids; UPDATE requests SET execution = NULL, prover = NULL, deadline = NULL, \
         program_id = NULL, proof_mode = NULL;",
    );
    for r in &history {
        let mut json = serde_json::to_value(r).unwrap();
        json["bids"] = serde_json::to_value(&r.bids).unwrap();
        sql.push_str(&format!(
            "UPDATE requests SET data = '{}' WHERE id = '{}';",
            json.to_string().replace('\'', "''"),
            r.id
        ));
    }
    exec_raw(&url, &sql).await.unwrap();

    let store = SqlStore::open(&url).await.unwrap();
    let ids: Vec<RequestId> = history.iter().map(|r| r.id).collect();
    assert_eq!(store.requests(&ids).await.unwrap(), history);
    let query = RequestQuery {
        not_bid_by: Some(address(9)),
        prover: Some(address(8)),
        ..Default::default()
    };
    let expected: Vec<RequestId> = {
        let mut m: Vec<&Request> = history.iter().filter(|r| query.matches(r)).collect();
        m.sort_by_key(|r| (r.created_at, r.id));
        m.into_iter().map(|r| r.id).collect()
    };
    let found: Vec<RequestId> =
        store.request_keys(&query, 1_000).await.unwrap().into_iter().map(|(_, id)| id).collect();
    assert_eq!(found, expected);
    store.close().await;
}
