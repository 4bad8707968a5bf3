//! The ledger: nonces, deposits (faucet and admin), provers' registration and stake, the
//! balance moves every other operation uses, and the double-entry check ([`Market::check_ledger`]).

use provernet_types::{Address, Amount};

use super::{Account, Market, MarketError, Outcome, Prover, Result, Status, Touched};

/// Basis points in one whole.
const BPS: u128 = 10_000;

pub(super) fn share(amount: Amount, bps: u32) -> Amount {
    // amount × bps / 10_000 without overflow: split amount into quotient and remainder.
    let a = amount.get();
    Amount::new(a / BPS * u128::from(bps) + a % BPS * u128::from(bps) / BPS)
}

impl Market {
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

    pub(super) fn check_nonce(&self, signer: &Address, nonce: u64) -> Result<()> {
        let expected = self.accounts.get(signer).map_or(0, |a| a.nonce);
        if nonce != expected {
            return Err(MarketError::BadNonce { account: *signer, got: nonce, expected });
        }
        Ok(())
    }

    /// Bumps the signer's nonce; call only once every check has passed.
    pub(super) fn use_nonce(&mut self, signer: &Address, touched: &mut Touched) {
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

    pub(super) fn check_spend(&self, address: &Address, needed: Amount) -> Result<()> {
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

    /// Resolves who may act for `prover`: the owner or its operator.
    pub(super) fn check_prover_signer(
        &self,
        signer: &Address,
        prover: &Address,
    ) -> Result<&Prover> {
        let p = self.provers.get(prover).ok_or(MarketError::NotAProver(*prover))?;
        if *signer != p.owner && *signer != p.operator {
            return Err(MarketError::Unauthorized {
                signer: *signer,
                action: "act for this prover",
            });
        }
        Ok(p)
    }

    pub(super) fn debit(&mut self, address: &Address, amount: Amount) {
        if let Some(a) = self.accounts.get_mut(address) {
            a.balance = Amount::new(a.balance.get() - amount.get());
        }
    }

    /// Adds to a balance. Cannot overflow: every amount held is part of the total deposits,
    /// whose sum is checked when credited.
    pub(super) fn credit(&mut self, address: &Address, amount: Amount) {
        let account = self
            .accounts
            .entry(*address)
            .or_insert_with(|| Account { address: *address, ..Account::default() });
        account.balance = Amount::new(account.balance.get() + amount.get());
    }
}
