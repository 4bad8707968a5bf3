//! Self-calibration: the node's running estimates of its own proving throughput and memory,
//! learnt from the proofs it makes, so that an operator's guess of `pgus_per_second` (and the
//! backend's memory model) only has to be right until the node has seen a few proofs.
//!
//! Estimates are kept per zkVM version and proof mode, and per program under them
//! ([`CalibrationKey`]): a program the node has proved [`MIN_SAMPLES`] times is priced and
//! scheduled by its own figures (programs of one version differ: a hash chain and a memory-heavy
//! fold do not prove at the same PGUs per second), any other by its version and mode's, and a
//! version and mode with too few proofs by the configured figures.
//!
//! Each proof gives one sample of the whole machine's throughput: its PGUs over its proving
//! seconds, times the proofs that shared the machine with it (a proof alone has the machine; two
//! at once each go at about half its speed). A proof that ran alone also gives a sample of its
//! memory per PGU: the peak resident memory the node's process grew by while it ran, over its
//! PGUs (a proof that shared the process gives none: its neighbours' memory cannot be told
//! apart). Each estimate is an exponentially weighted mean and variance of its samples
//! ([`WEIGHT`]), so it follows a machine that changes (a GPU added, a noisy neighbour) within
//! about ten proofs. Once trusted, the core prices and schedules with the throughput, and its
//! spread widens the safety margin ([`Throughput::extra_margin`]); the memory estimate, with
//! headroom and its spread, replaces the backend's model in memory admission
//! ([`MemoryUse::bytes_for`]) when its samples agree ([`MAX_MEMORY_SPREAD`]): a backend whose
//! memory does not follow its PGUs (SP1 takes 12–18 GiB whatever its gas) keeps its model.

use std::{cmp::Ordering, collections::BTreeMap};

use provernet_zkvm::{ProgramId, ProofMode};
use serde::{Deserialize, Serialize};

/// Proofs seen before an estimate replaces the configured figure.
pub const MIN_SAMPLES: u64 = 5;

/// The weight of a new sample in the running mean and variance.
pub const WEIGHT: f64 = 0.2;

/// How many spreads of the estimate the safety margin grows by.
const SPREADS_OF_MARGIN: f64 = 2.0;

/// The most the spread adds to the safety margin (a share of the estimated time).
const MAX_EXTRA_MARGIN: f64 = 1.0;

/// The largest spread of memory-per-PGU samples the node trusts: beyond it, memory does not
/// follow PGUs closely enough to admit jobs by.
pub const MAX_MEMORY_SPREAD: f64 = 0.5;

/// The smallest proof whose memory is a sample, PGUs: a smaller one's is mostly what the
/// process holds whatever the proof (threads, caches, the allocator's slack), which does not
/// grow with PGUs and would be multiplied up to the largest job.
pub const MIN_MEMORY_PGUS: u64 = 1 << 14;

/// Memory admitted beyond the estimate, a share of it: a proof's peak is sampled, not traced,
/// and a miss is the machine swapping or killed.
pub const MEMORY_HEADROOM: f64 = 0.25;

/// Adds `sample` to a running count, mean and variance (exponentially weighted).
fn observe(samples: &mut u64, mean: &mut f64, variance: &mut f64, sample: f64) {
    if *samples == 0 {
        *mean = sample;
        *variance = 0.0;
    } else {
        let delta = sample - *mean;
        *mean += WEIGHT * delta;
        *variance = (1.0 - WEIGHT) * (*variance + WEIGHT * delta * delta);
    }
    *samples += 1;
}

/// The coefficient of variation of a running estimate.
fn spread(mean: f64, variance: f64) -> f64 {
    if mean > 0.0 { variance.max(0.0).sqrt() / mean } else { 0.0 }
}

