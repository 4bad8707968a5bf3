//! The market: accounts, provers, programs and proof requests, and every rule of a request's
//! life (DESIGN.md, "A proof request's life"), as a deterministic state machine.
//!
//! Layout, one concern a file (each adds its operations to [`Market`] in an `impl` of its own):
//! - this file: [`Market`] and its [`MarketConfig`], [`Event`], [`Outcome`]; building the
//!   market from a [`Snapshot`], following a leader's [`Changes`] ([`Market::follow`]), the
//!   memory's bounds ([`Market::evict`], [`Market::recall`], [`Market::release`]) and the reads.
//! - `ledger`: nonces, deposits (faucet and admin), provers' registration and stake, the
//!   balance moves the other operations use, and the double-entry check.
//! - `programs`: program registration.
//! - `auction`: bids, the auction's settlement, the recent price.
//! - `lifecycle`: a request's life outside the auction: opened, executed, cancelled, proven
//!   (submitted, accepted, rejected), failed, swept at its deadline; and how each one closes.
//! - `entities`: what is stored; `error`: why an operation is refused; `query`: which requests
//!   a read wants.
//! - `snapshot`: [`Snapshot`] and [`LedgerTotals`], the state the store loads; `changes`:
//!   [`Changes`] and [`NewBid`], what one operation changed, which the store writes.
//!
//! The store ([`crate::store`]) depends on the market for these types; the market imports
//! nothing from the store.
//!
//! Every operation validates everything before it changes anything, so a refused operation
//! leaves the market exactly as it was. A successful one returns an [`Outcome`]: the changed
//! entities (written to the store in one transaction) and the events to publish. Time is an
//! argument (unix milliseconds), never read from the system clock here.
//!
//! Choices DESIGN.md leaves open:
//! - Bids are taken once a request is executed (bidders price on its PGUs) and until it is
//!   assigned. The auction settles at `created_at + min_auction_period` if it has bids, or else
//!   at the first bid after that.
//! - Collateral is `collateral_bps` of the request's worst-case cost, locked from the winner's
//!   free stake on assignment. At settlement, bidders that no longer have the free stake (they
//!   won elsewhere meanwhile) are passed over for the next best bid.
//! - An unexecutable request is closed as unfulfillable; its lock is returned less
//!   `unexecutable_penalty_bps` of it, which goes to the network's treasury (so that spamming
//!   the executor costs something).
//! - An unassigned request whose deadline passes is closed as unfulfillable with a full refund.
//!
//! **Memory holds what the market decides on**: accounts, provers, programs, and the requests
//! still open, with their bids. A closed request stays until its owner (the service) has it
//! durable and calls [`Market::evict`]; from then on it is read from the store. Every operation
//! on a closed request is refused or does nothing, so the service [`Market::recall`]s one from
//! the store for the length of an operation that names it, for the same refusal as before.

mod auction;
mod changes;
mod entities;
mod error;
mod ledger;
mod lifecycle;
mod programs;
mod query;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use provernet_types::{Address, Amount, ArtifactId, RequestId, proto};

pub use self::{
    changes::{Changes, NewBid},
    entities::{
        Account, Assignment, Bid, Execution, PendingProof, Program, Prover, Request, Status,
    },
    error::{MarketError, Result},
    query::RequestQuery,
    snapshot::{LedgerTotals, Snapshot},
};

/// The market's rules that an operator sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketConfig {
    /// Most a faucet call may credit; `None` disables the faucet (production).
    pub faucet_limit: Option<Amount>,
    /// The account allowed to make admin deposits.
    pub admin: Option<Address>,
    /// Least stake a prover must register with.
    pub min_stake: Amount,
    /// Collateral as a share of the request's worst-case cost, in basis points.
    pub collateral_bps: u32,
    /// Share of an unexecutable request's lock kept as a penalty, in basis points.
    pub unexecutable_penalty_bps: u32,
    /// Misses within `miss_window_secs` that suspend a prover.
    pub miss_limit: u32,
    /// The window over which misses count, in seconds.
    pub miss_window_secs: u64,
    /// How long a suspension lasts, in seconds.
    pub suspension_secs: u64,
}

