//! `provernet calibrate`: measures this machine's proving throughput and suggests bid
//! parameters.
//!
//! ```text
//! size 2^k ─▶ largest hashchain n whose trace pads to 2^k rows (execute, binary search)
//!          ─▶ prove it `runs` times (spawn_blocking) ─▶ median seconds ─▶ PGUs/s
//! largest size's PGUs/s ─▶ suggested proving.pgus_per_second ─▶ CostPlus prices
//!                       ─▶ optionally written into a node config (toml_edit, comments kept)
//! ```

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use provernet_node::{
    NodeConfig,
    config::BiddingConfig,
    core::{CostPlus, PricingStrategy},
};
use provernet_types::Amount;
use provernet_zkvm::{
    ProofMode, ProveJob, ProvePhase, ZkVm, ZkVmError, ZkVmRegistry, miden, samples,
};
use tokio_util::sync::CancellationToken;

/// The trace size `--quick` measures: a fraction of a second to prove.
const QUICK_ROWS: u64 = 1 << 12;

/// Flags of `provernet calibrate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  provernet calibrate\n  provernet calibrate --sizes \
                        2^14,2^16,2^18 --cost-per-hour 500000000 --write node.toml")]
pub struct CalibrateArgs {
    /// Trace sizes to prove, in padded rows (PGUs): powers of two, written `2^16` or `65536`.
    #[arg(long, value_delimiter = ',', value_parser = parse_rows, default_values = ["2^14", "2^16"])]
    sizes: Vec<u64>,
    /// Prove only a 2^12-row trace (a second or so): for tests and a first look.
    #[arg(long, conflicts_with = "sizes")]
    quick: bool,
    /// Proofs per size; the median time is used.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// What this machine costs per hour, in ledger units [default: the node config's, or
    /// 360000000].
    #[arg(long)]
    cost_per_hour: Option<Amount>,
    /// A node config (`provernet node init`) to update: `[proving] pgus_per_second`, and
    /// `[bidding] cost_per_hour` when `--cost-per-hour` is given. Comments are kept.
    #[arg(long, value_name = "NODE_TOML")]
    write: Option<PathBuf>,
}

/// Parses a trace size: `2^k` or a row count, a power of two Miden can prove.
fn parse_rows(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let rows = match text.split_once('^') {
        Some(("2", exp)) => exp
            .trim()
            .parse::<u32>()
            .ok()
            .and_then(|exp| 1u64.checked_shl(exp))
            .ok_or_else(|| format!("{text:?}: expected 2^k with k a small whole number"))?,
        Some(_) => return Err(format!("{text:?}: only powers of two (2^k) are trace sizes")),
        None => text.parse::<u64>().map_err(|_| format!("{text:?} is not a row count"))?,
    };
    if !rows.is_power_of_two() || !(miden::MIN_PGUS..=miden::MAX_PGUS).contains(&rows) {
        return Err(format!(
            "{text}: a trace size is a power of two from 2^{} to 2^{} rows",
            miden::MIN_PGUS.trailing_zeros(),
            miden::MAX_PGUS.trailing_zeros()
        ));
    }
    Ok(rows)
}

/// `2^k` for a power of two, the number otherwise.
fn pow2(rows: u64) -> String {
    if rows.is_power_of_two() { format!("2^{}", rows.trailing_zeros()) } else { rows.to_string() }
}

/// The proofs of one trace size.
#[derive(Debug, Clone)]
struct Measurement {
    /// The padded size asked for.
    rows: u64,
    /// The hashchain's size parameter (hash steps).
    steps: u64,
    /// VM cycles.
    cycles: u64,
    /// PGUs (padded rows) the backend counted.
    pgus: u64,
    /// Proving time of each run (execution included), seconds.
    seconds: Vec<f64>,
}

impl Measurement {
    fn median_seconds(&self) -> f64 {
        median(&self.seconds)
    }

