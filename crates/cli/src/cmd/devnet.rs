//! `provernet devnet`: the whole market on this machine, in one command.

/// Flags of `provernet devnet`.
#[derive(Debug, clap::Args)]
pub struct DevnetArgs {}

/// Runs the devnet.
pub async fn run(_args: DevnetArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
