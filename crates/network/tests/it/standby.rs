//! Hot standby in process, on a real PostgreSQL: a second network process on the leader's
//! database follows its journal as it commits, serves reads and subscriptions, refuses
//! operations, and takes over without loading the market when the leader stops.

use provernet_network::Role;
use provernet_types::proto::{self, RequestStatus, request_event::Event};
use provernet_zkvm::samples::FIB;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::harness::{Net, WAIT, assert_status, bounded};

/// The health the gRPC health check reports for the ProverNetwork service at `net`.
async fn health(net: &Net) -> i32 {
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", net.handle.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest { service: "provernet.v1.ProverNetwork".into() })
        .await
        .unwrap()
        .into_inner()
        .status
}

/// Waits until the standby's market is the leader's, re-checked after every journal row it
/// applies.
async fn caught_up(standby: &Net, leader: &Net) {
    let mut followed = standby.handle.state.followed.subscribe();
    let same =
        followed.wait_for(|_| *standby.handle.state.market() == *leader.handle.state.market());
    tokio::time::timeout(WAIT, same)
        .await
        .expect("the standby did not catch up with the leader")
        .expect("the standby stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test -p provernet-network --test it -- --ignored standby:: (.ci/run runs it)"]
async fn a_standby_follows_serves_reads_refuses_writes_and_takes_over_without_loading() {
    bounded(async {
        let leader = Net::start_on_postgres().await;
        assert_eq!(*leader.handle.role.borrow(), Role::Leading { epoch: Some(1) });
        let requester = leader.funded().await;
        let prover = leader.prover().await;
        let program = leader.program(&requester, &FIB, false).await;

        // Started after the leader has history: it loads that, then follows the rest.
        let standby = leader.another_process().await;
        assert_eq!(*standby.handle.role.borrow(), Role::StandingBy);
        assert_eq!(health(&leader).await, ServingStatus::Serving as i32);
        assert_eq!(health(&standby).await, ServingStatus::NotServing as i32);

        // Its subscribers see the leader's events.
        let mut standby_events = standby.events().await;
        let id = leader.request(&requester, &program.spec(3)).await;
        let executed = standby_events.executed(&id).await;
        assert!(executed.pgus > 0);
        leader.bid(&prover, &id, 4).await.expect("Bid");
        caught_up(&standby, &leader).await;

        // Reads answer from what it followed.
        assert_eq!(standby.get(&id).await, leader.get(&id).await);
        assert_eq!(
            standby.account(&requester.address()).await,
            leader.account(&requester.address()).await
        );
        assert!(standby.handle.state.market().holds(&id), "the open request is in memory");

        // Operations are refused before any work, with the reason.
        let faucet =
            standby.sign(&requester, |nonce| proto::FaucetBody { nonce, amount: "5".into() }).await;
        assert_status(standby.rpc().faucet(faucet).await, Code::Unavailable, "PN-NETWORK-STANDBY");
        assert_status(standby.bid(&prover, &id, 3).await, Code::Unavailable, "PN-NETWORK-STANDBY");

        // The leader stops mid-auction: the standby takes over with what it holds, re-arms the
        // auction, and settles it on the bid the old leader took.
        let market = standby.handle.state.market().clone();
        let stopped = leader.stop().await;
        let mut role = standby.handle.role.clone();
        tokio::time::timeout(WAIT, role.wait_for(|r| *r == Role::Leading { epoch: Some(2) }))
            .await
            .expect("the standby did not take over")
            .expect("the standby stopped");
        assert_eq!(*standby.handle.state.market(), market, "took over with the market it followed");
        assert_eq!(health(&standby).await, ServingStatus::Serving as i32);
        let assigned = standby_events.assigned(&id).await;
        assert_eq!(assigned.prover, prover.address().as_bytes());

        // It accepts operations, and its subscription stayed open through the takeover.
        let bundle = program.prove(program.inputs.clone()).await;
        standby.fulfill(&prover, &id, bundle).await.expect("FulfillProof");
        standby_events.verdict(&id).await.expect("the proof verifies");
        let fulfilled = standby.get(&id).await;
        assert_eq!(fulfilled.status, RequestStatus::Fulfilled as i32);
        drop(stopped);
        standby.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test -p provernet-network --test it -- --ignored standby:: (.ci/run runs it)"]
async fn a_standby_publishes_each_event_once_in_the_leaders_order() {
    bounded(async {
        let leader = Net::start_on_postgres().await;
        let standby = leader.another_process().await;
        let mut on_leader = leader.events().await;
        let mut on_standby = standby.events().await;
        let requester = leader.funded().await;
        let program = leader.program(&requester, &FIB, false).await;
        let id = leader.request(&requester, &program.spec(30)).await;
        on_leader.executed(&id).await;
        let cancel = leader
            .sign(&requester, |nonce| proto::CancelRequestBody {
                nonce,
                request_id: id.as_bytes().to_vec(),
            })
            .await;
        leader.rpc().cancel_request(cancel).await.expect("CancelRequest");
        let kinds = |events: Vec<Event>| -> Vec<&'static str> {
            events
                .iter()
                .map(|e| match e {
                    Event::Created(_) => "created",
                    Event::Executed(_) => "executed",
                    Event::Cancelled(_) => "cancelled",
                    _ => "other",
                })
                .collect()
        };
        let mut seen = Vec::new();
        while !matches!(seen.last(), Some(Event::Cancelled(_))) {
            seen.push(on_standby.next_about(&id, "the standby's events").await);
        }
        assert_eq!(kinds(seen), ["created", "executed", "cancelled"]);
        caught_up(&standby, &leader).await;
        assert!(!standby.handle.state.market().holds(&id), "a closed request leaves memory");
        assert_eq!(standby.get(&id).await.status, RequestStatus::Cancelled as i32);
        standby.stop().await;
        leader.stop().await;
    })
    .await;
}

/// What one run of [`two_requests`] leaves: the requester's, the prover's and its operator's
/// accounts (balance, locked, stake) and the ledger's totals.
type Balances = Vec<(u128, u128, u128)>;

/// Two requests proven and paid on a leader with a standby; with `fail_over`, the leader stops
/// in the middle of the first auction and the standby carries on. The same operations either
/// way, so the same money moves.
async fn two_requests(fail_over: bool) -> Balances {
    let leader = Net::start_on_postgres().await;
    let standby = leader.another_process().await;
    let requester = leader.funded().await;
    let prover = leader.prover().await;
    let program = leader.program(&requester, &FIB, false).await;
    // On the process that will serve the end: its subscription stays open throughout.
    let mut events = if fail_over { standby.events().await } else { leader.events().await };
    let first = leader.request(&requester, &program.spec(3)).await;
    events.executed(&first).await;
    leader.bid(&prover, &first, 4).await.expect("Bid");
    let (serving, other) = if fail_over {
        caught_up(&standby, &leader).await;
        leader.stop().await;
        leads(&standby).await;
        (standby, None)
    } else {
        (leader, Some(standby))
    };
    events.assigned(&first).await;
    let bundle = program.prove(program.inputs.clone()).await;
    serving.fulfill(&prover, &first, bundle.clone()).await.expect("FulfillProof");
    events.verdict(&first).await.expect("the first proof verifies");

    let second = serving.request(&requester, &program.spec(3)).await;
    events.executed(&second).await;
    serving.bid(&prover, &second, 5).await.expect("Bid");
    events.assigned(&second).await;
    serving.fulfill(&prover, &second, bundle).await.expect("FulfillProof");
    events.verdict(&second).await.expect("the second proof verifies");

    let mut balances = Vec::new();
    for address in [requester.address(), prover.address(), prover.operator.address()] {
        let account = serving.account(&address).await;
        let stake = account.prover.as_ref().map_or(0, |p| p.stake.parse().unwrap());
        balances.push((account.balance.parse().unwrap(), account.locked.parse().unwrap(), stake));
    }
    {
        let market = serving.handle.state.market();
        let ledger = market.ledger();
        balances.push((ledger.deposits.get(), ledger.treasury.get(), 0));
    }
    if let Some(standby) = other {
        standby.stop().await;
    }
    serving.stop().await;
    balances
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test -p provernet-network --test it -- --ignored standby:: (.ci/run runs it)"]
async fn a_takeover_mid_auction_moves_the_same_money_as_a_run_without_one() {
    bounded(async {
        let calm = two_requests(false).await;
        let failed_over = two_requests(true).await;
        assert_eq!(failed_over, calm, "balances after a takeover differ from a fault-free run");
        // Something moved: the requester paid the prover.
        assert!(calm[1].0 > 0, "the prover was paid: {calm:?}");
    })
    .await;
}

/// Waits until `net` leads.
async fn leads(net: &Net) {
    let mut role = net.handle.role.clone();
    tokio::time::timeout(WAIT, role.wait_for(|r| matches!(r, Role::Leading { .. })))
        .await
        .expect("the standby did not take over")
        .expect("the standby stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: PROVERNET_TEST_POSTGRES_URL=postgres://… cargo test -p provernet-network --test it -- --ignored standby:: (.ci/run runs it)"]
async fn takeovers_mid_execution_and_mid_verification_finish_the_work_once() {
    bounded(async {
        let first = Net::start_on_postgres().await;
        let second = first.another_process().await;
        let requester = first.funded().await;
        let prover = first.prover().await;
        let program = first.program(&requester, &FIB, false).await;

        // Mid-execution: the leader stops as soon as it has taken the request; the new leader
        // executes it (the request was in the journal, its execution maybe not).
        let mut events = second.events().await;
        let id = first.request(&requester, &program.spec(2)).await;
        first.stop().await;
        leads(&second).await;
        events.executed(&id).await;
        second.bid(&prover, &id, 4).await.expect("Bid");
        events.assigned(&id).await;

        // Mid-verification: the leader stops as soon as it has taken the proof; the new leader
        // verifies the proof that waits in the request and pays once.
        let third = second.another_process().await;
        let bundle = program.prove(program.inputs.clone()).await;
        second.fulfill(&prover, &id, bundle).await.expect("FulfillProof");
        second.stop().await;
        leads(&third).await;
        let fulfilled = third
            .wait_until(&id, "fulfilled", |r| r.status == RequestStatus::Fulfilled as i32)
            .await;
        let spent = crate::harness::FUNDS - third.balance(&requester.address()).await;
        let paid: u128 = fulfilled.paid.parse().unwrap();
        assert!(paid > 0);
        // The program's registration is free of charge, so the requester paid this request only,
        // and once.
        assert_eq!(spent, paid, "the requester paid {spent}, the request {paid}");
        third.stop().await;
    })
    .await;
}
