//! [`StoreWriter`]: group commit of the market's [`Changes`].
//!
//! The market applies an operation in memory under its own (std) mutex and, still holding it,
//! calls [`StoreWriterHandle::submit`], which queues the operation's `Changes` at once, so the
//! queue's order is the order in which the market applied them. The caller releases the mutex
//! and awaits the returned future, which resolves once the change is durable; only then does it
//! answer its client. The writer task takes everything queued (up to [`MAX_BATCH_CHANGES`]),
//! writes it in one transaction ([`SqlStore::commit`]), and answers every waiter.
//!
//! ```text
//! market op ──submit (sync enqueue, call order)──▶ jobs (unbounded mpsc, slots: Semaphore)
//!   ──StoreWriter::run: recv_many ≤ MAX_BATCH_CHANGES──▶ SqlStore::commit (one transaction)
//!   ──done_tx (oneshot) per job──▶ submit's future resolves ──▶ client answered
//! ```
//!
//! **Bound and backpressure.** A bounded channel cannot take a change in call order when it is
//! full (a waiting sender would race later callers), and the change is already applied in
//! memory, so it must not be refused. The queue is therefore an unbounded channel, and its
//! bound is a semaphore of [`CHANGES_CHANNEL_CAPACITY`] slots, each released when its change
//! has been written:
//! - [`StoreWriterHandle::reserve`] waits for a free slot (backpressure). A market that calls it
//!   *before* taking its mutex, then [`SubmitSlot::submit`] under the mutex, keeps the queue
//!   within the capacity.
//! - [`StoreWriterHandle::submit`] takes a free slot if there is one and otherwise queues the
//!   change anyway (over capacity): the queue is then bounded by the capacity plus the number of
//!   callers awaiting their changes, which the server's concurrency limit bounds.
//!
//! **Failure.** If a commit fails (after [`COMMIT_ATTEMPTS`] tries for a retryable error, or
//! for [`COMMIT_OUTAGE`] while the database cannot be reached: a PostgreSQL restart),
//! every waiter of that batch gets the error, every change still queued gets
//! [`StoreError::WriterStopped`], and the writer stops, returning the error. Memory then holds
//! changes the database does not: the network must shut down, and on restart it reloads its
//! state from the database, which holds exactly the changes whose callers were told "durable".

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::{SqlStore, error::StoreError};
use crate::market::Changes;

/// How many submitted [`Changes`] may wait to be written before [`StoreWriterHandle::reserve`]
/// waits. A few group commits' worth: enough to keep the writer busy at ≥ 5,000 operations/s
/// while a commit is in flight, small enough that a stalled database stops callers within
/// seconds instead of letting memory grow.
pub const CHANGES_CHANNEL_CAPACITY: usize = 4 * MAX_BATCH_CHANGES;

/// The most [`Changes`] written in one transaction. Bigger batches amortise the commit (an
/// fsync on SQLite, a round trip on PostgreSQL) further but make every waiter in them wait for
/// the whole batch.
pub const MAX_BATCH_CHANGES: usize = 1_024;

/// How many times a batch is tried when its commit fails with a retryable error
/// ([`StoreError::is_retryable`]). A failed transaction is rolled back and every write is an
/// upsert of an entity's whole state, so writing the batch again is safe.
pub const COMMIT_ATTEMPTS: u32 = 3;

/// Pause before the second try of a failed commit; doubled before each later one, up to
/// [`COMMIT_RETRY_MAX_BACKOFF`].
const COMMIT_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// The longest pause between tries of a failed commit.
const COMMIT_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How long a commit is tried again while the database cannot be reached (a server restart):
/// the batch's callers wait meanwhile; then the writer stops as for any failed commit.
pub const COMMIT_OUTAGE: Duration = Duration::from_secs(60);

/// One submitted [`Changes`] and whom to tell when it is written.
struct Job {
    changes: Changes,
    done_tx: oneshot::Sender<Result<(), StoreError>>,
    /// The queue slot this job holds, released when the job is answered (none if it was
    /// submitted over capacity).
    _slot: Option<OwnedSemaphorePermit>,
}

