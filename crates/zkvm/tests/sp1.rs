//! The SP1 backend: execution of the guests in `programs/sp1/`, every request error, and
//! verification of a committed core proof (`tests/fixtures/sp1-fib-core.proof`).
//!
//! Proving needs 10+ GB and minutes, so that test is `#[ignore]`d, naming the command that runs
//! it; with `PROVERNET_TEST_SP1_WRITE_FIXTURE=1` it rewrites the committed fixture and its program
//! id (`sp1-fib-core.program-id`). The verification test fails without the fixture.
#![cfg(feature = "sp1")]

use std::{
    path::{Path, PathBuf},
    sync::LazyLock,
};

use provernet_zkvm::{
    ProgramId, ProofMode, ProveJob, Sp1Backend, Sp1Inputs, ZkVm, ZkVmError,
    sp1::{self, MAX_PGUS, samples::fib_outputs},
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// One backend for the whole binary: it caches program keys, which take seconds to compute.
static BACKEND: LazyLock<Sp1Backend> = LazyLock::new(Sp1Backend::new);
const GAS: u64 = 10_000_000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn guest(name: &str) -> Vec<u8> {
    let path = repo().join("programs/sp1").join(format!("{name}.elf"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run programs/sp1/build.sh)", path.display()))
}

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sp1-fib-core.proof")
}

fn fib_inputs(n: u32) -> Vec<u8> {
    Sp1Inputs::from_hints([n.to_le_bytes()]).to_json()
}

fn err<T: std::fmt::Debug>(result: Result<T, ZkVmError>) -> ZkVmError {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => e,
    }
}

#[test]
fn executes_fib_with_gas_and_public_values() {
    let execution = BACKEND.execute(&guest("fib"), &fib_inputs(20), GAS).expect("fib executes");
    assert_eq!(execution.outputs, fib_outputs(20));
    assert_eq!(&execution.outputs.0[4..12], &6765u64.to_le_bytes());
    assert!(execution.pgus > 1_000 && execution.pgus < 100_000, "{execution:?}");
    assert!(execution.cycles > 1_000, "{execution:?}");
    // The shipped inputs file is the same request.
    let shipped = std::fs::read(repo().join("programs/sp1/fib.inputs.json")).expect("inputs");
    assert_eq!(
        BACKEND.execute(&guest("fib"), &shipped, GAS).expect("runs").outputs,
        fib_outputs(20)
    );
    // More work costs more gas.
    let bigger = BACKEND.execute(&guest("fib"), &fib_inputs(20_000), GAS).expect("fib executes");
    assert_eq!(bigger.outputs, fib_outputs(20_000));
    assert!(bigger.pgus > execution.pgus * 5, "{bigger:?} vs {execution:?}");
}

#[test]
fn executes_sha256_of_a_large_hint() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let inputs = Sp1Inputs::from_hints([&data]).to_json();
    let execution = BACKEND.execute(&guest("sha256"), &inputs, GAS).expect("sha256 executes");
    let digest = Sha256::digest(&data);
    let again = Sha256::digest(digest);
    let sum: u64 = data.iter().map(|&b| u64::from(b)).sum();
    let expected = [
        &(data.len() as u64).to_le_bytes()[..],
        &sum.to_le_bytes(),
        digest.as_slice(),
        again.as_slice(),
    ]
    .concat();
    assert_eq!(execution.outputs.0, expected);
    assert!(execution.pgus > 100_000, "hashing 100 kB is real work: {execution:?}");
    assert!(BACKEND.describe_outputs(&execution.outputs).starts_with("80 bytes of public values"));
}

/// Two SP1 setups: ~35 s on 2 cores in the test profile (the zkvm crate is compiled at
/// opt-level 3 there too).
#[test]
fn program_id_is_stable_and_differs_between_guests() {
    let fib = BACKEND.program_id(&guest("fib")).expect("fib loads");
    assert_eq!(BACKEND.program_id(&guest("fib")).expect("cached"), fib);
    assert_ne!(BACKEND.program_id(&guest("sha256")).expect("sha256 loads"), fib);
}

#[test]
fn rejects_elfs_that_are_not_rv64im_executables() {
    let fib = guest("fib");
    type Mutation = fn(&mut Vec<u8>);
    let cases: [(&str, Mutation); 4] = [
        ("not ELF64", |elf| elf[4] = 1),
        ("not RISC-V", |elf| elf[18] = 62),
        ("compressed (C) extension", |elf| elf[48] |= 1),
        ("no ELF magic", |elf| elf[..4].copy_from_slice(b"MZ\0\0")),
    ];
    for (expected, mutate) in cases {
        let mut elf = fib.clone();
        mutate(&mut elf);
        for e in [err(BACKEND.execute(&elf, &fib_inputs(3), GAS)), err(BACKEND.program_id(&elf))] {
            assert!(matches!(e, ZkVmError::InvalidProgram { .. }), "{e}");
            assert!(e.to_string().contains(expected), "{expected}: {e}");
            assert!(e.is_request_fault());
        }
    }
}

