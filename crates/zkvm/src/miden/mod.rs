//! The Miden VM backend (`miden-vm` 0.23), provernet's default.
//!
//! - **Programs** are Miden assembly source (UTF-8). Assembling recomputes every digest, so a
//!   downloaded program is validated by construction; compiled MAST binaries are not accepted
//!   (their fast reader trusts the digests it is given). Programs use the base instruction set;
//!   the core library is not linked.
//! - **Program id**: the 32-byte MAST root, unchanged by comments and whitespace.
//! - **Inputs**: JSON with public `stack` and private `advice` values; see [`inputs`].
//! - **PGUs**: the padded trace length in rows (the longest of the main, range and chiplet
//!   traces, rounded up to a power of two), which proving time and memory follow: ~10 KB of memory
//!   per row. Gas limits above [`MAX_PGUS`] (2^20 rows, ~10 GB) are refused.
//! - **Proofs**: one mode ([`ProofMode::Default`]), a STARK hashed with BLAKE3; the verifier
//!   rejects other hash functions so that the network pins one. Security is 96 bits (fixed by
//!   miden-vm 0.23).

pub mod inputs;

use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::Instant,
};

use lru::LruCache;
use miden_vm::{
    Assembler, DefaultHost, ExecutionError, ExecutionOptions, ExecutionProof, FastProcessor,
    HashFunction, Kernel, Program, ProgramInfo, ProvingOptions, TraceProvingInputs, Word,
    diagnostics::reporting::PrintDiagnostic, prove_from_trace_sync,
    trace::build_trace_with_max_len,
};
use tokio_util::sync::CancellationToken;

pub use self::inputs::{MidenInputs, decode_outputs, outputs_from_values};
use crate::{
    Execution, ProgramId, Proof, ProofMode, ProveJob, ProvePhase, PublicOutputs, Result, Verified,
    ZkVm, ZkVmError,
};

/// The version string of this backend, as requests name it.
pub const VERSION: &str = "miden-0.23";
/// Largest gas limit accepted: 2^20 padded rows (about 10 GB of prover memory).
pub const MAX_PGUS: u64 = 1 << 20;
/// Smallest trace Miden builds; every program costs at least this many PGUs.
pub const MIN_PGUS: u64 = 64;
/// Memory a proof needs per PGU (padded trace row), measured: ~10 KB (notes/miden.md).
pub const BYTES_PER_PGU: u64 = 10 * 1024;
/// The one hash function proofs must use.
const PROOF_HASH: HashFunction = HashFunction::Blake3_256;
/// Assembled programs kept, by content hash: assembly takes milliseconds, but the network and a
/// node see the same few programs over and over.
const PROGRAM_CACHE_ENTRIES: usize = 256;

/// The Miden VM backend. Create once and share: it caches assembled programs.
pub struct MidenBackend {
    /// Assembled programs by BLAKE3 of their source. A std mutex: no await while held.
    programs: Mutex<LruCache<[u8; 32], Arc<Program>>>,
}

impl Default for MidenBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MidenBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MidenBackend").field("version", &VERSION).finish_non_exhaustive()
    }
}

