//! `provernet request submit|status|wait|get`: the requester's commands.

/// The requester's commands.
#[derive(Debug, clap::Subcommand)]
pub enum RequestCommand {}

/// Runs a requester command.
pub async fn run(command: RequestCommand) -> anyhow::Result<()> {
    match command {}
}
