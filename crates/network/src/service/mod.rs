//! The ProverNetwork service: the market behind a mutex, written through to the store, its
//! events published to subscribers, and the gRPC surface.
//!
//! Layout:
//! - this file: [`NetworkState`], which applies market operations durably and publishes events;
//! - `rpc`: the `ProverNetwork` gRPC service;
//! - `convert`: market entities to protocol messages, and errors to gRPC statuses;
//! - `background`: dispatches the background work: the `executor`, the `verifier` and the
//!   auction/deadline timers;
//! - `artifact`: whole artifacts read from the embedded store, bounded and verified;
//! - `limits`: rate limits per account, subscriptions per connection, queue bounds;
//! - `gate`: while this process stands by ([`crate::leader`]), only reads reach the services;
//! - [`retention`]: the proof retention (deletes accepted proofs after a configured age);
//! - [`succinct`]: the Succinct-API facade (SP1's SDK, Succinct-protocol nodes) over the same
//!   state.
//!
//! ```text
//! RPC ──open envelope──▶ NetworkState::apply ──(market mutex)──▶ Market op ──▶ Changes
//!                                                     │ enqueue in order ▼
//!                                              StoreWriter (one transaction per batch)
//!                                                     │ durable, awaited in order by
//!                                                     ▼ the publisher task
//!                          events ──▶ broadcast ──▶ subscribers; executor and timers
//! ```
//!
//! The publisher task takes each operation's changes and events in the order the operations
//! were applied, so subscribers see events in sequence order, and publishes them even when the
//! caller of `apply` is gone (a client that hung up, an RPC timeout). Once an operation that
//! closed requests is durable, it evicts them from the market's memory: reads of the history
//! ([`NetworkState::request`], [`NetworkState::page`]) go to the store for what memory no
//! longer holds.

mod artifact;
mod background;
mod convert;
mod executor;
mod gate;
pub mod limits;
pub mod retention;
mod rpc;
pub mod succinct;
mod verifier;

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use provernet_artifacts::ArtifactServer;
use provernet_types::{Domain, RequestId, proto};
use provernet_zkvm::ZkVmRegistry;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::Status;

pub use self::{background::Background, gate::StandbyGateLayer, rpc::NetworkService};
use crate::{
    NetworkConfig,
    market::{
        Event, Market, MarketError, Outcome, Request as MarketRequest, RequestQuery,
        Status as RequestStatus,
    },
    store::{JournalEntry, SqlStore, StoreError, StoreWriterHandle},
};

/// The statuses of closed requests: those the store answers for once memory lets them go.
const CLOSED: [RequestStatus; 3] =
    [RequestStatus::Fulfilled, RequestStatus::Unfulfillable, RequestStatus::Cancelled];

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Work the background tasks are told about after an operation commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// A new request to execute.
    Execute(RequestId),
    /// Settle this request's auction at this unix millisecond.
    Settle(RequestId, u64),
    /// Sweep deadlines at this unix millisecond.
    Sweep(u64),
    /// Verify the proof submitted for this request.
    Verify(RequestId),
}

