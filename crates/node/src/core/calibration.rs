//! Self-calibration: the node's running estimate of its own proving throughput per zkVM
//! version, learnt from the proofs it makes, so that an operator's guess of `pgus_per_second`
//! only has to be right until the node has seen a few proofs.
//!
//! Each proof gives one sample of the whole machine's throughput: its PGUs over its proving
//! seconds, times the proofs that shared the machine with it (a proof alone has the machine; two
//! at once each go at about half its speed). The estimate is an exponentially weighted mean and
//! variance of those samples ([`WEIGHT`]), so it follows a machine that changes (a GPU added, a
//! noisy neighbour) within about ten proofs. Once it has [`MIN_SAMPLES`], the core prices and
//! schedules with it, and its spread widens the safety margin ([`Throughput::extra_margin`]).

use serde::{Deserialize, Serialize};

/// Proofs seen before the estimate replaces the configured throughput.
pub const MIN_SAMPLES: u64 = 5;

/// The weight of a new sample in the running mean and variance.
pub const WEIGHT: f64 = 0.2;

/// How many spreads of the estimate the safety margin grows by.
const SPREADS_OF_MARGIN: f64 = 2.0;

/// The most the spread adds to the safety margin (a share of the estimated time).
const MAX_EXTRA_MARGIN: f64 = 1.0;

/// A running estimate of one version's proving throughput on this machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Proofs measured.
    pub samples: u64,
    /// The estimated whole-machine throughput, PGUs per second.
    pub pgus_per_second: f64,
    /// The weighted variance of the samples, (PGUs per second)².
    pub variance: f64,
}

impl Throughput {
    /// Adds one sample, PGUs per second; a sample that is not a positive finite number is
    /// left out (a proof of zero PGUs, a clock that went backwards).
    pub fn observe(&mut self, pgus_per_second: f64) {
        if !(pgus_per_second.is_finite() && pgus_per_second > 0.0) {
            return;
        }
        if self.samples == 0 {
            self.pgus_per_second = pgus_per_second;
            self.variance = 0.0;
        } else {
            let delta = pgus_per_second - self.pgus_per_second;
            self.pgus_per_second += WEIGHT * delta;
            self.variance = (1.0 - WEIGHT) * (self.variance + WEIGHT * delta * delta);
        }
        self.samples += 1;
    }

    /// Whether there are enough samples to trust the estimate over the configured figure.
    pub fn trusted(&self) -> bool {
        self.samples >= MIN_SAMPLES && self.pgus_per_second > 0.0
    }

    /// The spread of the samples as a share of the estimate (the coefficient of variation).
    pub fn spread(&self) -> f64 {
        if self.pgus_per_second > 0.0 { self.variance.sqrt() / self.pgus_per_second } else { 0.0 }
    }

    /// What the spread adds to the safety margin: a node whose proofs vary keeps more time in
    /// hand. Zero until the estimate is trusted.
    pub fn extra_margin(&self) -> f64 {
        if self.trusted() { (SPREADS_OF_MARGIN * self.spread()).min(MAX_EXTRA_MARGIN) } else { 0.0 }
    }
}

/// One proof as calibration measures it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProofTiming {
    /// The zkVM version.
    pub version: String,
    /// Its PGUs.
    pub pgus: u64,
    /// Seconds from the start of proving to a proof.
    pub secs: f64,
    /// Proofs running on the machine meanwhile, this one included (the mean of what was seen
    /// at its start and at its end; at least 1).
    pub concurrency: f64,
}

impl ProofTiming {
    /// The whole machine's throughput this proof shows, PGUs per second.
    pub fn pgus_per_second(&self) -> f64 {
        self.pgus as f64 * self.concurrency.max(1.0) / self.secs
    }
}

/// One version's calibration, as `/status` and the metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionCalibration {
    /// The zkVM version.
    pub version: String,
    /// The throughput the config gives, PGUs per second.
    pub configured_pgus_per_second: f64,
    /// The running estimate.
    pub measured: Throughput,
    /// Whether the core prices and schedules with the estimate (enough samples).
    pub in_use: bool,
}

impl VersionCalibration {
    /// How far the estimate is from the configured figure, percent of the configured one
    /// (positive: the machine is faster than configured); none until it is trusted.
    pub fn drift_percent(&self) -> Option<f64> {
        (self.measured.trusted() && self.configured_pgus_per_second > 0.0).then(|| {
            (self.measured.pgus_per_second / self.configured_pgus_per_second - 1.0) * 100.0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_converges_on_a_steady_machine_and_follows_a_change() {
        let mut t = Throughput::default();
        for _ in 0..MIN_SAMPLES - 1 {
            t.observe(4_000.0);
        }
        assert!(!t.trusted(), "not before {MIN_SAMPLES} samples");
        assert_eq!(t.extra_margin(), 0.0);
        t.observe(4_000.0);
        assert!(t.trusted());
        assert_eq!((t.pgus_per_second, t.spread()), (4_000.0, 0.0));
        // The machine gets twice as fast: within about ten proofs the estimate is there.
        for _ in 0..15 {
            t.observe(8_000.0);
        }
        assert!((t.pgus_per_second - 8_000.0).abs() < 0.05 * 8_000.0, "{t:?}");
    }

    #[test]
    fn a_noisy_machine_keeps_more_time_in_hand() {
        let (mut steady, mut noisy) = (Throughput::default(), Throughput::default());
        for i in 0..40 {
            steady.observe(5_000.0);
            noisy.observe(if i % 2 == 0 { 3_000.0 } else { 7_000.0 });
        }
        assert_eq!(steady.extra_margin(), 0.0);
        assert!(noisy.spread() > 0.3 && noisy.spread() < 0.5, "{noisy:?}");
        assert!(noisy.extra_margin() > 0.6 && noisy.extra_margin() <= MAX_EXTRA_MARGIN);
    }

    #[test]
    fn samples_that_are_not_rates_are_left_out() {
        let mut t = Throughput::default();
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            t.observe(bad);
        }
        assert_eq!(t, Throughput::default());
        let timing = ProofTiming { version: "v".into(), pgus: 0, secs: 0.0, concurrency: 1.0 };
        t.observe(timing.pgus_per_second());
        assert_eq!(t.samples, 0, "0 PGUs in 0 s is no sample");
    }

    #[test]
    fn a_shared_machine_counts_its_neighbours_and_drift_is_against_the_config() {
        let two_at_once =
            ProofTiming { version: "v".into(), pgus: 10_000, secs: 4.0, concurrency: 2.0 };
        assert_eq!(two_at_once.pgus_per_second(), 5_000.0);
        let mut measured = Throughput::default();
        for _ in 0..MIN_SAMPLES {
            measured.observe(two_at_once.pgus_per_second());
        }
        let calibration = VersionCalibration {
            version: "v".into(),
            configured_pgus_per_second: 10_000.0,
            measured,
            in_use: true,
        };
        assert_eq!(calibration.drift_percent(), Some(-50.0));
    }
}
