//! The journal: the leader's commits, in order, for standbys to follow (PostgreSQL only).
//!
//! Every commit of a leader on PostgreSQL appends one row to `network_journal` in the same
//! transaction as its entity rows: the batch's [`Changes`] as JSON, each with its operation's
//! events. A standby reads the rows after the last one it applied ([`SqlStore::journal_after`])
//! and applies them to its own market in memory, so that it serves reads and subscriptions, and
//! has nothing to load when it takes over.
//!
//! ```text
//! leader: commit(batch) ──one transaction──▶ entity rows + journal row (seq, at_ms, batch)
//!                                        └─▶ every PRUNE_EVERY rows: delete all but JOURNAL_KEEP
//! standby: load the market (after reading the head seq) ──▶ every FOLLOW_POLL:
//!   rows with seq > last ──▶ Market::follow + publish events ──▶ last = their seq
//!   (rows it needs are gone: load the market again)
//! ```
//!
//! Order: one leader commits at a time (its writer is one task, and the epoch fence keeps a
//! deposed leader's commits out once a standby takes over), so rows become visible in `seq`
//! order and reading "after the last seq seen" misses none. Replaying a row the loaded snapshot
//! already holds is harmless: every entity in it is the entity's whole state, and bids are kept
//! by their place in the auction.

use std::time::Duration;

use serde::Serialize;
use sqlx::{PgPool, Row};

use super::error::{Result, StoreError};
use crate::market::Changes;

/// How many of the last journal rows the leader keeps: at the leader's busiest (a group commit
/// every few milliseconds) a minute or two of changes, enough for a standby that paused to catch
/// up, and a bounded table (a row is one commit: at most [`super::MAX_BATCH_CHANGES`]
/// operations). A standby further behind loads the market again.
pub const JOURNAL_KEEP: i64 = 10_000;

/// Every how many appended rows the leader deletes the ones beyond [`JOURNAL_KEEP`].
const PRUNE_EVERY: i64 = 256;

/// How often a standby reads the journal.
pub const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// The most journal rows a standby reads at once.
pub const FOLLOW_BATCH: i64 = 256;

/// One journal row: a commit of the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Its place in the journal.
    pub seq: i64,
    /// When the leader wrote it (unix milliseconds).
    pub at_ms: u64,
    /// The operations it committed, in the order the market applied them.
    pub operations: Vec<Changes>,
}

/// What [`SqlStore::journal_after`] found.
///
/// [`SqlStore::journal_after`]: super::SqlStore::journal_after
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// The rows after the one asked for (none: nothing new).
    Entries(Vec<JournalEntry>),
    /// Rows after the one asked for are gone (pruned): load the market again.
    Lost,
}

/// The journal row of `batch`.
pub(super) fn encode(batch: &[Changes]) -> Result<String> {
    #[derive(Serialize)]
    struct Body<'a> {
        operations: &'a [Changes],
    }
    serde_json::to_string(&Body { operations: batch }).map_err(|e| StoreError::Encode {
        table: "network_journal",
        key: "(new)".into(),
        reason: e.to_string(),
    })
}

/// Appends `body` to the journal in `tx` (the commit's transaction), deleting old rows now and
/// then.
pub(super) async fn append(
    tx: &mut sqlx::PgConnection,
    at_ms: u64,
    body: String,
) -> Result<(), sqlx::Error> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO network_journal (at_ms, body) VALUES ($1, $2) RETURNING seq",
    )
    .bind(i64::try_from(at_ms).unwrap_or(i64::MAX))
    .bind(body)
    .fetch_one(&mut *tx)
    .await?;
    if seq % PRUNE_EVERY == 0 {
        sqlx::query("DELETE FROM network_journal WHERE seq <= $1")
            .bind(seq - JOURNAL_KEEP)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// The last row's seq (0: none yet).
pub(super) async fn head(pool: &PgPool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM network_journal")
        .fetch_one(pool)
        .await?)
}

/// Up to `limit` rows after `after`, or [`Followed::Lost`] if some of them were deleted.
pub(super) async fn after(pool: &PgPool, after: i64, limit: i64) -> Result<Followed> {
    let rows = sqlx::query(
        "SELECT seq, at_ms, body FROM network_journal WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    if let Some(first) = rows.first() {
        let first: i64 = first.try_get("seq")?;
        // A gap is either a rolled-back commit (its seq was taken, never written) or rows
        // deleted by the leader: only in the second case is nothing at or before `after` left.
        if first > after + 1 {
            let oldest: Option<i64> =
                sqlx::query_scalar("SELECT MIN(seq) FROM network_journal").fetch_one(pool).await?;
            if oldest.is_some_and(|oldest| oldest > after) {
                return Ok(Followed::Lost);
            }
        }
    }
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.try_get("seq")?;
        let at_ms: i64 = row.try_get("at_ms")?;
        let body: String = row.try_get("body")?;
        entries.push(JournalEntry {
            seq,
            at_ms: u64::try_from(at_ms).unwrap_or(0),
            operations: decode(seq, &body)?,
        });
    }
    Ok(Followed::Entries(entries))
}

fn decode(seq: i64, body: &str) -> Result<Vec<Changes>> {
    #[derive(serde::Deserialize)]
    struct Body {
        operations: Vec<Changes>,
    }
    serde_json::from_str::<Body>(body).map(|b| b.operations).map_err(|e| StoreError::Corrupt {
        table: "network_journal",
        key: seq.to_string(),
        source: std::sync::Arc::new(e),
    })
}
