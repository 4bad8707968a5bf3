//! `provernet verify`: check a proof bundle against a program and its inputs.

use std::{path::PathBuf, time::Instant};

use anyhow::{Context, bail};
use provernet_zkvm::ProofBundle;

use super::local::ProgramArgs;

/// Arguments of `provernet verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    program: ProgramArgs,
    /// The proof bundle to verify.
    #[arg(long, default_value = "proof.bin")]
    proof: PathBuf,
}

/// Verifies the bundle; fails with the reason if the proof does not hold.
pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let loaded = args.program.load()?;
    let bytes = std::fs::read(&args.proof)
        .with_context(|| format!("cannot read proof {}: check the path", args.proof.display()))?;
    let bundle = ProofBundle::decode(&bytes)
        .with_context(|| format!("{} is not a valid proof bundle", args.proof.display()))?;
    let backend = &loaded.backend;
    if bundle.zkvm != backend.version() {
        bail!(
            "the proof was made by {}, not {}: pass --zkvm {}",
            bundle.zkvm,
            backend.version(),
            bundle.zkvm
        );
    }
    let program_id = backend.program_id(&loaded.program)?;
    if bundle.program_id != program_id {
        bail!(
            "the proof is for program {}, but {} is program {program_id}",
            bundle.program_id,
            args.program.program.display()
        );
    }
    let started = Instant::now();
    let verified = backend
        .verify(&program_id, &loaded.inputs, &bundle.outputs, &bundle.proof)
        .with_context(|| format!("{} is rejected", args.proof.display()))?;
    println!("verified    {} ({} bits of security)", args.proof.display(), verified.security_bits);
    println!("program id  {program_id}");
    println!("outputs     {}", backend.describe_outputs(&bundle.outputs));
    println!("time        {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    Ok(())
}
