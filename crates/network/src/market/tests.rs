//! The market's rules, and the ledger invariant under random sequences of operations.

use proptest::prelude::*;
use provernet_types::{Address, Amount, ArtifactId, RequestId, RequestSpec};

use super::{lifecycle::MAX_REASON_CHARS, *};

const T0: u64 = 1_700_000_000_000;

fn addr(n: u8) -> Address {
    Address::from_bytes([n; 20])
}

fn program() -> Program {
    Program {
        program_id: vec![7; 32],
        name: "fib".into(),
        zkvm_version: "miden-0.23".into(),
        artifact_id: ArtifactId::of(b"fib"),
        registered_by: addr(200),
        registered_at: 0,
        sdk_hash: None,
    }
}

fn spec(gas_limit: u64, max_price: u128, deadline: u64, period: u64) -> RequestSpec {
    RequestSpec {
        program_id: vec![7; 32],
        zkvm_version: "miden-0.23".into(),
        program_artifact_id: ArtifactId::of(b"fib"),
        inputs_artifact_id: ArtifactId::of(b"inputs"),
        inputs_private: false,
        deadline,
        gas_limit,
        max_price_per_pgu: Amount::new(max_price),
        base_fee: Amount::new(10),
        min_auction_period: period,
        whitelist: Vec::new(),
        expected_outputs_hash: None,
        proof_mode: String::new(),
    }
}

fn nonce(m: &Market, a: Address) -> u64 {
    m.account(&a).nonce
}

/// A market with a funded requester (1), two staked provers (10, 11) and the fib program.
fn market() -> Market {
    let mut m = Market::new(MarketConfig::default(), Snapshot::default());
    for a in [addr(1), addr(10), addr(11)] {
        m.deposit(a, 0, a, Amount::new(1_000_000)).unwrap();
    }
    for p in [addr(10), addr(11)] {
        m.register_prover(p, 1, Amount::new(100_000), None, T0).unwrap();
    }
    m.register_program(addr(200), 0, program()).unwrap();
    m
}

fn open_request(m: &mut Market, id: u8, now_ms: u64) -> RequestId {
    let id = RequestId::from_bytes([id; 32]);
    let n = nonce(m, addr(1));
    m.request_proof(addr(1), n, id, spec(1024, 5, now_ms / 1000 + 60, 2), now_ms).unwrap();
    m.record_execution(id, Ok((512, vec![1])), now_ms).unwrap();
    id
}

/// An open request won by prover 10 at 3 per PGU (deadline T0 + 60 s).
fn assigned_request(m: &mut Market, id: u8) -> RequestId {
    let id = open_request(m, id, T0);
    let p10 = addr(10);
    m.bid(p10, nonce(m, p10), id, p10, Amount::new(3), T0 + 100).unwrap();
    assert_eq!(m.settle(id, T0 + 2_000).changes.events, vec![Event::Assigned(id)]);
    id
}

#[test]
fn a_submitted_proof_waits_for_the_verifier_and_its_nonce_is_used_at_once() {
    let mut m = market();
    let id = assigned_request(&mut m, 1);
    let p10 = addr(10);
    let (n, proof) = (nonce(&m, p10), ArtifactId::of(b"proof"));
    let outcome = m.submit_proof(p10, n, id, p10, proof, T0 + 3_000).unwrap();
    assert_eq!(outcome.changes.events, vec![Event::ProofSubmitted(id)]);
    assert_eq!(nonce(&m, p10), n + 1, "the nonce is free for the prover's next call");
    assert_eq!(m.request(&id).unwrap().status, Status::Assigned);
    // One proof at a time.
    let before = m.clone();
    let err = m.submit_proof(p10, n + 1, id, p10, proof, T0 + 3_100).unwrap_err();
    assert_eq!(err, MarketError::ProofPending(id));
    assert_eq!(m, before);
    // The deadline passes while it is verified: the sweeper leaves it to the verifier, whose
    // verdict counts since the proof came in time.
    assert!(m.sweep(T0 + 61_000).changes.events.is_empty());
    let outcome = m.accept_proof(id, T0 + 61_500).unwrap();
    assert_eq!(outcome.changes.events, vec![Event::Fulfilled(id)]);
    let r = m.request(&id).unwrap();
    assert_eq!(
        (r.status, r.paid, r.proof_artifact_id),
        (Status::Fulfilled, Amount::new(10 + 3 * 512), Some(proof))
    );
    assert!(r.pending_proof.is_none());
    assert_eq!(m.accept_proof(id, T0 + 62_000).unwrap_err(), MarketError::NoPendingProof(id));
    m.check_ledger().unwrap();
}

