//! The NodeBidder's loop: follows the network's request stream, decides on each executed
//! request with [`decide`](super::decide), signs and sends bids, and tracks every bid to won,
//! lost or expired. Won requests become jobs for the prover.
//!
//! The stream is the only trigger (no polling). After connecting, and after a gap (the stream
//! broke or said it lagged), the bidder lists what it may have missed: open executed requests
//! it has not decided on, requests assigned to this prover, and the fate of its open bids.

use std::{sync::Arc, time::Duration};

use proto::request_event::Event;
use provernet_types::{Address, Amount, RequestId, RequestSpec, field, proto};
use tokio::sync::{mpsc, watch};

use super::{Offer, Skip, decide};
use crate::{
    context::{NodeContext, now_secs, version_and_mode},
    store::BidRecord,
};

/// How long a decision is remembered (longer than any auction).
const DECISION_HORIZON_SECS: u64 = 3_600;
/// The longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the bidder tells the prover.
#[derive(Debug, Clone)]
pub enum ProverCommand {
    /// A request was assigned to this prover.
    Assigned(Box<proto::ProofRequest>),
    /// A request closed (fulfilled, unfulfillable or cancelled): stop any work on it.
    Closed(RequestId, String),
}

/// Runs the bidder until shutdown; `subscribed` follows whether the request stream is up.
pub async fn run(
    ctx: Arc<NodeContext>,
    prover: mpsc::UnboundedSender<ProverCommand>,
    subscribed: watch::Sender<bool>,
) {
    let mut backoff = Duration::from_millis(100);
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
                            if on_event(&ctx, &prover, event)
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
    event: proto::RequestEvent,
) -> bool {
    let Ok(id) = RequestId::from_slice(&event.request_id) else {
        return matches!(event.event, Some(Event::Lagged(_)));
    };
    match event.event {
        Some(Event::Created(created)) => {
            if let Some(request) = created.request {
                ctx.book().pending.insert(id, request);
            }
        }
        Some(Event::Executed(executed)) => {
            let request = ctx.book().pending.remove(&id);
            match request {
                Some(mut request) => {
                    request.pgus = executed.pgus;
                    request.public_outputs = executed.public_outputs;
                    consider(ctx, request);
                }
                // Created before this node subscribed: read it.
                None => {
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        match ctx.client.proof_request(&id).await {
                            Ok(request) => consider(&ctx, request),
                            Err(e) => tracing::warn!(%id, "cannot read an executed request: {e}"),
                        }
                    });
                }
            }
        }
        Some(Event::Assigned(assigned)) => {
            let winner = Address::from_slice(&assigned.prover).ok();
            if winner == Some(ctx.prover) {
                won(ctx, prover, id);
            } else {
                resolve(ctx, id, "lost", None);
            }
        }
        Some(Event::Unexecutable(_)) => {
            ctx.book().pending.remove(&id);
        }
        Some(Event::Fulfilled(_)) => closed(ctx, prover, id, "fulfilled"),
        Some(Event::Unfulfillable(u)) => {
            closed(ctx, prover, id, &format!("unfulfillable: {}", u.reason))
        }
        Some(Event::Cancelled(_)) => closed(ctx, prover, id, "cancelled by the requester"),
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
    ctx: &NodeContext,
    prover: &mpsc::UnboundedSender<ProverCommand>,
    id: RequestId,
    why: &str,
) {
    let mut book = ctx.book();
    book.pending.remove(&id);
    let job = book.jobs.contains_key(&id);
    drop(book);
    resolve(ctx, id, "expired", None);
    if job {
        let _ = prover.send(ProverCommand::Closed(id, why.to_owned()));
    }
}

/// Resolves an open bid on `id` as `outcome`.
fn resolve(ctx: &NodeContext, id: RequestId, outcome: &'static str, reason: Option<String>) {
    let mut book = ctx.book();
    let Some((cost, price)) = book.outstanding.remove(&id) else { return };
    match outcome {
        "won" => book.won += 1,
        "lost" => book.lost += 1,
        _ => book.expired += 1,
    }
    drop(book);
    let record = BidRecord {
        id,
        at: now_secs(),
        price_per_pgu: Some(price),
        pgus: cost.pgus,
        outcome: outcome.into(),
        reason,
    };
    let store = ctx.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.record_bid(&record).await {
            tracing::error!("cannot record a bid outcome: {e}");
        }
    });
}

/// This prover won `id`: the bid becomes a job.
fn won(ctx: &Arc<NodeContext>, prover: &mpsc::UnboundedSender<ProverCommand>, id: RequestId) {
    let cost = ctx.book().outstanding.get(&id).map(|(c, _)| *c);
    resolve(ctx, id, "won", None);
    if let Some(cost) = cost {
        ctx.book().jobs.insert(id, cost);
    }
    let ctx = ctx.clone();
    let prover = prover.clone();
    // The assignment's price and state come from the network's record.
    tokio::spawn(async move {
        match ctx.client.proof_request(&id).await {
            Ok(request) => {
                ctx.book().jobs.insert(id, ctx.request_cost(&request));
                let _ = prover.send(ProverCommand::Assigned(Box::new(request)));
            }
            Err(e) => tracing::error!(%id, "won a request but cannot read it: {e}"),
        }
    });
}

