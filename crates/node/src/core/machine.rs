//! [`NodeCore`]: the node's state and its one transition function, `(state, event, now) →
//! actions`.

use std::collections::{BTreeMap, VecDeque};

use provernet_types::{Amount, RequestId};
use provernet_zkvm::{ProgramId, ProofMode};

use super::{
    Action, BidOutcome, Book, Calibration, CalibrationKey, Confirmation, CoreConfig, Estimate,
    Event, GiveUp, JobCost, JobState, MemoryUse, NodeState, Offer, PoolCapacity, PricingStrategy,
    Skip, Throughput, VersionCalibration, VersionProfile, Waiting, Work, decide, next_to_start,
};
use crate::ResourceManager;

/// Each version's throughput as its profile gives it.
fn configured_rates(profiles: &BTreeMap<String, VersionProfile>) -> BTreeMap<String, f64> {
    profiles.iter().map(|(version, p)| (version.clone(), p.pgus_per_second)).collect()
}

/// How long a decision is remembered (longer than any auction), seconds.
const DECISION_HORIZON_SECS: u64 = 3_600;
/// Decisions kept before old ones are pruned.
const DECISIONS_KEPT: usize = 10_000;

/// Where a job the prover holds stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    /// Waiting for a prefetch permit.
    Queued,
    /// Fetching or executing, holding a permit.
    Preparing,
    /// Resumed after execution: loading its files, no permit needed.
    Loading,
    /// Waiting for a slot.
    Waiting,
    /// Proving in a slot.
    Proving,
    /// Sending its proof.
    Submitting,
    /// Asking whether a previous run's proof landed.
    Confirming,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Track {
    stage: Stage,
    deadline: u64,
    cost: JobCost,
    /// Order of arrival in the slot queue.
    seq: u64,
}

/// The node's decisions: bidding book, prefetch permits, proving slots and job transitions.
/// No I/O and no clock of its own: every call says what time it is.
#[derive(Debug)]
pub struct NodeCore {
    config: CoreConfig,
    book: Book,
    resources: ResourceManager,
    tracks: BTreeMap<RequestId, Track>,
    prefetch_free: usize,
    prefetch_queue: VecDeque<RequestId>,
    seq: u64,
    /// Set by [`Event::ShuttingDown`]: a reload does not turn bidding back on.
    shutting_down: bool,
    /// Each version's throughput as configured (or as its pool's workers offer it), before
    /// self-calibration replaces it.
    configured: BTreeMap<String, f64>,
    /// What the node's proofs measured ([`Event::Measured`]).
    calibration: Calibration,
    /// What a proving pool's live workers offer, when the node coordinates one: it replaces
    /// the machine's resources and throughput.
    pool: Option<PoolCapacity>,
}

impl NodeCore {
    /// A core with nothing committed.
    pub fn new(config: CoreConfig) -> Self {
        let resources = ResourceManager::new(config.resources);
        let prefetch_free = config.prefetch.max(1);
        let configured = configured_rates(&config.profiles);
        Self {
            config,
            book: Book::default(),
            resources,
            tracks: BTreeMap::new(),
            prefetch_free,
            prefetch_queue: VecDeque::new(),
            seq: 0,
            shutting_down: false,
            configured,
            calibration: Calibration::default(),
            pool: None,
        }
    }

    /// Takes the pricing, calibration and bidding limits of `config` (a reloaded node config)
    /// for the decisions from now on. The machine's resources and prefetch stay as they are,
    /// and so does what is already bid on or won.
    pub fn reconfigure(&mut self, config: CoreConfig) {
        let CoreConfig { profiles, bidding, safety_margin, committed_cap_pgus, .. } = config;
        self.configured = configured_rates(&profiles);
        self.config.profiles = profiles;
        self.config.bidding = bidding && !self.shutting_down;
        self.config.safety_margin = safety_margin;
        self.config.committed_cap_pgus = committed_cap_pgus;
        // What the pool's workers measured stands over the configured throughput.
        self.use_pool();
    }

    /// Bids and schedules by what a proving pool's live workers offer (`pool`, read again as
    /// workers come and go) instead of the machine's own resources: slots and memory are the
    /// workers' in all, a job is estimated at one worker's mean throughput (it runs on one)
    /// while the queue ahead of it drains on every worker that proves its version (a node with
    /// three workers bids for about three times the work), the cost per PGU is one worker's,
    /// and the largest job the largest worker's memory. A version no live worker proves gets
    /// no bids. Returns the jobs that start in the slots it adds.
    pub fn set_pool(&mut self, pool: PoolCapacity) -> Vec<Action> {
        let resources = crate::Resources {
            cores: pool.slots.max(1) as u32,
            memory_bytes: pool.memory_bytes,
            cores_per_slot: 1,
            gpus: 0,
            gpu_memory_bytes: 0,
        };
        self.resources.set_resources(resources);
        self.pool = Some(pool);
        self.use_pool();
        let mut out = Vec::new();
        self.wake(&mut out);
        out
    }

