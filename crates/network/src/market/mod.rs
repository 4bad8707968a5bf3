//! The market: accounts, provers, programs and proof requests, and every rule of a request's
//! life (DESIGN.md, "A proof request's life"), as a deterministic state machine.
//!
//! Layout:
//! - `entities`: what is stored.
//! - `error`: why an operation is refused.
//! - this file: the operations.
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

mod changes;
mod entities;
mod error;
mod query;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use provernet_types::{Address, Amount, ArtifactId, ProgramName, RequestId, RequestSpec, proto};

pub use self::{
    changes::{Changes, NewBid},
    entities::{
        Account, Assignment, Bid, Execution, PendingProof, Program, Prover, Request, Status,
    },
    error::{MarketError, Result},
    query::RequestQuery,
    snapshot::{LedgerTotals, Snapshot},
};

/// Basis points in one whole.
const BPS: u128 = 10_000;

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

fn share(amount: Amount, bps: u32) -> Amount {
    // amount × bps / 10_000 without overflow: split amount into quotient and remainder.
    let a = amount.get();
    Amount::new(a / BPS * u128::from(bps) + a % BPS * u128::from(bps) / BPS)
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

    /// The mean price per PGU of the requests assigned and not yet closed, if any. Only open
    /// requests are read: the closed history can be long, and callers hold the market's lock.
    pub fn recent_price(&self) -> Option<Amount> {
        let prices: Vec<u128> = self
            .open
            .iter()
            .filter_map(|(_, id)| self.requests.get(id)?.assignment.as_ref())
            .map(|a| a.price_per_pgu.get())
            .collect();
        let n = prices.len() as u128;
        (n > 0).then(|| Amount::new(prices.iter().fold(0u128, |s, p| s.saturating_add(*p)) / n))
    }

    /// Checks, without changing anything, the nonce of `requester` and that it can lock
    /// `worst_case` for a request: the caller runs this before any work on the request's inputs.
    pub fn check_request(&self, requester: &Address, nonce: u64, worst_case: Amount) -> Result<()> {
        self.check_nonce(requester, nonce)?;
        self.check_spend(requester, worst_case)
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

    /// Open requests whose deadline is at or before `now_secs`, and the next deadline after.
    pub fn due_deadlines(&self, now_secs: u64) -> (Vec<RequestId>, Option<u64>) {
        let due = self.open.iter().take_while(|(d, _)| *d <= now_secs).map(|(_, id)| *id).collect();
        let next = self.open.iter().find(|(d, _)| *d > now_secs).map(|(d, _)| *d);
        (due, next)
    }

    /// The ledger totals.
    pub fn ledger(&self) -> &LedgerTotals {
        &self.ledger
    }

    /// Checks double-entry: balances + locks + stakes + treasury = deposits, computed without
    /// overflow. Returns the two sides on a mismatch.
    pub fn check_ledger(&self) -> std::result::Result<(), (u128, u128)> {
        let held: u128 =
            self.accounts.values().map(|a| a.balance.get() + a.locked.get()).sum::<u128>()
                + self.provers.values().map(|p| p.stake.get()).sum::<u128>()
                + self.ledger.treasury.get();
        let deposits = self.ledger.deposits.get();
        let locks_match = self.accounts.values().all(|a| {
            let open: u128 = self
                .requests
                .values()
                .filter(|r| r.requester == a.address && !r.status.is_closed())
                .map(|r| r.lock.get())
                .sum();
            open == a.locked.get()
        });
        let collateral_match = self.provers.values().all(|p| {
            let held: u128 = self
                .requests
                .values()
                .filter(|r| r.status == Status::Assigned)
                .filter_map(|r| r.assignment.as_ref())
                .filter(|a| a.prover == p.owner)
                .map(|a| a.collateral.get())
                .sum();
            held == p.collateral.get() && p.collateral <= p.stake
        });
        if held == deposits && locks_match && collateral_match {
            Ok(())
        } else {
            Err((held, deposits))
        }
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

    fn check_nonce(&self, signer: &Address, nonce: u64) -> Result<()> {
        let expected = self.accounts.get(signer).map_or(0, |a| a.nonce);
        if nonce != expected {
            return Err(MarketError::BadNonce { account: *signer, got: nonce, expected });
        }
        Ok(())
    }

    /// Bumps the signer's nonce; call only once every check has passed.
    fn use_nonce(&mut self, signer: &Address, touched: &mut Touched) {
        let account = self
            .accounts
            .entry(*signer)
            .or_insert_with(|| Account { address: *signer, ..Account::default() });
        account.nonce += 1;
        touched.accounts.insert(*signer);
    }

    fn spendable(&self, address: &Address) -> Amount {
        self.accounts.get(address).map_or(Amount::ZERO, |a| a.balance)
    }

    fn check_spend(&self, address: &Address, needed: Amount) -> Result<()> {
        let available = self.spendable(address);
        if available < needed {
            return Err(MarketError::InsufficientBalance { account: *address, available, needed });
        }
        Ok(())
    }

    /// Uses the signer's nonce for a call that changes nothing else (presigned URLs), so that a
    /// captured call cannot be replayed.
    pub fn consume_nonce(&mut self, signer: Address, nonce: u64) -> Result<Outcome> {
        self.check_nonce(&signer, nonce)?;
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        Ok(self.finish(touched))
    }

    /// Credits `amount` to `to`: the faucet (signer = `to`) or an admin deposit.
    pub fn deposit(
        &mut self,
        signer: Address,
        nonce: u64,
        to: Address,
        amount: Amount,
    ) -> Result<Outcome> {
        self.credit_deposit(signer, nonce, to, amount, signer == to)
    }

    /// Credits `amount` to `to` as an admin deposit: only the admin may, to any account
    /// (its own included), whether or not the faucet is on.
    pub fn admin_deposit(
        &mut self,
        signer: Address,
        nonce: u64,
        to: Address,
        amount: Amount,
    ) -> Result<Outcome> {
        self.credit_deposit(signer, nonce, to, amount, false)
    }

    fn credit_deposit(
        &mut self,
        signer: Address,
        nonce: u64,
        to: Address,
        amount: Amount,
        faucet: bool,
    ) -> Result<Outcome> {
        self.check_nonce(&signer, nonce)?;
        if faucet {
            match self.config.faucet_limit {
                None => return Err(MarketError::FaucetDisabled),
                Some(limit) if amount > limit => {
                    return Err(MarketError::InvalidField {
                        field: "amount",
                        reason: format!("{amount} is above the faucet's limit {limit}"),
                    });
                }
                Some(_) => {}
            }
        } else if self.config.admin != Some(signer) {
            return Err(MarketError::Unauthorized { signer, action: "make admin deposits" });
        }
        if amount.is_zero() {
            return Err(MarketError::InvalidField {
                field: "amount",
                reason: "must be above 0".into(),
            });
        }
        let deposits = self
            .ledger
            .deposits
            .checked_add(amount)
            .map_err(MarketError::overflow("total deposits"))?;
        let balance =
            self.spendable(&to).checked_add(amount).map_err(MarketError::overflow("balance"))?;
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        self.ledger.deposits = deposits;
        self.accounts
            .entry(to)
            .or_insert_with(|| Account { address: to, ..Account::default() })
            .balance = balance;
        touched.accounts.insert(to);
        touched.ledger = true;
        Ok(self.finish(touched))
    }

    /// Registers `owner` as a prover with `stake` moved from its balance.
    pub fn register_prover(
        &mut self,
        owner: Address,
        nonce: u64,
        stake: Amount,
        operator: Option<Address>,
        now_ms: u64,
    ) -> Result<Outcome> {
        self.check_nonce(&owner, nonce)?;
        if self.provers.contains_key(&owner) {
            return Err(MarketError::AlreadyAProver(owner));
        }
        if stake < self.config.min_stake {
            return Err(MarketError::InvalidField {
                field: "stake",
                reason: format!("{stake} is below the minimum stake {}", self.config.min_stake),
            });
        }
        self.check_spend(&owner, stake)?;
        let mut touched = Touched::default();
        self.use_nonce(&owner, &mut touched);
        self.debit(&owner, stake);
        self.provers.insert(
            owner,
            Prover {
                owner,
                operator: operator.unwrap_or(owner),
                stake,
                collateral: Amount::ZERO,
                misses: Vec::new(),
                suspended_until: 0,
                registered_at: now_ms / 1000,
            },
        );
        touched.provers.insert(owner);
        Ok(self.finish(touched))
    }

    /// Moves `amount` between a prover's balance and its stake (`add` true: into the stake).
    pub fn change_stake(
        &mut self,
        owner: Address,
        nonce: u64,
        amount: Amount,
        add: bool,
    ) -> Result<Outcome> {
        self.check_nonce(&owner, nonce)?;
        let prover = self.provers.get(&owner).ok_or(MarketError::NotAProver(owner))?;
        if amount.is_zero() {
            return Err(MarketError::InvalidField {
                field: "amount",
                reason: "must be above 0".into(),
            });
        }
        let new_stake = if add {
            self.check_spend(&owner, amount)?;
            prover.stake.checked_add(amount).map_err(MarketError::overflow("stake"))?
        } else {
            if amount > prover.free_stake() {
                return Err(MarketError::StakeLocked {
                    prover: owner,
                    asked: amount,
                    free: prover.free_stake(),
                    collateral: prover.collateral,
                });
            }
            prover.stake.checked_sub(amount).map_err(MarketError::overflow("stake"))?
        };
        let mut touched = Touched::default();
        self.use_nonce(&owner, &mut touched);
        if add {
            self.debit(&owner, amount);
        } else {
            self.credit(&owner, amount);
        }
        if let Some(p) = self.provers.get_mut(&owner) {
            p.stake = new_stake;
        }
        touched.provers.insert(owner);
        Ok(self.finish(touched))
    }

    /// Registers a program version (its id computed by the caller from the artifact's bytes).
    pub fn register_program(
        &mut self,
        signer: Address,
        nonce: u64,
        program: Program,
    ) -> Result<Outcome> {
        self.check_register_program(&signer, nonce, &program.name)?;
        if let Some(existing) = self.programs.get(&program.program_id) {
            return Err(MarketError::ProgramExists(format!(
                "0x{} (as {:?})",
                hex::encode(&existing.program_id),
                existing.name
            )));
        }
        // A name belongs to the account that registered its first version.
        if self.programs_named(&program.name).first().is_some_and(|p| p.registered_by != signer) {
            return Err(MarketError::Unauthorized {
                signer,
                action: "register a version of a program name another account registered first",
            });
        }
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        touched.programs.push(program.program_id.clone());
        if let Some(hash) = &program.sdk_hash {
            self.sdk_hashes.insert(hash.clone(), program.program_id.clone());
        }
        self.programs.insert(program.program_id.clone(), program);
        Ok(self.finish(touched))
    }

    /// Checks, without changing anything, that `signer` may register a version of `name` with
    /// `nonce`: the caller runs this before reading or assembling the program, whose cost grows
    /// with its size.
    pub fn check_register_program(&self, signer: &Address, nonce: u64, name: &str) -> Result<()> {
        self.check_nonce(signer, nonce)?;
        ProgramName::parse(name)?;
        Ok(())
    }

    /// Opens a proof request and locks its worst-case cost from the requester's balance.
    ///
    /// The caller has checked the signature, the zkvm version and that the inputs artifact
    /// exists.
    pub fn request_proof(
        &mut self,
        requester: Address,
        nonce: u64,
        id: RequestId,
        spec: RequestSpec,
        now_ms: u64,
    ) -> Result<Outcome> {
        self.check_nonce(&requester, nonce)?;
        let now = now_ms / 1000;
        // Only open requests are in memory, but an id derives from a signed body that carries
        // the nonce just checked: a closed request's id cannot come again.
        if self.requests.contains_key(&id) {
            return Err(MarketError::DuplicateRequest(id));
        }
        spec.check_timing(now)?;
        if spec.gas_limit == 0 {
            return Err(MarketError::InvalidField {
                field: "gas_limit",
                reason: "must be above 0".into(),
            });
        }
        let program = self.programs.get(&spec.program_id).ok_or_else(|| {
            MarketError::UnknownProgram(format!("0x{}", hex::encode(&spec.program_id)))
        })?;
        if program.artifact_id != spec.program_artifact_id
            || program.zkvm_version != spec.zkvm_version
        {
            return Err(MarketError::InvalidField {
                field: "program_artifact_id",
                reason: format!(
                    "program 0x{} is registered as artifact {} for {}",
                    hex::encode(&spec.program_id),
                    program.artifact_id,
                    program.zkvm_version
                ),
            });
        }
        let lock = spec.max_cost().map_err(MarketError::overflow("worst-case cost"))?;
        self.check_spend(&requester, lock)?;
        let mut touched = Touched::default();
        self.use_nonce(&requester, &mut touched);
        self.debit(&requester, lock);
        if let Some(a) = self.accounts.get_mut(&requester) {
            a.locked = Amount::new(a.locked.get() + lock.get());
        }
        self.open.insert((spec.deadline, id));
        self.requests.insert(
            id,
            Request {
                id,
                requester,
                spec,
                status: Status::Requested,
                execution: Execution::Unexecuted,
                lock,
                created_at: now,
                bids: Vec::new(),
                assignment: None,
                closed_at: None,
                close_reason: None,
                paid: Amount::ZERO,
                proof_artifact_id: None,
                pending_proof: None,
                rejected_proof: None,
                proof_deleted_at: None,
            },
        );
        touched.requests.insert(id);
        touched.events.push(Event::Created(id));
        Ok(self.finish(touched))
    }

    /// Records the executor's result. An unexecutable request is closed at once.
    pub fn record_execution(
        &mut self,
        id: RequestId,
        result: std::result::Result<(u64, Vec<u8>), String>,
        now_ms: u64,
    ) -> Result<Outcome> {
        // Not in memory: closed (cancelled, expired) and evicted meanwhile.
        let Some(request) = self.requests.get(&id) else { return Ok(Outcome::default()) };
        if request.execution != Execution::Unexecuted || request.status != Status::Requested {
            // Cancelled or expired meanwhile: nothing to record.
            return Ok(Outcome::default());
        }
        let result = match (result, request.spec.expected_outputs_hash) {
            (Ok((_, outputs)), Some(expected))
                if *blake3::hash(&outputs).as_bytes() != expected =>
            {
                Err(format!(
                    "public outputs hash to 0x{}, not the expected 0x{}",
                    blake3::hash(&outputs).to_hex(),
                    hex::encode(expected)
                ))
            }
            (result, _) => result,
        };
        let mut touched = Touched::default();
        match result {
            Ok((pgus, outputs)) => {
                if let Some(r) = self.requests.get_mut(&id) {
                    r.execution = Execution::Executed { pgus, outputs };
                }
                touched.events.push(Event::Executed(id));
            }
            Err(reason) => {
                if let Some(r) = self.requests.get_mut(&id) {
                    r.execution = Execution::Unexecutable { reason: reason.clone() };
                }
                let penalty = share(self.requests[&id].lock, self.config.unexecutable_penalty_bps);
                self.ledger.treasury = Amount::new(self.ledger.treasury.get() + penalty.get());
                touched.ledger = true;
                self.close(
                    id,
                    Status::Unfulfillable,
                    Some(format!("unexecutable: {reason}")),
                    penalty,
                    now_ms,
                    &mut touched,
                );
                touched.events.push(Event::Unexecutable(id));
            }
        }
        touched.requests.insert(id);
        Ok(self.finish(touched))
    }

    /// Closes request `id`: releases its lock to the requester less `kept` (already moved
    /// elsewhere by the caller).
    fn close(
        &mut self,
        id: RequestId,
        status: Status,
        reason: Option<String>,
        kept: Amount,
        now_ms: u64,
        touched: &mut Touched,
    ) {
        let Some(request) = self.requests.get_mut(&id) else { return };
        request.status = status;
        request.closed_at = Some(now_ms / 1000);
        request.close_reason = reason;
        let (requester, lock, deadline) = (request.requester, request.lock, request.spec.deadline);
        self.open.remove(&(deadline, id));
        *self
            .ledger
            .closed_requests
            .get_or_insert_default()
            .entry(status_name(status).to_owned())
            .or_insert(0) += 1;
        touched.ledger = true;
        if let Some(account) = self.accounts.get_mut(&requester) {
            account.locked = Amount::new(account.locked.get() - lock.get());
            account.balance = Amount::new(account.balance.get() + lock.get() - kept.get());
        }
        touched.accounts.insert(requester);
        touched.requests.insert(id);
    }

    /// Cancels a request before assignment, refunding its lock.
    pub fn cancel(
        &mut self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        now_ms: u64,
    ) -> Result<Outcome> {
        self.check_nonce(&signer, nonce)?;
        let request = self.requests.get(&id).ok_or(MarketError::UnknownRequest(id))?;
        if request.requester != signer {
            return Err(MarketError::Unauthorized {
                signer,
                action: "cancel another account's request",
            });
        }
        if request.status != Status::Requested {
            return Err(MarketError::WrongStatus {
                id,
                status: request.status,
                action: "be cancelled",
            });
        }
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        self.close(
            id,
            Status::Cancelled,
            Some("cancelled by the requester".into()),
            Amount::ZERO,
            now_ms,
            &mut touched,
        );
        touched.events.push(Event::Cancelled(id));
        Ok(self.finish(touched))
    }

    /// Resolves who may act for `prover`: the owner or its operator.
    fn check_prover_signer(&self, signer: &Address, prover: &Address) -> Result<&Prover> {
        let p = self.provers.get(prover).ok_or(MarketError::NotAProver(*prover))?;
        if *signer != p.owner && *signer != p.operator {
            return Err(MarketError::Unauthorized {
                signer: *signer,
                action: "act for this prover",
            });
        }
        Ok(p)
    }

    fn collateral(&self, request: &Request) -> Amount {
        share(request.lock, self.config.collateral_bps)
    }

    /// Records a bid; settles the auction at once if its period is over.
    pub fn bid(
        &mut self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        prover: Address,
        price: Amount,
        now_ms: u64,
    ) -> Result<Outcome> {
        self.check_nonce(&signer, nonce)?;
        let p = self.check_prover_signer(&signer, &prover)?;
        let request = self.requests.get(&id).ok_or(MarketError::UnknownRequest(id))?;
        if request.status != Status::Requested {
            return Err(MarketError::WrongStatus {
                id,
                status: request.status,
                action: "take bids",
            });
        }
        if request.pgus().is_none() {
            return Err(MarketError::NotExecuted(id));
        }
        if now_ms / 1000 >= request.spec.deadline {
            return Err(MarketError::DeadlinePassed {
                deadline: request.spec.deadline,
                now: now_ms / 1000,
            });
        }
        if price > request.spec.max_price_per_pgu {
            return Err(MarketError::PriceTooHigh { price, max: request.spec.max_price_per_pgu });
        }
        if !request.spec.admits(&prover) {
            return Err(MarketError::NotWhitelisted(prover));
        }
        if p.suspended_until > now_ms / 1000 {
            return Err(MarketError::Suspended { prover, until: p.suspended_until });
        }
        let needed = self.collateral(request);
        if p.free_stake() < needed {
            return Err(MarketError::InsufficientStake { prover, free: p.free_stake(), needed });
        }
        let auction_over = now_ms / 1000 >= request.auction_end();
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        if let Some(r) = self.requests.get_mut(&id) {
            r.bids.push(Bid { prover, price_per_pgu: price, at_ms: now_ms });
            touched.bids.push((id, r.bids.len() - 1));
        }
        // The request's own row does not change: the bid is a row of its own.
        if auction_over {
            self.settle_into(id, now_ms, &mut touched);
        }
        Ok(self.finish(touched))
    }

    /// Settles the auction of `id` if its period is over and it has a bid it can assign.
    pub fn settle(&mut self, id: RequestId, now_ms: u64) -> Outcome {
        let mut touched = Touched::default();
        self.settle_into(id, now_ms, &mut touched);
        self.finish(touched)
    }

    fn settle_into(&mut self, id: RequestId, now_ms: u64, touched: &mut Touched) {
        let Some(request) = self.requests.get(&id) else { return };
        if request.status != Status::Requested || now_ms / 1000 < request.auction_end() {
            return;
        }
        let collateral = self.collateral(request);
        // Lowest price wins, earliest on a tie; skip bidders that can no longer pay collateral.
        let mut ranked: Vec<&Bid> = request.bids.iter().collect();
        ranked.sort_by_key(|b| (b.price_per_pgu, b.at_ms));
        let now = now_ms / 1000;
        let Some(winner) = ranked.into_iter().find(|b| {
            self.provers
                .get(&b.prover)
                .is_some_and(|p| p.free_stake() >= collateral && p.suspended_until <= now)
        }) else {
            return;
        };
        let assignment = Assignment {
            prover: winner.prover,
            price_per_pgu: winner.price_per_pgu,
            collateral,
            at_ms: now_ms,
        };
        if let Some(p) = self.provers.get_mut(&assignment.prover) {
            p.collateral = Amount::new(p.collateral.get() + collateral.get());
        }
        touched.provers.insert(assignment.prover);
        if let Some(r) = self.requests.get_mut(&id) {
            r.status = Status::Assigned;
            r.assignment = Some(assignment);
        }
        touched.requests.insert(id);
        touched.events.push(Event::Assigned(id));
    }

    /// The assigned prover submits a proof (stored as `proof`) for the verifier: uses the nonce
    /// and marks the request as verifying. Verification happens outside the market, so that the
    /// prover's nonce is not held while it runs; [`Market::accept_proof`] or
    /// [`Market::reject_proof`] records its verdict.
    pub fn submit_proof(
        &mut self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        prover: Address,
        proof: ArtifactId,
        now_ms: u64,
    ) -> Result<Outcome> {
        self.check_fulfil(&signer, nonce, &id, &prover)?;
        let request = &self.requests[&id];
        // A proof that arrives after the deadline is late even if the sweeper has not run yet.
        if now_ms / 1000 >= request.spec.deadline {
            return Err(MarketError::DeadlinePassed {
                deadline: request.spec.deadline,
                now: now_ms / 1000,
            });
        }
        if request.pgus().is_none() {
            return Err(MarketError::NotExecuted(id));
        }
        if request.pending_proof.is_some() {
            return Err(MarketError::ProofPending(id));
        }
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        if let Some(r) = self.requests.get_mut(&id) {
            r.pending_proof = Some(PendingProof { artifact: proof, submitted_at_ms: now_ms });
        }
        touched.requests.insert(id);
        touched.events.push(Event::ProofSubmitted(id));
        Ok(self.finish(touched))
    }

    /// The verifier accepted the pending proof of request `id`: pays the prover, refunds the
    /// rest, returns the collateral. The proof was submitted before the deadline, so it counts
    /// even if verification ends after it.
    pub fn accept_proof(&mut self, id: RequestId, now_ms: u64) -> Result<Outcome> {
        let request = self.requests.get(&id).ok_or(MarketError::UnknownRequest(id))?;
        let (Status::Assigned, Some(pending)) = (request.status, &request.pending_proof) else {
            return Err(MarketError::NoPendingProof(id));
        };
        let (assignment, pgus) = match (&request.assignment, request.pgus()) {
            (Some(a), Some(pgus)) => (a.clone(), pgus),
            _ => return Err(MarketError::NotExecuted(id)),
        };
        let proof = pending.artifact;
        let price = request
            .spec
            .cost(assignment.price_per_pgu, pgus)
            .map_err(MarketError::overflow("price"))?;
        // The bid was at most max_price_per_pgu and pgus at most gas_limit, so price ≤ lock.
        let price = price.min(request.lock);
        let prover = assignment.prover;
        let mut touched = Touched::default();
        self.close(id, Status::Fulfilled, None, price, now_ms, &mut touched);
        self.credit(&prover, price);
        if let Some(p) = self.provers.get_mut(&prover) {
            p.collateral = Amount::new(p.collateral.get() - assignment.collateral.get());
        }
        if let Some(r) = self.requests.get_mut(&id) {
            r.paid = price;
            r.proof_artifact_id = Some(proof);
            r.pending_proof = None;
        }
        touched.provers.insert(prover);
        touched.accounts.insert(prover);
        touched.events.push(Event::Fulfilled(id));
        Ok(self.finish(touched))
    }

    /// The verifier rejected the pending proof of request `id` for `reason`: the request stays
    /// assigned, so its prover may submit another, until the deadline; past the deadline it is
    /// missed at once.
    pub fn reject_proof(&mut self, id: RequestId, reason: &str, now_ms: u64) -> Result<Outcome> {
        let request = self.requests.get(&id).ok_or(MarketError::UnknownRequest(id))?;
        if request.status != Status::Assigned || request.pending_proof.is_none() {
            return Err(MarketError::NoPendingProof(id));
        }
        let past_deadline = now_ms / 1000 >= request.spec.deadline;
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        let mut touched = Touched::default();
        if let Some(r) = self.requests.get_mut(&id) {
            r.pending_proof = None;
            r.rejected_proof = Some(reason.clone());
        }
        touched.requests.insert(id);
        touched.events.push(Event::ProofRejected(id));
        if past_deadline {
            self.miss(
                id,
                format!("the proof submitted was rejected: {reason}"),
                now_ms,
                &mut touched,
            );
        }
        Ok(self.finish(touched))
    }

    /// Submits and accepts a proof in one step, for callers that verified it themselves (the
    /// market simulation).
    pub fn fulfill(
        &mut self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        prover: Address,
        proof: ArtifactId,
        now_ms: u64,
    ) -> Result<Outcome> {
        let mut outcome = self.submit_proof(signer, nonce, id, prover, proof, now_ms)?;
        outcome.merge(self.accept_proof(id, now_ms)?);
        Ok(outcome)
    }

    /// Requests whose submitted proof awaits the verifier (to resume after a restart).
    pub fn pending_proofs(&self) -> impl Iterator<Item = &Request> {
        self.requests.values().filter(|r| r.status == Status::Assigned && r.pending_proof.is_some())
    }

    /// Checks, without changing anything, that `signer` may fulfil request `id` for `prover`
    /// with `nonce` (so the caller can verify the proof before applying [`Market::fulfill`]).
    pub fn check_fulfil(
        &self,
        signer: &Address,
        nonce: u64,
        id: &RequestId,
        prover: &Address,
    ) -> Result<()> {
        self.check_assigned_action(signer, nonce, id, prover, "be fulfilled")
    }

    fn check_assigned_action(
        &self,
        signer: &Address,
        nonce: u64,
        id: &RequestId,
        prover: &Address,
        action: &'static str,
    ) -> Result<()> {
        self.check_nonce(signer, nonce)?;
        self.check_prover_signer(signer, prover)?;
        let request = self.requests.get(id).ok_or(MarketError::UnknownRequest(*id))?;
        if request.status != Status::Assigned {
            return Err(MarketError::WrongStatus { id: *id, status: request.status, action });
        }
        if request.assignment.as_ref().map(|a| a.prover) != Some(*prover) {
            return Err(MarketError::Unauthorized {
                signer: *signer,
                action: "act on a request assigned to another prover",
            });
        }
        Ok(())
    }

    /// The assigned prover gives up: the request closes now as at a missed deadline.
    pub fn fail(
        &mut self,
        signer: Address,
        nonce: u64,
        id: RequestId,
        prover: Address,
        reason: &str,
        now_ms: u64,
    ) -> Result<Outcome> {
        self.check_assigned_action(&signer, nonce, &id, &prover, "be failed")?;
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        self.miss(id, format!("prover gave up: {reason}"), now_ms, &mut touched);
        Ok(self.finish(touched))
    }

    /// Closes every open request whose deadline has passed.
    pub fn sweep(&mut self, now_ms: u64) -> Outcome {
        let (due, _) = self.due_deadlines(now_ms / 1000);
        let mut touched = Touched::default();
        for id in due {
            let Some(request) = self.requests.get(&id) else { continue };
            match request.status {
                // Submitted in time: the verifier's verdict settles it.
                Status::Assigned if request.pending_proof.is_some() => {}
                Status::Assigned => self.miss(
                    id,
                    "deadline passed before a proof was accepted".into(),
                    now_ms,
                    &mut touched,
                ),
                Status::Requested => {
                    self.close(
                        id,
                        Status::Unfulfillable,
                        Some("deadline passed before assignment".into()),
                        Amount::ZERO,
                        now_ms,
                        &mut touched,
                    );
                    touched.events.push(Event::Unfulfillable(id));
                }
                _ => {}
            }
        }
        self.finish(touched)
    }

    /// An assigned request missed: refund the requester, hand them the collateral, count the miss.
    fn miss(&mut self, id: RequestId, reason: String, now_ms: u64, touched: &mut Touched) {
        let Some(assignment) = self.requests.get(&id).and_then(|r| r.assignment.clone()) else {
            return;
        };
        let requester = self.requests[&id].requester;
        self.close(id, Status::Unfulfillable, Some(reason), Amount::ZERO, now_ms, touched);
        let now = now_ms / 1000;
        let (window, limit, cooldown) =
            (self.config.miss_window_secs, self.config.miss_limit, self.config.suspension_secs);
        if let Some(p) = self.provers.get_mut(&assignment.prover) {
            p.collateral = Amount::new(p.collateral.get() - assignment.collateral.get());
            p.stake = Amount::new(p.stake.get() - assignment.collateral.get());
            p.misses.retain(|t| t + window > now);
            p.misses.push(now);
            if limit > 0 && p.misses.len() as u32 >= limit {
                p.suspended_until = now + cooldown;
                p.misses.clear();
            }
        }
        if let Some(a) = self.accounts.get_mut(&requester) {
            a.balance = Amount::new(a.balance.get() + assignment.collateral.get());
        }
        touched.provers.insert(assignment.prover);
        touched.events.push(Event::Unfulfillable(id));
    }

    fn debit(&mut self, address: &Address, amount: Amount) {
        if let Some(a) = self.accounts.get_mut(address) {
            a.balance = Amount::new(a.balance.get() - amount.get());
        }
    }

    /// Adds to a balance. Cannot overflow: every amount held is part of the total deposits,
    /// whose sum is checked when credited.
    fn credit(&mut self, address: &Address, amount: Amount) {
        let account = self
            .accounts
            .entry(*address)
            .or_insert_with(|| Account { address: *address, ..Account::default() });
        account.balance = Amount::new(account.balance.get() + amount.get());
    }
}

/// Longest reason (a prover's for giving up, the verifier's for a rejection) kept, in characters.
const MAX_REASON_CHARS: usize = 500;

/// A status's lowercase name, as the protocol's [`proto::RequestStatus::name`] spells it.
pub fn status_name(status: Status) -> &'static str {
    proto::RequestStatus::from(status).name()
}

#[cfg(test)]
mod tests;