impl MidenBackend {
    /// A backend with an empty program cache.
    pub fn new() -> Self {
        let capacity = NonZeroUsize::new(PROGRAM_CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        Self { programs: Mutex::new(LruCache::new(capacity)) }
    }

    /// Assembles `source`, or returns the cached program.
    fn load(&self, source: &[u8]) -> Result<Arc<Program>> {
        let key = *blake3::hash(source).as_bytes();
        if let Some(program) = self.cache().get(&key) {
            return Ok(program.clone());
        }
        let text = std::str::from_utf8(source).map_err(|e| ZkVmError::InvalidProgram {
            diagnostic: format!("program is not UTF-8 Miden assembly source: {e}"),
        })?;
        let program = Assembler::default()
            .assemble_program(text)
            .map_err(|report| ZkVmError::InvalidProgram { diagnostic: render(report, text) })?;
        let program = Arc::new(program);
        self.cache().put(key, program.clone());
        Ok(program)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<[u8; 32], Arc<Program>>> {
        // A panic while holding the lock cannot leave the cache inconsistent: keep using it.
        self.programs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs the program and records what trace building needs, stopping past `gas_limit` cycles.
    fn trace_inputs(
        &self,
        program: &Program,
        inputs: &MidenInputs,
        gas_limit: u64,
    ) -> Result<miden_vm::TraceBuildInputs> {
        check_gas_limit(gas_limit)?;
        // Cycles never exceed trace rows, so a cycle cap at the gas limit stops runaway programs
        // early; the row count is checked once the trace is built.
        let max_cycles = gas_limit.max(MIN_PGUS) as u32;
        let options = ExecutionOptions::new(
            Some(max_cycles),
            MIN_PGUS as u32,
            ExecutionOptions::DEFAULT_CORE_TRACE_FRAGMENT_SIZE,
            false,
            false,
        )
        .map_err(|e| ZkVmError::ProverFailed { reason: e.to_string() })?;
        let processor = FastProcessor::new_with_options(
            inputs.stack_inputs()?,
            inputs.advice_inputs()?,
            options,
        )
        .map_err(|e| ZkVmError::MalformedInputs { reason: e.to_string() })?;
        processor
            .execute_trace_inputs_sync(program, &mut DefaultHost::default())
            .map_err(|e| execution_error(e, gas_limit))
    }
}

fn check_gas_limit(gas_limit: u64) -> Result<()> {
    if gas_limit == 0 || gas_limit > MAX_PGUS {
        return Err(ZkVmError::InvalidGasLimit { gas_limit, max: MAX_PGUS });
    }
    Ok(())
}

fn execution_error(err: ExecutionError, gas_limit: u64) -> ZkVmError {
    match err {
        ExecutionError::CycleLimitExceeded(_) | ExecutionError::TraceLenExceeded(_) => {
            ZkVmError::GasLimitExceeded { gas_limit, needed: format!("more than {gas_limit}") }
        }
        ExecutionError::AdviceError { .. } => {
            ZkVmError::ProgramFailed { reason: format!("{err} (are the advice inputs complete?)") }
        }
        other => ZkVmError::ProgramFailed { reason: other.to_string() },
    }
}

/// Longest source line the assembler's report quotes; longer ones get the plain message.
const MAX_QUOTED_LINE: usize = 4096;

/// The assembler's report with the source quoted around the error, or its plain message where
/// quoting fails: miette's renderer panics on very long lines ("Formatting argument out of
/// range"), and a hostile program must not crash the thread that loads it.
fn render(report: miden_vm::diagnostics::Report, source: &str) -> String {
    let message = report.to_string();
    if source.lines().any(|line| line.len() > MAX_QUOTED_LINE) {
        return format!(
            "{message} (the source is not quoted: a line is over {MAX_QUOTED_LINE} characters)"
        );
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        PrintDiagnostic::new_without_color(report).to_string()
    }))
    .unwrap_or(message)
}

fn program_id(program: &Program) -> ProgramId {
    ProgramId::from_bytes(program.hash().as_bytes())
}

impl ZkVm for MidenBackend {
    fn version(&self) -> &str {
        VERSION
    }

    fn proof_modes(&self) -> &[ProofMode] {
        &[ProofMode::Default]
    }

    fn max_gas_limit(&self) -> u64 {
        MAX_PGUS
    }

    fn proving_memory(&self, pgus: u64, _mode: ProofMode) -> u64 {
        pgus.saturating_mul(BYTES_PER_PGU)
    }

    fn program_id(&self, program: &[u8]) -> Result<ProgramId> {
        self.load(program).map(|p| program_id(&p))
    }

    fn check_inputs(&self, inputs: &[u8]) -> Result<()> {
        MidenInputs::from_json(inputs).map(drop)
    }