/// The state shared by the RPC handlers and the background tasks.
pub struct NetworkState {
    /// The signing domain.
    pub domain: Domain,
    /// The configuration.
    pub config: NetworkConfig,
    /// The zkVM backends.
    pub zkvms: ZkVmRegistry,
    /// The embedded ArtifactStore (storage and URL signer).
    pub artifacts: ArtifactServer,
    /// Rate limits and queue bounds.
    pub limits: limits::Limits,
    /// Artifact reads the executor has retried after a storage failure, for operators (also
    /// a counter in [`crate::metrics`]) and for tests to await.
    pub executor_read_retries: tokio::sync::watch::Sender<u64>,
    /// Batches of proofs the proof retention has deleted, for tests to await (also a counter
    /// in [`crate::metrics`]).
    pub proofs_deleted: tokio::sync::watch::Sender<u64>,
    /// The last journal row a standby applied ([`NetworkState::follow`]), for tests to await.
    pub followed: tokio::sync::watch::Sender<i64>,
    /// The market. A std mutex: no await while held, and operations are short.
    market: Mutex<Market>,
    /// Durable writes, enqueued in operation order while the market lock is held. Unset while
    /// this process stands by ([`crate::leader`]): it then follows the leader's journal
    /// ([`NetworkState::follow`]) and refuses every operation.
    writer: OnceLock<StoreWriterHandle>,
    /// The store, for reads of the history (closed requests leave memory).
    store: SqlStore,
    /// Published events (bounded: slow subscribers are told they lagged).
    events_tx: broadcast::Sender<Published>,
    /// Events published so far, for sequence numbers.
    sequence: AtomicU64,
    /// Work for the background tasks (executor, timers); read by [`Background`].
    work_tx: mpsc::UnboundedSender<Work>,
    /// Applied operations, sent under the market lock (so in operation order) by `apply`; read
    /// by the publisher task. Unbounded: the operation is already applied in memory and must
    /// not be refused; the store writer's queue is what bounds the work in flight.
    publication_tx: mpsc::UnboundedSender<Publication>,
    /// Fired when the network stops ([`Background::run`] returns): ends the subscription
    /// streams, which never end by themselves, so that the gRPC server's graceful shutdown
    /// does not wait for connected subscribers forever.
    closing: CancellationToken,
}

/// The result of [`NetworkState::apply`]: what the operation returned.
type Applied<T> = Result<T, Status>;

/// Resolves once an operation's changes are stored.
type Durable = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

/// An event as published to subscribers: the message, and what subscription filters read of
/// its request at the time (the request may have left memory by the time a subscriber reads
/// the event).
#[derive(Debug, Clone)]
pub struct Published {
    /// The event.
    pub message: proto::RequestEvent,
    /// Its request as it was when the event happened (`None`: unknown).
    pub request: Option<Arc<MarketRequest>>,
}

/// An applied operation waiting to be made durable and published.
struct Publication {
    /// Resolves once the changes are stored.
    durable: Durable,
    /// The events to publish.
    events: Vec<Published>,
    /// What the background tasks owe the requests the events are about
    /// ([`background::follow_up`]).
    work: Vec<Work>,
    /// Requests the operation closed: evicted from memory once the changes are stored.
    closed: Vec<RequestId>,
    /// Tells `apply` whether the changes were stored (its caller may be gone).
    done_tx: oneshot::Sender<Result<(), String>>,
}

/// Makes applied operations durable and publishes their events, one operation at a time in
/// the order they were applied, until every sender is gone.
async fn publish(
    mut publication_rx: mpsc::UnboundedReceiver<Publication>,
    state: Weak<NetworkState>,
    work_tx: mpsc::UnboundedSender<Work>,
    events_tx: broadcast::Sender<Published>,
) {
    while let Some(publication) = publication_rx.recv().await {
        let stored = publication.durable.await.map_err(|e| e.to_string());
        match &stored {
            Ok(()) => {
                if !publication.closed.is_empty()
                    && let Some(state) = state.upgrade()
                {
                    state.market().evict(&publication.closed);
                }
                for w in publication.work {
                    let _ = work_tx.send(w);
                }
                for event in publication.events {
                    // No subscribers is fine.
                    let _ = events_tx.send(event);
                }
            }
            Err(e) => tracing::error!(target: "provernet::network", %e, "store write failed"),
        }
        let _ = publication.done_tx.send(stored);
    }
}

impl NetworkState {
    /// Builds the state around a restored market and spawns its publisher task; returns it
    /// with the receiver of its work. Without a `writer`, it stands by until
    /// [`NetworkState::lead`].
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn new(
        config: NetworkConfig,
        market: Market,
        store: SqlStore,
        writer: Option<StoreWriterHandle>,
        artifacts: ArtifactServer,
        zkvms: ZkVmRegistry,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Work>) {
        let (events_tx, _) = broadcast::channel(config.subscriber_buffer.max(1));
        let (work_tx, work_rx) = mpsc::unbounded_channel();
        let (publication_tx, publication_rx) = mpsc::unbounded_channel();
        let state = Arc::new(Self {
            domain: Domain::new(config.network_id.as_str()),
            limits: limits::Limits::new(&config),
            executor_read_retries: tokio::sync::watch::Sender::new(0),
            proofs_deleted: tokio::sync::watch::Sender::new(0),
            followed: tokio::sync::watch::Sender::new(0),
            config,
            zkvms,
            artifacts,
            market: Mutex::new(market),
            writer: writer.map(OnceLock::from).unwrap_or_default(),
            store,
            events_tx: events_tx.clone(),
            sequence: AtomicU64::new(0),
            work_tx: work_tx.clone(),
            publication_tx,
            closing: CancellationToken::new(),
        });
        tokio::spawn(publish(publication_rx, Arc::downgrade(&state), work_tx, events_tx));
        (state, work_rx)
    }

