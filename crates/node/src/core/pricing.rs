//! Pricing strategies: what the node asks per PGU.

use provernet_types::Amount;

/// How a node prices its work. Implementations must be cheap: they run for every request.
pub trait PricingStrategy: Send + Sync {
    /// The node's cost per PGU: it never bids below this.
    fn cost_per_pgu(&self) -> Amount;

    /// The asking price per PGU at `load` (committed work as a share of the cap, 0 to 1).
    fn price_per_pgu(&self, load: f64) -> Amount;

    /// The same strategy for a machine that proves `pgus_per_second` (self-calibration).
    fn recalibrated(&self, pgus_per_second: f64) -> Box<dyn PricingStrategy>;
}

/// The default strategy: cost from calibration, plus a margin, plus a surcharge that grows as
/// the queue deepens.
///
/// `cost = cost_per_hour / (pgus_per_second × 3600 × target_utilisation)`, rounded up;
/// `price = cost × (1 + margin) × (1 + surcharge × load)`.
#[derive(Debug, Clone, PartialEq)]
pub struct CostPlus {
    /// What the machine costs per hour, in ledger units.
    pub cost_per_hour: Amount,
    /// Calibrated throughput, PGUs per second.
    pub pgus_per_second: f64,
    /// Share of the hour the node expects to be proving (0 to 1): idle time is paid by work.
    pub target_utilisation: f64,
    /// Profit margin over cost (0.2 = 20%).
    pub margin: f64,
    /// Extra share asked at full load (1.0 = double at a full queue).
    pub surcharge: f64,
}

impl PricingStrategy for CostPlus {
    fn cost_per_pgu(&self) -> Amount {
        let pgus_per_hour =
            self.pgus_per_second * 3600.0 * self.target_utilisation.clamp(0.01, 1.0);
        let cost = self.cost_per_hour.get() as f64 / pgus_per_hour.max(1.0);
        Amount::new(cost.ceil().max(1.0) as u128)
    }

    fn price_per_pgu(&self, load: f64) -> Amount {
        let cost = self.cost_per_pgu().get() as f64;
        let price = cost
            * (1.0 + self.margin.max(0.0))
            * (1.0 + self.surcharge.max(0.0) * load.clamp(0.0, 1.0));
        Amount::new(price.ceil() as u128)
    }

    fn recalibrated(&self, pgus_per_second: f64) -> Box<dyn PricingStrategy> {
        Box::new(Self { pgus_per_second, ..self.clone() })
    }
}
