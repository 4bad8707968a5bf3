//! Hot standby on PostgreSQL: of the `provernet network` processes sharing one database,
//! exactly one leads (applies operations and writes); the others stand by, following what it
//! commits, and take over when it is gone.
//!
//! ```text
//! standby: load the market once, then every FOLLOW_POLL apply the leader's journal rows
//!   (store::journal) to it and publish their events: it serves reads and subscriptions, and
//!   refuses operations (service::gate; its health check says NOT_SERVING)
//!   every POLL, pg_try_advisory_lock(LOCK, schema) on its own connection
//!   won ─▶ epoch += 1 in network_leader (waits for the old leader's commits in flight)
//!        ─▶ apply the journal to its end ─▶ lead: writer, auctions, deadlines, executor re-armed
//! leader: every WATCH, take the lock again (a no-op while its connection lives; on a new
//!   connection, only if no standby took it) and check the epoch is still its own ─▶ carry on,
//!   or step down (stop the network)
//! every commit: SELECT epoch … FOR SHARE in the commit's transaction; not ours ─▶ Deposed
//! ```
//!
//! The advisory lock elects; the epoch fences. A leader that lost its lock connection (a
//! network partition, the database restarting) may still hold pooled connections that work:
//! its commits check the epoch in their own transaction, and the new leader's increment waits
//! for the commits holding it, so once a standby has taken over, nothing the old leader does
//! lands, and the journal it reads to its end holds every commit there will be. PostgreSQL
//! frees a session's advisory lock when its connection closes, so a killed leader is replaced
//! as soon as its standby next polls.

use std::{future::Future, time::Duration};

use sqlx::{PgPool, postgres::PgPoolOptions};
use tokio_util::sync::CancellationToken;

use crate::store::StoreError;

/// How often a standby tries for the lock.
pub const POLL: Duration = Duration::from_millis(100);

/// How often the leader checks that its lock connection is alive.
pub const WATCH: Duration = Duration::from_secs(1);

/// The advisory lock's first key (the second is the hash of the schema, so networks in
/// different schemas of one database elect apart).
const LOCK: i32 = 0x7072_6f76;

const TABLE: &str = "
CREATE TABLE IF NOT EXISTS network_leader (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL,
    holder TEXT NOT NULL,
    since TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// The leadership of the network in one PostgreSQL database, held by this process.
#[derive(Debug)]
pub struct Leadership {
    holder: String,
    epoch: i64,
    /// One connection, kept: the session that holds the lock (replaced by the pool if it
    /// breaks, which [`Self::hold`] then checks).
    lock: PgPool,
}

impl Leadership {
    /// Waits until this process leads the network in the database at `url`, announcing itself
    /// as `holder` (for operators: host, process, address). `None` if `cancel` fires first.
    ///
    /// # Errors
    /// [`StoreError::Open`] if the database cannot be reached at first; later connection
    /// losses while standing by are retried.
    #[allow(clippy::manual_async_fn, reason = "spells out `Send`, see `SqlStore::load`")]
    pub fn acquire<'a>(
        url: &'a str,
        holder: &'a str,
        cancel: &'a CancellationToken,
    ) -> impl Future<Output = Result<Option<Self>, StoreError>> + Send + 'a {
        Self::acquire_inner(url, holder, cancel)
    }

    async fn acquire_inner(
        url: &str,
        holder: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<Self>, StoreError> {
        let open = |source: sqlx::Error| StoreError::Open {
            url: crate::store::redact_url(url),
            source: std::sync::Arc::new(source),
        };
        let lock = PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(open)?;
        let mut announced = false;
        loop {
            match try_lock(&lock).await {
                Ok(true) => break,
                Ok(false) if !announced => {
                    announced = true;
                    crate::metrics::leading(false, 0);
                    tracing::info!(target: "provernet::network", "standing by: another network process leads this database");
                }
                Ok(false) => {}
                // The pool connects again at the next try.
                Err(e) => {
                    tracing::warn!(target: "provernet::network", %e, "standby cannot reach the database");
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(None),
                () = tokio::time::sleep(POLL) => {}
            }
        }
        sqlx::raw_sql(TABLE).execute(&lock).await?;
        let epoch: i64 = sqlx::query_scalar(
            "INSERT INTO network_leader (id, epoch, holder) VALUES (1, 1, $1)
             ON CONFLICT (id) DO UPDATE SET epoch = network_leader.epoch + 1,
                 holder = EXCLUDED.holder, since = now()
             RETURNING epoch",
        )
        .bind(holder)
        .fetch_one(&lock)
        .await?;
        crate::metrics::leading(true, epoch);
        tracing::info!(target: "provernet::network", epoch, holder, "leading the network");
        Ok(Some(Self { holder: holder.to_owned(), epoch, lock }))
    }

    /// The epoch this leadership holds: every commit checks it.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Keeps the leadership until `stop` fires; cancels `step_down` (stopping the network) when
    /// it is lost: another process leads now.
    pub async fn hold(self, stop: CancellationToken, step_down: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(WATCH) => {}
            }
            match self.still_leads().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(target: "provernet::network", code = "PN-NETWORK-DEPOSED", epoch = self.epoch, holder = %self.holder, "another network process leads now: stepping down");
                    crate::metrics::leading(false, self.epoch);
                    step_down.cancel();
                    break;
                }
                // The database is away: commits fail (and are fenced) meanwhile; try again.
                Err(e) => {
                    tracing::warn!(target: "provernet::network", %e, "cannot reach the database to check the leadership");
                }
            }
        }
        self.lock.close().await;
    }

    /// Whether this process holds the lock (taking it again if its connection was replaced
    /// and no one took it meanwhile) at its own epoch.
    async fn still_leads(&self) -> Result<bool, sqlx::Error> {
        if !try_lock(&self.lock).await? {
            return Ok(false);
        }
        let current: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM network_leader WHERE id = 1")
                .fetch_optional(&self.lock)
                .await?;
        Ok(current == Some(self.epoch))
    }
}

/// Takes the advisory lock if free (or already this session's: it stacks, and all of a
/// session's locks go with it).
async fn try_lock(lock: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext(current_schema()))")
        .bind(LOCK)
        .fetch_one(lock)
        .await
}
