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
//! What is loaded and written is described by the market's own types
//! ([`crate::market::Snapshot`], [`crate::market::Changes`]): the store depends on the market,
//! never the reverse.
//!
//! Layout:
//! - [`sql`]: [`SqlStore`], the tables in SQLite (default) or PostgreSQL: `open`, `load`,
//!   `commit`.
//! - [`writer`]: [`StoreWriter`], group commit: the market's `Changes` queued in call order,
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
