//! Our default node on the simulated clock: the node's own decision core
//! ([`provernet_node::core::NodeCore`], set up by [`core_config`] as the live node sets itself
//! up) driven here as the live bidder and prover drive it, with the steps' effects replaced by
//! the time model:
//!
//! - an executed request is offered to the core at once (the event stream, no polling); a bid
//!   reaches the network after a network call's latency;
//! - an assignment is read (two calls' latency) and handed to the core as a job;
//! - the core's Fetch, Execute, Prove and Submit take the time model's seconds; a proof is
//!   abandoned at the `until` the core gives (the deadline); GiveUp is FailFulfillment;
//! - what the network paid on fulfilment goes back to the core, and each proof's time to its
//!   self-calibration.
//!
//! Prefetch permits, slots (earliest deadline first), the queue's seconds and give-up are the
//! core's: nothing of the node's pipeline is written here.

use std::collections::BTreeMap;

use provernet_node::{
    Resources,
    config::{BiddingConfig, ProvingConfig, Sp1Config},
    context::core_config,
    core::{
        Action, Event as CoreEvent, JobState, NodeCore, Offer, PoolCapacity, ProofTiming,
        VersionCapacity, Work,
    },
};
use provernet_types::Amount;
use provernet_zkvm::{ProofMode, miden::BYTES_PER_PGU};

use super::{
    engine::{Ctx, End, Event, NodeModel, Step, ZKVM_VERSION},
    timing,
};