/// Whether `x` can be a sample: a positive finite number (not a proof of zero PGUs, nor a
/// clock that went backwards).
fn usable(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// A running estimate of proving throughput on this machine.
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
        if usable(pgus_per_second) {
            observe(
                &mut self.samples,
                &mut self.pgus_per_second,
                &mut self.variance,
                pgus_per_second,
            );
        }
    }

    /// Whether there are enough samples to trust the estimate over the configured figure.
    pub fn trusted(&self) -> bool {
        self.samples >= MIN_SAMPLES && self.pgus_per_second > 0.0
    }

    /// The spread of the samples as a share of the estimate (the coefficient of variation).
    pub fn spread(&self) -> f64 {
        spread(self.pgus_per_second, self.variance)
    }

    /// What the spread adds to the safety margin: a node whose proofs vary keeps more time in
    /// hand. Zero until the estimate is trusted.
    pub fn extra_margin(&self) -> f64 {
        if self.trusted() { (SPREADS_OF_MARGIN * self.spread()).min(MAX_EXTRA_MARGIN) } else { 0.0 }
    }

    /// Whether this is an estimate at all (a row read back from the store may not be).
    pub fn is_valid(&self) -> bool {
        usable(self.pgus_per_second) && self.variance.is_finite() && self.variance >= 0.0
    }
}

/// A running estimate of the memory a proof holds per PGU on this machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryUse {
    /// Proofs measured (those that ran alone).
    pub samples: u64,
    /// The estimated peak memory per PGU, bytes.
    pub bytes_per_pgu: f64,
    /// The weighted variance of the samples, bytes².
    pub variance: f64,
}

impl MemoryUse {
    /// Adds one sample, bytes per PGU; one that is not a positive finite number is left out.
    pub fn observe(&mut self, bytes_per_pgu: f64) {
        if usable(bytes_per_pgu) {
            observe(&mut self.samples, &mut self.bytes_per_pgu, &mut self.variance, bytes_per_pgu);
        }
    }

    /// The spread of the samples as a share of the estimate (the coefficient of variation).
    pub fn spread(&self) -> f64 {
        spread(self.bytes_per_pgu, self.variance)
    }

    /// Whether memory admission may go by the estimate: enough samples, and samples that agree
    /// (memory that does not follow PGUs is left to the backend's model).
    pub fn trusted(&self) -> bool {
        self.samples >= MIN_SAMPLES
            && self.bytes_per_pgu > 0.0
            && self.spread() <= MAX_MEMORY_SPREAD
    }

    /// The memory to admit a proof of `pgus` with, bytes: the estimate with
    /// [`MEMORY_HEADROOM`] and two spreads more.
    pub fn bytes_for(&self, pgus: u64) -> u64 {
        let share = 1.0 + MEMORY_HEADROOM + SPREADS_OF_MARGIN * self.spread();
        let bytes = (pgus as f64 * self.bytes_per_pgu * share).ceil();
        if bytes.is_finite() && bytes < u64::MAX as f64 { bytes as u64 } else { u64::MAX }
    }

    /// Whether this is an estimate (or none yet): a row read back from the store may be neither.
    pub fn is_valid(&self) -> bool {
        (self.samples == 0 || usable(self.bytes_per_pgu))
            && self.variance.is_finite()
            && self.variance >= 0.0
    }
}

/// What one key's proofs measured: throughput and memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Proving throughput.
    pub throughput: Throughput,
    /// Memory per PGU.
    #[serde(default)]
    pub memory: MemoryUse,
}

/// What an estimate is of: a version and mode, and a program of theirs (none: every program).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationKey {
    /// The zkVM version.
    pub version: String,
    /// The proof mode.
    pub mode: ProofMode,
    /// The program; none for the version and mode as a whole.
    pub program: Option<ProgramId>,
}

impl CalibrationKey {
    /// The key of `version` and `mode`, every program.
    pub fn of(version: &str, mode: ProofMode) -> Self {
        Self { version: version.to_owned(), mode, program: None }
    }

    /// The same version and mode, for `program`.
    pub fn with_program(&self, program: ProgramId) -> Self {
        Self { program: Some(program), ..self.clone() }
    }

    fn sort_key(&self) -> (&str, &'static str, Option<&ProgramId>) {
        (&self.version, self.mode.as_str(), self.program.as_ref())
    }
}

