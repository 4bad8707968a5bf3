//! `provernet program register|show`.

/// The program commands.
#[derive(Debug, clap::Subcommand)]
pub enum ProgramCommand {}

/// Runs a program command.
pub async fn run(command: ProgramCommand) -> anyhow::Result<()> {
    match command {}
}
