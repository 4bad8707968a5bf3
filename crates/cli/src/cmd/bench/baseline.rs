//! The baseline: a node built the way the original network's reference node works.
//!
//! - polls the network every `POLL_SECS` (3 s) instead of following events;
//! - one request at a time: while it has a bid out or a job, it does not bid;
//! - when idle, bids a fixed price (its cost-plus price at no load) on the oldest open request
//!   whose ceiling allows that price and which fits its memory, with no deadline check;
//! - learns it won at its next poll, then fetches, executes, proves and submits in sequence
//!   (no pipelining, no earliest-deadline scheduling), and proves to the end even if the deadline
//!   has passed;
//! - bids again only at the poll after its job is finished.

use super::{
    engine::{Ctx, Event, NodeModel, Step},
    timing,
};

/// Seconds between polls.
pub const POLL_SECS: f64 = 3.0;

/// What the baseline is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing: bids at the next poll.
    Idle,
    /// A bid is out on this request.
    Bidding(usize),
    /// Working on this request (proving since the ms given, once it proves).
    Working(usize, Option<u64>),
}

/// The reference-style node.
pub struct BaselineNode {
    index: usize,
    price: u128,
    max_pgus: u64,
    state: State,
}

impl BaselineNode {
    /// Node `index` bidding `price` per PGU, holding jobs up to `max_pgus`.
    pub fn new(index: usize, price: u128, max_pgus: u64) -> Self {
        Self { index, price, max_pgus, state: State::Idle }
    }

    fn step(&self, ctx: &mut Ctx, req: usize, secs: f64, step: Step) {
        ctx.after(secs, Event::Step { node: self.index, req, step });
    }
}

impl NodeModel for BaselineNode {
    fn start(&mut self, ctx: &mut Ctx) {
        // Nodes start their timers at different phases of the poll.
        let phase = ctx.draw(self.index, usize::MAX, 3) * POLL_SECS;
        ctx.after(phase, Event::Poll(self.index));
    }

    fn on_poll(&mut self, ctx: &mut Ctx) {
        ctx.after(POLL_SECS, Event::Poll(self.index));
        if let State::Bidding(req) = self.state {
            match ctx.winner(req) {
                Some(w) if w == self.index => {
                    self.state = State::Working(req, None);
                    let secs = timing::fetch_secs(ctx.plan(req).noise);
                    self.step(ctx, req, secs, Step::Fetched);
                    return;
                }
                Some(_) => self.state = State::Idle,
                None if ctx.record(req).closed.is_some() => self.state = State::Idle,
                None => return,
            }
        }
        if self.state != State::Idle {
            return;
        }
        let (price, max) = (self.price, self.max_pgus);
        let pick =
            ctx.open().find(|&r| ctx.plan(r).max_price_per_pgu >= price && ctx.plan(r).pgus <= max);
        if let Some(req) = pick {
            self.state = State::Bidding(req);
            let latency = ctx.latency_secs(self.index, req, 1);
            ctx.after(latency, Event::Bid { node: self.index, req, price });
        }
    }

    fn on_bid_refused(&mut self, _ctx: &mut Ctx, req: usize) {
        if self.state == State::Bidding(req) {
            self.state = State::Idle;
        }
    }

    fn on_step(&mut self, ctx: &mut Ctx, req: usize, step: Step) {
        let State::Working(current, since) = self.state else { return };
        if current != req {
            return;
        }
        let pgus = ctx.plan(req).pgus;
        match step {
            Step::Fetched => self.step(ctx, req, timing::execute_secs(pgus), Step::Executed),
            Step::Executed => {
                self.state = State::Working(req, Some(ctx.now_ms()));
                let secs = timing::prove_secs(pgus, ctx.plan(req).noise);
                self.step(ctx, req, secs, Step::Proved);
            }
            Step::Proved => {
                if let Some(since) = since {
                    ctx.record_busy(self.index, since);
                }
                self.step(ctx, req, timing::SUBMIT_SECS, Step::Submitted);
            }
            Step::Submitted => {
                // Refused if the deadline passed; the network has counted the miss.
                ctx.fulfill(self.index, req);
                self.state = State::Idle;
            }
            Step::Start | Step::ProveAbort => {}
        }
    }
}
