//! `provernet bench`: performance evidence that needs no network of its own.
//!
//! `bench history` starts `provernet network` on seeded histories of closed requests and
//! measures its memory, restart time and history reads (`history`).
//!
//! `bench failover` runs two `provernet network` processes on one PostgreSQL and times the hot
//! standby's takeovers (`failover`).
//!
//! `bench market` is a deterministic, seeded market simulation on a simulated clock: the real
//! market rules ([`provernet_network::market::Market`]), our default node's own decision core
//! ([`provernet_node::core::NodeCore`]: bidding, prefetch, slots, give-up, job transitions), and a
//! reference-style baseline, with proofs replaced by a time model calibrated from the backend
//! benchmark.
//!
//! Layout:
//! - `market`: the command (flags, both runs, output files).
//! - `workload`: the seeded request stream.
//! - `timing`: the time model standing in for proofs.
//! - `engine`: clock, event queue, market, and the [`engine::NodeModel`] seam.
//! - `ours`: our default node, the node's core driven on the simulated clock; `baseline`: the
//!   reference-style node.
//! - `report`: summaries, time series, table and CSV; `chart`: the PNG.
//! - `oracle`: a clairvoyant greedy-EDF schedule of the same stream, the offline reference.
//!
//! ```text
//! workload ─▶ engine(ours) ──┐
//!          └▶ engine(baseline)┴▶ report ─▶ table, summary.csv, market.csv ─▶ chart: market.png
//! ```

mod baseline;
mod chart;
mod engine;
mod failover;
mod history;
mod market;
mod oracle;
mod ours;
mod report;
mod timing;
mod workload;

use clap::Subcommand;

/// Every benchmark.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Simulate a market of our default nodes against reference-style nodes on one seeded
    /// request stream; print the comparison, write CSV and a PNG chart.
    #[command(
        after_help = "Example:\n  provernet bench market --seed 42 --requests 5000 --nodes 4 --out target/bench-market"
    )]
    Market(market::MarketArgs),
    /// Start the network on histories of 0, 100,000 and 1,000,000 closed requests (seeded
    /// straight into SQLite); print its restart time, RSS, and history read latency.
    #[command(after_help = "Example:\n  provernet bench history --sizes 0,100000,1000000")]
    History(history::HistoryArgs),
    /// Run two `provernet network` processes on one PostgreSQL (hot standby) and kill the
    /// leader again and again; print the time from each kill to the first write the new leader
    /// accepts (p50, p99).
    #[command(
        after_help = "Example:\n  provernet bench failover --database-url postgres://user:pw@127.0.0.1/db --kills 20"
    )]
    Failover(failover::FailoverArgs),
}

/// Runs `command`.
pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Market(args) => market::run(args),
        BenchCommand::History(args) => history::run(args).await,
        BenchCommand::Failover(args) => failover::run(args).await,
    }
}
