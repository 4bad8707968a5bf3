//! `provernet node init|run|register|status`: run a prover node.

use super::status;

/// The node commands.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Print a running node's state, jobs and recent bids (from its monitor endpoint).
    Status(status::StatusArgs),
}

/// Runs a node command.
pub async fn run(command: NodeCommand) -> anyhow::Result<()> {
    match command {
        NodeCommand::Status(args) => status::run(args).await,
    }
}
