//! `provernet execute`: run a program locally, without proving.

use std::time::Instant;

use super::local::ProgramArgs;

/// Arguments of `provernet execute`.
#[derive(Debug, clap::Args)]
pub struct ExecuteArgs {
    #[command(flatten)]
    program: ProgramArgs,
}

/// Executes the program and prints its id, cost and outputs.
pub fn run(args: ExecuteArgs) -> anyhow::Result<()> {
    let loaded = args.program.load()?;
    let backend = &loaded.backend;
    let program_id = backend.program_id(&loaded.program)?;
    let started = Instant::now();
    let execution = backend.execute(&loaded.program, &loaded.inputs, args.program.gas_limit)?;
    println!("program id  {program_id}");
    println!("zkvm        {}", backend.version());
    println!("cycles      {}", execution.cycles);
    println!("PGUs        {}", execution.pgus);
    println!("outputs     {}", backend.describe_outputs(&execution.outputs));
    println!("time        {:.3} s", started.elapsed().as_secs_f64());
    Ok(())
}
