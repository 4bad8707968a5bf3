//! The seeded request stream both simulated markets receive.
//!
//! - **Sizes:** 2^k PGUs (Miden's PGUs are padded trace lengths) with k uniform in 10..=18, so
//!   sizes are log-uniform from 1,024 to 262,144 PGUs; mean 58,140 PGUs. The gas limit is twice
//!   the size (requesters over-estimate), which sets the lock and so the collateral.
//! - **Arrivals:** Poisson, with a rate that swings by ±`SWING` over `WAVE_SECS` (thinning): at
//!   the default mean load of 0.9 the offered work runs from 0.36 to 1.44 × the nodes' capacity
//!   (`nodes × CALIBRATED_PGUS_PER_SECOND`). `--hours` sets the mean rate instead.
//! - **Deadlines:** after the auction period, the reference time of the job (`pgus /
//!   CALIBRATED_PGUS_PER_SECOND`) times a factor, plus `DEADLINE_BASE_SECS`: a quarter tight
//!   (factor 1.5–3), half normal (3–10), a quarter loose (10–40), uniform within each class.
//! - **Ceilings:** per PGU, the standard node's cost times a factor log-uniform in 0.8–4, so a
//!   few are below the cheapest node's price and most leave room for a margin.
//! - **Auction period:** 2 s.

use rand::{Rng, SeedableRng, rngs::StdRng};

/// Throughput the simulated nodes are configured with, as `provernet calibrate` would measure
/// it on the dev VM: BENCHMARKS.md's whole-mix figure, PGUs per second.
pub const CALIBRATED_PGUS_PER_SECOND: f64 = 5_781.0;
/// Period of the arrival rate's swing, seconds.
pub const WAVE_SECS: f64 = 3_600.0;
/// Relative swing of the arrival rate around its mean.
pub const SWING: f64 = 0.6;
/// Fixed part of every deadline after the auction, seconds.
pub const DEADLINE_BASE_SECS: f64 = 10.0;
/// The auction period of every request, seconds.
pub const AUCTION_PERIOD_SECS: u64 = 2;
/// Smallest and largest log2 of a request's PGUs.
const LOG2_PGUS: (u32, u32) = (10, 18);
/// Ceiling factors over the standard node's cost.
const CEILING_FACTORS: (f64, f64) = (0.8, 4.0);

/// The workload's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// The seed everything is drawn from.
    pub seed: u64,
    /// Requests in the stream.
    pub requests: usize,
    /// Nodes in each simulated market (sets the capacity the load is relative to).
    pub nodes: usize,
    /// Mean offered work as a share of the nodes' capacity (used without `hours`).
    pub load: f64,
    /// Spread the stream over this many hours instead (sets the mean arrival rate).
    pub hours: Option<f64>,
    /// The standard node's cost per PGU, which ceilings are drawn around.
    pub reference_cost_per_pgu: f64,
}

/// One request of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Arrival, milliseconds after the simulation starts.
    pub arrive_ms: u64,
    /// PGUs the executor will find.
    pub pgus: u64,
    /// Most PGUs the requester pays for.
    pub gas_limit: u64,
    /// Seconds from the end of the auction to the deadline.
    pub deadline_after_auction_secs: u64,
    /// Ceiling per PGU.
    pub max_price_per_pgu: u128,
    /// The factor on this request's proving time (the time model's noise).
    pub noise: f64,
}

/// Mean PGUs of a request.
pub fn mean_pgus() -> f64 {
    let (lo, hi) = LOG2_PGUS;
    (lo..=hi).map(|k| (1u64 << k) as f64).sum::<f64>() / f64::from(hi - lo + 1)
}

/// The mean arrival rate, requests per second.
pub fn mean_rate(config: &WorkloadConfig) -> f64 {
    match config.hours {
        Some(hours) if hours > 0.0 => config.requests as f64 / (hours * 3_600.0),
        _ => config.load * config.nodes as f64 * CALIBRATED_PGUS_PER_SECOND / mean_pgus(),
    }
}

/// The request stream, in order of arrival.
pub fn generate(config: &WorkloadConfig) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mean = mean_rate(config).max(1e-9);
    let peak = mean * (1.0 + SWING);
    let mut t = 0.0_f64;
    let mut out = Vec::with_capacity(config.requests);
    while out.len() < config.requests {
        // Thinning: candidates at the peak rate, kept with probability rate(t) / peak.
        t += -(1.0 - rng.r#gen::<f64>()).ln() / peak;
        let rate = mean * (1.0 + SWING * (2.0 * std::f64::consts::PI * t / WAVE_SECS).sin());
        if rng.r#gen::<f64>() * peak > rate {
            continue;
        }
        let pgus = 1u64 << rng.gen_range(LOG2_PGUS.0..=LOG2_PGUS.1);
        // A quarter tight, half normal, a quarter loose.
        let factor = match rng.gen_range(0..4) {
            0 => rng.gen_range(1.5..3.0),
            3 => rng.gen_range(10.0..40.0),
            _ => rng.gen_range(3.0..10.0),
        };
        let reference = pgus as f64 / CALIBRATED_PGUS_PER_SECOND;
        let deadline = (reference * factor + DEADLINE_BASE_SECS).ceil() as u64;
        let ceiling_factor = rng.gen_range(CEILING_FACTORS.0.ln()..CEILING_FACTORS.1.ln()).exp();
        let ceiling = (config.reference_cost_per_pgu * ceiling_factor).round().max(1.0) as u128;
        out.push(Planned {
            arrive_ms: (t * 1000.0) as u64,
            pgus,
            gas_limit: pgus * 2,
            deadline_after_auction_secs: deadline,
            max_price_per_pgu: ceiling,
            noise: rng.gen_range(1.0 - super::timing::NOISE..1.0 + super::timing::NOISE),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            seed,
            requests: 2_000,
            nodes: 4,
            load: 0.9,
            hours: None,
            reference_cost_per_pgu: 26.0,
        }
    }

    #[test]
    fn seeded_and_loads_the_nodes_as_asked() {
        let a = generate(&config(1));
        assert_eq!(a, generate(&config(1)));
        assert_ne!(a, generate(&config(2)));
        let span = a.last().map_or(0, |p| p.arrive_ms) as f64 / 1000.0;
        let work: f64 = a.iter().map(|p| p.pgus as f64).sum();
        let load = work / span / (4.0 * CALIBRATED_PGUS_PER_SECOND);
        assert!((0.7..1.1).contains(&load), "offered load {load}");
        assert!(a.windows(2).all(|w| w[0].arrive_ms <= w[1].arrive_ms));
    }
}