/// Decides on an executed request and, if the decision is to bid, sends the bid.
fn consider(ctx: &Arc<NodeContext>, request: proto::ProofRequest) {
    let Ok(id) = RequestId::from_slice(&request.request_id) else { return };
    if !ctx.config.bidding.enabled || ctx.shutdown.is_cancelled() {
        return;
    }
    let now = now_secs();
    let received = std::time::Instant::now();
    let decision = {
        let mut book = ctx.book();
        if book.decided.contains_key(&id) {
            return;
        }
        book.decided.insert(id, now);
        if book.decided.len() > 10_000 {
            book.prune(now, DECISION_HORIZON_SECS);
        }
        let (version, mode) = version_and_mode(&request);
        let decision = offer(ctx, &request).map_err(|e| ("malformed", e)).and_then(|offer| {
            let state = ctx.node_state(version, mode, &book);
            let unsupported = Skip::UnsupportedVersion(version.to_owned());
            let pricing = ctx.pricing.get(version).ok_or(unsupported);
            pricing
                .and_then(|pricing| decide(&offer, &state, pricing.as_ref()))
                .map_err(|skip| (skip.label(), skip.to_string()))
        });
        match decision {
            Ok(price) => {
                book.outstanding.insert(id, (ctx.request_cost(&request), price));
            }
            Err(_) => book.skipped += 1,
        }
        decision
    };
    match decision {
        Ok(price) => {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                send_bid(&ctx, id, request.pgus, price, received).await;
            });
        }
        Err((label, reason)) => {
            tracing::debug!(%id, "skipped: {reason}");
            metrics::counter!("node_skips_total", "reason" => label).increment(1);
            let record = BidRecord {
                id,
                at: now,
                price_per_pgu: None,
                pgus: request.pgus,
                outcome: "skipped".into(),
                reason: Some(reason),
            };
            let store = ctx.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.record_bid(&record).await {
                    tracing::error!("cannot record a skip: {e}");
                }
            });
        }
    }
}

/// What the decision needs of `request`.
fn offer(ctx: &NodeContext, request: &proto::ProofRequest) -> Result<Offer, String> {
    let body = request.body.as_ref().ok_or("malformed request: no body")?;
    let spec = RequestSpec::try_from(body).map_err(|e| format!("malformed request: {e}"))?;
    let auction_end = (request.created_at + body.min_auction_period).max(now_secs());
    Ok(Offer {
        zkvm_version: spec.zkvm_version.clone(),
        pgus: request.pgus,
        max_price_per_pgu: spec.max_price_per_pgu,
        deadline: spec.deadline,
        auction_end,
        admitted: spec.admits(&ctx.prover),
    })
}

/// Signs and sends a bid; a refused bid is released.
async fn send_bid(
    ctx: &NodeContext,
    id: RequestId,
    pgus: u64,
    price: Amount,
    received: std::time::Instant,
) {
    let result = ctx.client.bid(&ctx.operator, &ctx.prover, &id, price).await;
    match result {
        Ok(()) => {
            metrics::histogram!("node_bid_latency_seconds")
                .record(received.elapsed().as_secs_f64());
            metrics::counter!("node_bids_total", "outcome" => "bid").increment(1);
            tracing::info!(%id, pgus, %price, "bid");
            let record = BidRecord {
                id,
                at: now_secs(),
                price_per_pgu: Some(price),
                pgus,
                outcome: "bid".into(),
                reason: None,
            };
            if let Err(e) = ctx.store.record_bid(&record).await {
                tracing::error!("cannot record a bid: {e}");
            }
        }
        Err(e) => {
            // A request that settled or closed before the bid arrived is the market's ordinary
            // race, not a fault of this node.
            if e.code() == Some(tonic::Code::FailedPrecondition) {
                tracing::info!(%id, "bid too late: {e}");
            } else {
                tracing::warn!(%id, "bid refused: {e}");
            }
            ctx.book().outstanding.remove(&id);
            metrics::counter!("node_bids_total", "outcome" => "refused").increment(1);
            let record = BidRecord {
                id,
                at: now_secs(),
                price_per_pgu: Some(price),
                pgus,
                outcome: "refused".into(),
                reason: Some(e.to_string()),
            };
            if let Err(e) = ctx.store.record_bid(&record).await {
                tracing::error!("cannot record a refused bid: {e}");
            }
        }
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
            consider(ctx, request);
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
        resolve(ctx, id, "won", None);
        ctx.book().jobs.insert(id, ctx.request_cost(&request));
        let _ = prover.send(ProverCommand::Assigned(Box::new(request)));
    }
    let open_bids: Vec<RequestId> = ctx.book().outstanding.keys().copied().collect();
    for id in open_bids {
        let request = ctx.client.proof_request(&id).await?;
        let status = proto::RequestStatus::try_from(request.status).unwrap_or_default();
        match status {
            proto::RequestStatus::Requested => {}
            proto::RequestStatus::Assigned | proto::RequestStatus::Fulfilled
                if Address::from_slice(&request.assigned_prover).ok() == Some(ctx.prover) => {}
            proto::RequestStatus::Assigned | proto::RequestStatus::Fulfilled => {
                resolve(ctx, id, "lost", None);
            }
            _ => resolve(ctx, id, "expired", None),
        }
    }
    Ok(())
}
