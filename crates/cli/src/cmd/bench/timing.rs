//! The time model that stands in for real proofs in the market simulation, calibrated from the
//! Miden backend benchmark (BENCHMARKS.md, "Proving backend").
//!
//! Every simulated node is one 2-core machine like the dev VM, proving one job at a time on both
//! cores (the node's default `cores_per_slot = 2` gives a 2-core machine one slot; two proofs at
//! once on 2 cores do not raise throughput). For a job of `pgus`:
//!
//! ```text
//! prove   = (PROVE_FIXED_SECS + pgus / rate(log2 pgus)) × noise      noise ∈ [0.9, 1.1]
//! rate    = 7,345 PGUs/s up to 2^14, 6,852 at 2^16, 5,299 at 2^18 and above,
//!           linear in log2(pgus) in between (the measured table, under load)
//! fetch   = FETCH_SECS × noise          artifacts from the ArtifactStore or the cache
//! execute = EXECUTE_FIXED_SECS + pgus × EXECUTE_SECS_PER_PGU          the node's own execution
//! submit  = SUBMIT_SECS                 own verification (ms), FulfillProof, the network's check
//! ```
//!
//! The noise of each request is drawn once from the seed, so both simulated policies see the
//! same proving time for the same request.

/// Measured proving rate (PGUs/s) by log2 of the size: BENCHMARKS.md's table, 2^16 the mean of
/// the fib and hashchain rows.
const RATE_TABLE: [(f64, f64); 3] = [(14.0, 7_345.0), (16.0, 6_852.0), (18.0, 5_299.0)];
/// Setup time of a proof whatever its size, seconds.
pub const PROVE_FIXED_SECS: f64 = 0.1;
/// Downloading (or reading from the cache) and checking the program and inputs, seconds.
pub const FETCH_SECS: f64 = 0.15;
/// Fixed part of the node's own execution, seconds.
pub const EXECUTE_FIXED_SECS: f64 = 0.02;
/// Execution and trace building per PGU, seconds (notes/miden.md: ~0.5–1 µs per row).
pub const EXECUTE_SECS_PER_PGU: f64 = 1e-6;
/// Verifying the node's own proof and FulfillProof, network's verification included, seconds.
pub const SUBMIT_SECS: f64 = 0.15;
/// Share by which a proof's time may vary either way.
pub const NOISE: f64 = 0.1;

/// Proving throughput for a job of `pgus`, PGUs per second.
pub fn rate(pgus: u64) -> f64 {
    let x = (pgus.max(1) as f64).log2();
    let (first, last) = (RATE_TABLE[0], RATE_TABLE[RATE_TABLE.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    for pair in RATE_TABLE.windows(2) {
        let ((x0, r0), (x1, r1)) = (pair[0], pair[1]);
        if x <= x1 {
            return r0 + (r1 - r0) * (x - x0) / (x1 - x0);
        }
    }
    last.1
}

/// Seconds to prove `pgus` with the request's `noise` factor (in `[1 − NOISE, 1 + NOISE]`).
pub fn prove_secs(pgus: u64, noise: f64) -> f64 {
    (PROVE_FIXED_SECS + pgus as f64 / rate(pgus)) * noise
}

/// Seconds to fetch a job's artifacts with the request's `noise` factor.
pub fn fetch_secs(noise: f64) -> f64 {
    FETCH_SECS * noise
}

/// Seconds for the node's own execution of `pgus`.
pub fn execute_secs(pgus: u64) -> f64 {
    EXECUTE_FIXED_SECS + pgus as f64 * EXECUTE_SECS_PER_PGU
}

/// Seconds as whole simulated milliseconds (at least 1).
pub fn ms(secs: f64) -> u64 {
    ((secs * 1000.0).round() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_measured_table() {
        assert_eq!(rate(1 << 10), 7_345.0);
        assert_eq!(rate(1 << 16), 6_852.0);
        assert_eq!(rate(1 << 20), 5_299.0);
        let mid = rate(1 << 17);
        assert!(mid < 6_852.0 && mid > 5_299.0, "{mid}");
        // 2^18 measured 49.47 s.
        let t = prove_secs(1 << 18, 1.0);
        assert!((t - 49.57).abs() < 0.1, "{t}");
    }
}