#[test]
fn rejects_a_truncated_elf() {
    let fib = guest("fib");
    for len in [10, 100, fib.len() / 2] {
        let e = err(BACKEND.execute(&fib[..len], &fib_inputs(3), GAS));
        assert!(matches!(e, ZkVmError::InvalidProgram { .. }), "{len}: {e}");
        assert!(e.to_string().contains("truncated") || e.to_string().contains("magic"), "{e}");
    }
}

#[test]
fn a_guest_halting_non_zero_fails() {
    let e = err(BACKEND.execute(&guest("exit3"), b"{}", GAS));
    assert!(matches!(e, ZkVmError::ProgramFailed { .. }), "{e}");
    assert!(e.to_string().contains("exit code 3"), "{e}");
    // fib without its hint halts with 1.
    let e = err(BACKEND.execute(&guest("fib"), b"{}", GAS));
    assert!(e.to_string().contains("exit code 1"), "{e}");
}

#[test]
fn gas_over_the_limit_fails() {
    let fib = guest("fib");
    let gas = BACKEND.execute(&fib, &fib_inputs(20), GAS).expect("runs").pgus;
    // Just under: execution completes, then the gas is over.
    let e = err(BACKEND.execute(&fib, &fib_inputs(20), gas - 1));
    assert!(matches!(&e, ZkVmError::GasLimitExceeded { needed, .. } if *needed == gas.to_string()));
    // Far under: execution is cut off early.
    let e = err(BACKEND.execute(&fib, &fib_inputs(200_000), 1_000));
    assert!(matches!(&e, ZkVmError::GasLimitExceeded { needed, .. } if needed == "more than 1000"));
    for limit in [0, MAX_PGUS + 1] {
        let e = err(BACKEND.execute(&fib, &fib_inputs(20), limit));
        assert!(matches!(e, ZkVmError::InvalidGasLimit { .. }), "{e}");
    }
}

#[test]
fn malformed_inputs_are_rejected() {
    for inputs in [&b"[]"[..], br#"{"hint": []}"#, br#"{"hints": ["0xzz"]}"#] {
        let e = err(BACKEND.execute(&guest("fib"), inputs, GAS));
        assert!(matches!(e, ZkVmError::MalformedInputs { .. }), "{e}");
        assert!(BACKEND.check_inputs(inputs).is_err());
    }
}

#[test]
fn groth16_and_plonk_are_refused() {
    for mode in [ProofMode::Groth16, ProofMode::Plonk] {
        let job = ProveJob {
            program: guest("fib").into(),
            inputs: fib_inputs(20).into(),
            gas_limit: GAS,
            mode,
        };
        let e = err(BACKEND.prove(&job, &CancellationToken::new(), &|_| {}));
        assert!(matches!(e, ZkVmError::UnsupportedProofMode { .. }), "{e}");
        assert!(e.to_string().contains("circuit files"), "{e}");
    }
    assert!(!BACKEND.has_cpu_prover(), "refusing a mode must not create the CPU prover");
}

/// Checks `proof` (bytes of a proof of fib(20)) against the right and the wrong claims.
fn check_fib_proof(backend: &Sp1Backend, proof: &[u8], fib_id: ProgramId) {
    let outputs = fib_outputs(20);
    let verified = backend.verify(&fib_id, &fib_inputs(20), &outputs, proof).expect("verifies");
    assert_eq!(verified.security_bits, sp1::SECURITY_BITS);

    // Other public values.
    let e = err(backend.verify(&fib_id, &fib_inputs(20), &fib_outputs(21), proof));
    assert!(matches!(e, ZkVmError::ProofRejected { .. }), "{e}");

    // Another program.
    let other = ProgramId::from_bytes([7; 32]);
    let e = err(backend.verify(&other, &fib_inputs(20), &outputs, proof));
    assert!(e.to_string().contains("is for program"), "{e}");

    // A tampered proof: bytes flipped inside the STARK.
    for at in [proof.len() / 3, proof.len() / 2, proof.len() - 100] {
        let mut tampered = proof.to_vec();
        tampered[at] ^= 0x55;
        let e = err(backend.verify(&fib_id, &fib_inputs(20), &outputs, &tampered));
        assert!(
            matches!(e, ZkVmError::ProofRejected { .. } | ZkVmError::MalformedProof { .. }),
            "{at}: {e}"
        );
    }

    // Public values swapped inside the proof, consistently with the claim: the STARK commits to
    // their digest, so the verifier still refuses.
    let (vk, mut inner): (sp1_sdk::SP1VerifyingKey, sp1_sdk::SP1ProofWithPublicValues) =
        bincode::deserialize(proof).expect("decodes");
    inner.public_values = sp1_sdk::SP1PublicValues::from(&fib_outputs(21).0);
    let forged = bincode::serialize(&(&vk, &inner)).expect("encodes");
    let e = err(backend.verify(&fib_id, &fib_inputs(20), &fib_outputs(21), &forged));
    assert!(matches!(e, ZkVmError::ProofRejected { .. }), "{e}");

    // Not a proof at all, and trailing bytes.
    let e = err(backend.verify(&fib_id, &fib_inputs(20), &outputs, b"not a proof"));
    assert!(matches!(e, ZkVmError::MalformedProof { .. }), "{e}");
    let e = err(backend.verify(&fib_id, &fib_inputs(20), &outputs, &[proof, b"x"].concat()));
    assert!(matches!(e, ZkVmError::MalformedProof { .. }), "{e}");
}