    /// A request by id, open or closed: from memory while it is there, else from the store.
    ///
    /// # Errors
    /// UNAVAILABLE if the store cannot be read.
    pub async fn request(&self, id: &RequestId) -> Result<Option<MarketRequest>, Status> {
        if let Some(r) = self.market().request(id) {
            return Ok(Some(r.clone()));
        }
        self.store.request(id).await.map_err(store_unavailable)
    }

    /// The requests `query` matches, oldest first: `limit` of them after skipping `skip`, and
    /// whether more follow. Open requests (and closed ones not evicted yet) come from memory,
    /// the rest of the history from the store's indexes.
    ///
    /// # Errors
    /// UNAVAILABLE if the store cannot be read.
    pub async fn page(
        &self,
        query: &RequestQuery,
        skip: usize,
        limit: usize,
    ) -> Result<(Vec<MarketRequest>, bool), Status> {
        let wanted = skip.saturating_add(limit).saturating_add(1);
        // The memory's matches as they are now: a consistent view of the open requests (at most
        // as many clones as there are open requests, whatever the history).
        let in_memory: Vec<MarketRequest> = {
            let market = self.market();
            let mut found: Vec<&MarketRequest> =
                market.requests().filter(|r| query.matches(r)).collect();
            found.sort_by_key(|r| (r.created_at, r.id));
            found.truncate(wanted);
            found.into_iter().cloned().collect()
        };
        // The store answers for closed requests only: an open one's row may be a batch behind
        // memory, and memory holds every open request. A closed request in both is the same.
        let closed = RequestQuery {
            statuses: Some(CLOSED.into_iter().filter(|s| query.admits_status(*s)).collect()),
            ..query.clone()
        };
        let stored_keys = if closed.statuses.as_ref().is_some_and(Vec::is_empty) {
            Vec::new()
        } else {
            self.store.request_keys(&closed, wanted).await.map_err(store_unavailable)?
        };
        let mut keys: Vec<((u64, RequestId), bool)> = in_memory
            .iter()
            .map(|r| ((r.created_at, r.id), true))
            .chain(stored_keys.into_iter().map(|key| (key, false)))
            .collect();
        // Memory first among equal keys, so that dedup keeps memory's version.
        keys.sort_by_key(|(key, from_memory)| (*key, !*from_memory));
        keys.dedup_by_key(|(key, _)| *key);
        let more = keys.len() > skip.saturating_add(limit);
        let page: Vec<((u64, RequestId), bool)> = keys.into_iter().skip(skip).take(limit).collect();
        let from_store: Vec<RequestId> =
            page.iter().filter(|(_, from_memory)| !from_memory).map(|((_, id), _)| *id).collect();
        let mut stored: std::collections::HashMap<RequestId, MarketRequest> = self
            .store
            .requests(&from_store)
            .await
            .map_err(store_unavailable)?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let mut memory: std::collections::HashMap<RequestId, MarketRequest> =
            in_memory.into_iter().map(|r| (r.id, r)).collect();
        let requests = page
            .iter()
            .filter_map(
                |((_, id), from_memory)| {
                    if *from_memory { memory.remove(id) } else { stored.remove(id) }
                },
            )
            .collect();
        Ok((requests, more))
    }