    /// Prices and schedules each version a live worker proves at one worker's mean
    /// throughput.
    fn use_pool(&mut self) {
        let Some(pool) = &self.pool else { return };
        for (version, profile) in &mut self.config.profiles {
            let Some(offer) = pool.versions.get(version).filter(|v| v.pgus_per_second > 0.0) else {
                continue;
            };
            let mean = offer.pgus_per_second / offer.workers.max(1) as f64;
            profile.pgus_per_second = mean;
            profile.pricing = profile.pricing.recalibrated(mean);
        }
    }

    /// How many of `version`'s jobs run side by side, each at the profile's throughput: the
    /// pool's workers that prove it; one machine alone.
    fn machines(&self, version: &str) -> usize {
        self.pool.as_ref().map_or(1, |p| p.versions.get(version).map_or(1, |v| v.workers.max(1)))
    }

    /// What the pool's live workers offer, when the node coordinates one.
    pub fn pool(&self) -> Option<&PoolCapacity> {
        self.pool.as_ref()
    }

    /// The proving memory the largest job of `version` may take, bytes: the largest live
    /// worker's that proves it when the node coordinates a pool (none if no live worker does),
    /// the machine's otherwise.
    pub fn job_memory_limit(&self, version: &str) -> u64 {
        match &self.pool {
            Some(pool) => pool.versions.get(version).map_or(0, |v| v.largest_memory_bytes),
            None => self.resources.memory_bytes(),
        }
    }

    /// Takes an estimate kept from an earlier run (the job store's).
    pub fn restore_calibration(&mut self, key: CalibrationKey, estimate: Estimate) {
        self.calibration.restore(key, estimate);
    }

    /// What was measured under `key`, if any proof was.
    pub fn estimate(&self, key: &CalibrationKey) -> Option<Estimate> {
        self.calibration.get(key).copied()
    }

    /// Each version and mode's configured and measured figures, and which are in use.
    pub fn calibration(&self) -> Vec<VersionCalibration> {
        self.calibration.report(&self.configured)
    }

    /// The measured throughput the core goes by for `program` of `version` in `mode`: none
    /// while it has too few samples, or where a pool's workers prove the version (what they
    /// measured stands).
    fn measured(
        &self,
        version: &str,
        mode: ProofMode,
        program: Option<&ProgramId>,
    ) -> Option<Throughput> {
        let pooled = self.pool.as_ref().is_some_and(|p| p.versions.contains_key(version));
        if pooled { None } else { self.calibration.throughput(version, mode, program) }
    }

    /// The throughput in use for `work`, PGUs per second (whole machine): its program's
    /// measured one, else its version and mode's, else the profile's.
    fn rate(&self, work: &Work, profile: &VersionProfile) -> f64 {
        self.measured(&work.version, work.mode, work.program.as_ref())
            .map_or(profile.pgus_per_second, |t| t.pgus_per_second)
    }

    /// The memory estimate memory admission goes by for `program` of `version` in `mode`,
    /// once trusted (the backend's model until then).
    pub fn memory_estimate(
        &self,
        version: &str,
        mode: ProofMode,
        program: Option<&ProgramId>,
    ) -> Option<MemoryUse> {
        self.calibration.memory(version, mode, program)
    }

    /// Proving seconds `work` should take alone on the machine, at the throughput in use;
    /// none for a version it does not prove.
    pub fn proving_secs(&self, work: &Work) -> Option<f64> {
        let profile = self.config.profiles.get(&work.version)?;
        Some(work.pgus as f64 / self.rate(work, profile).max(f64::MIN_POSITIVE))
    }

    /// The bidding book.
    pub fn book(&self) -> &Book {
        &self.book
    }

    /// Proving slots in all.
    pub fn slots(&self) -> usize {
        self.resources.slots()
    }

    /// Jobs holding a slot.
    pub fn proving(&self) -> usize {
        self.resources.running()
    }

