//! Following a Succinct-API network by polling, as the API pushes nothing.
//!
//! Each tick reads, then decides ([`PollState::observe`], plain data in, events out):
//! 1. open executed requests of each version the node proves, not yet bid on by this prover
//!    (`not_bid_by`), deadline ahead: each new one is offered to the bidder once;
//! 2. requests assigned to this prover, deadline ahead: each new one is won;
//! 3. each request the node tracks (open bids and jobs): assigned to another prover (the bid
//!    lost), or closed (the bid expires, the job stops).
//!
//! A tick that cannot read everything sends nothing; the next one reads it all again. The feed
//! is up after the first full tick and down after [`FAILURES_DOWN`] failed ones in a row.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, stream};
use provernet_artifacts::succinct::version_to_theirs;
use provernet_types::{Address, RequestId, succinct::proto::types as sproto};
use tokio::time::MissedTickBehavior;

use super::SuccinctDriver;
use crate::{
    clock::now_secs,
    driver::{ClientError, Feed, NetEvent, RequestRecord, RequestState},
};

/// Failed ticks in a row after which the feed counts as down.
const FAILURES_DOWN: u32 = 3;
/// Requests per page of GetFilteredProofRequests.
const PAGE: u32 = 500;
/// Pages read per version and tick.
const MAX_PAGES: u32 = 20;
/// Tracked requests read per tick (the rest wait for the next tick).
const MAX_TRACKED_PER_TICK: usize = 200;
/// Tracked requests read at once.
const TRACKED_READS_IN_FLIGHT: usize = 8;

/// What one tick read.
#[derive(Debug, Default)]
pub(super) struct Observation {
    /// Open executed requests this prover has not bid on.
    pub open: Vec<sproto::ProofRequest>,
    /// Requests assigned to this prover.
    pub mine: Vec<sproto::ProofRequest>,
    /// Tracked requests as read now.
    pub tracked: Vec<sproto::ProofRequest>,
    /// Tracked requests the network has no record of.
    pub gone: Vec<RequestId>,
}

/// What the poller remembers between ticks.
#[derive(Debug, Default)]
pub(super) struct PollState {
    /// Requests offered to the bidder, with their deadlines (forgotten after them).
    offered: HashMap<RequestId, u64>,
    /// Requests won and handed on, as last listed.
    won: HashSet<RequestId>,
}

impl PollState {
    /// The events `observation` means for a node of `prover` at `now`.
    pub(super) fn observe(
        &mut self,
        observation: Observation,
        prover: Address,
        now: u64,
    ) -> Vec<NetEvent> {
        let mut out = Vec::new();
        self.offered.retain(|_, deadline| *deadline >= now);
        for request in observation.open {
            let record = RequestRecord::Succinct(Box::new(request));
            let Ok(id) = record.id() else { continue };
            if self.offered.insert(id, record.deadline()).is_none() {
                out.push(NetEvent::Offered(Box::new(record)));
            }
        }
        let mut won = HashSet::new();
        let mut win = |id: RequestId, record: RequestRecord, out: &mut Vec<NetEvent>| {
            if won.insert(id) && !self.won.contains(&id) {
                out.push(NetEvent::Assigned { id, ours: true });
                out.push(NetEvent::Won(Box::new(record)));
            }
        };
        for request in observation.mine {
            let record = RequestRecord::Succinct(Box::new(request));
            let Ok(id) = record.id() else { continue };
            win(id, record, &mut out);
        }
        for request in observation.tracked {
            let record = RequestRecord::Succinct(Box::new(request));
            let Ok(id) = record.id() else { continue };
            match record.state() {
                RequestState::Requested => {}
                RequestState::Assigned(p) if p == prover => win(id, record, &mut out),
                // The job's verdict reads its own fulfilment.
                RequestState::Fulfilled { prover: p, .. } if p == prover => {}
                RequestState::Assigned(_) | RequestState::Fulfilled { .. } => {
                    out.push(NetEvent::Assigned { id, ours: false });
                }
                RequestState::Closed(why) => out.push(NetEvent::Closed { id, why }),
            }
        }
        for id in observation.gone {
            out.push(NetEvent::Closed { id, why: "the network has no record of it".into() });
        }
        self.won = won;
        out
    }
}

/// Polls until `feed.cancel`.
pub(super) async fn follow(driver: &SuccinctDriver, feed: Feed) {
    let mut state = PollState::default();
    let (mut up, mut failures) = (false, 0u32);
    let mut interval = tokio::time::interval(driver.poll_interval);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = feed.cancel.cancelled() => break,
            _ = interval.tick() => {}
        }
        let observation = tokio::select! {
            () = feed.cancel.cancelled() => break,
            o = read(driver, &feed) => o,
        };
        match observation {
            Ok(observation) => {
                for event in state.observe(observation, driver.prover, now_secs()) {
                    if !feed.send(event).await {
                        return;
                    }
                }
                failures = 0;
                if !up {
                    up = true;
                    feed.set_up(true);
                    tracing::info!(every = ?driver.poll_interval, "polling the network's requests");
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(failures, "polling the network failed: {e}");
                if up && failures >= FAILURES_DOWN {
                    up = false;
                    feed.set_up(false);
                    tracing::warn!(
                        code = "PN-SUBSCRIPTION-DOWN",
                        "the network does not answer polls"
                    );
                }
            }
        }
    }
    feed.health.set_subscription_up(false);
}

