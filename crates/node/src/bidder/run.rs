//! The NodeBidder's loop: follows what the network's [driver](crate::driver) tells, feeds each
//! event to the [`core`](crate::core) (which decides on executed requests and tracks every bid
//! to won, lost or expired), and performs what the core decides: signs and sends bids, records
//! skips and outcomes, and hands won requests and job actions to the prover.
//!
//! The driver is the only trigger: provernet's request stream, or the Succinct API's polls. It
//! catches up after a gap itself, from the requests the bidder tracks (open bids and jobs).

use std::sync::Arc;

use provernet_types::{Amount, ClientError, RequestId};
use tokio::sync::{mpsc, watch};

use crate::{
    context::NodeContext,
    core::{Action, BidOutcome, Event as CoreEvent},
    driver::{Feed, NET_EVENT_CHANNEL_CAPACITY, NetEvent, RequestRecord},
    monitor::economics::Entry,
    prover::ProverCommand,
    store::BidRecord,
};

/// Runs the bidder until shutdown; `subscribed` follows whether the driver's feed is up.
pub async fn run(
    ctx: Arc<NodeContext>,
    prover: mpsc::UnboundedSender<ProverCommand>,
    subscribed: watch::Sender<bool>,
) {
    let (net_event_tx, mut net_event_rx) = mpsc::channel(NET_EVENT_CHANNEL_CAPACITY);
    let tracked = {
        let ctx = ctx.clone();
        Arc::new(move || {
            let core = ctx.core();
            let book = core.book();
            book.outstanding.keys().chain(book.jobs.keys()).copied().collect::<Vec<RequestId>>()
        })
    };
    let feed = Feed {
        versions: ctx.versions.clone(),
        net_event_tx,
        up: subscribed,
        health: ctx.health.clone(),
        tracked,
        cancel: ctx.shutdown.clone(),
    };
    let following = {
        let ctx = ctx.clone();
        tokio::spawn(async move { ctx.driver.follow(feed).await })
    };
    loop {
        let event = tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            e = net_event_rx.recv() => e,
        };
        let Some(event) = event else { break };
        on_event(&ctx, &prover, event);
    }
    // A driver waiting to send sees the channel closed; it stops at shutdown.
    drop(net_event_rx);
    let _ = following.await;
    ctx.health.set_subscription_up(false);
    tracing::info!("bidder stopped");
}

/// Performs what one event of the network means.
fn on_event(
    ctx: &Arc<NodeContext>,
    prover: &mpsc::UnboundedSender<ProverCommand>,
    event: NetEvent,
) {
    match event {
        NetEvent::Offered(record) => consider(ctx, prover, &record),
        NetEvent::Assigned { id, ours } => {
            perform(ctx, prover, ctx.apply(CoreEvent::Assigned { id, ours }), None);
        }
        NetEvent::Won(record) => {
            let _ = prover.send(ProverCommand::Assigned(record));
        }
        NetEvent::Closed { id, why } => {
            perform(ctx, prover, ctx.apply(CoreEvent::Closed { id, why }), None);
        }
    }
}

/// Feeds an executed request to the core and performs its decision.
fn consider(
    ctx: &Arc<NodeContext>,
    prover: &mpsc::UnboundedSender<ProverCommand>,
    request: &RequestRecord,
) {
    let Ok(id) = request.id() else { return };
    let received = std::time::Instant::now();
    let event = match request.offer(&ctx.prover) {
        Ok(offer) => CoreEvent::Offered { id, offer, work: ctx.work(request) },
        Err(skip) => CoreEvent::Unreadable { id, skip, pgus: request.pgus() },
    };
    perform(ctx, prover, ctx.apply(event), Some(received));
}

