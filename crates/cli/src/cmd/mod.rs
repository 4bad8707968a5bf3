//! The `provernet` commands, one module each.

mod artifacts;
mod execute;
mod local;
mod network;
mod prove;
mod verify;

use clap::Subcommand;

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a program locally and print its PGUs and outputs (no proof).
    #[command(after_help = "Example:\n  provernet execute programs/fib")]
    Execute(execute::ExecuteArgs),
    /// Prove a program locally and write a proof bundle.
    #[command(after_help = "Example:\n  provernet prove programs/fib --output fib.proof")]
    Prove(prove::ProveArgs),
    /// Verify a proof bundle against a program and its inputs.
    #[command(after_help = "Example:\n  provernet verify programs/fib --proof fib.proof")]
    Verify(verify::VerifyArgs),
    /// Run the ProverNetwork (gRPC) with the ArtifactStore embedded.
    Network(network::NetworkArgs),
    /// Run the ArtifactStore on its own.
    Artifacts(artifacts::ArtifactsArgs),
}

/// Runs `command` to completion.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Execute(args) => execute::run(args),
        Command::Prove(args) => prove::run(args).await,
        Command::Verify(args) => verify::run(args),
        Command::Network(args) => network::run(args).await,
        Command::Artifacts(args) => artifacts::run(args).await,
    }
}