impl Ord for CalibrationKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for CalibrationKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One proof as calibration measures it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProofTiming {
    /// The zkVM version.
    pub version: String,
    /// The proof mode.
    pub mode: ProofMode,
    /// The program proved, where known.
    pub program: Option<ProgramId>,
    /// Its PGUs.
    pub pgus: u64,
    /// Seconds from the start of proving to a proof.
    pub secs: f64,
    /// Proofs running on the machine meanwhile, this one included (the mean of what was seen
    /// at its start and at its end; at least 1).
    pub concurrency: f64,
    /// How much the process's resident memory grew at its peak while the proof ran, bytes;
    /// none when it was not measured (the proof shared the process, or no `/proc`).
    pub peak_memory_bytes: Option<u64>,
}

impl ProofTiming {
    /// The whole machine's throughput this proof shows, PGUs per second.
    pub fn pgus_per_second(&self) -> f64 {
        self.pgus as f64 * self.concurrency.max(1.0) / self.secs
    }

    /// The memory per PGU this proof shows, bytes, if measured and large enough to tell
    /// ([`MIN_MEMORY_PGUS`]).
    pub fn bytes_per_pgu(&self) -> Option<f64> {
        let bytes = self.peak_memory_bytes.filter(|_| self.pgus >= MIN_MEMORY_PGUS)?;
        Some(bytes as f64 / self.pgus as f64)
    }

    /// The keys it counts for: its version and mode's, and its program's.
    pub fn keys(&self) -> Vec<CalibrationKey> {
        let key = CalibrationKey::of(&self.version, self.mode);
        let program = self.program.map(|p| key.with_program(p));
        std::iter::once(key).chain(program).collect()
    }
}

/// Every estimate the node holds, and which of them it goes by.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    estimates: BTreeMap<CalibrationKey, Estimate>,
}

impl Calibration {
    /// Adds `timing` to its version and mode's estimate and to its program's; returns the keys
    /// changed, for the store.
    pub fn observe(&mut self, timing: &ProofTiming) -> Vec<CalibrationKey> {
        let keys = timing.keys();
        for key in &keys {
            let estimate = self.estimates.entry(key.clone()).or_default();
            estimate.throughput.observe(timing.pgus_per_second());
            if let Some(bytes_per_pgu) = timing.bytes_per_pgu() {
                estimate.memory.observe(bytes_per_pgu);
            }
        }
        keys
    }

    /// Takes an estimate kept from an earlier run.
    pub fn restore(&mut self, key: CalibrationKey, estimate: Estimate) {
        self.estimates.insert(key, estimate);
    }

    /// What was measured under `key`, if any proof was.
    pub fn get(&self, key: &CalibrationKey) -> Option<&Estimate> {
        self.estimates.get(key)
    }

    /// The trusted throughput for `version` in `mode` of `program`: the program's own, else
    /// its version and mode's; none while neither has enough samples.
    pub fn throughput(
        &self,
        version: &str,
        mode: ProofMode,
        program: Option<&ProgramId>,
    ) -> Option<Throughput> {
        self.trusted(version, mode, program, |e| e.throughput.trusted()).map(|e| e.throughput)
    }

    /// The trusted memory estimate for `version` in `mode` of `program`, as for throughput.
    pub fn memory(
        &self,
        version: &str,
        mode: ProofMode,
        program: Option<&ProgramId>,
    ) -> Option<MemoryUse> {
        self.trusted(version, mode, program, |e| e.memory.trusted()).map(|e| e.memory)
    }

    fn trusted(
        &self,
        version: &str,
        mode: ProofMode,
        program: Option<&ProgramId>,
        ok: impl Fn(&Estimate) -> bool,
    ) -> Option<&Estimate> {
        let key = CalibrationKey::of(version, mode);
        let own = program.and_then(|p| self.estimates.get(&key.with_program(*p)));
        own.filter(|e| ok(e)).or_else(|| self.estimates.get(&key).filter(|e| ok(e)))
    }

