//! The proof retention: accepted proofs are deleted from the ArtifactStore once their request
//! has been closed for [`NetworkConfig::proof_retention`](crate::NetworkConfig), and the
//! request keeps its record with `proof_deleted_at` set. Off by default (proofs kept for ever).
//!
//! The database says what is due (an index over the closing time of requests whose proof is
//! kept), so a sweep reads only what it deletes, whatever the history's size. A proof whose
//! bytes another, younger request also holds is left in the store (one artifact, two records).

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{NetworkState, now_ms};
use crate::{market::Changes, store::StoreError};

/// Requests handled per database read of a sweep.
const SWEEP_BATCH: usize = 256;

/// Sweeps at once and then every `interval`, deleting proofs kept longer than `keep`, until
/// `cancel` fires. A failed sweep is logged and tried again at the next interval.
pub async fn run(
    state: Arc<NetworkState>,
    keep: Duration,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let swept = tokio::select! {
            () = cancel.cancelled() => return,
            swept = sweep(&state, keep) => swept,
        };
        match swept {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(target: "provernet::network", deleted, "proof retention: proofs deleted")
            }
            Err(e) => {
                tracing::warn!(target: "provernet::network", %e, "proof retention sweep failed")
            }
        }
    }
}

/// Deletes every proof due now; returns how many.
async fn sweep(state: &NetworkState, keep: Duration) -> Result<usize, SweepError> {
    let now = now_ms() / 1000;
    let cutoff = now.saturating_sub(keep.as_secs());
    let mut deleted = 0;
    loop {
        let due = state.store.expired_proofs(cutoff, SWEEP_BATCH).await?;
        if due.is_empty() {
            return Ok(deleted);
        }
        let mut changes = Changes::default();
        for mut request in due {
            let Some(proof) = request.proof_artifact_id else { continue };
            if !state.store.proof_kept_since(&proof, cutoff).await? {
                state
                    .artifacts
                    .storage()
                    .delete(&proof)
                    .await
                    .map_err(|e| SweepError::Artifact(e.to_string()))?;
            }
            request.proof_deleted_at = Some(now);
            changes.requests.push(request);
            crate::metrics::proof_deleted();
            deleted += 1;
        }
        // Through the store writer, in order with the market's own writes (a closed request
        // is never written by the market again, so nothing newer is overwritten).
        // Started when this process leads (see `serve`), so there is a writer.
        let Some(writer) = state.writer.get() else { return Ok(deleted) };
        writer.submit(changes).await?;
        state.proofs_deleted.send_modify(|n| *n += 1);
    }
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
enum SweepError {
    /// The database could not be read or written.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The ArtifactStore could not delete a proof.
    #[error("artifact store: {0}")]
    Artifact(String),
}