/// Our default node.
pub struct OurNode {
    index: usize,
    core: NodeCore,
    /// Largest job the machine's proving memory holds, PGUs.
    max_pgus: u64,
    /// Jobs holding a slot: request → simulated ms since, and the proofs running then.
    proving: BTreeMap<usize, (u64, usize)>,
    /// Whether proofs' times reach the core's self-calibration (as on the live node).
    calibrate: bool,
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
        let resources = Resources {
            cores: 2,
            memory_bytes: memory_gib << 30,
            cores_per_slot: proving.cores_per_slot,
            gpus: 0,
            gpu_memory_bytes: 0,
        };
        let versions = [ZKVM_VERSION.to_owned()];
        let config = core_config(bidding, proving, &Sp1Config::default(), &versions, resources);
        Self {
            index,
            core: NodeCore::new(config),
            max_pgus: resources.memory_bytes / BYTES_PER_PGU,
            proving: BTreeMap::new(),
            calibrate: true,
        }
    }

    /// The same node as the coordinator of a proving pool of `workers` machines like its own
    /// (each `pgus_per_second`, one slot per its cores, its memory): the core bids and
    /// schedules by the pool, as the live node does from its live workers. Calibration is the
    /// workers' own, so none reaches the core.
    pub fn with_pool(mut self, workers: usize, pgus_per_second: f64, memory_gib: u64) -> Self {
        let slots_per_machine = self.core.slots();
        let memory = memory_gib << 30;
        let version = VersionCapacity {
            workers,
            largest_memory_bytes: memory,
            pgus_per_second: pgus_per_second * workers as f64,
        };
        self.core.set_pool(PoolCapacity {
            workers,
            slots: slots_per_machine * workers,
            memory_bytes: memory * workers as u64,
            versions: [(ZKVM_VERSION.to_owned(), version)].into_iter().collect(),
        });
        Self { calibrate: false, ..self }
    }

    /// The same node with self-calibration off: it keeps the configured throughput whatever
    /// its proofs show (how every node was before it learnt its own speed).
    pub fn without_calibration(self) -> Self {
        Self { calibrate: false, ..self }
    }

    /// Request `req`'s work as the Miden backend measures it.
    fn work(&self, ctx: &Ctx, req: usize) -> Work {
        let pgus = ctx.plan(req).pgus;
        Work {
            version: ZKVM_VERSION.into(),
            mode: ProofMode::Default,
            program: None,
            pgus,
            memory: pgus.saturating_mul(BYTES_PER_PGU),
            gpu_memory: 0,
            max_pgus: self.max_pgus,
        }
    }

    fn step(&self, ctx: &mut Ctx, req: usize, secs: f64, step: Step) {
        ctx.after(secs, Event::Step { node: self.index, req, step });
    }

    /// Feeds `event` to the core at the simulated time and performs what it decides.
    fn feed(&mut self, ctx: &mut Ctx, event: CoreEvent) {
        let actions = self.core.handle(event, ctx.now_secs());
        for action in actions {
            self.perform(ctx, action);
        }
    }

    /// The slot `req` held since it started proving is released now.
    fn end_proof(&mut self, ctx: &mut Ctx, req: usize) {
        if let Some((since, _)) = self.proving.remove(&req) {
            ctx.record_busy(self.index, since);
        }
    }

    fn perform(&mut self, ctx: &mut Ctx, action: Action) {
        let Some(req) = action.job().or(match &action {
            Action::Bid { id, .. } => Some(*id),
            _ => None,
        }) else {
            return;
        };
        let Some(req) = ctx.req(&req) else { return };
        let plan = ctx.plan(req).clone();
        match action {
            Action::Bid { price, .. } => {
                let latency = ctx.latency_secs(self.index, req, 1);
                ctx.after(latency, Event::Bid { node: self.index, req, price: price.get() });
            }
            Action::Fetch { .. } => {
                self.step(ctx, req, timing::fetch_secs(plan.noise), Step::Fetched)
            }
            Action::Execute { .. } => {
                self.step(ctx, req, timing::execute_secs(plan.pgus), Step::Executed);
            }
            Action::Prove { until, .. } => {
                let running = self.proving.len() + 1;
                self.proving.insert(req, (ctx.now_ms(), running));
                let secs = timing::prove_secs(plan.pgus, plan.noise);
                let left = until.saturating_sub(ctx.now_secs()) as f64;
                if secs > left {
                    self.step(ctx, req, left, Step::ProveAbort);
                } else {
                    self.step(ctx, req, secs, Step::Proved);
                }
            }
            Action::Submit { .. } => self.step(ctx, req, timing::SUBMIT_SECS, Step::Submitted),
            Action::GiveUp { reason, .. } => {
                self.end_proof(ctx, req);
                ctx.fail(self.index, req, &reason.to_string());
            }
            Action::Stop { .. } => self.end_proof(ctx, req),
            Action::Confirm { .. }
            | Action::Done { .. }
            | Action::Skip { .. }
            | Action::Resolved { .. } => {}
        }
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
            auction_end: record.auction_end,
            admitted: true,
        };
        let work = self.work(ctx, req);
        self.feed(ctx, CoreEvent::Offered { id: ctx.id(req), offer, work });
    }

    fn on_bid_refused(&mut self, ctx: &mut Ctx, req: usize) {
        self.feed(ctx, CoreEvent::BidRefused { id: ctx.id(req) });
    }

    fn on_assigned(&mut self, ctx: &mut Ctx, req: usize, won: bool) {
        let id = ctx.id(req);
        let bid = self.core.book().outstanding.contains_key(&id);
        self.feed(ctx, CoreEvent::Assigned { id, ours: won });
        if bid && won {
            // The assignment event, then ProofRequest to read it.
            let latency = ctx.latency_secs(self.index, req, 2) * 2.0;
            self.step(ctx, req, latency, Step::Start);
        }
    }

    fn on_closed(&mut self, ctx: &mut Ctx, req: usize) {
        let why = "unfulfillable".to_owned();
        self.feed(ctx, CoreEvent::Closed { id: ctx.id(req), why });
    }

    fn on_step(&mut self, ctx: &mut Ctx, req: usize, step: Step) {
        let id = ctx.id(req);
        let event = match step {
            Step::Start => CoreEvent::JobReceived {
                id,
                work: self.work(ctx, req),
                deadline: ctx.record(req).deadline,
                state: JobState::Assigned,
            },
            Step::Fetched => CoreEvent::Fetched { id },
            Step::Executed => CoreEvent::Executed { id },
            Step::Proved => {
                // Timed as the live prover times it: proving seconds, and the proofs that
                // shared the machine at its start and end.
                if let Some(&(since, at_start)) = self.proving.get(&req).filter(|_| self.calibrate)
                {
                    let timing = ProofTiming {
                        version: ZKVM_VERSION.into(),
                        mode: ProofMode::Default,
                        program: None,
                        pgus: ctx.plan(req).pgus,
                        secs: ctx.now_ms().saturating_sub(since) as f64 / 1000.0,
                        concurrency: (at_start + self.proving.len()) as f64 / 2.0,
                        peak_memory_bytes: None,
                    };
                    self.feed(ctx, CoreEvent::Measured(timing));
                }
                self.end_proof(ctx, req);
                CoreEvent::Proved { id }
            }
            Step::ProveAbort => {
                self.end_proof(ctx, req);
                CoreEvent::Failed { id, reason: "the deadline passed while proving".into() }
            }
            Step::Submitted => {
                if ctx.fulfill(self.index, req) {
                    let paid = match ctx.record(req).closed {
                        Some((_, End::Fulfilled(paid))) => paid,
                        _ => 0,
                    };
                    CoreEvent::Accepted { id, paid: Amount::new(paid) }
                } else {
                    CoreEvent::Failed { id, reason: "proof refused".into() }
                }
            }
        };
        self.feed(ctx, event);
    }
}
