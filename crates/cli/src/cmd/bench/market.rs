//! `provernet bench market`: the same seeded request stream through two simulated markets, one
//! of our default nodes and one of reference-style nodes; prints the comparison and writes
//! `summary.csv`, `market.csv` and `market.png`.

use std::{io::Write as _, path::PathBuf, time::Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use provernet_node::{
    config::{BiddingConfig, ProvingConfig},
    core::{CostPlus, PricingStrategy},
};
use provernet_types::Amount;

use super::{
    baseline::BaselineNode,
    chart,
    engine::{self, NodeModel},
    oracle,
    ours::OurNode,
    report::{self, Summary},
    workload::{self, CALIBRATED_PGUS_PER_SECOND, WorkloadConfig},
};

/// Memory each simulated machine gives to proving: a 24 GiB machine less 2 GiB (the default).
const MEMORY_GIB: u64 = 22;

/// The cost profiles nodes take in turn (those of `provernet devnet`): name, cost per hour,
/// margin.
const PROFILES: [(&str, u128, f64); 3] =
    [("budget", 240_000_000, 0.1), ("standard", 300_000_000, 0.2), ("premium", 360_000_000, 0.3)];

/// Flags of `provernet bench market`.
#[derive(Debug, Args)]
pub struct MarketArgs {
    /// Seed of the request stream and of every draw.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Requests in the stream.
    #[arg(long, default_value_t = 5_000)]
    requests: usize,
    /// Nodes in each market (1-64); they take the budget, standard and premium profiles in turn.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Mean offered work as a share of the nodes' capacity (the rate swings ±60% around it).
    #[arg(long, default_value_t = 0.9)]
    load: f64,
    /// Spread the stream over this many hours instead of setting the load.
    #[arg(long)]
    hours: Option<f64>,
    /// Seconds per interval of the time series.
    #[arg(long, default_value_t = 300)]
    interval: u64,
    /// Folder for summary.csv, market.csv and market.png (created if missing).
    #[arg(long, default_value = "target/bench-market")]
    out: PathBuf,
}

/// The node's bidding defaults with profile `i`'s cost and margin.
fn bidding(i: usize) -> BiddingConfig {
    let (_, cost, margin) = PROFILES[i % PROFILES.len()];
    BiddingConfig { cost_per_hour: Amount::new(cost), margin, ..BiddingConfig::default() }
}

/// The node's proving defaults with the calibrated throughput of the dev VM.
fn proving() -> ProvingConfig {
    ProvingConfig { pgus_per_second: CALIBRATED_PGUS_PER_SECOND, ..ProvingConfig::default() }
}

fn pricing(b: &BiddingConfig, p: &ProvingConfig) -> CostPlus {
    CostPlus {
        cost_per_hour: b.cost_per_hour,
        pgus_per_second: p.pgus_per_second,
        target_utilisation: b.target_utilisation,
        margin: b.margin,
        surcharge: b.surcharge,
    }
}

/// Runs the command.
pub fn run(args: MarketArgs) -> anyhow::Result<()> {
    if !(1..=64).contains(&args.nodes) {
        bail!("--nodes must be 1 to 64, not {}", args.nodes);
    }
    if args.requests == 0 || args.requests > 1_000_000 {
        bail!("--requests must be 1 to 1,000,000, not {}", args.requests);
    }
    if !(args.load > 0.0 && args.load <= 10.0) {
        bail!("--load must be above 0 and at most 10, not {}", args.load);
    }
    if args.hours.is_some_and(|h| !(h > 0.0 && h <= 10_000.0)) {
        bail!("--hours must be above 0 and at most 10,000");
    }
    let started = Instant::now();
    let proving = proving();
    let reference = pricing(&bidding(1), &proving).cost_per_pgu().get() as f64;
    let config = WorkloadConfig {
        seed: args.seed,
        requests: args.requests,
        nodes: args.nodes,
        load: args.load,
        hours: args.hours,
        reference_cost_per_pgu: reference,
    };
    let plan = workload::generate(&config);
    let names: Vec<String> = (0..args.nodes)
        .map(|i| format!("node-{} ({})", i + 1, PROFILES[i % PROFILES.len()].0))
        .collect();

    let ours = our_market(args.nodes, &proving, true);
    let max_pgus = (MEMORY_GIB << 30) / provernet_zkvm::miden::BYTES_PER_PGU;
    let baseline: Vec<Box<dyn NodeModel>> = (0..args.nodes)
        .map(|i| {
            let price = pricing(&bidding(i), &proving).price_per_pgu(0.0).get();
            Box::new(BaselineNode::new(i, price, max_pgus)) as Box<dyn NodeModel>
        })
        .collect();
    let plan_for_study = plan.clone();
    let a = engine::run(plan.clone(), ours, args.seed)?;
    let b = engine::run(plan, baseline, args.seed)?;
    let simulated = started.elapsed();

    let wall_ms = a.end_ms.max(b.end_ms);
    let (sa, sb) = (Summary::of(&a, args.nodes, wall_ms), Summary::of(&b, args.nodes, wall_ms));
    let series = report::series([&a, &b], args.nodes, wall_ms, args.interval);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let write = |name: &str, text: String| {
        let path = args.out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write("summary.csv", report::summary_csv(&sa, &sb, &names))?;
    write("market.csv", report::series_csv(&series))?;
    chart::draw(&args.out.join("market.png"), &series)?;

    let span_h = wall_ms as f64 / 3.6e6;
    let offered: f64 = series.iter().map(|i| i.offered_load).sum::<f64>() / series.len() as f64;
    let text = format!(
        "{} requests, {} nodes per market, seed {}: {:.1} simulated hours, mean offered load \
         {:.2} of capacity ({} × {CALIBRATED_PGUS_PER_SECOND} PGUs/s); simulated in {:.2} s\n\n\
         {}\nwrote {}/{{summary.csv, market.csv, market.png}}\n",
        args.requests,
        args.nodes,
        args.seed,
        span_h,
        offered,
        args.nodes,
        simulated.as_secs_f64(),
        report::table(&sa, &sb, &names),
        args.out.display()
    );
    let study = calibration_study(&plan_for_study, args.nodes, args.seed)?;
    let study = format!("{study}\n{}", cluster_study(&plan_for_study, args.nodes, args.seed)?);

    let cheapest = (0..args.nodes)
        .map(|i| pricing(&bidding(i), &proving).cost_per_pgu().get())
        .min()
        .unwrap_or(0);
    let offline = oracle::greedy_edf(&plan_for_study, args.nodes, cheapest);
    let share = |n: usize| 100.0 * n as f64 / offline.max(1) as f64;
    let text = format!(
        "{text}\noffline reference (clairvoyant greedy EDF on the same machines, at or above cost): {offline} \
         fulfilled; ours {:.1}% of it, baseline {:.1}%\n\n{study}",
        share(sa.fulfilled),
        share(sb.fulfilled)
    );
    // A closed pipe (`| head`) is not an error: the files are written.
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

/// `nodes` of our nodes, taking the cost profiles in turn, with self-calibration on or off.
fn our_market(nodes: usize, proving: &ProvingConfig, calibrate: bool) -> Vec<Box<dyn NodeModel>> {
    (0..nodes)
        .map(|i| {
            let node = OurNode::new(i, &bidding(i), proving, MEMORY_GIB);
            let node = if calibrate { node } else { node.without_calibration() };
            Box::new(node) as Box<dyn NodeModel>
        })
        .collect()
}

/// One identity with a proving pool against separate nodes: the same stream through a market of
/// `nodes` separate nodes (all the standard profile, so that only the shape differs) and
/// through one node of that profile coordinating `nodes` workers of the same machines.
fn cluster_study(plan: &[workload::Planned], nodes: usize, seed: u64) -> anyhow::Result<String> {
    let proving = proving();
    let separate: Vec<Box<dyn NodeModel>> = (0..nodes)
        .map(|i| Box::new(OurNode::new(i, &bidding(1), &proving, MEMORY_GIB)) as Box<dyn NodeModel>)
        .collect();
    let pooled = OurNode::new(0, &bidding(1), &proving, MEMORY_GIB).with_pool(
        nodes,
        CALIBRATED_PGUS_PER_SECOND,
        MEMORY_GIB,
    );
    let mut out = format!(
        "one node with a pool of {nodes} workers against {nodes} separate nodes (same machines, \
         the standard profile)\n\n\
         | market | fulfilled | missed deadlines | revenue |\n|---|---:|---:|---:|\n"
    );
    for (what, market, count) in [
        (format!("{nodes} separate nodes"), separate, nodes),
        (format!("1 node, {nodes} workers"), vec![Box::new(pooled) as Box<dyn NodeModel>], 1),
    ] {
        let result = engine::run(plan.to_vec(), market, seed)?;
        let s = Summary::of(&result, count, result.end_ms);
        out.push_str(&format!(
            "| {what} | {} | {} | {} |\n",
            s.fulfilled,
            s.missed,
            s.revenue.iter().sum::<u128>()
        ));
    }
    Ok(out)
}

/// Self-calibration against a wrong config: the same stream through markets of our nodes whose
/// configured throughput is twice or half what their machines prove, each with
/// self-calibration off (the configured figure throughout) and on (the live node: measured
/// from the fifth proof), beside the nodes configured right. Deadline misses cost the nodes
/// their collateral; revenue is what they were paid.
fn calibration_study(
    plan: &[workload::Planned],
    nodes: usize,
    seed: u64,
) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    for (factor, what) in [(1.0, "right"), (2.0, "2× too high"), (0.5, "2× too low")] {
        let proving = ProvingConfig {
            pgus_per_second: CALIBRATED_PGUS_PER_SECOND * factor,
            ..ProvingConfig::default()
        };
        for calibrate in [false, true] {
            let market = our_market(nodes, &proving, calibrate);
            let result = engine::run(plan.to_vec(), market, seed)?;
            let summary = Summary::of(&result, nodes, result.end_ms);
            rows.push((what, calibrate, summary));
        }
    }
    let mut out = String::from(
        "self-calibration against a wrong config (configured throughput vs what the machines prove)\n\n\
         | configured | self-calibration | fulfilled | missed deadlines | revenue |\n\
         |---|---|---:|---:|---:|\n",
    );
    for (what, calibrate, s) in rows {
        out.push_str(&format!(
            "| {what} | {} | {} | {} | {} |\n",
            if calibrate { "on" } else { "off" },
            s.fulfilled,
            s.missed,
            s.revenue.iter().sum::<u128>()
        ));
    }
    Ok(out)
}