    /// Each version and mode's calibration, as `/status` shows it: every configured version
    /// (its default mode when none of its proofs was measured), with `configured` its
    /// throughput, and every version and mode measured.
    pub fn report(&self, configured: &BTreeMap<String, f64>) -> Vec<VersionCalibration> {
        let mut rows: BTreeMap<CalibrationKey, VersionCalibration> = BTreeMap::new();
        for (version, rate) in configured {
            let measured_any = self.estimates.keys().any(|k| &k.version == version);
            if !measured_any {
                let key = CalibrationKey::of(version, ProofMode::Default);
                rows.insert(key, VersionCalibration::new(version, ProofMode::Default, *rate));
            }
        }
        for (key, estimate) in &self.estimates {
            let rate = configured.get(&key.version).copied().unwrap_or_default();
            let row = rows
                .entry(CalibrationKey::of(&key.version, key.mode))
                .or_insert_with(|| VersionCalibration::new(&key.version, key.mode, rate));
            match key.program {
                None => {
                    row.measured = estimate.throughput;
                    row.in_use = estimate.throughput.trusted();
                    row.memory = estimate.memory;
                    row.memory_in_use = estimate.memory.trusted();
                }
                Some(program) => row.programs.push(ProgramCalibration {
                    program,
                    measured: estimate.throughput,
                    memory: estimate.memory,
                }),
            }
        }
        rows.into_values().collect()
    }
}

/// One program's estimates, as `/status` shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramCalibration {
    /// The program.
    pub program: ProgramId,
    /// Its throughput (in use once trusted).
    pub measured: Throughput,
    /// Its memory per PGU (in use once trusted).
    #[serde(default)]
    pub memory: MemoryUse,
}

/// One version and mode's calibration, as `/status` and the metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionCalibration {
    /// The zkVM version.
    pub version: String,
    /// The proof mode.
    #[serde(default)]
    pub mode: ProofMode,
    /// The throughput the config gives, PGUs per second.
    pub configured_pgus_per_second: f64,
    /// The running throughput estimate.
    pub measured: Throughput,
    /// Whether the core prices and schedules with the estimate (enough samples).
    pub in_use: bool,
    /// The memory per PGU the backend's model gives for the largest job, bytes (set by the
    /// node, which holds the backends; 0 where unknown).
    #[serde(default)]
    pub configured_memory_per_pgu_bytes: f64,
    /// The running memory estimate.
    #[serde(default)]
    pub memory: MemoryUse,
    /// Whether memory admission goes by the estimate.
    #[serde(default)]
    pub memory_in_use: bool,
    /// The programs measured under this version and mode, each with its own estimates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<ProgramCalibration>,
}

impl VersionCalibration {
    fn new(version: &str, mode: ProofMode, configured_pgus_per_second: f64) -> Self {
        Self { version: version.to_owned(), mode, configured_pgus_per_second, ..Self::default() }
    }

    /// How far the estimate is from the configured figure, percent of the configured one
    /// (positive: the machine is faster than configured); none until it is trusted.
    pub fn drift_percent(&self) -> Option<f64> {
        (self.measured.trusted() && self.configured_pgus_per_second > 0.0).then(|| {
            (self.measured.pgus_per_second / self.configured_pgus_per_second - 1.0) * 100.0
        })
    }