/// The group-commit writer: the task that owns the queue's receiving end and the store.
pub struct StoreWriter {
    store: SqlStore,
    /// Sent by every [`StoreWriterHandle`] clone; read only by [`StoreWriter::run`].
    jobs_rx: mpsc::UnboundedReceiver<Job>,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter").field("store", &self.store.url()).finish_non_exhaustive()
    }
}

/// A cloneable handle to submit [`Changes`] to a [`StoreWriter`].
#[derive(Debug, Clone)]
pub struct StoreWriterHandle {
    jobs_tx: mpsc::UnboundedSender<Job>,
    slots: Arc<Semaphore>,
}

/// A reserved place in the writer's queue, from [`StoreWriterHandle::reserve`]. Dropping it
/// unused gives the place back.
#[derive(Debug)]
pub struct SubmitSlot {
    jobs_tx: mpsc::UnboundedSender<Job>,
    slot: OwnedSemaphorePermit,
}

impl StoreWriter {
    /// A writer over `store` and the handle that feeds it; run it with [`StoreWriter::run`].
    pub fn new(store: SqlStore) -> (StoreWriter, StoreWriterHandle) {
        let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
        let slots = Arc::new(Semaphore::new(CHANGES_CHANNEL_CAPACITY));
        let writer = StoreWriter { store, jobs_rx, slots: Arc::clone(&slots) };
        (writer, StoreWriterHandle { jobs_tx, slots })
    }

    /// Starts a writer over `store` on the current tokio runtime.
    ///
    /// The task ends with `Ok(())` when `cancel` fires (after writing everything queued until
    /// then) or when every handle is dropped, and with the error of a failed commit.
    pub fn spawn(
        store: SqlStore,
        cancel: CancellationToken,
    ) -> (StoreWriterHandle, JoinHandle<Result<(), StoreError>>) {
        let (writer, handle) = StoreWriter::new(store);
        (handle, tokio::spawn(writer.run(cancel)))
    }