#[test]
fn a_rejected_proof_leaves_the_request_assigned_until_its_deadline() {
    let mut m = market();
    let id = assigned_request(&mut m, 1);
    let p10 = addr(10);
    let stake = m.prover(&p10).unwrap().stake;
    m.submit_proof(p10, nonce(&m, p10), id, p10, ArtifactId::of(b"bad"), T0 + 3_000).unwrap();
    let outcome = m.reject_proof(id, &"does not verify ".repeat(100), T0 + 3_100).unwrap();
    assert_eq!(outcome.changes.events, vec![Event::ProofRejected(id)]);
    let r = m.request(&id).unwrap();
    assert_eq!(r.status, Status::Assigned);
    assert!(r.pending_proof.is_none());
    assert_eq!(r.rejected_proof.as_ref().map(|s| s.chars().count()), Some(MAX_REASON_CHARS));
    // Another try, rejected after the deadline: missed at once.
    m.submit_proof(p10, nonce(&m, p10), id, p10, ArtifactId::of(b"bad2"), T0 + 59_000).unwrap();
    let outcome = m.reject_proof(id, "does not verify", T0 + 60_500).unwrap();
    assert_eq!(outcome.changes.events, vec![Event::ProofRejected(id), Event::Unfulfillable(id)]);
    assert_eq!(m.request(&id).unwrap().status, Status::Unfulfillable);
    assert!(m.prover(&p10).unwrap().stake < stake, "the collateral is forfeited");
    // Too late for a submission.
    let late = assigned_request(&mut m, 2);
    let err = m.submit_proof(p10, nonce(&m, p10), late, p10, ArtifactId::of(b"p"), T0 + 60_000);
    assert!(matches!(err, Err(MarketError::DeadlinePassed { .. })), "{err:?}");
    m.check_ledger().unwrap();
}

#[test]
fn only_the_admin_makes_admin_deposits_even_to_itself() {
    let admin = addr(50);
    let config = MarketConfig { admin: Some(admin), faucet_limit: None, ..MarketConfig::default() };
    let mut m = Market::new(config, Snapshot::default());
    let before = m.clone();
    // To itself, a non-admin is refused as a non-admin (not served by the faucet rules).
    let err = m.admin_deposit(addr(1), 0, addr(1), Amount::new(5)).unwrap_err();
    assert!(matches!(err, MarketError::Unauthorized { .. }), "{err:?}");
    assert_eq!(m, before);
    // The admin may credit itself with the faucet off.
    m.admin_deposit(admin, 0, admin, Amount::new(5)).unwrap();
    m.admin_deposit(admin, 1, addr(1), Amount::new(7)).unwrap();
    assert_eq!(
        (m.account(&admin).balance, m.account(&addr(1)).balance),
        (Amount::new(5), Amount::new(7))
    );
    assert_eq!(m.check_ledger(), Ok(()));
}

#[test]
fn program_names_follow_the_protocol_and_belong_to_their_first_registrant() {
    let mut m = market();
    let before = m.clone();
    let version = |name: &str, id: u8| Program {
        name: name.into(),
        program_id: vec![id; 32],
        registered_by: addr(1),
        ..program()
    };
    for bad in ["", "Fib", "fib program", "fib/2", &"a".repeat(65)] {
        let err = m.register_program(addr(1), 1, version(bad, 8)).unwrap_err();
        assert!(matches!(err, MarketError::InvalidField { field: "name", .. }), "{bad:?}: {err:?}");
    }
    // "fib" was registered first by account 200.
    let err = m.register_program(addr(1), 1, version("fib", 8)).unwrap_err();
    assert!(matches!(err, MarketError::Unauthorized { .. }), "{err:?}");
    assert_eq!(m, before);
    m.register_program(addr(1), 1, version("fib-2.0_b", 8)).unwrap();
    m.register_program(addr(200), 1, Program { program_id: vec![9; 32], ..program() }).unwrap();
    assert_eq!(m.programs_named("fib").len(), 2);
}