#[test]
fn verifies_the_committed_core_proof_and_rejects_tampering() {
    let proof = std::fs::read(fixture_path()).unwrap_or_else(|e| {
        panic!(
            "the committed fixture {}: {e}; write it with PROVERNET_TEST_SP1_WRITE_FIXTURE=1 \
             cargo test --release -p provernet-zkvm --features sp1 --test sp1 -- --ignored proves_fib",
            fixture_path().display()
        )
    });
    let fib_id: ProgramId = std::fs::read_to_string(fixture_path().with_extension("program-id"))
        .expect("the fixture's program id")
        .trim()
        .parse()
        .expect("a program id");
    check_fib_proof(&BACKEND, &proof, fib_id);
    assert!(!BACKEND.has_cpu_prover(), "verifying must not create the CPU prover");
}

/// Proves fib(20) in core mode (10+ GB, minutes). `PROVERNET_TEST_SP1_PROVE_N` (fib's n,
/// default 20) and `PROVERNET_TEST_SP1_PROVE_MODE` (`core` or `compressed`) change the job, for
/// benchmarks.
#[test]
#[ignore = "10+ GB of memory, minutes: cargo test --release -p provernet-zkvm --features sp1 --test sp1 -- --ignored proves_fib"]
fn proves_fib_when_asked() {
    let n: u32 =
        std::env::var("PROVERNET_TEST_SP1_PROVE_N").ok().and_then(|n| n.parse().ok()).unwrap_or(20);
    let mode: ProofMode = std::env::var("PROVERNET_TEST_SP1_PROVE_MODE")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(ProofMode::Core);
    let backend = Sp1Backend::new();
    let job = ProveJob {
        program: guest("fib").into(),
        inputs: fib_inputs(n).into(),
        gas_limit: GAS * 10,
        mode,
    };
    let execution = backend.execute(&job.program, &job.inputs, job.gas_limit).expect("executes");
    let phases = std::sync::Mutex::new(Vec::new());
    let proof = backend
        .prove(&job, &CancellationToken::new(), &|phase| {
            phases.lock().unwrap_or_else(|p| p.into_inner()).push(phase)
        })
        .expect("proves");
    eprintln!(
        "figures: fib n={n} mode={mode} gas={} instructions={} proof_bytes={} prove_seconds={:.1}",
        execution.pgus,
        execution.cycles,
        proof.bytes.len(),
        proof.elapsed.as_secs_f64()
    );
    assert_eq!(proof.outputs, fib_outputs(n));
    let fib_id: ProgramId = backend.program_id(&guest("fib")).expect("loads");
    assert_eq!(proof.program_id, fib_id);
    assert_eq!(phases.into_inner().unwrap_or_else(|p| p.into_inner()).len(), 3);
    let started = std::time::Instant::now();
    backend.verify(&fib_id, &job.inputs, &proof.outputs, &proof.bytes).expect("verifies");
    eprintln!("figures: verify_seconds={:.3}", started.elapsed().as_secs_f64());
    if n == 20 {
        check_fib_proof(&backend, &proof.bytes, fib_id);
        if mode == ProofMode::Core
            && std::env::var("PROVERNET_TEST_SP1_WRITE_FIXTURE").as_deref() == Ok("1")
        {
            std::fs::create_dir_all(fixture_path().parent().expect("a folder"))
                .expect("creates the fixtures folder");
            std::fs::write(fixture_path(), &proof.bytes).expect("writes the fixture");
            std::fs::write(fixture_path().with_extension("program-id"), format!("{fib_id}\n"))
                .expect("writes the fixture's program id");
            eprintln!("wrote {}", fixture_path().display());
        }
    }
}

/// Execution figures at three sizes of each guest, for BENCHMARKS.md.
#[test]
#[ignore = "figures, not a check: cargo test --release -p provernet-zkvm --features sp1 --test sp1 -- --ignored --nocapture execution_figures"]
fn execution_figures_when_asked() {
    let fib = guest("fib");
    for n in [20u32, 200_000, 2_000_000] {
        let started = std::time::Instant::now();
        let e = BACKEND.execute(&fib, &fib_inputs(n), MAX_PGUS).expect("fib executes");
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "figures: fib n={n} gas={} instructions={} seconds={seconds:.3}",
            e.pgus, e.cycles
        );
    }
    let sha = guest("sha256");
    for len in [1_000usize, 100_000, 1_000_000] {
        let inputs = Sp1Inputs::from_hints([vec![7u8; len]]).to_json();
        let started = std::time::Instant::now();
        let e = BACKEND.execute(&sha, &inputs, MAX_PGUS).expect("sha256 executes");
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "figures: sha256 bytes={len} gas={} instructions={} seconds={seconds:.3}",
            e.pgus, e.cycles
        );
    }
}
