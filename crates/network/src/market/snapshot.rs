//! The market's state as a whole: [`Snapshot`], what the store loads at start and the market is
//! built from, and [`LedgerTotals`], the ledger's totals that are not the sum of any entity.

use provernet_types::Amount;
use serde::{Deserialize, Serialize};

use super::{Account, Program, Prover, Request};

/// Ledger totals that are not the sum of any entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerTotals {
    /// Everything ever credited by the faucet or the admin.
    pub deposits: Amount,
    /// Penalties collected by the network (unexecutable requests).
    pub treasury: Amount,
    /// Requests closed in each status (by [`crate::market::status_name`]), kept here so that
    /// the gauges need no count over the history at start. `None` in a database from before
    /// it was kept, until the first count ([`crate::store::SqlStore::load`] counts once).
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
