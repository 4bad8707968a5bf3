//! SP1 core and compressed proving beside Miden at the same work: fibonacci at three sizes, each
//! VM running its own fib guest (`programs/sp1/fib.c`, `programs/fib`). For each proof: gas
//! (PGUs), seconds, the process's peak RSS during that proof, and the proof's size.
//!
//! Run (release, 18+ GB free, ~25 minutes on 2 cores):
//! `cargo bench -p provernet-zkvm --features sp1 --bench sp1 [-- 20 2000 20000]`.
//! The CPU prover's creation and the program's setup are timed apart, before the proofs.

use std::{sync::Arc, time::Instant};

use provernet_zkvm::{
    MidenBackend, ProofMode, ProveJob, Sp1Backend, ZkVm, samples,
    sp1::samples::{FIB_ELF, fib_inputs},
};
use tokio_util::sync::CancellationToken;

/// Resets the process's peak RSS (Linux: `clear_refs` 5), so the next reading is this proof's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak RSS since the last reset, GB (VmHWM in /proc/self/status).
fn peak_gb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1e6
}

fn prove(
    backend: &dyn ZkVm,
    program: &[u8],
    inputs: Vec<u8>,
    mode: ProofMode,
) -> (u64, f64, f64, usize) {
    let gas_limit = backend.max_gas_limit();
    let execution = backend.execute(program, &inputs, gas_limit).expect("executes");
    let job = ProveJob {
        program: Arc::from(program),
        inputs: Arc::from(inputs.as_slice()),
        gas_limit,
        mode,
    };
    reset_peak();
    let started = Instant::now();
    let proof = backend.prove(&job, &CancellationToken::new(), &|_| {}).expect("proves");
    let secs = started.elapsed().as_secs_f64();
    let peak = peak_gb();
    backend.verify(&proof.program_id, &inputs, &proof.outputs, &proof.bytes).expect("verifies");
    (execution.pgus, secs, peak, proof.bytes.len())
}

fn main() {
    let sizes: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![20, 2_000, 20_000] } else { sizes };
    println!("| VM | mode | fib n | gas / PGUs | prove s | peak RSS GB | proof KB |");
    println!("|---|---|---|---|---|---|---|");
    let row = |vm: &str, mode: &str, n: u32, (pgus, secs, peak, bytes): (u64, f64, f64, usize)| {
        println!(
            "| {vm} | {mode} | {n} | {pgus} | {secs:.1} | {peak:.1} | {:.0} |",
            bytes as f64 / 1024.0
        );
    };
    let miden = MidenBackend::new();
    for &n in &sizes {
        let inputs = samples::FIB.inputs_with_size(u64::from(n));
        let proof = prove(&miden, samples::FIB.source.as_bytes(), inputs, ProofMode::Default);
        row("Miden", "stark", n, proof);
    }
    let sp1 = Sp1Backend::new();
    let started = Instant::now();
    sp1.program_id(FIB_ELF).expect("fib loads");
    let setup = started.elapsed().as_secs_f64();
    reset_peak();
    let started = Instant::now();
    sp1.prepare_prover().expect("the CPU prover");
    let creation = started.elapsed().as_secs_f64();
    let creation_peak = peak_gb();
    for mode in [ProofMode::Core, ProofMode::Compressed] {
        for &n in &sizes {
            row("SP1", mode.as_str(), n, prove(&sp1, FIB_ELF, fib_inputs(n), mode));
        }
    }
    println!();
    println!(
        "SP1 program setup (vk): {setup:.1} s; CPU prover creation: {creation:.1} s, \
         peak RSS {creation_peak:.1} GB (once per process, before the proofs above)"
    );
}
