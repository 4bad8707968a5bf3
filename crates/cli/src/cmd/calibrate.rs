//! `provernet calibrate`: measures this machine's proving throughput and suggests bid
//! parameters.

/// Flags of `provernet calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {}

/// Measures and prints the suggestion.
pub async fn run(_args: CalibrateArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
