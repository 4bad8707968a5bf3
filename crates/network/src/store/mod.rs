//! Persistence of the market: a snapshot loaded at start, batches of changed entities written
//! in one database transaction each, and the reads of the history.
//!
//! The market's deciding state lives in memory ([`crate::market::Market`]) and every
//! operation's changed entities are written through before the caller is answered; a restarted
//! network loads the snapshot (open requests only: its size does not grow with the history)
//! and carries on. Closed requests are read from here ([`SqlStore::request`],
//! [`SqlStore::request_keys`]). Entities are stored whole (JSON) under their key, with plain
//! columns for queries; bids are rows of their own.
//!
//! Layout:
//! - [`sql`]: [`SqlStore`], the tables in SQLite (default) or PostgreSQL: `open`, `load`,
//!   `commit`.
//! - [`writer`]: [`StoreWriter`], group commit: the market's [`Changes`] queued in call order,
//!   many written per transaction, each caller answered once its change is durable.
//! - [`error`]: [`StoreError`] and its `is_retryable()`.
//! - [`journal`]: on PostgreSQL, each commit's operations and events in order, for standbys to
//!   follow.
//! - `rows`: entities as table rows (keys as `0x` hex, JSON, plain columns); `upsert`: one
//!   batch of rows in one transaction, per engine.
//!
//! ```text
//! market op (under its mutex) ──StoreWriterHandle::submit──▶ queue (call order)
//!   ──StoreWriter: drain ≤ MAX_BATCH_CHANGES──▶ SqlStore::commit (one transaction)
//!   ──oneshot──▶ each caller: durable (or the commit's error)
//! start: SqlStore::open ──▶ SqlStore::load ──▶ Snapshot ──▶ market
//! ```

use provernet_types::Amount;
use serde::{Deserialize, Serialize};

use provernet_types::RequestId;

use crate::market::{Account, Bid, Event, Program, Prover, Request};

pub mod error;
pub mod journal;
mod rows;
pub mod sql;
mod upsert;
pub mod writer;

pub use error::{StoreError, redact_url};
pub use journal::{Followed, JournalEntry};
pub use rows::program_key;
pub use sql::{Backend, SqlStore};
pub use writer::{
    CHANGES_CHANNEL_CAPACITY, MAX_BATCH_CHANGES, StoreWriter, StoreWriterHandle, SubmitSlot,
};

/// Ledger totals that are not the sum of any entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTotals {
    /// Everything ever credited by the faucet or the admin.
    pub deposits: Amount,
    /// Penalties collected by the network (unexecutable requests).
    pub treasury: Amount,
    /// Requests closed in each status (by [`crate::market::status_name`]), kept here so that
    /// the gauges need no count over the history at start. `None` in a database from before
    /// it was kept, until the first count ([`SqlStore::load`] counts once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_requests: Option<std::collections::BTreeMap<String, u64>>,
}

/// Everything the market holds, as loaded at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every account.
    pub accounts: Vec<Account>,
    /// Every registered prover.
    pub provers: Vec<Prover>,
    /// Every registered program version.
    pub programs: Vec<Program>,
    /// Every open proof request, bids included, oldest first.
    pub requests: Vec<Request>,
    /// The ledger totals.
    pub ledger: LedgerTotals,
}

/// A bid just placed: inserted once, as a row of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBid {
    /// The request bid on.
    pub request: RequestId,
    /// Its place in the request's bids (0 for the first).
    pub index: u32,
    /// The bid.
    pub bid: Bid,
}

/// The entities one market operation changed, in their new state: written atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Changed accounts.
    pub accounts: Vec<Account>,
    /// Changed provers.
    pub provers: Vec<Prover>,
    /// New programs.
    pub programs: Vec<Program>,
    /// Changed requests (their bids are not written with them: see `bids`).
    pub requests: Vec<Request>,
    /// New bids.
    pub bids: Vec<NewBid>,
    /// New ledger totals, if they changed.
    pub ledger: Option<LedgerTotals>,
    /// The operation's events, in order: not stored as entities, only in the [`journal`], so
    /// that standbys publish them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.provers.is_empty()
            && self.programs.is_empty()
            && self.requests.is_empty()
            && self.bids.is_empty()
            && self.ledger.is_none()
            && self.events.is_empty()
    }
}
