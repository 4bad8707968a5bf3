//! `provernet program register|show`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use provernet_types::{Address, proto};
use provernet_zkvm::miden;

use crate::requester::{ConnectArgs, explain, program_name_from, upload_progress};

/// The program commands.
#[derive(Debug, clap::Subcommand)]
pub enum ProgramCommand {
    /// Upload a program and register it under a name (a new version if the name exists).
    #[command(after_help = "Example:\n  provernet program register programs/fib --key-file me.key")]
    Register(RegisterArgs),
    /// Show a program's versions by name, or one program by its 0x… program id.
    #[command(after_help = "Example:\n  provernet program show fib")]
    Show(ShowArgs),
}

/// Arguments of `provernet program register`.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The program: a Miden assembly file, or a folder holding `program.masm`.
    program: PathBuf,
    /// The name to register under (default: the folder or file name).
    #[arg(long)]
    name: Option<String>,
    /// The zkVM version the program is for.
    #[arg(long, default_value = miden::VERSION)]
    zkvm: String,
}

/// Arguments of `provernet program show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// A program name, or a program id (0x and 64 hex digits).
    program: String,
}

/// Runs a program command.
pub async fn run(command: ProgramCommand) -> anyhow::Result<()> {
    match command {
        ProgramCommand::Register(args) => {
            let source = read_program(&args.program)?;
            let name = args.name.unwrap_or_else(|| program_name_from(&args.program));
            let requester = args.connect.connect().await?.with_upload_progress(upload_progress());
            let program =
                requester.register_program(&name, &args.zkvm, &source).await.map_err(explain)?;
            if program.name != name {
                eprintln!("this program was registered already, as {:?}", program.name);
            }
            print_program(&program);
            Ok(())
        }
        ProgramCommand::Show(args) => {
            let requester = args.connect.connect().await?;
            let programs = requester.find_programs(&args.program).await.map_err(explain)?;
            for (i, program) in programs.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                print_program(program);
            }
            Ok(())
        }
    }
}

/// Reads a program file, or `program.masm` in a folder.
fn read_program(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = if path.is_dir() { path.join("program.masm") } else { path.to_owned() };
    std::fs::read(&file)
        .with_context(|| format!("cannot read program {}: check the path", file.display()))
}

fn print_program(p: &proto::Program) {
    let owner = Address::from_slice(&p.owner)
        .map_or_else(|_| format!("0x{}", hex::encode(&p.owner)), |a| a.to_string());
    println!("name        {} (version {})", p.name, p.version);
    println!("program id  0x{}", hex::encode(&p.program_id));
    println!("zkvm        {}", p.zkvm_version);
    println!("artifact    0x{}", hex::encode(&p.artifact_id));
    println!("owner       {owner}");
    println!("registered  {}", p.registered_at);
}
