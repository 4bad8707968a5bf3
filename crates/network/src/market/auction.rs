//! The auction: bids on an executed request, and its settlement (the winner, its collateral
//! locked from free stake), and the recent price of the requests it assigned.

use provernet_types::{Address, Amount, RequestId};

use super::{
    Assignment, Bid, Event, Market, MarketError, Outcome, Request, Result, Status, Touched,
    ledger::share,
};

impl Market {
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
}
