//! The simulated market: a clock, an event queue, the real [`Market`] rules, and the nodes.
//!
//! ```text
//! Arrive ─RequestProof─▶ Executed (executor delay) ─▶ nodes decide/bid ─▶ Settle at the
//! auction's end (or the first bid after it) ─Assigned─▶ the winner's job steps ─▶ FulfillProof
//!                         Sweep at each deadline: unassigned → untaken, assigned → missed
//! ```
//!
//! Time is simulated milliseconds; the market sees unix milliseconds `T0_MS + now`. Events at the
//! same millisecond run in the order they were scheduled, so a run is a pure function of the
//! seed. Each market outcome becomes a [`Notice`] to the nodes, delivered after the event that
//! caused it.

use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap, HashMap, VecDeque},
};

use anyhow::Context as _;
use provernet_network::market::{
    Event as MarketEvent, Market, MarketConfig, Outcome, Program, Snapshot,
};
use provernet_types::{Address, Amount, ArtifactId, RequestId, RequestSpec};

use super::{timing, workload::Planned};

/// The market's clock at simulated time 0, unix milliseconds (a whole second).
pub const T0_MS: u64 = 1_700_000_000_000;
/// The zkvm version every simulated request and node uses.
pub const ZKVM_VERSION: &str = "miden-0.23";
/// The network executor's delay before it publishes a request's PGUs, seconds (plus execution).
const EXECUTOR_DELAY_SECS: f64 = 0.08;
/// Every prover's stake.
const STAKE: u128 = 100_000_000_000_000;

/// Something due at a simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// Request `0` arrives.
    Arrive(usize),
    /// The executor publishes request `0`'s PGUs.
    Executed(usize),
    /// Request `0`'s auction period ends.
    Settle(usize),
    /// A deadline second: the network sweeps what is due.
    Sweep,
    /// A node's bid reaches the network.
    Bid {
        /// The node.
        node: usize,
        /// The request.
        req: usize,
        /// Price per PGU.
        price: u128,
    },
    /// A step of a node's job ends.
    Step {
        /// The node.
        node: usize,
        /// The request.
        req: usize,
        /// The step.
        step: Step,
    },
    /// A polling node's timer.
    Poll(usize),
}

/// A step of a job on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The node has read the assignment.
    Start,
    /// Artifacts fetched.
    Fetched,
    /// The node's own execution done.
    Executed,
    /// The proof is done.
    Proved,
    /// The deadline passed while proving: the proof is abandoned.
    ProveAbort,
    /// FulfillProof answered.
    Submitted,
}

/// What the nodes hear of the market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Request `0` is executed and open for bids.
    Executed(usize),
    /// Request `req` was assigned to node `winner`.
    Assigned {
        /// The request.
        req: usize,
        /// The winning node.
        winner: usize,
    },
    /// Request `0` closed without a proof.
    Closed(usize),
    /// The network refused `node`'s bid on `req`.
    BidRefused {
        /// The node.
        node: usize,
        /// The request.
        req: usize,
    },
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Proven in time; the requester paid this.
    Fulfilled(u128),
    /// Assigned, but no proof was accepted by the deadline.
    Missed,
    /// Nobody was assigned before the deadline.
    Untaken,
}

/// One request's life, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Simulated ms of arrival.
    pub created_ms: u64,
    /// Its PGUs.
    pub pgus: u64,
    /// Unix seconds of its auction's end.
    pub auction_end: u64,
    /// Unix seconds of its deadline.
    pub deadline: u64,
    /// The winner and when, simulated ms.
    pub assigned: Option<(usize, u64)>,
    /// How and when it closed, simulated ms.
    pub closed: Option<(u64, End)>,
}

/// A simulated node's behaviour: its reactions to the market and to its own timers.
pub trait NodeModel {
    /// Called once before the first event.
    fn start(&mut self, _ctx: &mut Ctx) {}
    /// A request became open for bids.
    fn on_executed(&mut self, _ctx: &mut Ctx, _req: usize) {}
    /// A request was assigned (`won`: to this node).
    fn on_assigned(&mut self, _ctx: &mut Ctx, _req: usize, _won: bool) {}
    /// A request closed without a proof.
    fn on_closed(&mut self, _ctx: &mut Ctx, _req: usize) {}
    /// The network refused this node's bid.
    fn on_bid_refused(&mut self, _ctx: &mut Ctx, _req: usize) {}
    /// A step of one of this node's jobs ended.
    fn on_step(&mut self, _ctx: &mut Ctx, _req: usize, _step: Step) {}
    /// This node's poll timer fired.
    fn on_poll(&mut self, _ctx: &mut Ctx) {}
}