/// Performs the core's actions: bids are signed and sent, skips and outcomes recorded, a job's
/// actions go to the prover. `received` is when the request that led to a bid arrived.
fn perform(
    ctx: &Arc<NodeContext>,
    prover: &mpsc::UnboundedSender<ProverCommand>,
    actions: Vec<Action>,
    received: Option<std::time::Instant>,
) {
    for action in actions {
        match action {
            Action::Bid { id, price, pgus } => {
                let ctx = ctx.clone();
                let prover = prover.clone();
                let received = received.unwrap_or_else(std::time::Instant::now);
                tokio::spawn(async move {
                    send_bid(&ctx, &prover, id, pgus, price, received).await;
                });
            }
            Action::Skip { id, pgus, skip } => {
                tracing::debug!(%id, "skipped: {skip}");
                ctx.health.metrics().skipped(skip.label());
                ctx.health.record_economics(ctx.now(), Entry::Skipped(skip.label()));
                record(
                    ctx,
                    BidRecord {
                        id,
                        at: ctx.now(),
                        price_per_pgu: None,
                        pgus,
                        outcome: "skipped".into(),
                        reason: Some(skip.to_string()),
                    },
                );
            }
            Action::Resolved { id, outcome, price, pgus } => {
                let entry = match outcome {
                    BidOutcome::Won => Entry::Won,
                    BidOutcome::Lost => Entry::Lost,
                    BidOutcome::Expired => Entry::Expired,
                };
                ctx.health.record_economics(ctx.now(), entry);
                record(
                    ctx,
                    BidRecord {
                        id,
                        at: ctx.now(),
                        price_per_pgu: Some(price),
                        pgus,
                        outcome: outcome.as_str().into(),
                        reason: None,
                    },
                );
            }
            job => {
                let _ = prover.send(ProverCommand::Act(job));
            }
        }
    }
}

/// Records a bid decision or outcome without holding up the stream.
fn record(ctx: &NodeContext, record: BidRecord) {
    let store = ctx.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.record_bid(&record).await {
            tracing::error!("cannot record a bid: {e}");
        }
    });
}

/// How many times a bid is sent while it fails transiently.
const BID_ATTEMPTS: u32 = 5;

/// The pause before a bid's second try; doubled before each later one (0.2 + 0.4 + 0.8 + 1.6 s:
/// a standby takes over within a second).
const BID_RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);

/// Signs and sends a bid (again while it fails transiently); a refused bid is released.
async fn send_bid(
    ctx: &Arc<NodeContext>,
    prover: &mpsc::UnboundedSender<ProverCommand>,
    id: RequestId,
    pgus: u64,
    price: Amount,
    received: std::time::Instant,
) {
    let mut result = ctx.driver.bid(&id, price).await;
    // A bid lost with the connection (the network's leader died, a standby took over) is sent
    // again while the auction may still be open: if the first one landed after all, the
    // network holds two equal bids of this prover, which settle as one.
    let mut backoff = BID_RETRY_BACKOFF;
    for _ in 1..BID_ATTEMPTS {
        if !result.as_ref().is_err_and(ClientError::is_transient) {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
        result = ctx.driver.bid(&id, price).await;
    }
    // The one refusal that says the node cannot work at all: raise it as an alert.
    let unregistered = result.as_ref().is_err_and(|e| {
        e.code() == Some(tonic::Code::NotFound) && e.to_string().contains("not a registered prover")
    });
    if unregistered && !ctx.health.snapshot().prover_unregistered {
        tracing::error!(
            code = "PN-PROVER-UNREGISTERED",
            prover = %ctx.prover,
            "the network refuses bids for an unregistered prover: register and stake it"
        );
    }
    if unregistered || result.is_ok() {
        ctx.health.set_prover_unregistered(unregistered);
    }
    let (outcome, reason) = match result {
        Ok(()) => {
            ctx.health.metrics().bid_accepted(received.elapsed().as_secs_f64());
            ctx.health.record_economics(ctx.now(), Entry::Bid);
            tracing::info!(%id, pgus, %price, "bid");
            ("bid", None)
        }
        Err(e) => {
            // A request that settled or closed before the bid arrived is the market's ordinary
            // race, not a fault of this node.
            if e.code() == Some(tonic::Code::FailedPrecondition) {
                tracing::info!(%id, "bid too late: {e}");
            } else {
                tracing::warn!(%id, "bid refused: {e}");
            }
            perform(ctx, prover, ctx.apply(CoreEvent::BidRefused { id }), None);
            ctx.health.metrics().bid_refused();
            ctx.health.record_economics(ctx.now(), Entry::Refused);
            ("refused", Some(e.to_string()))
        }
    };
    let record = BidRecord {
        id,
        at: ctx.now(),
        price_per_pgu: Some(price),
        pgus,
        outcome: outcome.into(),
        reason,
    };
    if let Err(e) = ctx.store.record_bid(&record).await {
        tracing::error!("cannot record a bid: {e}");
    }
}