    /// Programs whose own throughput estimate is in use.
    pub fn programs_in_use(&self) -> usize {
        self.programs.iter().filter(|p| p.measured.trusted()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proof of 20,000 PGUs in 1 s with `concurrency` proofs on the machine, unmeasured memory.
    fn timing(concurrency: f64) -> ProofTiming {
        ProofTiming {
            version: "v".into(),
            mode: ProofMode::Default,
            program: None,
            pgus: 20_000,
            secs: 1.0,
            concurrency,
            peak_memory_bytes: None,
        }
    }

    fn program(n: u8) -> ProgramId {
        ProgramId::from_bytes([n; 32])
    }

    #[test]
    fn a_program_seen_often_enough_goes_by_its_own_figures_and_others_by_the_versions() {
        let mut c = Calibration::default();
        let slow = ProofTiming { program: Some(program(1)), secs: 4.0, ..timing(1.0) };
        let fast = ProofTiming { program: Some(program(2)), secs: 1.0, ..timing(1.0) };
        for _ in 0..MIN_SAMPLES - 1 {
            c.observe(&slow);
            c.observe(&fast);
        }
        let (p1, p2, p3) = (program(1), program(2), program(3));
        // Eight proofs of the version and mode: its estimate is trusted, the programs' are not.
        let mixed = c.throughput("v", ProofMode::Default, Some(&p1)).expect("version's");
        assert_eq!(c.throughput("v", ProofMode::Default, None), Some(mixed));
        c.observe(&slow);
        c.observe(&fast);
        let own = |p| c.throughput("v", ProofMode::Default, Some(p)).map(|t| t.pgus_per_second);
        assert_eq!((own(&p1), own(&p2)), (Some(5_000.0), Some(20_000.0)));
        assert!(own(&p3).is_some_and(|r| r > 5_000.0 && r < 20_000.0), "a new program: the mix");
        // Another mode has seen no proof: the configured figure.
        assert_eq!(c.throughput("v", ProofMode::Compressed, Some(&p1)), None);
        let report = c.report(&[("v".to_owned(), 7_000.0)].into_iter().collect());
        assert_eq!(report.len(), 1, "{report:?}");
        assert_eq!((report[0].mode, report[0].programs.len()), (ProofMode::Default, 2));
        assert_eq!(report[0].programs_in_use(), 2);
        assert_eq!(report[0].configured_pgus_per_second, 7_000.0);
    }

    #[test]
    fn memory_per_pgu_is_learnt_from_proofs_that_ran_alone_and_trusted_when_they_agree() {
        let mut c = Calibration::default();
        let alone = |bytes| ProofTiming { peak_memory_bytes: Some(bytes), ..timing(1.0) };
        for _ in 0..MIN_SAMPLES {
            // 20,000 PGUs in 80 MB: 4,000 bytes per PGU.
            c.observe(&alone(80_000_000));
            c.observe(&timing(2.0));
        }
        let memory = c.memory("v", ProofMode::Default, None).expect("trusted");
        assert_eq!((memory.samples, memory.bytes_per_pgu), (MIN_SAMPLES, 4_000.0));
        assert_eq!(memory.bytes_for(1_000), 5_000_000, "with 25% headroom");
        // A backend whose memory does not follow its PGUs: samples that disagree are not used.
        let mut sp1 = Calibration::default();
        for i in 0..20 {
            let pgus = if i % 2 == 0 { 20_000 } else { 2_000_000 };
            let fixed = ProofTiming { pgus, peak_memory_bytes: Some(12 << 30), ..timing(1.0) };
            sp1.observe(&fixed);
        }
        let learnt = sp1.get(&CalibrationKey::of("v", ProofMode::Default)).expect("measured");
        assert!(learnt.memory.samples == 20 && learnt.memory.spread() > MAX_MEMORY_SPREAD);
        assert_eq!(sp1.memory("v", ProofMode::Default, None), None);
        assert!(!MemoryUse { samples: 1, bytes_per_pgu: -1.0, variance: 0.0 }.is_valid());
        // A small proof's memory is the process's, not the proof's: no sample.
        let small = ProofTiming { pgus: MIN_MEMORY_PGUS - 1, ..alone(80_000_000) };
        assert_eq!(small.bytes_per_pgu(), None);
    }

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
        let timing = ProofTiming { pgus: 0, secs: 0.0, ..timing(1.0) };
        t.observe(timing.pgus_per_second());
        assert_eq!(t.samples, 0, "0 PGUs in 0 s is no sample");
    }

    #[test]
    fn a_shared_machine_counts_its_neighbours_and_drift_is_against_the_config() {
        let two_at_once = ProofTiming { secs: 8.0, ..timing(2.0) };
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
            ..VersionCalibration::default()
        };
        assert_eq!(calibration.drift_percent(), Some(-50.0));
    }
}
