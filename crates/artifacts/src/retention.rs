//! [`RetentionSweeper`]: the background task that deletes artifacts whose retention expired.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    error::StorageResult,
    kind::unix_now,
    storage::{ArtifactStorage, SweepReport},
};

/// Deletes expired artifacts every `interval`.
#[derive(Debug)]
pub struct RetentionSweeper {
    storage: ArtifactStorage,
    interval: Duration,
    /// Who sends: `run` after each sweep. Who reads: anyone who [`subscribe`](Self::subscribe)s.
    report_tx: watch::Sender<(u64, SweepReport)>,
}

impl RetentionSweeper {
    /// A sweeper over `storage`.
    pub fn new(storage: ArtifactStorage, interval: Duration) -> Self {
        let (report_tx, _) = watch::channel((0, SweepReport::default()));
        Self { storage, interval, report_tx }
    }

    /// Receives `(sweeps completed, last report)` after every sweep of [`run`](Self::run).
    pub fn subscribe(&self) -> watch::Receiver<(u64, SweepReport)> {
        self.report_tx.subscribe()
    }

    /// One sweep as of `now` (unix seconds).
    ///
    /// # Errors
    /// If the expiry markers cannot be listed.
    pub async fn sweep_once(&self, now: u64) -> StorageResult<SweepReport> {
        self.storage.sweep_expired(now).await
    }

    /// Sweeps at once and then every interval until `cancel` fires. Failures are logged and
    /// retried at the next interval.
    pub async fn run(self, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sweeps = 0u64;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let report = tokio::select! {
                () = cancel.cancelled() => return,
                report = self.sweep_once(unix_now()) => report,
            };
            match report {
                Ok(report) => {
                    if report.deleted > 0 || report.failed > 0 {
                        tracing::info!(
                            target: "provernet::artifacts",
                            deleted = report.deleted,
                            failed = report.failed,
                            "retention sweep"
                        );
                    }
                    sweeps += 1;
                    self.report_tx.send_replace((sweeps, report));
                }
                Err(err) => {
                    tracing::warn!(target: "provernet::artifacts", %err, "retention sweep failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use provernet_types::ArtifactId;

    use super::*;
    use crate::{
        kind::{ArtifactKind, Visibility},
        storage::NewArtifact,
    };

    #[tokio::test(start_paused = true)]
    async fn background_sweeps_delete_expired() {
        let storage = ArtifactStorage::memory();
        let now = unix_now();
        let mut ids = Vec::new();
        for (data, retain) in
            [(&b"old"[..], Some(now - 1)), (b"new", Some(now + 3600)), (b"kept", None)]
        {
            let id = ArtifactId::of(data);
            let new = NewArtifact {
                kind: ArtifactKind::Proof,
                visibility: Visibility::Public,
                retain_until: retain,
            };
            let body =
                futures::stream::iter([Ok::<_, std::io::Error>(Bytes::copy_from_slice(data))]);
            storage.put_stream(id, new, body, 100).await.expect("put");
            ids.push(id);
        }
        let sweeper = RetentionSweeper::new(storage.clone(), Duration::from_secs(60));
        let mut reports = sweeper.subscribe();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(sweeper.run(cancel.clone()));

        reports.changed().await.expect("first sweep");
        assert_eq!(reports.borrow().1.deleted, 1);
        assert!(storage.meta(&ids[0]).await.expect("meta").is_none());
        assert!(storage.meta(&ids[1]).await.expect("meta").is_some());
        assert!(storage.meta(&ids[2]).await.expect("meta").is_some());

        // The next sweep comes one interval later (virtual time).
        reports.changed().await.expect("second sweep");
        assert_eq!(reports.borrow().0, 2);
        cancel.cancel();
        task.await.expect("sweeper stops");
    }
}