    /// Brings closed request `id` back from the store into the market's memory while the
    /// returned guard lives (see [`Market::recall`]), so that an operation naming it is refused
    /// as it was before the request left memory (e.g. "fulfilled: cannot be cancelled").
    /// Nothing is read when memory holds the request, or the store has no such request.
    ///
    /// # Errors
    /// UNAVAILABLE if the store cannot be read.
    pub async fn recall(&self, id: RequestId) -> Result<Recalled<'_>, Status> {
        if self.market().holds(&id) {
            return Ok(Recalled { state: self, id: None });
        }
        let Some(request) = self.store.request(&id).await.map_err(store_unavailable)? else {
            return Ok(Recalled { state: self, id: None });
        };
        self.market().recall(request);
        Ok(Recalled { state: self, id: Some(id) })
    }

    /// The store the history is read from.
    pub fn store(&self) -> &SqlStore {
        &self.store
    }

    /// Replaces the market with one loaded again (a standby that fell behind the journal).
    pub fn replace_market(&self, market: Market) {
        *self.market() = market;
    }

    /// The market, locked. Never hold across an await.
    pub fn market(&self) -> MutexGuard<'_, Market> {
        // A panic under the lock leaves a market whose every operation was all-or-nothing.
        self.market.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether this process leads: it applies operations. A standby serves reads and
    /// subscriptions from the leader's journal and refuses operations with
    /// [`standby_refusal`].
    pub fn leads(&self) -> bool {
        self.writer.get().is_some()
    }

    /// Starts leading: operations are applied and written through `writer` from now on. Call
    /// once the journal is followed to its end (the last leader can commit nothing more).
    pub fn lead(&self, writer: StoreWriterHandle) {
        let _ = self.writer.set(writer);
    }

    /// Applies a commit of the leader (this process stands by) and publishes its events to this
    /// process's subscribers. Nothing is handed to the background tasks: they run on the leader.
    pub fn follow(&self, entry: &JournalEntry) {
        let mut market = self.market();
        let mut published = Vec::new();
        let mut closed = Vec::new();
        for changes in &entry.operations {
            closed.extend(market.follow(changes));
            for event in &changes.events {
                published.push(self.event_message(&market, event, entry.at_ms));
            }
        }
        market.evict(&closed);
        drop(market);
        for event in published {
            // No subscribers is fine.
            let _ = self.events_tx.send(event);
        }
        crate::metrics::standby_lag(now_ms().saturating_sub(entry.at_ms) as f64 / 1e3);
        self.followed.send_replace(entry.seq);
    }

    /// Subscribes to events.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.events_tx.subscribe()
    }

    /// Runs a market operation, makes its changes durable, then publishes its events and hands
    /// follow-up work to the background tasks.
    ///
    /// # Cancellation safety
    /// The operation and the enqueueing of its changes and events happen before the first
    /// await: once called, the operation takes effect, is stored and its events are published
    /// even if the returned future is dropped.
    pub async fn apply<T>(
        &self,
        op: impl FnOnce(&mut Market, u64) -> Result<(Outcome, T), MarketError>,
    ) -> Applied<T> {
        let Some(writer) = self.writer.get() else { return Err(standby_refusal()) };
        let (done_rx, value) = {
            let mut market = self.market();
            let now = now_ms();
            let (outcome, value) = op(&mut market, now).map_err(convert::market_status)?;
            let changes = outcome.changes;
            if changes.is_empty() {
                return Ok(value);
            }
            let events: Vec<Published> =
                changes.events.iter().map(|e| self.event_message(&market, e, now)).collect();
            // Once per request, whatever its number of events: its state says what it is owed.
            let mut about: Vec<RequestId> = changes.events.iter().map(Event::request_id).collect();
            about.sort_unstable();
            about.dedup();
            let work = about
                .iter()
                .filter_map(|id| market.request(id))
                .flat_map(background::follow_up)
                .collect();
            let closed =
                changes.requests.iter().filter(|r| r.status.is_closed()).map(|r| r.id).collect();
            let durable = Box::pin(writer.submit(changes)) as Durable;
            let (done_tx, done_rx) = oneshot::channel();
            // Sent while the market is locked: publications queue in operation order.
            let publication = Publication { durable, events, work, closed, done_tx };
            if self.publication_tx.send(publication).is_err() {
                return Err(Status::unavailable("the network is stopping"));
            }
            (done_rx, value)
        };
        match done_rx.await {
            Ok(Ok(())) => Ok(value),
            Ok(Err(e)) => {
                Err(Status::unavailable(format!("the network could not store the change: {e}")))
            }
            Err(_) => Err(Status::unavailable("the network is stopping")),
        }
    }

    /// Ends every subscription stream (with UNAVAILABLE, so that subscribers reconnect) and
    /// refuses new ones: the network is stopping.
    pub fn close_streams(&self) {
        self.closing.cancel();
    }

    /// Fires when [`close_streams`](Self::close_streams) is called.
    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    /// Hands work to the background tasks directly (used when restoring).
    pub fn schedule(&self, work: Work) {
        let _ = self.work_tx.send(work);
    }

    fn event_message(&self, market: &Market, event: &Event, now_ms: u64) -> Published {
        use proto::request_event::Event as E;
        let id = event.request_id();
        let request = market.request(&id);
        let body = match event {
            Event::Created(_) => {
                E::Created(proto::RequestCreated { request: request.map(convert::request) })
            }
            Event::Executed(_) => {
                let (pgus, outputs) = match request.map(|r| &r.execution) {
                    Some(crate::market::Execution::Executed { pgus, outputs }) => {
                        (*pgus, outputs.clone())
                    }
                    _ => (0, Vec::new()),
                };
                E::Executed(proto::RequestExecuted { pgus, public_outputs: outputs })
            }
            Event::Unexecutable(_) => E::Unexecutable(proto::RequestUnexecutable {
                reason: match request.map(|r| &r.execution) {
                    Some(crate::market::Execution::Unexecutable { reason }) => reason.clone(),
                    _ => String::new(),
                },
            }),
            Event::Assigned(_) => {
                let a = request.and_then(|r| r.assignment.as_ref());
                E::Assigned(proto::RequestAssigned {
                    prover: a.map(|a| a.prover.as_bytes().to_vec()).unwrap_or_default(),
                    price_per_pgu: a.map(|a| a.price_per_pgu.to_string()).unwrap_or_default(),
                })
            }
            Event::ProofSubmitted(_) => E::ProofSubmitted(proto::ProofSubmitted {
                proof_artifact_id: request
                    .and_then(|r| r.pending_proof.as_ref())
                    .map(|p| p.artifact.as_bytes().to_vec())
                    .unwrap_or_default(),
            }),
            Event::ProofRejected(_) => E::ProofRejected(proto::ProofRejected {
                reason: request.and_then(|r| r.rejected_proof.clone()).unwrap_or_default(),
            }),
            Event::Fulfilled(_) => E::Fulfilled(proto::RequestFulfilled {
                proof_artifact_id: request
                    .and_then(|r| r.proof_artifact_id)
                    .map(|a| a.as_bytes().to_vec())
                    .unwrap_or_default(),
            }),
            Event::Unfulfillable(_) => E::Unfulfillable(proto::RequestUnfulfillable {
                reason: request.and_then(|r| r.close_reason.clone()).unwrap_or_default(),
            }),
            Event::Cancelled(_) => E::Cancelled(proto::RequestCancelled {}),
        };
        let message = proto::RequestEvent {
            request_id: id.as_bytes().to_vec(),
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed) + 1,
            at: now_ms / 1000,
            event: Some(body),
        };
        Published { message, request: request.cloned().map(Arc::new) }
    }
}

/// A closed request recalled into memory by [`NetworkState::recall`]; released on drop.
#[must_use = "the request is released when this is dropped"]
pub struct Recalled<'a> {
    state: &'a NetworkState,
    /// The request recalled (`None`: nothing was).
    id: Option<RequestId>,
}

impl Drop for Recalled<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.state.market().release(&id);
        }
    }
}

/// What a standby answers an operation: UNAVAILABLE, so that a client of several addresses
/// tries the leader.
pub fn standby_refusal() -> Status {
    Status::unavailable(
        "[PN-NETWORK-STANDBY] this network process stands by: it serves reads and \
         subscriptions; operations go to the leading process",
    )
}

/// A store that cannot be read, as the status a client gets.
fn store_unavailable(e: StoreError) -> Status {
    Status::unavailable(format!("the network cannot read its database: {e}"))
}
