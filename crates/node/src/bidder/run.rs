//! The NodeBidder's loop: follows the network's request stream, feeds each event to the
//! [`core`](crate::core) (which decides on executed requests and tracks every bid to won, lost
//! or expired), and performs what the core decides: signs and sends bids, records skips and
//! outcomes, and hands won requests and job actions to the prover.
//!
//! The stream is the only trigger (no polling). After connecting, and after a gap (the stream
//! broke or said it lagged), the bidder lists what it may have missed: open executed requests
//! it has not decided on, requests assigned to this prover, and the fate of its open bids.

use std::{collections::HashMap, sync::Arc, time::Duration};

use proto::request_event::Event;
use provernet_types::{Address, Amount, RequestId, RequestSpec, field, proto};
use tokio::sync::{mpsc, watch};

use crate::{
    context::NodeContext,
    core::{Action, Event as CoreEvent, Offer},
    prover::ProverCommand,
    store::BidRecord,
};

/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs the bidder until shutdown; `subscribed` follows whether the request stream is up.
pub async fn run(
    ctx: Arc<NodeContext>,
    prover: mpsc::UnboundedSender<ProverCommand>,
    subscribed: watch::Sender<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    // Requests created and not yet executed: only the bidder reads them.
    let mut pending = HashMap::new();
    let filter = proto::SubscribeRequestsRequest {
        zkvm_versions: ctx.versions.clone(),
        ..Default::default()
    };
    while !ctx.shutdown.is_cancelled() {
        let stream = tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            s = ctx.client.subscribe(filter.clone()) => s,
        };
        match stream {
            Ok(mut stream) => {
                ctx.health.set_subscription_up(true);
                tracing::info!("subscribed to the network's requests");
                backoff = Duration::from_millis(100);
                if let Err(e) = resync(&ctx, &prover).await {
                    tracing::warn!("resync after connecting failed: {e}");
                }
                subscribed.send_replace(true);
                loop {
                    let message = tokio::select! {
                        () = ctx.shutdown.cancelled() => break,
                        m = stream.message() => m,
                    };
                    match message {
                        Ok(Some(event)) => {
                            if on_event(&ctx, &prover, &mut pending, event)
                                && let Err(e) = resync(&ctx, &prover).await
                            {
                                tracing::warn!("resync after a lag failed: {e}");
                            }
                        }
                        Ok(None) => {
                            tracing::warn!(
                                code = "PN-SUBSCRIPTION-DOWN",
                                "the network closed the request stream"
                            );
                            break;
                        }
                        Err(status) => {
                            tracing::warn!(
                                code = "PN-SUBSCRIPTION-DOWN",
                                "request stream broke: {status}"
                            );
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(code = "PN-SUBSCRIPTION-DOWN", "cannot subscribe: {e}"),
        }
        ctx.health.set_subscription_up(false);
        subscribed.send_replace(false);
        tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    ctx.health.set_subscription_up(false);
    tracing::info!("bidder stopped");
}

/// Handles one event; returns whether the stream lagged (a resync is due).
fn on_event(
    ctx: &Arc<NodeContext>,
    prover: &mpsc::UnboundedSender<ProverCommand>,
    pending: &mut HashMap<RequestId, proto::ProofRequest>,
    event: proto::RequestEvent,
) -> bool {
    let Ok(id) = RequestId::from_slice(&event.request_id) else {
        return matches!(event.event, Some(Event::Lagged(_)));
    };
    match event.event {
        Some(Event::Created(created)) => {
            if let Some(request) = created.request {
                pending.insert(id, request);
            }
        }
        Some(Event::Executed(executed)) => match pending.remove(&id) {
            Some(mut request) => {
                request.pgus = executed.pgus;
                request.public_outputs = executed.public_outputs;
                consider(ctx, prover, request);
            }
            // Created before this node subscribed: read it.
            None => {
                let ctx = ctx.clone();
                let prover = prover.clone();
                tokio::spawn(async move {
                    match ctx.client.proof_request(&id).await {
                        Ok(request) => consider(&ctx, &prover, request),
                        Err(e) => tracing::warn!(%id, "cannot read an executed request: {e}"),
                    }
                });
            }
        },
        Some(Event::Assigned(assigned)) => {
            let ours = Address::from_slice(&assigned.prover).ok() == Some(ctx.prover);
            perform(ctx, prover, ctx.apply(CoreEvent::Assigned { id, ours }), None);
            if ours {
                assigned_to_us(ctx, prover, id);
            }
        }
        Some(Event::Unexecutable(_)) => {
            pending.remove(&id);
        }
        Some(Event::Fulfilled(_)) => closed(ctx, prover, pending, id, "fulfilled".into()),
        Some(Event::Unfulfillable(u)) => {
            closed(ctx, prover, pending, id, format!("unfulfillable: {}", u.reason));
        }
        Some(Event::Cancelled(_)) => {
            closed(ctx, prover, pending, id, "cancelled by the requester".into());
        }
        // The prover follows its own submissions through the request's status.
        Some(Event::ProofSubmitted(_) | Event::ProofRejected(_)) => {}
        Some(Event::Lagged(lagged)) => {
            tracing::warn!(missed = lagged.missed, "the request stream lagged; resyncing");
            return true;
        }
        None => {}
    }
    false
}

/// A request closed: an open bid expired, a job stops.
fn closed(
    ctx: &Arc<NodeContext>,
    prover: &mpsc::UnboundedSender<ProverCommand>,
    pending: &mut HashMap<RequestId, proto::ProofRequest>,
    id: RequestId,
    why: String,
) {
    pending.remove(&id);
    perform(ctx, prover, ctx.apply(CoreEvent::Closed { id, why }), None);
}

/// This prover won `id`: the prover gets the network's record (price and state) as a job.
fn assigned_to_us(
    ctx: &Arc<NodeContext>,
    prover: &mpsc::UnboundedSender<ProverCommand>,
    id: RequestId,
) {
    let ctx = ctx.clone();
    let prover = prover.clone();
    tokio::spawn(async move {
        match ctx.client.proof_request(&id).await {
            Ok(request) => {
                let _ = prover.send(ProverCommand::Assigned(Box::new(request)));
            }
            Err(e) => tracing::error!(%id, "won a request but cannot read it: {e}"),
        }
    });
}

/// Feeds an executed request to the core and performs its decision.
fn consider(
    ctx: &Arc<NodeContext>,
    prover: &mpsc::UnboundedSender<ProverCommand>,
    request: proto::ProofRequest,
) {
    let Ok(id) = RequestId::from_slice(&request.request_id) else { return };
    if ctx.shutdown.is_cancelled() {
        return;
    }
    let received = std::time::Instant::now();
    let event = match offer(ctx, &request) {
        Ok(offer) => CoreEvent::Offered { id, offer, work: ctx.work(&request) },
        Err(reason) => CoreEvent::Unreadable { id, reason, pgus: request.pgus },
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
                metrics::counter!("node_skips_total", "reason" => skip.label()).increment(1);
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
            Action::Resolved { id, outcome, price, pgus } => record(
                ctx,
                BidRecord {
                    id,
                    at: ctx.now(),
                    price_per_pgu: Some(price),
                    pgus,
                    outcome: outcome.as_str().into(),
                    reason: None,
                },
            ),
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

/// What the decision needs of `request`.
fn offer(ctx: &NodeContext, request: &proto::ProofRequest) -> Result<Offer, String> {
    let body = request.body.as_ref().ok_or("no body")?;
    let spec = RequestSpec::try_from(body).map_err(|e| e.to_string())?;
    Ok(Offer {
        zkvm_version: spec.zkvm_version.clone(),
        pgus: request.pgus,
        max_price_per_pgu: spec.max_price_per_pgu,
        deadline: spec.deadline,
        auction_end: request.created_at + body.min_auction_period,
        admitted: spec.admits(&ctx.prover),
    })
}

/// Signs and sends a bid; a refused bid is released.
async fn send_bid(
    ctx: &Arc<NodeContext>,
    prover: &mpsc::UnboundedSender<ProverCommand>,
    id: RequestId,
    pgus: u64,
    price: Amount,
    received: std::time::Instant,
) {
    let result = ctx.client.bid(&ctx.operator, &ctx.prover, &id, price).await;
    let (outcome, reason) = match result {
        Ok(()) => {
            metrics::histogram!("node_bid_latency_seconds")
                .record(received.elapsed().as_secs_f64());
            metrics::counter!("node_bids_total", "outcome" => "bid").increment(1);
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
            metrics::counter!("node_bids_total", "outcome" => "refused").increment(1);
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

/// Lists what the stream may have missed: open executed requests not yet decided, requests
/// assigned to this prover, and the fate of open bids.
async fn resync(
    ctx: &Arc<NodeContext>,
    prover: &mpsc::UnboundedSender<ProverCommand>,
) -> Result<(), provernet_types::ClientError> {
    let open = ctx
        .client
        .list_all(proto::ListProofRequestsRequest {
            statuses: vec![proto::RequestStatus::Requested as i32],
            execution_statuses: vec![proto::ExecutionStatus::Executed as i32],
            ..Default::default()
        })
        .await?;
    for request in open {
        if ctx.versions.iter().any(|v| request.body.as_ref().is_some_and(|b| &b.zkvm_version == v))
        {
            consider(ctx, prover, request);
        }
    }
    let mine = ctx
        .client
        .list_all(proto::ListProofRequestsRequest {
            statuses: vec![proto::RequestStatus::Assigned as i32],
            prover: ctx.prover.as_bytes().to_vec(),
            ..Default::default()
        })
        .await?;
    for request in mine {
        let Ok(id) = field::request_id("request_id", &request.request_id) else { continue };
        perform(ctx, prover, ctx.apply(CoreEvent::Assigned { id, ours: true }), None);
        let _ = prover.send(ProverCommand::Assigned(Box::new(request)));
    }
    let open_bids: Vec<RequestId> = ctx.core().book().outstanding.keys().copied().collect();
    for id in open_bids {
        let request = ctx.client.proof_request(&id).await?;
        let status = proto::RequestStatus::try_from(request.status).unwrap_or_default();
        let ours = Address::from_slice(&request.assigned_prover).ok() == Some(ctx.prover);
        let event = match status {
            proto::RequestStatus::Requested => continue,
            proto::RequestStatus::Assigned | proto::RequestStatus::Fulfilled if ours => continue,
            proto::RequestStatus::Assigned | proto::RequestStatus::Fulfilled => {
                CoreEvent::Assigned { id, ours: false }
            }
            other => CoreEvent::Closed { id, why: other.as_str_name().to_lowercase() },
        };
        perform(ctx, prover, ctx.apply(event), None);
    }
    Ok(())
}