    /// Jobs waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.tracks.values().filter(|t| t.stage == Stage::Waiting).count()
    }

    /// Whether the node is bidding.
    pub fn bidding(&self) -> bool {
        self.config.bidding
    }

    /// Jobs whose estimate, safety margin included, no longer fits before their deadline.
    pub fn at_risk(&self, now: u64) -> usize {
        let margin = 1.0 + self.config.safety_margin;
        self.tracks
            .values()
            .filter(|t| now as f64 + t.cost.secs * margin > t.deadline as f64)
            .count()
    }

    /// What `work` costs this node (a version it does not prove costs no time: its backend
    /// refuses it when the job starts).
    pub fn cost(&self, work: &Work) -> JobCost {
        let secs = self.config.profiles.get(&work.version).map_or(0.0, |p| {
            work.pgus as f64 / self.rate(work, p).max(f64::MIN_POSITIVE) + p.overhead(work.mode)
        });
        JobCost { pgus: work.pgus, memory: work.memory, gpu_memory: work.gpu_memory, secs }
    }

    /// Seconds of committed work ahead of a new job. One machine: all of it. A pool: the
    /// work not yet proving, drained by its workers side by side, plus, when no slot is left
    /// for the new job, the wait for the first proof running to end (at most the shortest of
    /// them): a proof running holds a worker of its own and delays only what waits for one.
    fn queue_secs(&self, machines: usize) -> f64 {
        let all = self.book.queue_secs();
        if self.pool.is_none() {
            return all;
        }
        let proving: Vec<f64> = self
            .tracks
            .values()
            .filter(|t| t.stage == Stage::Proving)
            .map(|t| t.cost.secs)
            .collect();
        let waiting =
            (self.book.jobs.len() + self.book.outstanding.len()).saturating_sub(proving.len());
        let free = self.resources.slots().saturating_sub(self.resources.running());
        let slot_wait = if free > waiting || proving.is_empty() {
            0.0
        } else {
            proving.iter().copied().fold(f64::INFINITY, f64::min)
        };
        let not_started = (all - proving.iter().sum::<f64>()).max(0.0);
        not_started / machines as f64 + slot_wait
    }

    /// The node as the bid decision sees it for `work` under `profile`.
    pub fn node_state(&self, work: &Work, profile: &VersionProfile) -> NodeState {
        // By default eight of the largest jobs per machine: a pool's workers each count.
        let machines = self.machines(&work.version);
        let cap = match self.config.committed_cap_pgus {
            0 => work.max_pgus.saturating_mul(8).saturating_mul(machines as u64),
            cap => cap,
        };
        NodeState {
            versions: self.config.profiles.keys().cloned().collect(),
            max_pgus: work.max_pgus,
            committed_pgus: self.book.committed_pgus(),
            committed_cap: cap,
            queue_secs: self.queue_secs(machines),
            pgus_per_second: self.rate(work, profile),
            // A node whose proofs vary keeps more in hand.
            safety_margin: self.config.safety_margin
                + self
                    .measured(&work.version, work.mode, work.program.as_ref())
                    .map_or(0.0, |t| t.extra_margin()),
            overhead_secs: profile.overhead(work.mode),
        }
    }

    /// Applies `event` at unix seconds `now`; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Offered { id, offer, work } => self.offered(id, offer, &work, now, &mut out),
            Event::Unreadable { id, skip, pgus } => {
                if self.decide_once(id, now) {
                    self.book.skipped += 1;
                    out.push(Action::Skip { id, pgus, skip });
                }
            }
            Event::BidRefused { id } => {
                self.book.outstanding.remove(&id);
            }
            Event::Assigned { id, ours } => {
                let outcome = if ours { BidOutcome::Won } else { BidOutcome::Lost };
                if let Some(cost) = self.resolve(id, outcome, &mut out)
                    && ours
                {
                    self.book.jobs.insert(id, cost);
                }
            }
            Event::Closed { id, why } => {
                self.resolve(id, BidOutcome::Expired, &mut out);
                // A proof on its way: its answer says how the job ends.
                let submitting = self.tracks.get(&id).map(|t| t.stage >= Stage::Submitting);
                match submitting {
                    Some(true) => {}
                    Some(false) => {
                        self.end(id, &mut out);
                        out.push(Action::Stop { id, why });
                    }
                    None => {
                        self.book.jobs.remove(&id);
                    }
                }
            }
            Event::JobReceived { id, work, deadline, state } => {
                self.received(id, &work, deadline, state, &mut out);
            }
            Event::Fetched { id } => match self.stage(&id) {
                Some(Stage::Preparing) => out.push(Action::Execute { id }),
                Some(Stage::Loading) => self.queue_for_slot(id, now, &mut out),
                _ => {}
            },
            Event::Executed { id } => {
                if self.stage(&id) == Some(Stage::Preparing) {
                    self.release_permit(&mut out);
                    self.queue_for_slot(id, now, &mut out);
                }
            }
            Event::Proved { id } => {
                if let Some(track) = self.tracks.get_mut(&id)
                    && track.stage == Stage::Proving
                {
                    track.stage = Stage::Submitting;
                    let (memory, gpu_memory) = (track.cost.memory, track.cost.gpu_memory);
                    self.resources.finish(memory, gpu_memory);
                    out.push(Action::Submit { id });
                    self.wake(&mut out);
                }
            }
            Event::Accepted { id, paid } => self.accepted(id, paid, &mut out),
            Event::Confirmed { id, status } => {
                if self.stage(&id) == Some(Stage::Confirming) {
                    match status {
                        Confirmation::Fulfilled(paid) => self.accepted(id, paid, &mut out),
                        Confirmation::Assigned => {
                            self.set_stage(id, Stage::Submitting);
                            out.push(Action::Submit { id });
                        }
                        Confirmation::Closed(why) => {
                            self.end(id, &mut out);
                            out.push(Action::Stop { id, why });
                        }
                    }
                }
            }
            Event::Failed { id, reason } => {
                if self.tracks.contains_key(&id) {
                    self.end(id, &mut out);
                    out.push(Action::GiveUp { id, reason: GiveUp::Step(reason) });
                }
            }
            Event::Dropped { id } => {
                if self.tracks.contains_key(&id) {
                    self.end(id, &mut out);
                }
            }
            Event::Measured(timing) => {
                self.calibration.observe(&timing);
            }
            Event::ShuttingDown => {
                self.shutting_down = true;
                self.config.bidding = false;
                let hopeless: Vec<RequestId> = self
                    .tracks
                    .iter()
                    .filter(|(_, t)| t.stage < Stage::Submitting)
                    .filter(|(_, t)| now as f64 + t.cost.secs > t.deadline as f64)
                    .map(|(id, _)| *id)
                    .collect();
                for id in hopeless {
                    self.end(id, &mut out);
                    out.push(Action::GiveUp { id, reason: GiveUp::ShuttingDown });
                }
            }
        }
        out
    }

    /// Marks `id` decided; false if it already was.
    fn decide_once(&mut self, id: RequestId, now: u64) -> bool {
        if !self.config.bidding || self.book.decided.contains_key(&id) {
            return false;
        }
        self.book.decided.insert(id, now);
        if self.book.decided.len() > DECISIONS_KEPT {
            self.book.prune(now, DECISION_HORIZON_SECS);
        }
        true
    }

    fn offered(
        &mut self,
        id: RequestId,
        offer: Offer,
        work: &Work,
        now: u64,
        out: &mut Vec<Action>,
    ) {
        if !self.decide_once(id, now) {
            return;
        }
        // An auction whose period is over settles on the first bid: it ends now.
        let offer = Offer { auction_end: offer.auction_end.max(now), ..offer };
        let decision = match self.config.profiles.get(&work.version) {
            None => Err(Skip::UnsupportedVersion(work.version.clone())),
            Some(profile) => {
                // Priced at the throughput in use: the measured one's cost per PGU.
                let measured = self.measured(&work.version, work.mode, work.program.as_ref());
                let recalibrated =
                    measured.map(|t| profile.pricing.recalibrated(t.pgus_per_second));
                let pricing: &dyn PricingStrategy =
                    recalibrated.as_deref().unwrap_or(profile.pricing.as_ref());
                decide(&offer, &self.node_state(work, profile), pricing)
            }
        };
        match decision {
            Ok(price) => {
                self.book.outstanding.insert(id, (self.cost(work), price));
                out.push(Action::Bid { id, price, pgus: work.pgus });
            }
            Err(skip) => {
                self.book.skipped += 1;
                out.push(Action::Skip { id, pgus: work.pgus, skip });
            }
        }
    }

    /// Resolves an open bid on `id`; returns its cost if there was one.
    fn resolve(
        &mut self,
        id: RequestId,
        outcome: BidOutcome,
        out: &mut Vec<Action>,
    ) -> Option<JobCost> {
        let (cost, price) = self.book.outstanding.remove(&id)?;
        match outcome {
            BidOutcome::Won => self.book.won += 1,
            BidOutcome::Lost => self.book.lost += 1,
            BidOutcome::Expired => self.book.expired += 1,
        }
        out.push(Action::Resolved { id, outcome, price, pgus: cost.pgus });
        Some(cost)
    }

    fn received(
        &mut self,
        id: RequestId,
        work: &Work,
        deadline: u64,
        state: JobState,
        out: &mut Vec<Action>,
    ) {
        if self.tracks.contains_key(&id) {
            return;
        }
        if state.is_final() {
            self.book.jobs.remove(&id);
            return;
        }
        let cost = self.cost(work);
        self.book.jobs.insert(id, cost);
        let stage = match state {
            JobState::Executed => Stage::Loading,
            JobState::Proved => Stage::Submitting,
            JobState::Submitted => Stage::Confirming,
            _ => Stage::Queued,
        };
        self.tracks.insert(id, Track { stage, deadline, cost, seq: 0 });
        match stage {
            Stage::Queued => {
                self.prefetch_queue.push_back(id);
                self.grant_permits(out);
            }
            Stage::Loading => out.push(Action::Fetch { id }),
            Stage::Submitting => out.push(Action::Submit { id }),
            Stage::Confirming => out.push(Action::Confirm { id }),
            _ => {}
        }
    }

    fn accepted(&mut self, id: RequestId, paid: Amount, out: &mut Vec<Action>) {
        if !self.tracks.contains_key(&id) {
            return;
        }
        self.end(id, out);
        self.book.earnings = self.book.earnings.checked_add(paid).unwrap_or(self.book.earnings);
        out.push(Action::Done { id });
    }

    fn stage(&self, id: &RequestId) -> Option<Stage> {
        self.tracks.get(id).map(|t| t.stage)
    }

    fn set_stage(&mut self, id: RequestId, stage: Stage) {
        if let Some(track) = self.tracks.get_mut(&id) {
            track.stage = stage;
        }
    }

    /// Hands free prefetch permits to queued jobs, first come first served.
    fn grant_permits(&mut self, out: &mut Vec<Action>) {
        while self.prefetch_free > 0 {
            let Some(id) = self.prefetch_queue.pop_front() else { return };
            if self.stage(&id) == Some(Stage::Queued) {
                self.prefetch_free -= 1;
                self.set_stage(id, Stage::Preparing);
                out.push(Action::Fetch { id });
            }
        }
    }

    fn release_permit(&mut self, out: &mut Vec<Action>) {
        self.prefetch_free += 1;
        self.grant_permits(out);
    }

    /// A prepared job waits for a slot, unless it can no longer make its deadline.
    fn queue_for_slot(&mut self, id: RequestId, now: u64, out: &mut Vec<Action>) {
        let Some(track) = self.tracks.get(&id).copied() else { return };
        if now as f64 + track.cost.secs > track.deadline as f64 {
            self.end(id, out);
            let reason = GiveUp::CannotMakeDeadline {
                needed_secs: track.cost.secs,
                left_secs: track.deadline.saturating_sub(now),
            };
            out.push(Action::GiveUp { id, reason });
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        if let Some(track) = self.tracks.get_mut(&id) {
            track.stage = Stage::Waiting;
            track.seq = seq;
        }
        self.wake(out);
    }

    /// Starts waiting jobs while the earliest-deadline one fits.
    fn wake(&mut self, out: &mut Vec<Action>) {
        loop {
            let waiting: Vec<(RequestId, Waiting)> = self
                .tracks
                .iter()
                .filter(|(_, t)| t.stage == Stage::Waiting)
                .map(|(id, t)| {
                    let (memory, gpu_memory) = (t.cost.memory, t.cost.gpu_memory);
                    (*id, Waiting { deadline: t.deadline, memory, gpu_memory, seq: t.seq })
                })
                .collect();
            let jobs: Vec<Waiting> = waiting.iter().map(|(_, w)| *w).collect();
            let Some(i) = next_to_start(&jobs, &self.resources) else { return };
            let (id, job) = waiting[i];
            self.resources.start(job.memory, job.gpu_memory);
            self.set_stage(id, Stage::Proving);
            out.push(Action::Prove { id, until: job.deadline });
        }
    }

    /// The job leaves the node: its permit, slot or place in a queue goes to the next.
    fn end(&mut self, id: RequestId, out: &mut Vec<Action>) {
        self.book.jobs.remove(&id);
        let Some(track) = self.tracks.remove(&id) else { return };
        match track.stage {
            Stage::Queued => self.prefetch_queue.retain(|q| *q != id),
            Stage::Preparing => self.release_permit(out),
            Stage::Proving => {
                self.resources.finish(track.cost.memory, track.cost.gpu_memory);
                self.wake(out);
            }
            Stage::Loading | Stage::Waiting | Stage::Submitting | Stage::Confirming => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use provernet_zkvm::ProofMode;

    use super::*;
    use crate::{
        Resources,
        core::{CostPlus, Event, PoolCapacity, ProofTiming},
    };

    const V: &str = "miden-0.23";
    const RATE: f64 = 10_000.0;
    const OVERHEAD: f64 = 1.0;

    fn core_with(prefetch: usize, cores: u32) -> NodeCore {
        NodeCore::new(config_with(prefetch, cores, 3_600_000_000, true))
    }

    fn config_with(prefetch: usize, cores: u32, cost_per_hour: u128, bidding: bool) -> CoreConfig {
        let pricing = Box::new(CostPlus {
            cost_per_hour: Amount::new(cost_per_hour),
            pgus_per_second: RATE,
            target_utilisation: 0.5,
            margin: 0.2,
            surcharge: 1.0,
        });
        let profile = VersionProfile {
            pgus_per_second: RATE,
            overhead_secs: OVERHEAD,
            compressed_overhead_secs: OVERHEAD,
            pricing,
        };
        CoreConfig {
            profiles: [(V.to_owned(), profile)].into_iter().collect(),
            bidding,
            safety_margin: 0.5,
            committed_cap_pgus: 0,
            prefetch,
            resources: Resources {
                cores,
                memory_bytes: 16 << 30,
                cores_per_slot: 1,
                gpus: 0,
                gpu_memory_bytes: 0,
            },
        }
    }

    fn id(n: u8) -> RequestId {
        RequestId::from_bytes([n; 32])
    }

    fn work(pgus: u64) -> Work {
        Work {
            version: V.into(),
            mode: ProofMode::Default,
            program: None,
            pgus,
            memory: pgus * 10_000,
            gpu_memory: 0,
            max_pgus: 1 << 20,
        }
    }

    fn offer(pgus: u64, deadline: u64) -> Offer {
        Offer {
            zkvm_version: V.into(),
            pgus,
            max_price_per_pgu: Amount::new(10_000),
            deadline,
            auction_end: 1_000,
            admitted: true,
        }
    }

    fn receive(core: &mut NodeCore, n: u8, deadline: u64, state: JobState) -> Vec<Action> {
        core.handle(Event::JobReceived { id: id(n), work: work(10_000), deadline, state }, 1_000)
    }

    #[test]
    fn the_queue_counts_each_jobs_overhead_and_a_request_is_decided_once() {
        let mut core = core_with(2, 1);
        let offered =
            |n| Event::Offered { id: id(n), offer: offer(10_000, 2_000), work: work(10_000) };
        let bid = core.handle(offered(1), 1_000);
        assert!(matches!(bid.as_slice(), [Action::Bid { pgus: 10_000, .. }]), "{bid:?}");
        assert!(core.handle(offered(1), 1_001).is_empty(), "decided twice");
        core.handle(offered(2), 1_000);
        assert_eq!(core.book().queue_secs(), 2.0 * (10_000.0 / RATE + OVERHEAD));
        assert_eq!(core.book().committed_pgus(), 20_000);
        // Lost and won bids leave the book; the won one stays committed as a job.
        let lost = core.handle(Event::Assigned { id: id(1), ours: false }, 1_002);
        assert!(matches!(lost.as_slice(), [Action::Resolved { outcome: BidOutcome::Lost, .. }]));
        core.handle(Event::Assigned { id: id(2), ours: true }, 1_002);
        assert_eq!((core.book().lost, core.book().won), (1, 1));
        assert_eq!(core.book().committed_pgus(), 10_000);
    }

    #[test]
    fn a_deadline_the_queue_cannot_make_is_skipped() {
        let mut core = core_with(2, 1);
        // 1 s of proving + 1 s overhead, × 1.5 margin = 3 s: 2 s is too little.
        let skip = core.handle(
            Event::Offered { id: id(1), offer: offer(10_000, 1_002), work: work(10_000) },
            1_000,
        );
        assert!(
            matches!(skip.as_slice(), [Action::Skip { skip: Skip::DeadlineInfeasible { .. }, .. }]),
            "{skip:?}"
        );
        assert_eq!(core.book().skipped, 1);
    }

    #[test]
    fn a_job_runs_fetch_execute_prove_submit_and_earns_what_was_paid() {
        let mut core = core_with(2, 1);
        assert_eq!(receive(&mut core, 1, 2_000, JobState::Assigned), [Action::Fetch { id: id(1) }]);
        assert_eq!(
            core.handle(Event::Fetched { id: id(1) }, 1_000),
            [Action::Execute { id: id(1) }]
        );
        assert_eq!(
            core.handle(Event::Executed { id: id(1) }, 1_001),
            [Action::Prove { id: id(1), until: 2_000 }]
        );
        assert_eq!(core.proving(), 1);
        assert_eq!(core.handle(Event::Proved { id: id(1) }, 1_003), [Action::Submit { id: id(1) }]);
        assert_eq!(core.proving(), 0);
        let paid = Amount::new(1_000 + 10_000 * 3);
        assert_eq!(
            core.handle(Event::Accepted { id: id(1), paid }, 1_004),
            [Action::Done { id: id(1) }]
        );
        assert_eq!(core.book().earnings, paid, "the base fee is counted");
        assert!(core.book().jobs.is_empty());
    }

    #[test]
    fn prefetch_permits_bound_preparation_and_pass_on() {
        let mut core = core_with(1, 1);
        assert_eq!(receive(&mut core, 1, 2_000, JobState::Assigned), [Action::Fetch { id: id(1) }]);
        assert!(receive(&mut core, 2, 2_000, JobState::Fetched).is_empty(), "no permit free");
        core.handle(Event::Fetched { id: id(1) }, 1_000);
        let next = core.handle(Event::Executed { id: id(1) }, 1_000);
        assert_eq!(next, [Action::Fetch { id: id(2) }, Action::Prove { id: id(1), until: 2_000 }]);
    }

    #[test]
    fn the_earliest_deadline_takes_the_freed_slot() {
        let mut core = core_with(3, 1);
        for (n, deadline) in [(1, 5_000), (2, 4_000), (3, 3_000)] {
            receive(&mut core, n, deadline, JobState::Assigned);
            core.handle(Event::Fetched { id: id(n) }, 1_000);
            core.handle(Event::Executed { id: id(n) }, 1_000);
        }
        assert_eq!(core.waiting(), 2);
        // Job 1 took the idle slot; of the two waiting, the earlier deadline goes next.
        let next = core.handle(Event::Proved { id: id(1) }, 1_002);
        assert_eq!(next, [Action::Submit { id: id(1) }, Action::Prove { id: id(3), until: 3_000 }]);
    }

    #[test]
    fn a_hopeless_job_is_given_up_and_a_closed_one_stopped() {
        let mut core = core_with(2, 1);
        receive(&mut core, 1, 1_001, JobState::Assigned);
        core.handle(Event::Fetched { id: id(1) }, 1_000);
        let gave_up = core.handle(Event::Executed { id: id(1) }, 1_000);
        assert!(
            matches!(
                gave_up.as_slice(),
                [Action::GiveUp { reason: GiveUp::CannotMakeDeadline { .. }, .. }]
            ),
            "{gave_up:?}"
        );
        receive(&mut core, 2, 2_000, JobState::Assigned);
        let why = "cancelled".to_owned();
        let stopped = core.handle(Event::Closed { id: id(2), why: why.clone() }, 1_000);
        assert_eq!(stopped, [Action::Stop { id: id(2), why: why.clone() }]);
        // A proof on its way is not stopped: FulfillProof's answer ends it.
        receive(&mut core, 3, 2_000, JobState::Proved);
        assert!(core.handle(Event::Closed { id: id(3), why }, 1_000).is_empty());
        assert!(core.book().jobs.contains_key(&id(3)));
    }

    #[test]
    fn resumed_jobs_continue_from_their_recorded_state() {
        let mut core = core_with(2, 1);
        assert_eq!(receive(&mut core, 1, 2_000, JobState::Executed), [Action::Fetch { id: id(1) }]);
        assert_eq!(
            core.handle(Event::Fetched { id: id(1) }, 1_000),
            [Action::Prove { id: id(1), until: 2_000 }],
            "executed before: no second execution"
        );
        assert_eq!(receive(&mut core, 2, 2_000, JobState::Proved), [Action::Submit { id: id(2) }]);
        assert_eq!(
            receive(&mut core, 3, 2_000, JobState::Submitted),
            [Action::Confirm { id: id(3) }]
        );
        let again =
            core.handle(Event::Confirmed { id: id(3), status: Confirmation::Assigned }, 1_000);
        assert_eq!(again, [Action::Submit { id: id(3) }]);
        assert!(receive(&mut core, 4, 2_000, JobState::Done).is_empty());
    }

    #[test]
    fn shutting_down_stops_bidding_and_gives_up_what_cannot_finish() {
        let mut core = core_with(2, 1);
        receive(&mut core, 1, 1_100, JobState::Assigned);
        receive(&mut core, 2, 9_000, JobState::Assigned);
        let actions = core.handle(Event::ShuttingDown, 1_099);
        assert_eq!(actions, [Action::GiveUp { id: id(1), reason: GiveUp::ShuttingDown }]);
        let offered = Event::Offered { id: id(9), offer: offer(10, 9_000), work: work(10) };
        assert!(core.handle(offered, 1_099).is_empty(), "no bids after shutdown");
    }

    #[test]
    fn a_reconfigured_core_prices_and_bids_by_the_new_config() {
        let mut core = core_with(2, 1);
        let offered = |n| Event::Offered { id: id(n), offer: offer(10, 9_000), work: work(10) };
        let price = |actions: Vec<Action>| match actions.as_slice() {
            [Action::Bid { price, .. }] => *price,
            other => panic!("a bid: {other:?}"),
        };
        let before = price(core.handle(offered(1), 1_000));
        core.reconfigure(config_with(2, 1, 7_200_000_000, true));
        let after = price(core.handle(offered(2), 1_000));
        assert!(after > before, "twice the cost per hour bids higher: {before} then {after}");
        core.reconfigure(config_with(2, 1, 7_200_000_000, false));
        let actions = core.handle(offered(3), 1_000);
        assert!(!actions.iter().any(|a| matches!(a, Action::Bid { .. })), "{actions:?}");
        // A reload during shutdown does not start bidding again.
        core.reconfigure(config_with(2, 1, 7_200_000_000, true));
        core.handle(Event::ShuttingDown, 1_000);
        core.reconfigure(config_with(2, 1, 7_200_000_000, true));
        let actions = core.handle(offered(4), 1_000);
        assert!(!actions.iter().any(|a| matches!(a, Action::Bid { .. })), "{actions:?}");
    }

    #[test]
    fn measured_proofs_replace_the_configured_throughput_once_trusted() {
        let mut core = core_with(2, 1);
        let offered = |n| Event::Offered { id: id(n), offer: offer(10, 9_000), work: work(10) };
        let price = |actions: Vec<Action>| match actions.as_slice() {
            [Action::Bid { price, .. }] => *price,
            other => panic!("a bid: {other:?}"),
        };
        let configured = price(core.handle(offered(1), 1_000));
        // The machine proves at half the configured rate (RATE).
        let half = || ProofTiming {
            version: V.into(),
            mode: ProofMode::Default,
            program: None,
            pgus: 10_000,
            secs: 2.0,
            concurrency: 1.0,
            peak_memory_bytes: None,
        };
        for n in 1..crate::core::calibration::MIN_SAMPLES {
            assert!(core.handle(Event::Measured(half()), 1_000).is_empty());
            assert!(!core.calibration()[0].in_use, "not after {n} samples");
        }
        assert_eq!(core.proving_secs(&work(10_000)), Some(1.0), "configured until trusted");
        core.handle(Event::Measured(half()), 1_000);
        let calibration = &core.calibration()[0];
        assert!(calibration.in_use);
        assert_eq!(calibration.configured_pgus_per_second, RATE);
        assert_eq!(calibration.measured.pgus_per_second, RATE / 2.0);
        assert_eq!(calibration.drift_percent(), Some(-50.0));
        assert_eq!(core.proving_secs(&work(10_000)), Some(2.0));
        let measured = price(core.handle(offered(2), 1_000));
        assert!(measured.get() >= 2 * configured.get() - 1, "{configured} then {measured}");
        // A reload keeps what was measured.
        core.reconfigure(config_with(2, 1, 3_600_000_000, true));
        assert_eq!(core.proving_secs(&work(10_000)), Some(2.0));
        // And so does a restart, from the store.
        let mut restarted = core_with(2, 1);
        let key = CalibrationKey::of(V, ProofMode::Default);
        restarted.restore_calibration(key.clone(), core.estimate(&key).unwrap());
        assert_eq!(restarted.proving_secs(&work(10_000)), Some(2.0));
        // Another mode of the version has its own estimate: configured until it has one.
        let compressed = Work { mode: ProofMode::Compressed, ..work(10_000) };
        assert_eq!(core.proving_secs(&compressed), Some(1.0));
    }

    fn pool_of(workers: usize) -> PoolCapacity {
        let capacity = crate::core::VersionCapacity {
            workers,
            largest_memory_bytes: if workers == 0 { 0 } else { 16 << 30 },
            pgus_per_second: RATE * workers as f64,
        };
        PoolCapacity {
            workers,
            slots: workers,
            memory_bytes: workers as u64 * (16 << 30),
            versions: if workers == 0 {
                BTreeMap::new()
            } else {
                [(V.to_owned(), capacity)].into_iter().collect()
            },
        }
    }

    /// Bids the core makes on `n` offers of 100,000 PGUs due 170 s after the auction.
    fn bids_on(core: &mut NodeCore, first: u8, n: u8) -> Vec<Action> {
        (first..first + n)
            .flat_map(|i| {
                let offered =
                    Event::Offered { id: id(i), offer: offer(100_000, 1_170), work: work(100_000) };
                core.handle(offered, 1_000)
            })
            .filter(|a| matches!(a, Action::Bid { .. }))
            .collect()
    }

    #[test]
    fn a_pool_bids_by_its_live_workers_and_a_lost_worker_shrinks_it_at_once() {
        let mut alone = core_with(2, 1);
        alone.set_pool(pool_of(1));
        let one = bids_on(&mut alone, 1, 40);
        let mut three = core_with(2, 1);
        three.set_pool(pool_of(3));
        assert_eq!((three.slots(), three.job_memory_limit(V)), (3, 16 << 30));
        let many = bids_on(&mut three, 1, 40);
        // Per-job overhead is not shared out, so a little under three times.
        assert!(many.len() as f64 >= 2.5 * one.len() as f64, "{} then {}", one.len(), many.len());
        let price = |a: &Action| match a {
            Action::Bid { price, .. } => *price,
            _ => unreachable!(),
        };
        assert_eq!(price(&one[0]), price(&many[0]), "the cost per PGU is one worker's");
        // Two of the three workers die: the work already taken fills the one left.
        three.set_pool(pool_of(1));
        assert!(bids_on(&mut three, 100, 5).is_empty(), "no bid it could not finish");
        // No live worker: nothing fits.
        three.set_pool(pool_of(0));
        assert_eq!(three.job_memory_limit(V), 0);
    }

    #[test]
    fn a_worker_joining_starts_a_waiting_job() {
        let mut core = core_with(3, 1);
        core.set_pool(pool_of(1));
        for n in [1, 2] {
            receive(&mut core, n, 5_000, JobState::Assigned);
            core.handle(Event::Fetched { id: id(n) }, 1_000);
            core.handle(Event::Executed { id: id(n) }, 1_000);
        }
        assert_eq!((core.proving(), core.waiting()), (1, 1));
        assert_eq!(core.set_pool(pool_of(2)), [Action::Prove { id: id(2), until: 5_000 }]);
    }

    #[test]
    fn a_proof_running_on_its_own_worker_does_not_delay_a_job_a_free_worker_takes() {
        let mut core = core_with(2, 1);
        core.set_pool(pool_of(2));
        let big = Work { pgus: 100_000, memory: 1 << 30, ..work(100_000) };
        core.handle(
            Event::JobReceived { id: id(1), work: big, deadline: 5_000, state: JobState::Assigned },
            1_000,
        );
        core.handle(Event::Fetched { id: id(1) }, 1_000);
        core.handle(Event::Executed { id: id(1) }, 1_000);
        assert_eq!(core.proving(), 1);
        // 1 s of proving + 1 s overhead, × 1.5: 3 s of the 5 left; the 11 s proof beside it
        // holds the other worker.
        let offered = |n: u8| Event::Offered {
            id: id(n),
            offer: Offer { auction_end: 1_000, ..offer(10_000, 1_005) },
            work: work(10_000),
        };
        let bid = core.handle(offered(2), 1_000);
        assert!(matches!(bid.as_slice(), [Action::Bid { .. }]), "{bid:?}");
        // With both workers taken, the next waits for a proof to end: too late.
        let skip = core.handle(offered(3), 1_000);
        assert!(
            matches!(skip.as_slice(), [Action::Skip { skip: Skip::DeadlineInfeasible { .. }, .. }]),
            "{skip:?}"
        );
    }
}
