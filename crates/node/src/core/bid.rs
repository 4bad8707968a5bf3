//! Bid or skip, and at what price: a plain function of (request, node state, pricing).

use provernet_types::Amount;

use super::PricingStrategy;

/// What the bidder knows of a request when it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The request's zkvm version.
    pub zkvm_version: String,
    /// PGUs published by the network's executor.
    pub pgus: u64,
    /// The request's ceiling per PGU.
    pub max_price_per_pgu: Amount,
    /// Unix seconds by which the proof must be accepted.
    pub deadline: u64,
    /// Unix seconds at which the auction settles.
    pub auction_end: u64,
    /// Whether the request's whitelist (if any) admits this prover.
    pub admitted: bool,
}

/// What the bidder knows of its own node when it decides.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeState {
    /// The zkvm versions this node proves.
    pub versions: Vec<String>,
    /// Largest job the node's memory holds, in PGUs.
    pub max_pgus: u64,
    /// PGUs already committed (won or bid on, not yet proven).
    pub committed_pgus: u64,
    /// Hard cap on committed PGUs.
    pub committed_cap: u64,
    /// Seconds of committed work queued ahead of a new job (each at its version's throughput).
    pub queue_secs: f64,
    /// Calibrated proving throughput for the request's version, PGUs per second (whole machine).
    pub pgus_per_second: f64,
    /// Extra time kept in hand, as a share of the estimated time (0.5 = 50% more).
    pub safety_margin: f64,
    /// Fixed time per job of the request's version beyond proving (fetch, execute, verify,
    /// submit; SP1's prover setup), seconds.
    pub overhead_secs: f64,
}

/// Why the bidder skipped a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Skip {
    /// The node does not prove this zkvm version.
    #[error("unsupported zkvm version {0}")]
    UnsupportedVersion(String),
    /// The request's whitelist excludes this prover.
    #[error("not whitelisted")]
    NotWhitelisted,
    /// The job is larger than the node can hold, or would exceed the committed-work cap.
    #[error("over capacity: {pgus} PGUs (largest {max}, committed {committed} of {cap})")]
    OverCapacity {
        /// The job's PGUs.
        pgus: u64,
        /// Largest job the node holds.
        max: u64,
        /// Already committed.
        committed: u64,
        /// The committed-work cap.
        cap: u64,
    },
    /// The node's queue and throughput cannot make the deadline.
    #[error(
        "deadline infeasible: needs {needed_secs:.1} s, {available_secs} s left after the auction"
    )]
    DeadlineInfeasible {
        /// Estimated time to finish, margin included.
        needed_secs: f64,
        /// Time from the auction's end to the deadline.
        available_secs: u64,
    },
    /// The request cannot be read (a malformed body).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The network does not let this node read the request's inputs (private inputs on an API
    /// with no authenticated download).
    #[error("inputs unreachable: {0}")]
    InputsUnreachable(String),
    /// The ceiling is below this node's cost.
    #[error("ceiling {ceiling} per PGU is below cost {cost}")]
    BelowCost {
        /// The request's ceiling.
        ceiling: Amount,
        /// This node's cost per PGU.
        cost: Amount,
    },
}

impl Skip {
    /// Every [`Self::label`], for metrics that show each reason from the start.
    pub const LABELS: [&'static str; 7] = [
        "unsupported zkvm version",
        "not whitelisted",
        "over capacity",
        "deadline infeasible",
        "below cost",
        "malformed",
        "inputs unreachable",
    ];

    /// A stable name of the reason, for metric labels.
    pub const fn label(&self) -> &'static str {
        match self {
            Self::UnsupportedVersion(_) => "unsupported zkvm version",
            Self::NotWhitelisted => "not whitelisted",
            Self::OverCapacity { .. } => "over capacity",
            Self::DeadlineInfeasible { .. } => "deadline infeasible",
            Self::BelowCost { .. } => "below cost",
            Self::Malformed(_) => "malformed",
            Self::InputsUnreachable(_) => "inputs unreachable",
        }
    }
}