/// One tick's reads.
async fn read(driver: &SuccinctDriver, feed: &Feed) -> Result<Observation, ClientError> {
    let client = &driver.client;
    let prover = driver.prover.as_bytes().to_vec();
    let now = now_secs();
    let mut observation = Observation::default();
    for version in &feed.versions {
        for page in 0..MAX_PAGES {
            let requests = client
                .filtered(sproto::GetFilteredProofRequestsRequest {
                    version: Some(version_to_theirs(version)),
                    fulfillment_status: Some(sproto::FulfillmentStatus::Requested as i32),
                    execution_status: Some(sproto::ExecutionStatus::Executed as i32),
                    minimum_deadline: Some(now),
                    not_bid_by: Some(prover.clone()),
                    limit: Some(PAGE),
                    page: Some(page),
                    ..Default::default()
                })
                .await?;
            let full = requests.len() == PAGE as usize;
            observation.open.extend(requests);
            if !full {
                break;
            }
        }
    }
    observation.mine = client
        .filtered(sproto::GetFilteredProofRequestsRequest {
            fulfillment_status: Some(sproto::FulfillmentStatus::Assigned as i32),
            fulfiller: Some(prover),
            minimum_deadline: Some(now),
            limit: Some(PAGE),
            ..Default::default()
        })
        .await?;
    let tracked: Vec<RequestId> = (feed.tracked)().into_iter().take(MAX_TRACKED_PER_TICK).collect();
    let reads: Vec<_> = stream::iter(tracked)
        .map(|id| async move { (id, client.details(&id).await) })
        .buffer_unordered(TRACKED_READS_IN_FLIGHT)
        .collect()
        .await;
    for (id, read) in reads {
        match read {
            Ok(request) => observation.tracked.push(request),
            Err(e) if e.code() == Some(tonic::Code::NotFound) => observation.gone.push(id),
            Err(e) => return Err(e),
        }
    }
    Ok(observation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: u8, edit: impl FnOnce(&mut sproto::ProofRequest)) -> sproto::ProofRequest {
        let mut r = sproto::ProofRequest {
            request_id: vec![n; 32],
            version: "miden-0.23".into(),
            deadline: 1_000,
            gas_used: Some(10),
            max_price_per_pgu: Some("5".into()),
            stdin_public_uri: "http://x".into(),
            fulfillment_status: sproto::FulfillmentStatus::Requested as i32,
            ..Default::default()
        };
        edit(&mut r);
        r
    }

    fn names(events: &[NetEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                NetEvent::Offered(r) => format!("offered {}", r.id().unwrap().as_bytes()[0]),
                NetEvent::Assigned { id, ours } => format!("assigned {} {ours}", id.as_bytes()[0]),
                NetEvent::Won(r) => format!("won {}", r.id().unwrap().as_bytes()[0]),
                NetEvent::Closed { id, .. } => format!("closed {}", id.as_bytes()[0]),
            })
            .collect()
    }

    #[test]
    fn each_request_is_offered_once_until_its_deadline() {
        let me = Address::from_bytes([9; 20]);
        let mut state = PollState::default();
        let open = || Observation { open: vec![request(1, |_| {})], ..Default::default() };
        assert_eq!(names(&state.observe(open(), me, 100)), ["offered 1"]);
        assert!(state.observe(open(), me, 101).is_empty(), "not offered twice");
        state.observe(Observation::default(), me, 1_001);
        assert_eq!(names(&state.observe(open(), me, 1_001)), ["offered 1"], "forgotten after");
    }

    #[test]
    fn a_win_is_handed_on_once_and_a_loss_or_close_is_told() {
        let me = Address::from_bytes([9; 20]);
        let other = Address::from_bytes([8; 20]);
        let assigned_to = |n, who: Address| {
            request(n, |r| {
                r.fulfillment_status = sproto::FulfillmentStatus::Assigned as i32;
                r.fulfiller = Some(who.as_bytes().to_vec());
            })
        };
        let mut state = PollState::default();
        let seen = Observation {
            mine: vec![assigned_to(1, me)],
            tracked: vec![
                assigned_to(1, me),
                assigned_to(2, other),
                request(3, |r| {
                    r.fulfillment_status = sproto::FulfillmentStatus::Unfulfillable as i32;
                }),
                request(4, |_| {}),
            ],
            gone: vec![RequestId::from_slice(&[5; 32]).unwrap()],
            ..Default::default()
        };
        assert_eq!(
            names(&state.observe(seen, me, 100)),
            ["assigned 1 true", "won 1", "assigned 2 false", "closed 3", "closed 5"]
        );
        let again = Observation { mine: vec![assigned_to(1, me)], ..Default::default() };
        assert!(state.observe(again, me, 101).is_empty(), "a win is handed on once");
    }
}
