//! What one operation changed: [`Changes`], the entities in their new state and the events,
//! which the store writes atomically (and, on PostgreSQL, journals for standbys), and
//! [`NewBid`], a bid just placed.

use provernet_types::RequestId;
use serde::{Deserialize, Serialize};

use super::{Account, Bid, Event, LedgerTotals, Program, Prover, Request};

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
    /// The operation's events, in order: not stored as entities, only in the
    /// [`journal`](crate::store::journal), so that standbys publish them too.
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
