//! The `provernet` commands, one module each.

mod artifacts;
mod bench;
mod calibrate;
mod devnet;
mod execute;
mod local;
mod network;
mod node;
mod program;
mod prove;
mod request;
mod status;
mod verify;
mod worker;

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
    /// Run a whole local market: network, ArtifactStore, nodes and a stream of requests.
    #[command(after_help = "Example:\n  provernet devnet --nodes 3 --requests 12")]
    Devnet(devnet::DevnetArgs),
    /// Run a prover node, or set one up.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Measure this machine's proving throughput and suggest bid parameters.
    Calibrate(calibrate::CalibrateArgs),
    /// Prove for a node's proving pool (its `[cluster]`) on this machine.
    Worker(worker::WorkerArgs),
    /// Ask the network for proofs, and follow them.
    #[command(subcommand)]
    Request(request::RequestCommand),
    /// Register programs with the network, and look them up.
    #[command(subcommand)]
    Program(program::ProgramCommand),
    /// Benchmarks that need no network: `bench market` simulates a proof market.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Runs `command` to completion.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Execute(args) => execute::run(args),
        Command::Prove(args) => prove::run(args).await,
        Command::Verify(args) => verify::run(args),
        Command::Network(args) => network::run(args).await,
        Command::Artifacts(args) => artifacts::run(args).await,
        Command::Devnet(args) => devnet::run(args).await,
        Command::Node(command) => node::run(command).await,
        Command::Calibrate(args) => calibrate::run(args).await,
        Command::Worker(args) => worker::run(args).await,
        Command::Request(command) => request::run(command).await,
        Command::Program(command) => program::run(command).await,
        Command::Bench(command) => bench::run(command).await,
    }
}