#[test]
fn lowest_bid_wins_earliest_on_tie_and_is_paid_as_bid() {
    let mut m = market();
    let id = open_request(&mut m, 1, T0);
    let (p10, p11) = (addr(10), addr(11));
    m.bid(p10, nonce(&m, p10), id, p10, Amount::new(3), T0 + 100).unwrap();
    m.bid(p11, nonce(&m, p11), id, p11, Amount::new(3), T0 + 200).unwrap();
    assert_eq!(m.request(&id).unwrap().status, Status::Requested, "period not over");
    let outcome = m.settle(id, T0 + 2_000);
    assert_eq!(outcome.changes.events, vec![Event::Assigned(id)]);
    let r = m.request(&id).unwrap();
    assert_eq!(r.assignment.as_ref().map(|a| a.prover), Some(p10), "earliest of equal bids");
    let collateral = r.assignment.as_ref().unwrap().collateral;
    assert_eq!(collateral, Amount::new(r.lock.get() / 10));
    let before = m.account(&p10).balance;
    m.fulfill(p10, nonce(&m, p10), id, p10, ArtifactId::of(b"proof"), T0 + 3_000).unwrap();
    let paid = 10 + 3 * 512;
    assert_eq!(m.account(&p10).balance.get(), before.get() + paid);
    assert_eq!(m.request(&id).unwrap().paid, Amount::new(paid));
    assert_eq!(m.account(&addr(1)).locked, Amount::ZERO);
    assert_eq!(m.prover(&p10).unwrap().collateral, Amount::ZERO);
    m.check_ledger().unwrap();
}

#[test]
fn a_bid_after_the_period_settles_at_once_and_a_lower_bid_wins() {
    let mut m = market();
    let id = open_request(&mut m, 1, T0);
    let (p10, p11) = (addr(10), addr(11));
    m.bid(p10, nonce(&m, p10), id, p10, Amount::new(4), T0).unwrap();
    m.bid(p11, nonce(&m, p11), id, p11, Amount::new(2), T0 + 10).unwrap();
    assert!(m.settle(id, T0 + 1_999).changes.events.is_empty(), "one ms before the end");
    m.settle(id, T0 + 2_000);
    assert_eq!(m.request(&id).unwrap().assignment.as_ref().map(|a| a.prover), Some(p11));

    let late = open_request(&mut m, 2, T0);
    let outcome = m.bid(p10, nonce(&m, p10), late, p10, Amount::new(5), T0 + 5_000).unwrap();
    assert_eq!(outcome.changes.events, vec![Event::Assigned(late)]);
}

#[test]
fn bad_bids_are_refused_and_change_nothing() {
    let mut m = market();
    let id = open_request(&mut m, 1, T0);
    let p10 = addr(10);
    let n = nonce(&m, p10);
    let before = m.clone();
    let cases: Vec<(Result<Outcome>, &str)> = vec![
        (m.clone().bid(p10, n + 1, id, p10, Amount::new(1), T0), "nonce"),
        (m.clone().bid(p10, n, id, p10, Amount::new(6), T0), "above the request's maximum"),
        (
            m.clone().bid(addr(1), nonce(&m, addr(1)), id, addr(1), Amount::new(1), T0),
            "not a registered prover",
        ),
        (
            m.clone().bid(addr(11), nonce(&m, addr(11)), id, p10, Amount::new(1), T0),
            "may not act for this prover",
        ),
        (
            m.clone().bid(p10, n, RequestId::from_bytes([9; 32]), p10, Amount::new(1), T0),
            "no proof request",
        ),
        (m.clone().bid(p10, n, id, p10, Amount::new(1), T0 + 61_000), "deadline"),
    ];
    for (result, expected) in cases {
        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains(expected), "{expected:?} not in {message:?}");
    }
    assert_eq!(m, before);

    let unexecuted = RequestId::from_bytes([3; 32]);
    m.request_proof(addr(1), nonce(&m, addr(1)), unexecuted, spec(64, 1, T0 / 1000 + 60, 1), T0)
        .unwrap();
    let e = m.bid(p10, n, unexecuted, p10, Amount::new(1), T0).unwrap_err();
    assert!(matches!(e, MarketError::NotExecuted(_)), "{e}");
}

#[test]
fn misses_refund_the_requester_with_collateral_and_suspend_repeat_offenders() {
    let mut m = market();
    let p10 = addr(10);
    for i in 0..3u8 {
        let now = T0 + u64::from(i) * 100_000;
        let id = open_request(&mut m, i + 1, now);
        m.bid(p10, nonce(&m, p10), id, p10, Amount::new(1), now + 3_000).unwrap();
        let requester_before = m.account(&addr(1));
        let collateral = m.request(&id).unwrap().assignment.as_ref().unwrap().collateral;
        let lock = m.request(&id).unwrap().lock;
        if i == 0 {
            m.fail(p10, nonce(&m, p10), id, p10, "out of memory", now + 4_000).unwrap();
        } else {
            assert!(m.sweep(now + 59_000).changes.events.is_empty());
            assert_eq!(m.sweep(now + 60_000).changes.events, vec![Event::Unfulfillable(id)]);
        }
        let requester = m.account(&addr(1));
        assert_eq!(
            requester.balance.get(),
            requester_before.balance.get() + lock.get() + collateral.get()
        );
        m.check_ledger().unwrap();
    }
    let suspended = m.prover(&p10).unwrap().suspended_until;
    assert!(suspended > 0);
    let id = open_request(&mut m, 9, T0 + 300_000);
    let e = m.bid(p10, nonce(&m, p10), id, p10, Amount::new(1), T0 + 300_000).unwrap_err();
    assert!(matches!(e, MarketError::Suspended { .. }), "{e}");
}