    fn pgus_per_second(&self) -> f64 {
        self.pgus as f64 / self.median_seconds().max(f64::MIN_POSITIVE)
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Measures, prints the table and the suggestion, and updates the config if asked.
pub async fn run(args: CalibrateArgs) -> anyhow::Result<()> {
    let mut sizes = if args.quick { vec![QUICK_ROWS] } else { args.sizes.clone() };
    sizes.sort_unstable();
    sizes.dedup();
    let Some(&largest) = sizes.last() else { bail!("--sizes is empty: give at least one size") };

    // Read the config first, so that a bad path fails now rather than after minutes of proving.
    let target = args.write.as_deref().map(ConfigFile::open).transpose()?;
    let bidding = target.as_ref().map_or_else(BiddingConfig::default, |t| t.config.bidding.clone());
    let cost_per_hour = args.cost_per_hour.unwrap_or(bidding.cost_per_hour);

    let backend = ZkVmRegistry::with_default_backends().get(miden::VERSION)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "Proving the {} sample with {} on {cores} core(s): {} rows, {} run(s) each.",
        samples::HASHCHAIN.name,
        backend.version(),
        sizes.iter().map(|&r| pow2(r)).collect::<Vec<_>>().join(", "),
        args.runs
    );
    // The GPUs this machine offers (NVML; none without NVIDIA's driver): Miden proves on CPUs,
    // so they do not enter the figure, but the operator sees what a GPU backend would have.
    let (gpus, _) = provernet_node::monitor::GpuSampler::open().sample();
    if gpus.is_empty() {
        println!("GPUs seen: none (no NVIDIA GPU through NVML); the figure is the CPUs'.");
    }
    for g in &gpus {
        println!(
            "GPU {} seen: {}, {} MiB; not used by {}.",
            g.index,
            g.model,
            g.memory_total_bytes >> 20,
            backend.version()
        );
    }
    let spinner = spinner();
    let mut measurements = Vec::with_capacity(sizes.len());
    for &rows in &sizes {
        spinner.set_message(format!("{} rows: sizing the program", pow2(rows)));
        let measurement = measure(&backend, rows, args.runs, &spinner).await;
        let measurement = match measurement {
            Ok(m) => m,
            Err(err) => {
                spinner.finish_and_clear();
                return Err(err.context(format!("calibration at {} rows failed", pow2(rows))));
            }
        };
        measurements.push(measurement);
    }
    spinner.finish_and_clear();

    print_table(&measurements);
    let suggested = measurements.last().map_or(1, |m| (m.pgus_per_second().round() as u64).max(1));
    println!();
    println!("Suggested [proving] pgus_per_second = {suggested}");
    if sizes.len() > 1 {
        println!(
            "  the throughput at the largest size measured ({} rows): the cost per row grows with \
             the trace (the prover's FFTs are O(n log n) and larger traces spill out of the CPU \
             caches), so smaller sizes overstate it for large jobs.",
            pow2(largest)
        );
    } else {
        println!(
            "  the throughput at the only size measured ({} rows); the cost per row grows with the \
             trace, so measure the job sizes you expect (--sizes 2^14,2^16,2^18) for a firmer figure.",
            pow2(largest)
        );
    }
    if cores > 2 {
        println!(
            "  one proof at a time on all {cores} cores; Miden's prover scales to about 2 cores, \
             so running several slots at once may prove more per second in all."
        );
    }

    let pricing = CostPlus {
        cost_per_hour,
        pgus_per_second: suggested as f64,
        target_utilisation: bidding.target_utilisation,
        margin: bidding.margin,
        surcharge: bidding.surcharge,
    };
    print_pricing(&pricing, args.cost_per_hour.is_some(), target.is_some());

    if let Some(target) = target {
        let written = target.write(suggested, args.cost_per_hour)?;
        println!();
        println!(
            "Wrote {}: [proving] pgus_per_second = {} (was {}){}; it loads as a node config.",
            target.path.display(),
            written.proving.pgus_per_second,
            target.config.proving.pgus_per_second,
            match args.cost_per_hour {
                Some(_) => format!(
                    ", [bidding] cost_per_hour = {} (was {})",
                    written.bidding.cost_per_hour, target.config.bidding.cost_per_hour
                ),
                None => String::new(),
            }
        );
    }
    Ok(())
}

/// A spinner on stderr, or nothing when stderr is not a terminal (logs, tests, pipes).
fn spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

/// The backend's throughput on this machine from one proof of a 2^12-row trace (a second or
/// so), PGUs per second: what a `provernet worker` starts with when not told.
pub(crate) async fn quick_throughput(backend: &Arc<dyn ZkVm>) -> anyhow::Result<f64> {
    let measured = measure(backend, QUICK_ROWS, 1, &ProgressBar::hidden()).await?;
    Ok(measured.pgus as f64 / median(&measured.seconds).max(f64::MIN_POSITIVE))
}

/// Sizes the hashchain to `rows` padded rows and proves it `runs` times.
async fn measure(
    backend: &Arc<dyn ZkVm>,
    rows: u64,
    runs: u32,
    spinner: &ProgressBar,
) -> anyhow::Result<Measurement> {
    let sizing = backend.clone();
    let (steps, execution) = tokio::task::spawn_blocking(move || size_for(&*sizing, rows))
        .await
        .context("the sizing task failed")??;
    let program: Arc<[u8]> = Arc::from(samples::HASHCHAIN.source.as_bytes());
    let inputs: Arc<[u8]> = Arc::from(samples::HASHCHAIN.inputs_with_size(steps));
    let mut seconds = Vec::with_capacity(runs as usize);
    for run in 1..=runs {
        let job = ProveJob {
            program: program.clone(),
            inputs: inputs.clone(),
            gas_limit: gas_limit_for(rows),
            mode: ProofMode::Default,
        };
        let prover = backend.clone();
        let bar = spinner.clone();
        let label = format!("{} rows, run {run}/{runs}", pow2(rows));
        let proof = tokio::task::spawn_blocking(move || {
            // Never cancelled: Ctrl-C ends the process, and nothing is left half-written.
            let cancel = CancellationToken::new();
            let progress = move |phase: ProvePhase| match phase {
                ProvePhase::Executing => bar.set_message(format!("{label}: executing")),
                ProvePhase::Proving => bar.set_message(format!("{label}: proving")),
                ProvePhase::Finished => bar.set_message(format!("{label}: done")),
            };
            prover.prove(&job, &cancel, &progress)
        })
        .await
        .context("the proving task failed")??;
        seconds.push(proof.elapsed.as_secs_f64());
    }
    Ok(Measurement { rows, steps, cycles: execution.cycles, pgus: execution.pgus, seconds })
}

/// The largest hashchain size whose trace pads to at most `rows` rows, and its execution: the
/// fullest trace of that padded size. Binary search on executions (milliseconds each).
fn size_for(backend: &dyn ZkVm, rows: u64) -> anyhow::Result<(u64, provernet_zkvm::Execution)> {
    let program = samples::HASHCHAIN.source.as_bytes();
    let gas_limit = gas_limit_for(rows);
    let try_steps = |steps: u64| -> anyhow::Result<Option<provernet_zkvm::Execution>> {
        let inputs = samples::HASHCHAIN.inputs_with_size(steps);
        match backend.execute(program, &inputs, gas_limit) {
            Ok(execution) if execution.pgus <= rows => Ok(Some(execution)),
            Ok(_) | Err(ZkVmError::GasLimitExceeded { .. }) => Ok(None),
            Err(err) => Err(anyhow!(err).context("the hashchain sample does not execute")),
        }
    };
    let Some(mut best) = try_steps(1)? else {
        bail!("{} rows is below the smallest hashchain trace", pow2(rows));
    };
    // Every step takes more than one row, so `rows` steps never fit.
    let (mut fits, mut too_big) = (1u64, rows);
    while too_big - fits > 1 {
        let mid = fits + (too_big - fits) / 2;
        match try_steps(mid)? {
            Some(execution) => (fits, best) = (mid, execution),
            None => too_big = mid,
        }
    }
    Ok((fits, best))
}

/// The gas limit to execute and prove a trace of `rows` padded rows with.
///
/// Not `rows` itself: miden-processor 0.23 checks the core trace against the row cap in whole
/// fragments of 4096 rows plus one (`build_trace_with_max_len`), so a gas limit of exactly the
/// padded size refuses a trace that fills its last fragment, and every trace below 4097.
/// [`size_for`] checks the padded size itself.
fn gas_limit_for(rows: u64) -> u64 {
    (2 * rows).clamp(2 * QUICK_ROWS, miden::MAX_PGUS)
}

fn print_table(measurements: &[Measurement]) {
    println!();
    println!(
        "{:>11}  {:>6}  {:>9}  {:>9}  {:>16}  {:>9}",
        "size (rows)", "steps", "cycles", "PGUs", "seconds (median)", "PGUs/s"
    );
    for m in measurements {
        let runs = m.seconds.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(" ");
        println!(
            "{:>11}  {:>6}  {:>9}  {:>9}  {:>16.3}  {:>9.0}   runs: {runs} s",
            pow2(m.rows),
            m.steps,
            m.cycles,
            m.pgus,
            m.median_seconds(),
            m.pgus_per_second()
        );
    }
}

fn print_pricing(pricing: &CostPlus, cost_given: bool, from_file: bool) {
    let source = if from_file { "the config file" } else { "node defaults" };
    let cost_source = if cost_given { "--cost-per-hour" } else { source };
    println!();
    println!(
        "Pricing (CostPlus): cost_per_hour {} ({cost_source}); target_utilisation {}, margin {}, \
         surcharge {} ({source}):",
        pricing.cost_per_hour, pricing.target_utilisation, pricing.margin, pricing.surcharge,
    );
    println!("  cost per PGU                      {}", pricing.cost_per_pgu());
    println!("  asking price per PGU, idle        {}", pricing.price_per_pgu(0.0));
    println!("  asking price per PGU, full queue  {}", pricing.price_per_pgu(1.0));
}

/// The node config named by `--write`: its text, and what it loads as.
struct ConfigFile {
    path: PathBuf,
    text: String,
    config: NodeConfig,
}

impl ConfigFile {
    /// Reads and checks `path`, naming it in every error.
    fn open(path: &Path) -> anyhow::Result<Self> {
        // The error names the file and says what is wrong; its source would only repeat it.
        let config = NodeConfig::load(path).map_err(|err| anyhow!("--write: {err}"))?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the node config {}", path.display()))?;
        Ok(Self { path: path.to_owned(), text, config })
    }