    /// Writes queued changes in batches until `cancel` fires or every handle is dropped.
    ///
    /// On cancellation it stops taking changes (later submits get
    /// [`StoreError::WriterStopped`]), writes those already queued, and returns.
    ///
    /// # Errors
    /// The error of a commit that failed; every waiter has been answered by then and the writer
    /// has stopped (see the module docs).
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), StoreError> {
        let mut jobs = Vec::with_capacity(MAX_BATCH_CHANGES);
        loop {
            let received = tokio::select! {
                // Cancellation first, so that a steady stream of changes cannot delay shutdown;
                // what is queued by then is still written below.
                biased;
                () = cancel.cancelled() => break,
                received = self.jobs_rx.recv_many(&mut jobs, MAX_BATCH_CHANGES) => received,
            };
            if received == 0 {
                tracing::debug!(target: "provernet::store", "every writer handle dropped");
                return Ok(());
            }
            self.write(&mut jobs).await?;
        }
        // Cancelled: refuse new changes, then write what was queued before that.
        self.jobs_rx.close();
        self.slots.close();
        while self.jobs_rx.recv_many(&mut jobs, MAX_BATCH_CHANGES).await > 0 {
            self.write(&mut jobs).await?;
        }
        tracing::debug!(target: "provernet::store", "store writer stopped on shutdown");
        Ok(())
    }

    /// Commits `jobs` (emptied) as one batch and answers each; on failure also answers every
    /// job still queued and closes the queue.
    async fn write(&mut self, jobs: &mut Vec<Job>) -> Result<(), StoreError> {
        let batch: Vec<Changes> =
            jobs.iter_mut().map(|job| std::mem::take(&mut job.changes)).collect();
        let started = std::time::Instant::now();
        let result = self.commit_with_retries(&batch).await;
        match &result {
            Ok(()) => tracing::debug!(
                target: "provernet::store",
                changes = batch.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "batch committed"
            ),
            Err(err) => tracing::error!(
                target: "provernet::store",
                %err,
                changes = batch.len(),
                "batch commit failed; the store writer stops and the network must restart"
            ),
        }
        for job in jobs.drain(..) {
            // A waiter that went away (its future dropped) needs no answer.
            let _ = job.done_tx.send(result.clone());
        }
        if let Err(err) = result {
            self.jobs_rx.close();
            self.slots.close();
            while let Some(job) = self.jobs_rx.recv().await {
                let _ = job.done_tx.send(Err(StoreError::WriterStopped));
            }
            return Err(err);
        }
        Ok(())
    }

    async fn commit_with_retries(&self, batch: &[Changes]) -> Result<(), StoreError> {
        let mut backoff = COMMIT_RETRY_BACKOFF;
        let mut attempt = 1;
        let started = std::time::Instant::now();
        loop {
            match self.store.commit(batch).await {
                Err(err)
                    if err.is_retryable()
                        && (attempt < COMMIT_ATTEMPTS
                            || (err.is_unreachable() && started.elapsed() < COMMIT_OUTAGE)) =>
                {
                    tracing::warn!(
                        target: "provernet::store",
                        %err,
                        attempt,
                        "batch commit failed, retrying"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(COMMIT_RETRY_MAX_BACKOFF);
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

impl StoreWriterHandle {
    /// Queues `changes` to be written, and returns a future that resolves when they are
    /// durable (or their batch failed).
    ///
    /// The change is queued here, synchronously, before this returns: calls made in some order
    /// (for example under the market's mutex) are written in that order, and a later change to
    /// the same entity wins. If no queue slot is free the change is queued anyway (see the
    /// module docs on the bound); use [`StoreWriterHandle::reserve`] first to wait for one.
    /// Submitting empty `Changes` writes nothing and resolves once everything queued before it
    /// is durable.
    ///
    /// # Errors
    /// The future resolves to the batch's commit error, or [`StoreError::WriterStopped`] if the
    /// writer had stopped (or stops before writing this change).
    ///
    /// # Cancellation safety
    /// The change is queued before the future is first polled. Dropping the future does not
    /// withdraw the change: it is still written; only the notification is lost.
    pub fn submit(
        &self,
        changes: Changes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static + use<> {
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok();
        enqueue(&self.jobs_tx, changes, slot)
    }

    /// Waits for a free slot in the writer's queue (backpressure while
    /// [`CHANGES_CHANNEL_CAPACITY`] changes wait to be written).
    ///
    /// Call it before taking the lock under which the change is made, then
    /// [`SubmitSlot::submit`] under the lock.
    ///
    /// # Errors
    /// [`StoreError::WriterStopped`] if the writer has stopped.
    ///
    /// # Cancellation safety
    /// Cancel-safe: dropping the future before it resolves reserves nothing.
    pub async fn reserve(&self) -> Result<SubmitSlot, StoreError> {
        let slot =
            Arc::clone(&self.slots).acquire_owned().await.map_err(|_| StoreError::WriterStopped)?;
        Ok(SubmitSlot { jobs_tx: self.jobs_tx.clone(), slot })
    }

    /// Whether the writer has stopped taking changes.
    pub fn is_closed(&self) -> bool {
        self.jobs_tx.is_closed()
    }
}

impl SubmitSlot {
    /// Queues `changes` in this slot; the same as [`StoreWriterHandle::submit`] (see there for
    /// errors and cancellation safety), but never over capacity.
    pub fn submit(
        self,
        changes: Changes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static + use<> {
        enqueue(&self.jobs_tx, changes, Some(self.slot))
    }
}

/// Queues a job now and returns the future of its answer.
fn enqueue(
    jobs_tx: &mpsc::UnboundedSender<Job>,
    changes: Changes,
    slot: Option<OwnedSemaphorePermit>,
) -> impl Future<Output = Result<(), StoreError>> + Send + 'static + use<> {
    let (done_tx, done_rx) = oneshot::channel();
    let queued = jobs_tx.send(Job { changes, done_tx, _slot: slot }).is_ok();
    async move {
        if !queued {
            return Err(StoreError::WriterStopped);
        }
        // A dropped sender means the writer stopped (or panicked) without answering.
        done_rx.await.unwrap_or(Err(StoreError::WriterStopped))
    }
}