#[test]
fn unexecutable_requests_close_with_a_penalty_to_the_treasury() {
    let mut m = market();
    let id = RequestId::from_bytes([1; 32]);
    m.request_proof(addr(1), nonce(&m, addr(1)), id, spec(1024, 5, T0 / 1000 + 60, 2), T0).unwrap();
    let lock = m.request(&id).unwrap().lock;
    let before = m.account(&addr(1)).balance;
    let outcome = m.record_execution(id, Err("assertion failed".into()), T0).unwrap();
    assert_eq!(outcome.changes.events, vec![Event::Unexecutable(id)]);
    assert_eq!(m.request(&id).unwrap().status, Status::Unfulfillable);
    let penalty = lock.get() / 100;
    assert_eq!(m.ledger().treasury.get(), penalty);
    assert_eq!(m.account(&addr(1)).balance.get(), before.get() + lock.get() - penalty);
    m.check_ledger().unwrap();
}

#[test]
fn request_fields_are_checked() {
    let m = market();
    let n = nonce(&m, addr(1));
    let id = RequestId::from_bytes([1; 32]);
    let now = T0 / 1000;
    let unknown = RequestSpec { program_id: vec![8; 32], ..spec(1, 1, now + 60, 1) };
    let cases = [
        (spec(1024, 5, now, 1), "deadline"),
        (spec(0, 5, now + 60, 1), "gas_limit"),
        (spec(1024, 5, now + 60, 60), "min_auction_period"),
        (unknown, "not registered"),
        (spec(u64::MAX, u128::MAX / 2, now + 60, 1), "overflow"),
        (spec(1 << 20, 1_000_000, now + 60, 1), "spendable"),
    ];
    for (spec, expected) in cases {
        let e = m.clone().request_proof(addr(1), n, id, spec, T0).unwrap_err().to_string();
        assert!(e.contains(expected), "{expected:?} not in {e:?}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Faucet { who: u8, amount: u64 },
    Request { gas: u64, price: u8, period: u8, deadline: u8 },
    Execute { which: u8, ok: bool, pgus: u64 },
    Bid { which: u8, prover: u8, price: u8 },
    Settle { which: u8 },
    Fulfill { which: u8, prover: u8 },
    Submit { which: u8, prover: u8 },
    Verdict { which: u8, accept: bool },
    Fail { which: u8, prover: u8 },
    Cancel { which: u8 },
    Stake { prover: u8, amount: u64, add: bool },
    Tick { secs: u8 },
    StaleNonce { who: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3u8, 0..2_000_000u64).prop_map(|(who, amount)| Op::Faucet { who, amount }),
        (1..4_096u64, 0..20u8, 0..5u8, 0..30u8).prop_map(|(gas, price, period, deadline)| {
            Op::Request { gas, price, period, deadline }
        }),
        (0..8u8, any::<bool>(), 1..4_096u64).prop_map(|(which, ok, pgus)| Op::Execute {
            which,
            ok,
            pgus
        }),
        (0..8u8, 0..3u8, 0..20u8).prop_map(|(which, prover, price)| Op::Bid {
            which,
            prover,
            price
        }),
        (0..8u8).prop_map(|which| Op::Settle { which }),
        (0..8u8, 0..3u8).prop_map(|(which, prover)| Op::Fulfill { which, prover }),
        (0..8u8, 0..3u8).prop_map(|(which, prover)| Op::Submit { which, prover }),
        (0..8u8, any::<bool>()).prop_map(|(which, accept)| Op::Verdict { which, accept }),
        (0..8u8, 0..3u8).prop_map(|(which, prover)| Op::Fail { which, prover }),
        (0..8u8).prop_map(|which| Op::Cancel { which }),
        (0..3u8, 0..200_000u64, any::<bool>()).prop_map(|(prover, amount, add)| Op::Stake {
            prover,
            amount,
            add
        }),
        (0..20u8).prop_map(|secs| Op::Tick { secs }),
        (0..3u8).prop_map(|who| Op::StaleNonce { who }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Balances + locks + stakes + treasury = deposits after every step, locks and collateral
    /// match the open requests, nothing goes negative, and a refused operation changes nothing.
    #[test]
    fn the_ledger_balances_after_every_operation(ops in proptest::collection::vec(op(), 1..60)) {
        let mut m = market();
        let mut now = T0;
        let mut ids: Vec<RequestId> = Vec::new();
        let requester = addr(1);
        let provers = [addr(10), addr(11), addr(12)];
        for (step, op) in ops.into_iter().enumerate() {
            let pick = |which: u8| ids.get(usize::from(which) % ids.len().max(1)).copied()
                .unwrap_or_else(|| RequestId::from_bytes([0xee; 32]));
            let before = m.clone();
            let result = match op.clone() {
                Op::Faucet { who, amount } => {
                    let a = [requester, addr(10), addr(11)][usize::from(who)];
                    m.deposit(a, nonce(&m, a), a, Amount::new(u128::from(amount)))
                }
                Op::Request { gas, price, period, deadline } => {
                    let id = RequestId::from_bytes([(step % 256) as u8; 32]);
                    let s = spec(gas, u128::from(price), now / 1000 + u64::from(deadline), u64::from(period));
                    let r = m.request_proof(requester, nonce(&m, requester), id, s, now);
                    if r.is_ok() { ids.push(id); }
                    r
                }
                Op::Execute { which, ok, pgus } => {
                    let id = pick(which);
                    let result = if ok { Ok((pgus, vec![1])) } else { Err("failed".to_string()) };
                    // The executor never reports more PGUs than the gas limit.
                    let result = result.map(|(p, o)| (p.min(m.request(&id).map_or(p, |r| r.spec.gas_limit)), o));
                    m.record_execution(id, result, now)
                }
                Op::Bid { which, prover, price } => {
                    let p = provers[usize::from(prover)];
                    m.bid(p, nonce(&m, p), pick(which), p, Amount::new(u128::from(price)), now)
                }
                Op::Settle { which } => Ok(m.settle(pick(which), now)),
                Op::Fulfill { which, prover } => {
                    let p = provers[usize::from(prover)];
                    m.fulfill(p, nonce(&m, p), pick(which), p, ArtifactId::of(b"proof"), now)
                }
                Op::Submit { which, prover } => {
                    let p = provers[usize::from(prover)];
                    m.submit_proof(p, nonce(&m, p), pick(which), p, ArtifactId::of(b"proof"), now)
                }
                Op::Verdict { which, accept: true } => m.accept_proof(pick(which), now),
                Op::Verdict { which, accept: false } => m.reject_proof(pick(which), "bad", now),
                Op::Fail { which, prover } => {
                    let p = provers[usize::from(prover)];
                    m.fail(p, nonce(&m, p), pick(which), p, "gave up", now)
                }
                Op::Cancel { which } => m.cancel(requester, nonce(&m, requester), pick(which), now),
                Op::Stake { prover, amount, add } => {
                    let p = provers[usize::from(prover)];
                    m.change_stake(p, nonce(&m, p), Amount::new(u128::from(amount)), add)
                }
                Op::Tick { secs } => {
                    now += u64::from(secs) * 1000;
                    Ok(m.sweep(now))
                }
                Op::StaleNonce { who } => {
                    let a = [requester, addr(10), addr(11)][usize::from(who)];
                    m.deposit(a, nonce(&m, a) + 1, a, Amount::new(1))
                }
            };
            if result.is_err() {
                prop_assert_eq!(&m, &before, "refused {:?} changed the market", op);
            }
            prop_assert!(m.check_ledger().is_ok(), "after {:?}: {:?}", op, m.check_ledger());
        }
    }
}

#[test]
fn the_recent_price_is_the_mean_of_open_assignments_and_the_owner_of_an_operator_is_found() {
    let mut m = market();
    assert_eq!(m.recent_price(), None, "nothing assigned");
    let id = assigned_request(&mut m, 1);
    open_request(&mut m, 2, T0);
    assert_eq!(m.recent_price(), Some(Amount::new(3)), "only the assigned request counts");
    let p10 = addr(10);
    m.fail(p10, nonce(&m, p10), id, p10, "gave up", T0 + 3_000).unwrap();
    assert_eq!(m.recent_price(), None, "closed requests are not read");
    assert_eq!(m.owner_of(&p10), Some(p10));
    assert_eq!(m.owner_of(&addr(99)), None);
}