/// Decides whether to bid on `offer` and at what price per PGU.
///
/// # Errors
/// The [`Skip`] reason, to be recorded.
pub fn decide(
    offer: &Offer,
    node: &NodeState,
    pricing: &dyn PricingStrategy,
) -> Result<Amount, Skip> {
    if !node.versions.contains(&offer.zkvm_version) {
        return Err(Skip::UnsupportedVersion(offer.zkvm_version.clone()));
    }
    if !offer.admitted {
        return Err(Skip::NotWhitelisted);
    }
    let committed = node.committed_pgus.saturating_add(offer.pgus);
    if offer.pgus > node.max_pgus || committed > node.committed_cap {
        return Err(Skip::OverCapacity {
            pgus: offer.pgus,
            max: node.max_pgus,
            committed: node.committed_pgus,
            cap: node.committed_cap,
        });
    }
    // Everything committed runs before this job: the queue is part of its latency.
    let proving = node.queue_secs + offer.pgus as f64 / node.pgus_per_second.max(f64::MIN_POSITIVE);
    let needed_secs = (proving + node.overhead_secs) * (1.0 + node.safety_margin);
    let available_secs = offer.deadline.saturating_sub(offer.auction_end);
    if needed_secs > available_secs as f64 {
        return Err(Skip::DeadlineInfeasible { needed_secs, available_secs });
    }
    let cost = pricing.cost_per_pgu();
    if offer.max_price_per_pgu < cost {
        return Err(Skip::BelowCost { ceiling: offer.max_price_per_pgu, cost });
    }
    let load = if node.committed_cap == 0 {
        0.0
    } else {
        node.committed_pgus as f64 / node.committed_cap as f64
    };
    Ok(pricing.price_per_pgu(load).clamp(cost, offer.max_price_per_pgu))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::CostPlus;

    fn offer() -> Offer {
        Offer {
            zkvm_version: "miden-0.23".into(),
            pgus: 1 << 16,
            max_price_per_pgu: Amount::new(1_000),
            deadline: 1_000 + 120,
            auction_end: 1_000,
            admitted: true,
        }
    }

    fn node() -> NodeState {
        NodeState {
            versions: vec!["miden-0.23".into()],
            max_pgus: 1 << 20,
            committed_pgus: 0,
            committed_cap: 1 << 22,
            queue_secs: 0.0,
            pgus_per_second: 14_500.0,
            safety_margin: 0.5,
            overhead_secs: 1.0,
        }
    }

    fn pricing() -> CostPlus {
        CostPlus {
            cost_per_hour: Amount::new(3_600_000_000),
            pgus_per_second: 14_500.0,
            target_utilisation: 0.5,
            margin: 0.2,
            surcharge: 1.0,
        }
    }

    #[test]
    fn bids_between_cost_and_ceiling_and_more_when_loaded() {
        let idle = decide(&offer(), &node(), &pricing()).unwrap();
        let cost = pricing().cost_per_pgu();
        assert!(idle >= cost && idle <= offer().max_price_per_pgu, "{idle} vs cost {cost}");
        let queued = |pgus: u64| NodeState {
            committed_pgus: pgus,
            queue_secs: pgus as f64 / 14_500.0,
            ..node()
        };
        let loaded = decide(&offer(), &queued(1 << 21), &pricing());
        assert!(
            matches!(loaded, Err(Skip::DeadlineInfeasible { .. })),
            "2^21 queued PGUs take ~3 min: {loaded:?}"
        );
        assert!(decide(&offer(), &queued(1 << 19), &pricing()).unwrap() > idle);
        // The queue is time, not PGUs: a few PGUs of slow work (SP1's fixed minutes) fill it.
        let slow = NodeState { committed_pgus: 10_000, queue_secs: 200.0, ..node() };
        assert!(matches!(
            decide(&offer(), &slow, &pricing()),
            Err(Skip::DeadlineInfeasible { .. })
        ));
    }

    #[test]
    fn every_skip_reason_is_named() {
        let p = pricing();
        let skip = |o: Offer, n: NodeState| decide(&o, &n, &p).unwrap_err().to_string();
        assert!(
            skip(Offer { zkvm_version: "sp1-v6".into(), ..offer() }, node())
                .contains("unsupported")
        );
        assert!(skip(Offer { admitted: false, ..offer() }, node()).contains("whitelisted"));
        assert!(skip(Offer { pgus: 1 << 21, ..offer() }, node()).contains("over capacity"));
        assert!(
            skip(offer(), NodeState { committed_cap: 1 << 16, committed_pgus: 1, ..node() })
                .contains("over capacity")
        );
        assert!(skip(Offer { deadline: 1_003, ..offer() }, node()).contains("deadline infeasible"));
        assert!(
            skip(Offer { max_price_per_pgu: Amount::new(1), ..offer() }, node())
                .contains("below cost")
        );
    }
}