    /// Sets the calibrated values, checks that the result loads, and only then replaces the
    /// file (through a temporary file beside it, so a failure leaves it as it was).
    fn write(
        &self,
        pgus_per_second: u64,
        cost_per_hour: Option<Amount>,
    ) -> anyhow::Result<NodeConfig> {
        let path = &self.path;
        let edited = edit_config(&self.text, pgus_per_second, cost_per_hour)
            .with_context(|| format!("cannot update the node config {}", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = path.with_file_name(format!(".{name}.calibrate-{}.tmp", std::process::id()));
        let result = (|| {
            std::fs::write(&temp, &edited)
                .with_context(|| format!("cannot write {}", temp.display()))?;
            if let Ok(metadata) = std::fs::metadata(path) {
                // Keep the file's mode: it is replaced, not rewritten in place.
                std::fs::set_permissions(&temp, metadata.permissions())
                    .with_context(|| format!("cannot set the mode of {}", temp.display()))?;
            }
            NodeConfig::load(&temp)
                .map_err(|err| anyhow!("the updated config would not load: {err}"))?;
            std::fs::rename(&temp, path)
                .with_context(|| format!("cannot replace {}", path.display()))
        })();
        if let Err(err) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(err.context(format!("{} left unchanged", path.display())));
        }
        NodeConfig::load(path).map_err(|err| anyhow!("written, but it no longer loads: {err}"))
    }
}

/// `text` with `[proving] pgus_per_second` (and `[bidding] cost_per_hour`) set, everything
/// else (comments, order, spacing) as it was.
fn edit_config(
    text: &str,
    pgus_per_second: u64,
    cost_per_hour: Option<Amount>,
) -> anyhow::Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().context("not valid TOML")?;
    let pgus = i64::try_from(pgus_per_second).context("throughput out of range")?;
    set_value(&mut doc, "proving", "pgus_per_second", pgus.into())?;
    if let Some(cost) = cost_per_hour {
        // Amounts are strings in the file: they exceed TOML's 64-bit integers.
        set_value(&mut doc, "bidding", "cost_per_hour", cost.to_string().into())?;
    }
    Ok(doc.to_string())
}

/// Sets `[section] key = value`, keeping the old value's spacing and trailing comment.
fn set_value(
    doc: &mut toml_edit::DocumentMut,
    section: &str,
    key: &str,
    mut value: toml_edit::Value,
) -> anyhow::Result<()> {
    let table = doc
        .as_table_mut()
        .entry(section)
        .or_insert_with(toml_edit::table)
        .as_table_like_mut()
        .ok_or_else(|| anyhow!("`{section}` is not a table"))?;
    match table.get_mut(key) {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *value.decor_mut() = old.decor().clone();
            }
            *item = toml_edit::Item::Value(value);
        }
        None => {
            table.insert(key, toml_edit::Item::Value(value));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_powers_of_two_in_range() {
        assert_eq!(parse_rows("2^14"), Ok(16_384));
        assert_eq!(parse_rows("65536"), Ok(65_536));
        for bad in ["2^3", "2^21", "1000", "3^4", "2^x", "2^99", "lots"] {
            assert!(parse_rows(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_median_of_even_and_odd_runs() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
    }

    #[test]
    fn edits_keep_comments_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let template = NodeConfig::new("http://127.0.0.1:1").template();
        let text = template.replace("pgus_per_second = 10000", "pgus_per_second = 10000 # old");
        let edited = edit_config(&text, 6_543, Some(Amount::new(42))).unwrap();
        assert!(edited.contains("pgus_per_second = 6543 # old"), "{edited}");
        assert!(edited.contains("cost_per_hour = \"42\""), "{edited}");
        assert!(edited.contains("# This machine's throughput in PGUs per second"), "{edited}");
        assert_eq!(edited.lines().count(), text.lines().count());
        let path = dir.path().join("node.toml");
        std::fs::write(&path, &edited).unwrap();
        let config = NodeConfig::load(&path).unwrap();
        assert_eq!(config.proving.pgus_per_second, 6_543.0);
        assert_eq!(config.bidding.cost_per_hour, Amount::new(42));

        let bare = "network_url = \"http://x\"\nkey_file = \"k\"\ndata_dir = \"d\"\n";
        let edited = edit_config(bare, 7, None).unwrap();
        assert!(edited.contains("[proving]\npgus_per_second = 7"), "{edited}");
    }
}
