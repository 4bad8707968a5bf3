//! `provernet prove`: prove a program locally and write a proof bundle.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use provernet_zkvm::{ProofBundle, ProofMode, ProveJob, ProvePhase, prove_async};
use tokio_util::sync::CancellationToken;

use super::local::ProgramArgs;

/// Arguments of `provernet prove`.
#[derive(Debug, clap::Args)]
pub struct ProveArgs {
    #[command(flatten)]
    program: ProgramArgs,
    /// Where to write the proof bundle.
    #[arg(long, short, default_value = "proof.bin")]
    output: PathBuf,
    /// Proof mode (`default` for Miden).
    #[arg(long, default_value = "default")]
    mode: ProofMode,
}

/// Executes, proves with a progress spinner, writes the bundle and prints a summary.
pub async fn run(args: ProveArgs) -> anyhow::Result<()> {
    let loaded = args.program.load()?;
    let backend = loaded.backend.clone();
    let gas_limit = args.program.gas_limit;
    // Executing first is cheap (a few % of proving) and tells the user the size of the job.
    let execution = backend.execute(&loaded.program, &loaded.inputs, gas_limit)?;

    let spinner = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(120));
    let pgus = execution.pgus;
    let bar = spinner.clone();
    let progress = Arc::new(move |phase: ProvePhase| match phase {
        ProvePhase::Executing => bar.set_message("executing"),
        ProvePhase::Proving => bar.set_message(format!("proving {pgus} PGUs")),
        ProvePhase::Finished => bar.set_message("done"),
    });
    let job = ProveJob {
        program: Arc::from(loaded.program),
        inputs: Arc::from(loaded.inputs),
        gas_limit,
        mode: args.mode,
    };
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.cancel();
        }
    });
    let proof = prove_async(backend.clone(), job, cancel, progress).await;
    spinner.finish_and_clear();
    let proof = proof?;

    let elapsed = proof.elapsed;
    let bundle = ProofBundle::new(backend.version(), proof);
    let bytes = bundle.encode();
    std::fs::write(&args.output, &bytes)
        .with_context(|| format!("cannot write proof to {}", args.output.display()))?;
    println!("program id  {}", bundle.program_id);
    println!("zkvm        {}", bundle.zkvm);
    println!("cycles      {}", execution.cycles);
    println!("PGUs        {pgus}");
    println!("outputs     {}", backend.describe_outputs(&bundle.outputs));
    println!(
        "time        {:.2} s ({:.0} PGUs/s)",
        elapsed.as_secs_f64(),
        pgus as f64 / elapsed.as_secs_f64()
    );
    println!("proof       {} ({} bytes)", args.output.display(), bytes.len());
    Ok(())
}