/// Everything but the nodes: the clock, the queue, the market and the records.
pub struct Ctx {
    now_ms: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    market: Market,
    plan: Vec<Planned>,
    ids: Vec<RequestId>,
    index: HashMap<RequestId, usize>,
    addresses: Vec<Address>,
    by_address: HashMap<Address, usize>,
    requester: Address,
    notices: VecDeque<Notice>,
    /// Executed requests still open for bids, oldest first.
    open: BTreeSet<usize>,
    sweeps: BTreeSet<u64>,
    closed: usize,
    records: Vec<Record>,
    busy: Vec<Vec<(u64, u64)>>,
    seed: u64,
}

/// What a finished simulation leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SimResult {
    /// Every request's life, in order of arrival.
    pub records: Vec<Record>,
    /// Each node's proving intervals, simulated ms.
    pub busy: Vec<Vec<(u64, u64)>>,
    /// Simulated ms at which the last request closed.
    pub end_ms: u64,
}

fn address(n: usize, tag: u8) -> Address {
    let mut bytes = [tag; 20];
    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
    Address::from_bytes(bytes)
}

fn mix(mut x: u64) -> u64 {
    // splitmix64: a fixed, seedable hash for per-(node, request) draws.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Ctx {
    fn new(plan: Vec<Planned>, nodes: usize, seed: u64) -> anyhow::Result<Self> {
        let config = MarketConfig {
            faucet_limit: Some(Amount::new(u128::MAX / 4)),
            ..MarketConfig::default()
        };
        let mut market = Market::new(config, Snapshot::default());
        let requester = address(0, 0xEE);
        market.deposit(requester, 0, requester, Amount::new(u128::MAX / 8))?;
        let program = Program {
            program_id: vec![7; 32],
            name: "sim".into(),
            zkvm_version: ZKVM_VERSION.into(),
            artifact_id: ArtifactId::of(b"sim program"),
            registered_by: requester,
            registered_at: T0_MS / 1000,
            sdk_hash: None,
        };
        market.register_program(requester, 1, program)?;
        let addresses: Vec<Address> = (0..nodes).map(|n| address(n + 1, 0x11)).collect();
        for a in &addresses {
            market.deposit(*a, 0, *a, Amount::new(STAKE * 2))?;
            market.register_prover(*a, 1, Amount::new(STAKE), None, T0_MS)?;
        }
        let ids: Vec<RequestId> = (0..plan.len())
            .map(|i| {
                let mut bytes = [0u8; 32];
                bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
                RequestId::from_bytes(bytes)
            })
            .collect();
        let mut ctx = Self {
            now_ms: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            market,
            index: ids.iter().enumerate().map(|(i, id)| (*id, i)).collect(),
            ids,
            by_address: addresses.iter().enumerate().map(|(i, a)| (*a, i)).collect(),
            addresses,
            requester,
            notices: VecDeque::new(),
            open: BTreeSet::new(),
            sweeps: BTreeSet::new(),
            closed: 0,
            records: Vec::with_capacity(plan.len()),
            busy: vec![Vec::new(); nodes],
            plan,
            seed,
        };
        for i in 0..ctx.plan.len() {
            ctx.at(ctx.plan[i].arrive_ms, Event::Arrive(i));
        }
        Ok(ctx)
    }

    /// Simulated milliseconds now.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Unix seconds now, as the market and the node's clock see them.
    pub fn now_secs(&self) -> u64 {
        (T0_MS + self.now_ms) / 1000
    }

    /// The planned request `req`.
    pub fn plan(&self, req: usize) -> &Planned {
        &self.plan[req]
    }

    /// The network's id of request `req`.
    pub fn id(&self, req: usize) -> RequestId {
        self.ids[req]
    }

    /// The request with the network's id `id`.
    pub fn req(&self, id: &RequestId) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The record of request `req` (its deadline and auction end).
    pub fn record(&self, req: usize) -> &Record {
        &self.records[req]
    }

    /// Executed requests still open for bids, oldest first.
    pub fn open(&self) -> impl Iterator<Item = usize> + '_ {
        self.open.iter().copied()
    }

    /// The node the request is assigned to, if any.
    pub fn winner(&self, req: usize) -> Option<usize> {
        self.records.get(req).and_then(|r| r.assigned).map(|(n, _)| n)
    }

    /// Schedules `event` at simulated `ms`.
    pub fn at(&mut self, ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((ms, self.seq, event)));
    }

    /// Schedules `event` `secs` from now.
    pub fn after(&mut self, secs: f64, event: Event) {
        self.at(self.now_ms + timing::ms(secs), event);
    }

    /// A fixed pseudo-random draw in `[0, 1)` for (node, request, salt): the same in every run.
    pub fn draw(&self, node: usize, req: usize, salt: u64) -> f64 {
        let h = mix(self.seed ^ mix(((node as u64) << 40) ^ ((req as u64) << 8) ^ salt));
        (h >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Network latency of one call from `node` about `req`, seconds (20–60 ms).
    pub fn latency_secs(&self, node: usize, req: usize, salt: u64) -> f64 {
        0.02 + 0.04 * self.draw(node, req, salt)
    }

    /// Records that `node` proved from `start_ms` to now.
    pub fn record_busy(&mut self, node: usize, start_ms: u64) {
        self.busy[node].push((start_ms, self.now_ms));
    }

    /// `node` sends FulfillProof for `req` now; whether the network accepted it.
    pub fn fulfill(&mut self, node: usize, req: usize) -> bool {
        let prover = self.addresses[node];
        let nonce = self.market.account(&prover).nonce;
        let proof = ArtifactId::of(&(req as u64).to_be_bytes());
        let now = T0_MS + self.now_ms;
        match self.market.fulfill(prover, nonce, self.ids[req], prover, proof, now) {
            Ok(outcome) => {
                self.apply(outcome);
                true
            }
            Err(_) => false,
        }
    }

    /// `node` gives `req` up (FailFulfillment) now.
    pub fn fail(&mut self, node: usize, req: usize, reason: &str) {
        let prover = self.addresses[node];
        let nonce = self.market.account(&prover).nonce;
        let now = T0_MS + self.now_ms;
        if let Ok(outcome) = self.market.fail(prover, nonce, self.ids[req], prover, reason, now) {
            self.apply(outcome);
        }
    }

    fn bid(&mut self, node: usize, req: usize, price: u128) {
        let prover = self.addresses[node];
        let nonce = self.market.account(&prover).nonce;
        let now = T0_MS + self.now_ms;
        match self.market.bid(prover, nonce, self.ids[req], prover, Amount::new(price), now) {
            Ok(outcome) => self.apply(outcome),
            Err(_) => self.notices.push_back(Notice::BidRefused { node, req }),
        }
    }

    fn arrive(&mut self, i: usize) -> anyhow::Result<()> {
        let p = &self.plan[i];
        let created = self.now_secs();
        let auction_end = created + super::workload::AUCTION_PERIOD_SECS;
        let deadline = auction_end + p.deadline_after_auction_secs;
        let spec = RequestSpec {
            program_id: vec![7; 32],
            zkvm_version: ZKVM_VERSION.into(),
            program_artifact_id: ArtifactId::of(b"sim program"),
            inputs_artifact_id: ArtifactId::of(&(i as u64).to_be_bytes()),
            inputs_private: false,
            deadline,
            gas_limit: p.gas_limit,
            max_price_per_pgu: Amount::new(p.max_price_per_pgu),
            base_fee: Amount::ZERO,
            min_auction_period: super::workload::AUCTION_PERIOD_SECS,
            whitelist: Vec::new(),
            expected_outputs_hash: None,
            proof_mode: String::new(),
        };
        let pgus = p.pgus;
        self.records.push(Record {
            created_ms: self.now_ms,
            pgus,
            auction_end,
            deadline,
            assigned: None,
            closed: None,
        });
        let nonce = self.market.account(&self.requester).nonce;
        let outcome = self
            .market
            .request_proof(self.requester, nonce, self.ids[i], spec, T0_MS + self.now_ms)
            .with_context(|| format!("simulated request {i} refused"))?;
        self.apply(outcome);
        self.after(EXECUTOR_DELAY_SECS + timing::execute_secs(pgus), Event::Executed(i));
        self.at(auction_end * 1000 - T0_MS, Event::Settle(i));
        if self.sweeps.insert(deadline) {
            self.at(deadline * 1000 - T0_MS, Event::Sweep);
        }
        Ok(())
    }

    fn apply(&mut self, outcome: Outcome) {
        for event in outcome.changes.events {
            let Some(&i) = self.index.get(&event.request_id()) else { continue };
            let request = self.market.request(&event.request_id());
            match event {
                MarketEvent::Executed(_) => {
                    self.open.insert(i);
                    self.notices.push_back(Notice::Executed(i));
                }
                MarketEvent::Assigned(_) => {
                    let prover = request.and_then(|r| r.assignment.as_ref()).map(|a| a.prover);
                    let Some(&winner) = prover.and_then(|p| self.by_address.get(&p)) else {
                        continue;
                    };
                    self.open.remove(&i);
                    self.records[i].assigned = Some((winner, self.now_ms));
                    self.notices.push_back(Notice::Assigned { req: i, winner });
                }
                MarketEvent::Fulfilled(_) => {
                    let paid = request.map_or(0, |r| r.paid.get());
                    self.records[i].closed = Some((self.now_ms, End::Fulfilled(paid)));
                    self.closed += 1;
                }
                MarketEvent::Unfulfillable(_) | MarketEvent::Unexecutable(_) => {
                    self.open.remove(&i);
                    let end =
                        if self.records[i].assigned.is_some() { End::Missed } else { End::Untaken };
                    self.records[i].closed = Some((self.now_ms, end));
                    self.closed += 1;
                    self.notices.push_back(Notice::Closed(i));
                }
                MarketEvent::Cancelled(_)
                | MarketEvent::Created(_)
                | MarketEvent::ProofSubmitted(_)
                | MarketEvent::ProofRejected(_) => {}
            }
        }
    }
}

/// Runs the market on `plan` with `nodes` until every request has closed.
///
/// # Errors
/// A simulated request the market refuses (a bug in the workload).
pub fn run(
    plan: Vec<Planned>,
    mut nodes: Vec<Box<dyn NodeModel>>,
    seed: u64,
) -> anyhow::Result<SimResult> {
    let total = plan.len();
    let mut ctx = Ctx::new(plan, nodes.len(), seed)?;
    for node in &mut nodes {
        node.start(&mut ctx);
    }
    while ctx.closed < total {
        let Some(Reverse((at, _, event))) = ctx.queue.pop() else { break };
        ctx.now_ms = at;
        match event {
            Event::Arrive(i) => ctx.arrive(i)?,
            Event::Executed(i) => {
                let pgus = ctx.plan[i].pgus;
                let outcome =
                    ctx.market.record_execution(ctx.ids[i], Ok((pgus, Vec::new())), T0_MS + at)?;
                ctx.apply(outcome);
            }
            Event::Settle(i) => {
                let outcome = ctx.market.settle(ctx.ids[i], T0_MS + at);
                ctx.apply(outcome);
            }
            Event::Sweep => {
                let outcome = ctx.market.sweep(T0_MS + at);
                ctx.apply(outcome);
            }
            Event::Bid { node, req, price } => ctx.bid(node, req, price),
            Event::Step { node, req, step } => nodes[node].on_step(&mut ctx, req, step),
            Event::Poll(node) => nodes[node].on_poll(&mut ctx),
        }
        while let Some(notice) = ctx.notices.pop_front() {
            match notice {
                Notice::Executed(req) => {
                    nodes.iter_mut().for_each(|n| n.on_executed(&mut ctx, req))
                }
                Notice::Assigned { req, winner } => {
                    for (i, n) in nodes.iter_mut().enumerate() {
                        n.on_assigned(&mut ctx, req, i == winner);
                    }
                }
                Notice::Closed(req) => nodes.iter_mut().for_each(|n| n.on_closed(&mut ctx, req)),
                Notice::BidRefused { node, req } => nodes[node].on_bid_refused(&mut ctx, req),
            }
        }
    }
    Ok(SimResult { records: ctx.records, busy: ctx.busy, end_ms: ctx.now_ms })
}
