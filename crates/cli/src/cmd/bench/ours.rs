//! Our default node on the simulated clock: the real bidder decision
//! ([`provernet_node::bidder::decide`] with [`CostPlus`]) and the real scheduler
//! ([`next_to_start`] over a [`ResourceManager`]), wired as `bidder/run.rs` and `prover/mod.rs`
//! wire them:
//!
//! - decides as soon as a request is executed (the event stream, no polling), with
//!   `committed_pgus` = PGUs of its outstanding bids + jobs won and not yet finished;
//! - each won job: wait for a prefetch permit (`proving.prefetch`), fetch, execute, release the
//!   permit, give up at once (FailFulfillment) if `now + estimate > deadline`, wait for a slot
//!   earliest deadline first, prove (abandoned when the deadline passes), submit;
//! - a request that closes stops its job (no report, as the real prover does).
//!
//! Fetch and execution of the next jobs overlap the proof holding the slot.

use std::collections::{BTreeMap, VecDeque};

use provernet_node::{
    ResourceManager, Resources,
    bidder::{CostPlus, NodeState, Offer, PricingStrategy, decide},
    config::{BiddingConfig, ProvingConfig},
    prover::slots::{Waiting, next_to_start},
};
use provernet_types::Amount;
use provernet_zkvm::miden::BYTES_PER_PGU;

use super::{
    engine::{Ctx, Event, NodeModel, Step, ZKVM_VERSION},
    timing,
};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for a prefetch permit.
    Queued,
    /// Fetching or executing, holding a permit.
    Preparing,
    /// Waiting for a slot.
    Waiting,
    /// Proving since the given simulated ms.
    Proving(u64),
    /// Submitting.
    Submitting,
}

/// Our default node.
pub struct OurNode {
    index: usize,
    state: NodeState,
    pricing: CostPlus,
    resources: ResourceManager,
    prefetch_free: usize,
    prefetch_queue: VecDeque<usize>,
    /// Outstanding bids: request → PGUs.
    outstanding: BTreeMap<usize, u64>,
    /// Jobs won and not finished: request → stage.
    jobs: BTreeMap<usize, Stage>,
    /// Jobs waiting for a slot, in arrival order.
    waiting: Vec<(Waiting, usize)>,
    seq: u64,
}

/// Memory a Miden proof of `pgus` holds (the backend's own figure).
fn memory(pgus: u64) -> u64 {
    pgus.saturating_mul(BYTES_PER_PGU)
}

impl OurNode {
    /// Node `index` on a 2-core machine with `memory_gib` for proving, configured as the
    /// defaults say but for its cost profile and calibrated throughput.
    pub fn new(
        index: usize,
        bidding: &BiddingConfig,
        proving: &ProvingConfig,
        memory_gib: u64,
    ) -> Self {
        let resources = ResourceManager::new(Resources {
            cores: 2,
            memory_bytes: memory_gib << 30,
            cores_per_slot: proving.cores_per_slot,
        });
        let max = resources.memory_bytes() / BYTES_PER_PGU;
        let cap = match bidding.committed_cap_pgus {
            0 => max.saturating_mul(8),
            cap => cap,
        };
        let state = NodeState {
            versions: vec![ZKVM_VERSION.into()],
            max_pgus: max,
            committed_pgus: 0,
            committed_cap: cap,
            queue_secs: 0.0,
            pgus_per_second: proving.pgus_per_second,
            safety_margin: bidding.safety_margin,
            overhead_secs: bidding.overhead_secs,
        };
        let pricing = CostPlus {
            cost_per_hour: bidding.cost_per_hour,
            pgus_per_second: proving.pgus_per_second,
            target_utilisation: bidding.target_utilisation,
            margin: bidding.margin,
            surcharge: bidding.surcharge,
        };
        Self {
            index,
            state,
            pricing,
            resources,
            prefetch_free: proving.prefetch.max(1),
            prefetch_queue: VecDeque::new(),
            outstanding: BTreeMap::new(),
            jobs: BTreeMap::new(),
            waiting: Vec::new(),
            seq: 0,
        }
    }

    fn committed(&self, ctx: &Ctx) -> u64 {
        self.outstanding.values().sum::<u64>()
            + self.jobs.keys().map(|r| ctx.plan(*r).pgus).sum::<u64>()
    }

    fn estimate_secs(&self, pgus: u64) -> f64 {
        pgus as f64 / self.state.pgus_per_second + self.state.overhead_secs
    }

    fn step(&self, ctx: &mut Ctx, req: usize, secs: f64, step: Step) {
        ctx.after(secs, Event::Step { node: self.index, req, step });
    }

    /// Takes a prefetch permit for `req` if one is free, and starts fetching.
    fn prepare(&mut self, ctx: &mut Ctx, req: usize) {
        if self.prefetch_free == 0 {
            self.prefetch_queue.push_back(req);
            return;
        }
        self.prefetch_free -= 1;
        self.jobs.insert(req, Stage::Preparing);
        let secs = timing::fetch_secs(ctx.plan(req).noise);
        self.step(ctx, req, secs, Step::Fetched);
    }

