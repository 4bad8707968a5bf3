//! The Miden backend on the sample programs and on every kind of bad input.

use std::sync::Arc;

use provernet_zkvm::{
    MidenBackend, ProofMode, ProveJob, ProvePhase, PublicOutputs, ZkVm, ZkVmError, miden,
    prove_async,
    samples::{self, Sample},
};
use tokio_util::sync::CancellationToken;

const GAS: u64 = 1 << 16;

fn job(source: &str, inputs: &[u8], gas_limit: u64) -> ProveJob {
    ProveJob {
        program: Arc::from(source.as_bytes()),
        inputs: Arc::from(inputs),
        gas_limit,
        mode: ProofMode::Default,
    }
}

fn prove(backend: &MidenBackend, sample: &Sample) -> provernet_zkvm::Proof {
    let job = job(sample.source, sample.inputs.as_bytes(), GAS);
    match backend.prove(&job, &CancellationToken::new(), &|_| {}) {
        Ok(proof) => proof,
        Err(e) => panic!("{}: proving failed: {e}", sample.name),
    }
}

fn err<T: std::fmt::Debug>(result: Result<T, ZkVmError>) -> ZkVmError {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_sample_executes_proves_and_verifies() {
    let backend = MidenBackend::new();
    for sample in samples::EXECUTABLE {
        let execution = backend
            .execute(sample.source.as_bytes(), sample.inputs.as_bytes(), GAS)
            .unwrap_or_else(|e| panic!("{}: {e}", sample.name));
        let values = miden::decode_outputs(&execution.outputs).unwrap_or_default();
        let expected = sample.expected_outputs();
        assert_eq!(values[..expected.len()], expected[..], "{} outputs", sample.name);
        assert!(execution.pgus.is_power_of_two() && execution.pgus >= execution.cycles);

        let proof = prove(&backend, &sample);
        assert_eq!(proof.outputs, execution.outputs, "{}: prove and execute agree", sample.name);
        let id = backend.program_id(sample.source.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(proof.program_id, id);
        let verified = backend.verify(&id, sample.inputs.as_bytes(), &proof.outputs, &proof.bytes);
        assert_eq!(verified.map(|v| v.security_bits).ok(), Some(96), "{}", sample.name);
    }
}

#[test]
fn tampered_proofs_wrong_outputs_and_other_programs_are_rejected() {
    let backend = MidenBackend::new();
    let sample = samples::FIB;
    let proof = prove(&backend, &sample);
    let id = proof.program_id;
    let inputs = sample.inputs.as_bytes();

    // A flipped byte anywhere is caught: either the proof no longer decodes, or it no longer
    // verifies.
    for position in [proof.bytes.len() / 3, proof.bytes.len() / 2, proof.bytes.len() - 1] {
        let mut tampered = proof.bytes.clone();
        tampered[position] ^= 0x01;
        let e = err(backend.verify(&id, inputs, &proof.outputs, &tampered));
        assert!(
            matches!(e, ZkVmError::ProofRejected { .. } | ZkVmError::MalformedProof { .. }),
            "byte {position}: {e}"
        );
    }
    let e = err(backend.verify(&id, inputs, &proof.outputs, &proof.bytes[..100]));
    assert!(matches!(e, ZkVmError::MalformedProof { .. }), "{e}");

    let wrong = miden::outputs_from_values(&[12586269026]).unwrap_or_default();
    let e = err(backend.verify(&id, inputs, &wrong, &proof.bytes));
    assert!(matches!(e, ZkVmError::ProofRejected { .. }), "{e}");

    let other_inputs = br#"{"stack": [51]}"#;
    let e = err(backend.verify(&id, other_inputs, &proof.outputs, &proof.bytes));
    assert!(matches!(e, ZkVmError::ProofRejected { .. }), "{e}");

    let other_program = backend.program_id(samples::HASHCHAIN.source.as_bytes());
    let other_program = other_program.unwrap_or_else(|e| panic!("{e}"));
    let e = err(backend.verify(&other_program, inputs, &proof.outputs, &proof.bytes));
    assert!(matches!(e, ZkVmError::ProofRejected { .. }), "{e}");

    let e = err(backend.verify(&id, inputs, &PublicOutputs(vec![1, 2, 3]), &proof.bytes));
    assert!(e.to_string().contains("malformed public outputs"), "{e}");
}

#[test]
fn program_id_ignores_comments_and_whitespace_but_not_code() {
    let backend = MidenBackend::new();
    let id = |src: &str| backend.program_id(src.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let base = id(samples::FIB.source);
    let reformatted = format!("# a comment\n\n{}\n", samples::FIB.source.replace("    ", "\t"));
    assert_eq!(id(&reformatted), base);
    assert_ne!(id("begin push.1 drop end"), base);
}

#[test]
fn a_program_that_does_not_assemble_names_the_location() {
    let e = err(MidenBackend::new().program_id(b"begin\n    push.1 bogus_op\nend\n"));
    let ZkVmError::InvalidProgram { diagnostic } = &e else { panic!("{e}") };
    assert!(e.to_string().starts_with("program does not assemble"), "{e}");
    assert!(diagnostic.contains("bogus_op") && diagnostic.contains('2'), "{diagnostic}");

    let e = err(MidenBackend::new().program_id(&[0xff, 0xfe, 0x00]));
    assert!(e.to_string().contains("not UTF-8"), "{e}");
}

#[test]
fn a_huge_line_that_does_not_assemble_is_an_error_not_a_crash() {
    // The assembler's report renderer panics quoting a line this long; the backend must not.
    let mut source = String::from("begin ");
    while source.len() < 300_000 {
        source.push_str("push.1 drop ");
    }
    source.push_str("no_such_instruction end");
    let e = err(MidenBackend::new().program_id(source.as_bytes()));
    assert!(matches!(e, ZkVmError::InvalidProgram { .. }), "{e}");
    assert!(e.to_string().contains("not quoted"), "{e}");
    assert!(e.to_string().len() < 4096, "{} bytes", e.to_string().len());
}

#[test]
fn a_failing_program_reports_its_assertion() {
    let backend = MidenBackend::new();
    let sample = samples::ASSERT42;
    let e = err(backend.execute(sample.source.as_bytes(), sample.inputs.as_bytes(), GAS));
    assert!(matches!(e, ZkVmError::ProgramFailed { .. }) && e.is_request_fault(), "{e}");
    assert!(e.to_string().contains("input must be 42"), "{e}");
    let ok = backend.execute(sample.source.as_bytes(), br#"{"stack": [42]}"#, GAS);
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn gas_limit_stops_execution_at_the_limit() {
    let backend = MidenBackend::new();
    let fib = samples::FIB.source.as_bytes();
    // ~14 cycles per step: 10,000 steps need far more than 4,096 rows.
    let e = err(backend.execute(fib, br#"{"stack": [10000]}"#, 4096));
    assert!(matches!(e, ZkVmError::GasLimitExceeded { gas_limit: 4096, .. }), "{e}");

    // An endless loop stops at the limit instead of running forever.
    let endless = b"begin push.1 while.true push.1 end end";
    let e = err(backend.execute(endless, b"{}", GAS));
    assert!(matches!(e, ZkVmError::GasLimitExceeded { .. }), "{e}");

    // Hasher rows count: the chain's padded trace is larger than its cycle count.
    let chain = samples::HASHCHAIN;
    let execution = backend.execute(chain.source.as_bytes(), &chain.inputs_with_size(200), GAS);
    let execution = execution.unwrap_or_else(|e| panic!("{e}"));
    assert!(execution.pgus > execution.cycles);
    let tight = execution.pgus / 2;
    let e = err(backend.execute(chain.source.as_bytes(), &chain.inputs_with_size(200), tight));
    assert!(matches!(e, ZkVmError::GasLimitExceeded { .. }), "{e}");

    // A trace that fits the limit exactly, or far below a small limit, passes.
    let exact =
        backend.execute(chain.source.as_bytes(), &chain.inputs_with_size(200), execution.pgus);
    assert_eq!(exact.map(|e| e.pgus).ok(), Some(execution.pgus));
    let small = backend.execute(chain.source.as_bytes(), &chain.inputs_with_size(1), 4096);
    assert!(small.as_ref().is_ok_and(|e| e.pgus <= 4096), "{small:?}");
    let full = backend.execute(fib, br#"{"stack": [280]}"#, 4096);
    assert!(full.as_ref().is_ok_and(|e| e.pgus == 4096), "{full:?}");

    for bad in [0, miden::MAX_PGUS + 1] {
        let e = err(backend.execute(fib, samples::FIB.inputs.as_bytes(), bad));
        assert!(matches!(e, ZkVmError::InvalidGasLimit { .. }), "{e}");
    }
}

#[test]
fn malformed_and_missing_inputs_are_named() {
    let backend = MidenBackend::new();
    let fib = samples::FIB.source.as_bytes();
    let e = err(backend.execute(fib, b"[1,2]", GAS));
    assert!(matches!(e, ZkVmError::MalformedInputs { .. }), "{e}");
    let e = err(backend.check_inputs(br#"{"stack": [18446744069414584321]}"#));
    assert!(e.to_string().contains("\"stack\"[0]"), "{e}");

    // advice_fold reads 4n advice values; give it fewer.
    let fold = samples::ADVICE_FOLD.source.as_bytes();
    let e = err(backend.execute(fold, br#"{"stack": [2], "advice": [1,2,3,4]}"#, GAS));
    assert!(matches!(e, ZkVmError::ProgramFailed { .. }), "{e}");
    assert!(e.to_string().contains("advice"), "{e}");
}

#[test]
fn unsupported_modes_are_refused() {
    let mut job = job(samples::FIB.source, samples::FIB.inputs.as_bytes(), GAS);
    job.mode = ProofMode::Groth16;
    let e = err(MidenBackend::new().prove(&job, &CancellationToken::new(), &|_| {}));
    assert!(e.to_string().contains("\"groth16\" is not supported by miden-0.23"), "{e}");
    let e = err("fast".parse::<ProofMode>());
    assert!(e.to_string().contains("default, core, compressed"), "{e}");
}

#[tokio::test]
async fn proving_off_the_runtime_reports_phases_and_can_be_cancelled() {
    let backend: Arc<dyn ZkVm> = Arc::new(MidenBackend::new());
    let phases = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = phases.clone();
    let progress = Arc::new(move |p: ProvePhase| seen.lock().map(|mut v| v.push(p)).unwrap_or(()));
    let job = job(samples::FIB.source, samples::FIB.inputs.as_bytes(), GAS);
    let proof = prove_async(backend.clone(), job.clone(), CancellationToken::new(), progress).await;
    assert!(proof.is_ok(), "{proof:?}");
    let phases = phases.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(phases, [ProvePhase::Executing, ProvePhase::Proving, ProvePhase::Finished]);

    // A job cancelled while proving releases its caller at once (2^15 rows: seconds of work).
    let big = self::job(samples::FIB.source, &samples::FIB.inputs_with_size(2_000), GAS);
    let cancel = CancellationToken::new();
    let (proving_tx, proving_rx) = tokio::sync::oneshot::channel();
    let proving_tx = std::sync::Mutex::new(Some(proving_tx));
    let on_phase = Arc::new(move |p: ProvePhase| {
        if p == ProvePhase::Proving
            && let Some(tx) = proving_tx.lock().ok().and_then(|mut t| t.take())
        {
            let _ = tx.send(());
        }
    });
    let task = tokio::spawn(prove_async(backend, big, cancel.clone(), on_phase));
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), proving_rx).await;
    cancel.cancel();
    let result = tokio::time::timeout(std::time::Duration::from_secs(1), task).await;
    let result = result.unwrap_or_else(|_| panic!("cancellation did not release the caller"));
    assert!(matches!(result, Ok(Err(ZkVmError::Cancelled))), "{result:?}");
}