    fn execute(&self, program: &[u8], inputs: &[u8], gas_limit: u64) -> Result<Execution> {
        let program = self.load(program)?;
        let inputs = MidenInputs::from_json(inputs)?;
        let trace_inputs = self.trace_inputs(&program, &inputs, gas_limit)?;
        // Miden's trace builder compares whole 4,096-row fragments plus one row with its cap,
        // so a cap at the gas limit itself refuses traces that fit (any program at a gas limit
        // of 4,096): the cap only bounds memory, the gas limit is checked on the padded length.
        let row_cap = (gas_limit.next_power_of_two().max(MIN_PGUS) as usize)
            .saturating_mul(2)
            .max(2 * ExecutionOptions::DEFAULT_CORE_TRACE_FRAGMENT_SIZE + 1);
        let trace = build_trace_with_max_len(trace_inputs, row_cap)
            .map_err(|e| execution_error(e, gas_limit))?;
        let summary = trace.trace_len_summary();
        let pgus = summary.padded_trace_len() as u64;
        if pgus > gas_limit {
            return Err(ZkVmError::GasLimitExceeded { gas_limit, needed: pgus.to_string() });
        }
        Ok(Execution {
            pgus,
            cycles: summary.main_trace_len() as u64,
            outputs: inputs::encode_outputs(trace.stack_outputs()),
        })
    }

    fn prove(
        &self,
        job: &ProveJob,
        cancel: &CancellationToken,
        progress: &(dyn Fn(ProvePhase) + Send + Sync),
    ) -> Result<Proof> {
        let started = Instant::now();
        self.check_mode(job.mode)?;
        let program = self.load(&job.program)?;
        let inputs = MidenInputs::from_json(&job.inputs)?;
        progress(ProvePhase::Executing);
        let trace_inputs = self.trace_inputs(&program, &inputs, job.gas_limit)?;
        if cancel.is_cancelled() {
            return Err(ZkVmError::Cancelled);
        }
        progress(ProvePhase::Proving);
        let (outputs, proof) = prove_from_trace_sync(TraceProvingInputs::new(
            trace_inputs,
            ProvingOptions::new(PROOF_HASH),
        ))
        .map_err(|e| execution_error(e, job.gas_limit))?;
        if cancel.is_cancelled() {
            return Err(ZkVmError::Cancelled);
        }
        progress(ProvePhase::Finished);
        Ok(Proof {
            bytes: proof.to_bytes(),
            outputs: inputs::encode_outputs(&outputs),
            program_id: program_id(&program),
            elapsed: started.elapsed(),
        })
    }

    fn verify(
        &self,
        program_id: &ProgramId,
        inputs: &[u8],
        outputs: &PublicOutputs,
        proof: &[u8],
    ) -> Result<Verified> {
        let stack_inputs = MidenInputs::from_json(inputs)?.stack_inputs()?;
        let stack_outputs = inputs::stack_outputs(outputs)?;
        let proof = ExecutionProof::from_bytes(proof)
            .map_err(|e| ZkVmError::MalformedProof { reason: e.to_string() })?;
        if proof.hash_fn() != PROOF_HASH {
            return Err(ZkVmError::ProofRejected {
                reason: format!(
                    "proof uses hash function {:?}; only {PROOF_HASH:?} is accepted",
                    proof.hash_fn()
                ),
            });
        }
        let root = Word::try_from(program_id.as_bytes()).map_err(|e| ZkVmError::ProofRejected {
            reason: format!("program id {program_id} is not a Miden MAST root: {e}"),
        })?;
        let info = ProgramInfo::new(root, Kernel::default());
        let security_bits = miden_vm::verify(info, stack_inputs, stack_outputs, proof)
            .map_err(|e| ZkVmError::ProofRejected { reason: e.to_string() })?;
        Ok(Verified { security_bits })
    }

    fn describe_outputs(&self, outputs: &PublicOutputs) -> String {
        match decode_outputs(outputs) {
            Ok(values) => format!("{values:?}"),
            Err(e) => e.to_string(),
        }
    }
}