impl Default for MarketConfig {
    fn default() -> Self {
        Self {
            faucet_limit: Some(Amount::new(1_000_000_000_000)),
            admin: None,
            min_stake: Amount::new(1_000),
            collateral_bps: 1_000,
            unexecutable_penalty_bps: 100,
            miss_limit: 3,
            miss_window_secs: 3_600,
            suspension_secs: 600,
        }
    }
}

/// Something that happened to a request, for subscribers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// A new request.
    Created(RequestId),
    /// The executor published its PGUs and outputs.
    Executed(RequestId),
    /// The executor found the request cannot be proven; it is closed.
    Unexecutable(RequestId),
    /// The auction was won.
    Assigned(RequestId),
    /// The assigned prover submitted a proof; the verifier will judge it.
    ProofSubmitted(RequestId),
    /// The verifier rejected the submitted proof; the request stays assigned.
    ProofRejected(RequestId),
    /// A verified proof was accepted.
    Fulfilled(RequestId),
    /// Closed without a proof (deadline passed or the prover failed).
    Unfulfillable(RequestId),
    /// Cancelled by the requester.
    Cancelled(RequestId),
}

impl Event {
    /// The request the event is about.
    pub fn request_id(&self) -> RequestId {
        match self {
            Self::Created(id)
            | Self::Executed(id)
            | Self::Unexecutable(id)
            | Self::Assigned(id)
            | Self::ProofSubmitted(id)
            | Self::ProofRejected(id)
            | Self::Fulfilled(id)
            | Self::Unfulfillable(id)
            | Self::Cancelled(id) => *id,
        }
    }
}

/// What a successful operation did: the entities to persist, atomically, and the events to
/// publish once they are (`changes.events`).
#[derive(Debug, Default)]
pub struct Outcome {
    /// What changed, and the events.
    pub changes: Changes,
}

impl Outcome {
    /// Appends `other`, which happened after `self`: its entity states are the later ones (the
    /// store keeps the last state of each key in a batch).
    pub fn merge(&mut self, other: Outcome) {
        let Changes { accounts, provers, programs, requests, bids, ledger, events } = other.changes;
        self.changes.accounts.extend(accounts);
        self.changes.provers.extend(provers);
        self.changes.programs.extend(programs);
        self.changes.requests.extend(requests);
        self.changes.bids.extend(bids);
        if ledger.is_some() {
            self.changes.ledger = ledger;
        }
        self.changes.events.extend(events);
    }
}

/// The authoritative state of the network. Not thread-safe by itself: the service serialises
/// operations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Market {
    config: MarketConfig,
    accounts: HashMap<Address, Account>,
    provers: HashMap<Address, Prover>,
    programs: HashMap<Vec<u8>, Program>,
    /// Program ids by their SDK hash, where it differs from the id (SP1).
    sdk_hashes: HashMap<Vec<u8>, Vec<u8>>,
    /// Open requests, and closed ones not evicted yet (see the module docs).
    requests: HashMap<RequestId, Request>,
    ledger: LedgerTotals,
    /// Requests not closed yet, for the deadline sweeper: (deadline, id).
    open: BTreeSet<(u64, RequestId)>,
    /// Closed requests brought back from the store for an operation, with how many operations
    /// hold each (see [`Market::recall`]).
    recalled: HashMap<RequestId, u32>,
}

/// Keys touched by the operation in progress; turned into [`Changes`] at the end.
#[derive(Default)]
struct Touched {
    accounts: BTreeSet<Address>,
    provers: BTreeSet<Address>,
    programs: Vec<Vec<u8>>,
    requests: BTreeSet<RequestId>,
    /// New bids: the request and the bid's index in its `bids`.
    bids: Vec<(RequestId, usize)>,
    ledger: bool,
    events: Vec<Event>,
}

