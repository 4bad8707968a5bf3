//! `provernet`: the command-line entry point. Parses flags and calls into the library crates.
//!
//! Layout:
//! - [`cmd`]: one module per command.
//! - [`logging`]: tracing set-up (human or JSON).

mod cmd;
mod keys;
mod logging;
mod requester;

use std::process::ExitCode;

use clap::Parser;

/// provernet: a prover node for zero-knowledge proof markets, and the market itself.
#[derive(Debug, Parser)]
#[command(name = "provernet", version, about, long_about = None)]
struct Cli {
    /// Log format: `human` (default) or `json`.
    #[arg(long, global = true, default_value = "human", env = "PROVERNET_LOG_FORMAT")]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: cmd::Command,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(cli.command, cmd::Command::Devnet(_));
    logging::init(cli.log_format, quiet.then_some(logging::QUIET_FILTER));
    match cmd::run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
