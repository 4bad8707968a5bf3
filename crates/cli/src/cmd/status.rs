//! `provernet node status`: a running node's health, jobs and recent bids.

/// Flags of `provernet node status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}

/// Prints a running node's state.
pub async fn run(_args: StatusArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