impl Market {
    /// A market with `config`, restored from `snapshot`.
    pub fn new(config: MarketConfig, snapshot: Snapshot) -> Self {
        let mut market = Self { config, ledger: snapshot.ledger, ..Self::default() };
        market.accounts = snapshot.accounts.into_iter().map(|a| (a.address, a)).collect();
        market.provers = snapshot.provers.into_iter().map(|p| (p.owner, p)).collect();
        market.programs =
            snapshot.programs.into_iter().map(|p| (p.program_id.clone(), p)).collect();
        market.sdk_hashes = market
            .programs
            .values()
            .filter_map(|p| Some((p.sdk_hash.clone()?, p.program_id.clone())))
            .collect();
        for request in snapshot.requests {
            if !request.status.is_closed() {
                market.open.insert((request.spec.deadline, request.id));
            }
            market.requests.insert(request.id, request);
        }
        market
    }

    /// Forgets the closed requests among `ids` (their closing is durable: the store has
    /// them), unless an operation holds one recalled. Open ones are kept.
    pub fn evict(&mut self, ids: &[RequestId]) {
        for id in ids {
            if self.recalled.contains_key(id) {
                continue;
            }
            if self.requests.get(id).is_some_and(|r| r.status.is_closed()) {
                self.requests.remove(id);
            }
        }
    }

    /// Brings back a closed request read from the store, for an operation that names it (which
    /// it then refuses as it did before the request left memory); [`Market::release`] it after.
    /// A request already in memory is left as it is (the memory's is the newer state).
    pub fn recall(&mut self, request: Request) {
        if !request.status.is_closed() {
            return;
        }
        *self.recalled.entry(request.id).or_insert(0) += 1;
        self.requests.entry(request.id).or_insert(request);
    }

    /// Ends one [`Market::recall`] of `id`; the last one forgets the request again.
    pub fn release(&mut self, id: &RequestId) {
        let Some(holders) = self.recalled.get_mut(id) else { return };
        *holders -= 1;
        if *holders == 0 {
            self.recalled.remove(id);
            self.evict(std::slice::from_ref(id));
        }
    }

    /// Applies an operation the leader committed (a standby following the journal,
    /// [`crate::store::journal`]): every entity in `changes` replaces the one held, and new bids
    /// join their auctions. Returns the requests it closed, for [`Market::evict`] once their
    /// events are published.
    ///
    /// Applying an operation whose changes memory already holds changes nothing: entities are
    /// whole states, and a bid is placed by its index in the auction.
    pub fn follow(&mut self, changes: &Changes) -> Vec<RequestId> {
        for account in &changes.accounts {
            self.accounts.insert(account.address, account.clone());
        }
        for prover in &changes.provers {
            self.provers.insert(prover.owner, prover.clone());
        }
        for program in &changes.programs {
            if let Some(hash) = &program.sdk_hash {
                self.sdk_hashes.insert(hash.clone(), program.program_id.clone());
            }
            self.programs.insert(program.program_id.clone(), program.clone());
        }
        let mut closed = Vec::new();
        for request in &changes.requests {
            let mut request = request.clone();
            if let Some(held) = self.requests.remove(&request.id) {
                self.open.remove(&(held.spec.deadline, held.id));
                // Bids are not part of the request's state as written: they come as `bids`.
                request.bids = held.bids;
            }
            if request.status.is_closed() {
                closed.push(request.id);
            } else {
                self.open.insert((request.spec.deadline, request.id));
            }
            self.requests.insert(request.id, request);
        }
        for new in &changes.bids {
            let Some(request) = self.requests.get_mut(&new.request) else { continue };
            let index = new.index as usize;
            if index == request.bids.len() {
                request.bids.push(new.bid.clone());
            } else if index > request.bids.len() {
                // Earlier bids of this auction were placed before memory had the request (a
                // closed request recalled): keep the auction's order, not a hole.
                tracing::warn!(target: "provernet::network", request = %new.request, index, held = request.bids.len(), "followed a bid out of order");
                request.bids.push(new.bid.clone());
            }
        }
        if let Some(ledger) = &changes.ledger {
            self.ledger = ledger.clone();
        }
        closed
    }

    /// Whether memory holds request `id` (open, or closed and not evicted yet).
    pub fn holds(&self, id: &RequestId) -> bool {
        self.requests.contains_key(id)
    }