    /// A permit came back: the next queued job starts fetching.
    fn release_permit(&mut self, ctx: &mut Ctx) {
        self.prefetch_free += 1;
        while let Some(next) = self.prefetch_queue.pop_front() {
            if self.jobs.get(&next) == Some(&Stage::Queued) {
                self.prepare(ctx, next);
                break;
            }
        }
    }

    /// Starts waiting jobs while the earliest-deadline one fits (`slots::wake`).
    fn wake(&mut self, ctx: &mut Ctx) {
        loop {
            let jobs: Vec<Waiting> = self.waiting.iter().map(|(w, _)| *w).collect();
            let Some(i) = next_to_start(&jobs, &self.resources) else { return };
            let (job, req) = self.waiting.swap_remove(i);
            self.resources.start(job.memory);
            self.jobs.insert(req, Stage::Proving(ctx.now_ms()));
            let secs = timing::prove_secs(ctx.plan(req).pgus, ctx.plan(req).noise);
            let left = job.deadline.saturating_sub(ctx.now_secs()) as f64;
            if secs > left {
                self.step(ctx, req, left, Step::ProveAbort);
            } else {
                self.step(ctx, req, secs, Step::Proved);
            }
        }
    }

    /// Ends a proof that held the slot since `since`.
    fn free_slot(&mut self, ctx: &mut Ctx, req: usize, since: u64) {
        self.resources.finish(memory(ctx.plan(req).pgus));
        ctx.record_busy(self.index, since);
        self.wake(ctx);
    }
}

impl NodeModel for OurNode {
    fn on_executed(&mut self, ctx: &mut Ctx, req: usize) {
        let plan = ctx.plan(req);
        let record = ctx.record(req);
        let offer = Offer {
            zkvm_version: ZKVM_VERSION.into(),
            pgus: plan.pgus,
            max_price_per_pgu: Amount::new(plan.max_price_per_pgu),
            deadline: record.deadline,
            auction_end: record.auction_end.max(ctx.now_secs()),
            admitted: true,
        };
        let committed = self.committed(ctx);
        let state = NodeState {
            committed_pgus: committed,
            // One version: the queue's time is its PGUs at the calibrated throughput.
            queue_secs: committed as f64 / self.state.pgus_per_second,
            ..self.state.clone()
        };
        if let Ok(price) = decide(&offer, &state, &self.pricing as &dyn PricingStrategy) {
            self.outstanding.insert(req, plan.pgus);
            let latency = ctx.latency_secs(self.index, req, 1);
            ctx.after(latency, Event::Bid { node: self.index, req, price: price.get() });
        }
    }

    fn on_bid_refused(&mut self, _ctx: &mut Ctx, req: usize) {
        self.outstanding.remove(&req);
    }

    fn on_assigned(&mut self, ctx: &mut Ctx, req: usize, won: bool) {
        if self.outstanding.remove(&req).is_none() || !won {
            return;
        }
        self.jobs.insert(req, Stage::Queued);
        // The assignment event, then ProofRequest to read it.
        let latency = ctx.latency_secs(self.index, req, 2) * 2.0;
        self.step(ctx, req, latency, Step::Start);
    }

    fn on_closed(&mut self, ctx: &mut Ctx, req: usize) {
        self.outstanding.remove(&req);
        let Some(stage) = self.jobs.remove(&req) else { return };
        match stage {
            Stage::Preparing => self.release_permit(ctx),
            Stage::Waiting => self.waiting.retain(|(_, r)| *r != req),
            Stage::Proving(since) => self.free_slot(ctx, req, since),
            Stage::Queued | Stage::Submitting => {}
        }
    }

    fn on_step(&mut self, ctx: &mut Ctx, req: usize, step: Step) {
        let Some(&stage) = self.jobs.get(&req) else { return };
        let pgus = ctx.plan(req).pgus;
        match (step, stage) {
            (Step::Start, Stage::Queued) => self.prepare(ctx, req),
            (Step::Fetched, Stage::Preparing) => {
                self.step(ctx, req, timing::execute_secs(pgus), Step::Executed);
            }
            (Step::Executed, Stage::Preparing) => {
                self.release_permit(ctx);
                let deadline = ctx.record(req).deadline;
                if ctx.now_secs() as f64 + self.estimate_secs(pgus) > deadline as f64 {
                    self.jobs.remove(&req);
                    ctx.fail(self.index, req, "cannot make the deadline");
                    return;
                }
                self.seq += 1;
                self.waiting.push((Waiting { deadline, memory: memory(pgus), seq: self.seq }, req));
                self.jobs.insert(req, Stage::Waiting);
                self.wake(ctx);
            }
            (Step::Proved, Stage::Proving(since)) => {
                self.jobs.insert(req, Stage::Submitting);
                self.free_slot(ctx, req, since);
                self.step(ctx, req, timing::SUBMIT_SECS, Step::Submitted);
            }
            (Step::ProveAbort, Stage::Proving(since)) => {
                self.jobs.remove(&req);
                self.free_slot(ctx, req, since);
                ctx.fail(self.index, req, "the deadline passed while proving");
            }
            (Step::Submitted, Stage::Submitting) => {
                self.jobs.remove(&req);
                ctx.fulfill(self.index, req);
            }
            _ => {}
        }
    }
}
