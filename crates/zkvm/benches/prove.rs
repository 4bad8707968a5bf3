//! Proving throughput of the Miden backend: PGUs/s at several trace sizes, proof size and
//! verification time. The ceiling that the node's end-to-end throughput is measured against.
//!
//! Run: `cargo bench -p provernet-zkvm --bench prove` (add `-- --large` for 2^20 rows, ~10 GB).

use std::{sync::Arc, time::Instant};

use provernet_zkvm::{MidenBackend, ProofMode, ProveJob, ZkVm, samples};
use tokio_util::sync::CancellationToken;

/// Verifications timed per size; the median is reported.
const VERIFY_RUNS: usize = 20;

fn main() {
    let large = std::env::args().any(|a| a == "--large");
    // (sample, size parameter): fib runs ~14 cycles per step; the hash chain adds hasher rows.
    let mut jobs = vec![
        (samples::FIB, 1_000),
        (samples::FIB, 4_000),
        (samples::HASHCHAIN, 1_500),
        (samples::FIB, 17_000),
    ];
    if large {
        jobs.push((samples::FIB, 70_000));
    }
    let backend = MidenBackend::new();
    println!(
        "threads: {} (RAYON_NUM_THREADS={})",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    println!(
        "| program | n | cycles | PGUs (padded rows) | prove s | PGUs/s | proof KB | verify ms (median of {VERIFY_RUNS}) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let (mut total_pgus, mut total_secs) = (0u64, 0f64);
    for (sample, n) in jobs {
        let inputs = sample.inputs_with_size(n);
        let execution = match backend.execute(sample.source.as_bytes(), &inputs, 1 << 20) {
            Ok(e) => e,
            Err(e) => panic!("{} n={n}: {e}", sample.name),
        };
        let job = ProveJob {
            program: Arc::from(sample.source.as_bytes()),
            inputs: Arc::from(inputs.as_slice()),
            gas_limit: 1 << 20,
            mode: ProofMode::Default,
        };
        let proof = match backend.prove(&job, &CancellationToken::new(), &|_| {}) {
            Ok(p) => p,
            Err(e) => panic!("{} n={n}: {e}", sample.name),
        };
        let secs = proof.elapsed.as_secs_f64();
        let mut verify_ms: Vec<f64> = (0..VERIFY_RUNS)
            .map(|_| {
                let started = Instant::now();
                let ok = backend.verify(&proof.program_id, &inputs, &proof.outputs, &proof.bytes);
                assert!(ok.is_ok(), "{ok:?}");
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        verify_ms.sort_by(f64::total_cmp);
        total_pgus += execution.pgus;
        total_secs += secs;
        println!(
            "| {} | {n} | {} | {} | {secs:.2} | {:.0} | {:.1} | {:.2} |",
            sample.name,
            execution.cycles,
            execution.pgus,
            execution.pgus as f64 / secs,
            proof.bytes.len() as f64 / 1024.0,
            verify_ms[VERIFY_RUNS / 2],
        );
    }
    println!(
        "\nwhole mix: {total_pgus} PGUs in {total_secs:.2} s = {:.0} PGUs/s",
        total_pgus as f64 / total_secs
    );
}