    /// The number of requests in each status (by [`status_name`]): open ones from memory,
    /// closed ones counted as they closed.
    pub fn status_counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        let closed = self.ledger.closed_requests.as_ref();
        for status in [Status::Fulfilled, Status::Unfulfillable, Status::Cancelled] {
            let name = status_name(status);
            if let Some(n) = closed.and_then(|c| c.get(name)) {
                counts.insert(name, *n);
            }
        }
        for r in self.requests.values().filter(|r| !r.status.is_closed()) {
            *counts.entry(status_name(r.status)).or_insert(0) += 1;
        }
        counts
    }

    /// The rules in force.
    pub fn config(&self) -> &MarketConfig {
        &self.config
    }

    /// An account, or a fresh one (zero balance, nonce 0) if it never appeared.
    pub fn account(&self, address: &Address) -> Account {
        self.accounts
            .get(address)
            .cloned()
            .unwrap_or_else(|| Account { address: *address, ..Account::default() })
    }

    /// A registered prover.
    pub fn prover(&self, owner: &Address) -> Option<&Prover> {
        self.provers.get(owner)
    }

    /// A request by id.
    pub fn request(&self, id: &RequestId) -> Option<&Request> {
        self.requests.get(id)
    }

    /// Every request in memory (unordered): the open ones, and closed ones not evicted yet.
    pub fn requests(&self) -> impl Iterator<Item = &Request> {
        self.requests.values()
    }

    /// A program by id.
    pub fn program(&self, program_id: &[u8]) -> Option<&Program> {
        self.programs.get(program_id)
    }

    /// The prover `signer` acts for: itself if it owns a prover, else the prover it operates.
    pub fn owner_of(&self, signer: &Address) -> Option<Address> {
        if self.provers.contains_key(signer) {
            return Some(*signer);
        }
        self.provers.values().find(|p| p.operator == *signer).map(|p| p.owner)
    }

    /// Whether a registered program is stored as artifact `id`.
    pub fn has_program_artifact(&self, id: &ArtifactId) -> bool {
        self.programs.values().any(|p| p.artifact_id == *id)
    }

    /// A registered program by the hash its zkVM's SDK names it by: its SDK hash where it has
    /// one (SP1), else its program id (Miden).
    pub fn program_by_sdk_hash(&self, hash: &[u8]) -> Option<&Program> {
        match self.sdk_hashes.get(hash) {
            Some(id) => self.programs.get(id),
            None => self.programs.get(hash).filter(|p| p.sdk_hash.is_none()),
        }
    }

    /// Every version registered under `name`, oldest first.
    pub fn programs_named(&self, name: &str) -> Vec<&Program> {
        let mut found: Vec<_> = self.programs.values().filter(|p| p.name == name).collect();
        found.sort_by_key(|p| p.registered_at);
        found
    }

    /// The ledger totals.
    pub fn ledger(&self) -> &LedgerTotals {
        &self.ledger
    }

    fn finish(&mut self, touched: Touched) -> Outcome {
        let changes = Changes {
            accounts: touched
                .accounts
                .iter()
                .filter_map(|a| self.accounts.get(a).cloned())
                .collect(),
            provers: touched.provers.iter().filter_map(|p| self.provers.get(p).cloned()).collect(),
            programs: touched
                .programs
                .iter()
                .filter_map(|p| self.programs.get(p).cloned())
                .collect(),
            requests: touched
                .requests
                .iter()
                .filter_map(|r| self.requests.get(r).cloned())
                .collect(),
            bids: touched
                .bids
                .iter()
                .filter_map(|(id, index)| {
                    let bid = self.requests.get(id)?.bids.get(*index)?.clone();
                    Some(NewBid { request: *id, index: *index as u32, bid })
                })
                .collect(),
            ledger: touched.ledger.then(|| self.ledger.clone()),
            events: touched.events,
        };
        Outcome { changes }
    }

    /// Requests whose submitted proof awaits the verifier (to resume after a restart).
    pub fn pending_proofs(&self) -> impl Iterator<Item = &Request> {
        self.requests.values().filter(|r| r.status == Status::Assigned && r.pending_proof.is_some())
    }
}

/// A status's lowercase name, as the protocol's [`proto::RequestStatus::name`] spells it.
pub fn status_name(status: Status) -> &'static str {
    proto::RequestStatus::from(status).name()
}

#[cfg(test)]
mod tests;
