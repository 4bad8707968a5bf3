//! The SP1 zkVM backend (sp1-sdk 6, SP1 Hypercube), behind the `sp1` cargo feature.
//!
//! - **Programs** are RV64IM ELF64 executables built without SP1's toolchain: C guests with the
//!   runtime in `programs/sp1/` (see its README), built by Debian's clang and lld. The header is
//!   checked before SP1 loads the file ([`elf::check_elf`]).
//! - **Program id**: the verifying-key hash SP1 calls `vk.bytes32()` (Poseidon2 over KoalaBear,
//!   read as a BN254 element, 32 bytes big-endian): the "program vkey" of SP1's own tooling.
//!   Computing it runs SP1's setup (~8 s), so keys are cached by the ELF's BLAKE3 hash.
//! - **Inputs**: JSON `{"hints": ["hex", ...]}`, each hint one stdin slice; see [`inputs`]. SP1
//!   proofs do not commit to stdin, so verifying needs no inputs.
//! - **Public outputs**: the bytes the guest wrote to SP1's public-values stream (fd 13), whose
//!   SHA-256 the guest commits at halt.
//! - **PGUs**: SP1's own gas figure from execution (`ExecutionReport::gas`). Execution is cut
//!   off at [`INSTRUCTIONS_PER_PGU`] instructions per PGU of the limit (measured gas is 0.66–1.02
//!   per instruction), then the gas is checked against the limit.
//! - **Proofs**: modes core ([`ProofMode::Default`] means core) and compressed. Groth16 and PLONK
//!   wrap a compressed proof in a SNARK whose circuit files SP1 downloads from Succinct and whose
//!   prover is gnark (docker or Go): neither is available here, so those modes are refused.
//!   Proof bytes are bincode 1 (`bincode::serialize`) of the pair `(SP1VerifyingKey,
//!   SP1ProofWithPublicValues)`: the verifying key travels with the proof so that a verifier
//!   needs only the program id, which the key must hash to. Security: 100 bits, conjectured (SP1's
//!   default FRI configuration).
//!
//! Layout:
//! - this file: [`Sp1Backend`] and its [`ZkVm`] implementation.
//! - [`inputs`]: the inputs format.
//! - [`elf`]: the ELF header check.
//! - [`samples`]: the guests of `programs/sp1/`, built in.
//! - `runtime`: the private tokio runtime that runs sp1-sdk's futures.
//!
//! ```text
//! ELF ──check_elf──▶ light client setup ──▶ vk ──bytes32──▶ ProgramId   (cached by ELF hash)
//! ELF + hints ──light client execute(cycle cap)──▶ gas, exit code, public values
//! ELF + vk + hints ──CPU prover (created once, on first prove)──▶ (vk, proof) bytes
//! (vk, proof) ──vk hashes to program id? public values match? light client verify──▶ ok
//! ```
//!
//! Two SP1 clients: the light client (0.6 GB, created in under a second) executes, computes
//! keys and verifies; the CPU prover (a minute or more to create, 10–17.5 GB while proving) is
//! created only when [`ZkVm::prove`] is first called, once per process.

pub mod elf;
pub mod inputs;
mod runtime;
pub mod samples;

use std::{
    num::NonZeroUsize,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::{Duration, Instant},
};

use bincode::Options;
use lru::LruCache;
use sp1_sdk::{
    CpuProver, Elf, HashableKey, LightProver, ProveRequest, Prover, ProverClient, ProvingKey,
    SP1Proof, SP1ProofWithPublicValues, SP1ProvingKey, SP1Stdin, SP1VerifyingKey,
};
use tokio_util::sync::CancellationToken;

pub use self::inputs::Sp1Inputs;
use self::runtime::{SdkRuntime, panic_message};
use crate::{
    Execution, ProgramId, Proof, ProofMode, ProveJob, ProvePhase, PublicOutputs, Result, Verified,
    ZkVm, ZkVmError,
};

/// The version string of this backend, as requests name it: SP1's circuit version v6.1, which
/// proofs carry and verifiers check.
pub const VERSION: &str = "sp1-v6.1";
/// Largest gas limit accepted. SP1 proves shard by shard, so memory stays near the measured
/// 10–17.5 GB and time grows with gas: ~100 s per 800k gas for a core proof on 2 cores.
pub const MAX_PGUS: u64 = 1 << 27;
/// Execution stops after this many instructions per PGU of the gas limit: a bound well above the
/// measured 1–1.5 instructions per PGU, so that it only cuts off programs that are over the limit.
pub const INSTRUCTIONS_PER_PGU: u64 = 4;
/// Conjectured security of SP1's proofs (slop-primitives' default FRI configuration).
pub const SECURITY_BITS: u32 = 100;
/// Memory a core proof takes while proving, whatever the gas: SP1 proves shard by shard
/// (measured 10.2 GB at 8.9k gas, 11.7 GB at 801k gas; notes/sp1.md), with headroom.
pub const CORE_PROVING_MEMORY: u64 = 12 << 30;
/// Memory a compressed proof takes: the recursion on top of the core proof (measured 17.5 GB).
pub const COMPRESSED_PROVING_MEMORY: u64 = 18 << 30;
/// Program keys kept, by ELF hash: computing one takes seconds and a node sees few programs.
const KEY_CACHE_ENTRIES: usize = 64;

const MODES: [ProofMode; 3] = [ProofMode::Default, ProofMode::Core, ProofMode::Compressed];

/// A program's identity: its program id and the verifying key it is the hash of.
struct ProgramKey {
    id: ProgramId,
    vk: SP1VerifyingKey,
}

/// What executing a guest produced.
struct GuestRun {
    gas: u64,
    instructions: u64,
    public_values: Vec<u8>,
}

/// The SP1 backend. Create once and share: it holds SP1's clients and caches program keys.
pub struct Sp1Backend {
    /// The light client, created on first use (under a second).
    light: OnceLock<LightProver>,
    /// The CPU prover, created on first prove (a minute or more, several GB).
    cpu: OnceLock<CpuProver>,
    /// Held while the CPU prover is being created, so it is created once. A std mutex: the
    /// creation blocks on the private runtime, never awaits while holding it.
    cpu_init: Mutex<()>,
    /// Held while a proof runs: one SP1 proof uses every core and 10+ GB, so proofs in one
    /// process take turns rather than thrash. A std mutex: proving blocks, never awaits.
    proving: Mutex<()>,
    /// Program keys by BLAKE3 of the ELF. A std mutex: no await while held.
    keys: Mutex<LruCache<[u8; 32], Arc<ProgramKey>>>,
    /// Runs sp1-sdk's futures; declared last so that the clients are dropped first.
    runtime: SdkRuntime,
}

impl Default for Sp1Backend {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Sp1Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sp1Backend")
            .field("version", &VERSION)
            .field("cpu_prover_created", &self.cpu.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Sp1Backend {
    /// A backend with no SP1 client yet: creating it costs nothing.
    pub fn new() -> Self {
        let capacity = NonZeroUsize::new(KEY_CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        Self {
            light: OnceLock::new(),
            cpu: OnceLock::new(),
            cpu_init: Mutex::new(()),
            proving: Mutex::new(()),
            keys: Mutex::new(LruCache::new(capacity)),
            runtime: SdkRuntime::default(),
        }
    }

    /// Whether the CPU prover has been created in this process.
    pub fn has_cpu_prover(&self) -> bool {
        self.cpu.get().is_some()
    }

    /// Creates the CPU prover now if it does not exist yet (a minute or more, ~7 GB), so that
    /// the first proof does not pay for it.
    ///
    /// # Errors
    /// [`ZkVmError::ProverFailed`] if SP1 cannot create it.
    pub fn prepare_prover(&self) -> Result<()> {
        self.cpu().map(drop)
    }

    fn light(&self) -> Result<&LightProver> {
        if let Some(light) = self.light.get() {
            return Ok(light);
        }
        // Two threads may both build one; it takes under a second and one of them is kept.
        let light =
            self.runtime.run(ProverClient::builder().light().build())?.map_err(|panic| {
                ZkVmError::ProverFailed { reason: format!("creating SP1's light client: {panic}") }
            })?;
        Ok(self.light.get_or_init(|| light))
    }

    fn cpu(&self) -> Result<&CpuProver> {
        if let Some(cpu) = self.cpu.get() {
            return Ok(cpu);
        }
        let _creating = self.cpu_init.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(cpu) = self.cpu.get() {
            return Ok(cpu);
        }
        tracing::info!(target: "provernet::zkvm::sp1", "creating SP1's CPU prover (a minute or more)");
        let started = Instant::now();
        let cpu = self.runtime.run(ProverClient::builder().cpu().build())?.map_err(|panic| {
            ZkVmError::ProverFailed { reason: format!("creating SP1's CPU prover: {panic}") }
        })?;
        tracing::info!(
            target: "provernet::zkvm::sp1",
            seconds = started.elapsed().as_secs_f64(),
            "SP1's CPU prover created"
        );
        Ok(self.cpu.get_or_init(|| cpu))
    }

    fn keys(&self) -> MutexGuard<'_, LruCache<[u8; 32], Arc<ProgramKey>>> {
        // A panic while holding the lock cannot leave the cache inconsistent: keep using it.
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The program's key: checks the ELF and runs SP1's setup, or returns the cached key.
    fn key(&self, program: &[u8]) -> Result<Arc<ProgramKey>> {
        let hash = *blake3::hash(program).as_bytes();
        if let Some(key) = self.keys().get(&hash) {
            return Ok(key.clone());
        }
        elf::check_elf(program)?;
        let light = self.light()?;
        let vk = match self.runtime.run(light.setup(Elf::from(program)))? {
            Ok(Ok(pk)) => pk.verifying_key().clone(),
            Ok(Err(e)) => {
                return Err(ZkVmError::InvalidProgram { diagnostic: format!("SP1 setup: {e:#}") });
            }
            Err(panic) => {
                return Err(ZkVmError::InvalidProgram {
                    diagnostic: format!("SP1 setup panicked: {panic}"),
                });
            }
        };
        let key = Arc::new(ProgramKey { id: ProgramId::from_bytes(vk.bytes32_raw()), vk });
        self.keys().put(hash, key.clone());
        Ok(key)
    }

    /// Executes the guest with the light client, checking its exit code and gas.
    fn run_guest(&self, program: &[u8], stdin: SP1Stdin, gas_limit: u64) -> Result<GuestRun> {
        check_gas_limit(gas_limit)?;
        elf::check_elf(program)?;
        let light = self.light()?;
        let request = light
            .execute(Elf::from(program), stdin)
            .cycle_limit(gas_limit.saturating_mul(INSTRUCTIONS_PER_PGU))
            .calculate_gas(true);
        let (public_values, report) = match self.runtime.run(request.into_future())? {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return Err(execution_error(&e.to_string(), gas_limit)),
            Err(panic) => {
                return Err(ZkVmError::ProgramFailed {
                    reason: format!("SP1's executor stopped the guest: {panic}"),
                });
            }
        };
        if report.exit_code != 0 {
            return Err(ZkVmError::ProgramFailed {
                reason: format!("the guest halted with exit code {}", report.exit_code),
            });
        }
        let gas = report.gas().ok_or_else(|| ZkVmError::ProverFailed {
            reason: "SP1 reported no gas although it was asked to".to_owned(),
        })?;
        if gas > gas_limit {
            return Err(ZkVmError::GasLimitExceeded { gas_limit, needed: gas.to_string() });
        }
        Ok(GuestRun {
            gas,
            instructions: report.total_instruction_count(),
            public_values: public_values.to_vec(),
        })
    }
}

fn check_gas_limit(gas_limit: u64) -> Result<()> {
    if gas_limit == 0 || gas_limit > MAX_PGUS {
        return Err(ZkVmError::InvalidGasLimit { gas_limit, max: MAX_PGUS });
    }
    Ok(())
}

/// Maps an SP1 execution error (a string by the time the SDK returns it) to ours.
fn execution_error(message: &str, gas_limit: u64) -> ZkVmError {
    if message.contains("exceeded cycle limit") {
        return ZkVmError::GasLimitExceeded { gas_limit, needed: format!("more than {gas_limit}") };
    }
    // sp1-prover spells it "dissassemble" in one place and "disassemble" in another.
    if message.contains("assemble program") {
        return ZkVmError::InvalidProgram {
            diagnostic: format!("SP1 cannot load the ELF: {message}"),
        };
    }
    ZkVmError::ProgramFailed { reason: message.to_owned() }
}

/// The proof bytes: bincode of `(vk, proof)`.
fn encode_proof(vk: &SP1VerifyingKey, proof: &SP1ProofWithPublicValues) -> Result<Vec<u8>> {
    bincode::serialize(&(vk, proof))
        .map_err(|e| ZkVmError::ProverFailed { reason: format!("encoding the proof: {e}") })
}

fn decode_proof(bytes: &[u8]) -> Result<(SP1VerifyingKey, SP1ProofWithPublicValues)> {
    // `bincode::serialize`'s encoding, but refusing bytes left over.
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .reject_trailing_bytes()
        .deserialize(bytes)
        .map_err(|e| ZkVmError::MalformedProof {
            reason: format!("not an SP1 (verifying key, proof) pair in bincode: {e}"),
        })
}

impl ZkVm for Sp1Backend {
    fn version(&self) -> &str {
        VERSION
    }

    fn proof_modes(&self) -> &[ProofMode] {
        &MODES
    }

    fn max_gas_limit(&self) -> u64 {
        MAX_PGUS
    }

    fn sdk_program_hash(&self, program: &[u8]) -> Result<Vec<u8>> {
        Ok(self.key(program)?.vk.hash_bytes().to_vec())
    }

    fn proof_from_sdk(&self, program: &[u8], sdk_proof: &[u8]) -> Result<Proof> {
        // The SDK's own reader allows bytes after the proof (its `ProofFromNetwork` is a
        // prefix of `SP1ProofWithPublicValues`); the proof itself must decode whole.
        let proof: SP1ProofWithPublicValues = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_limit(sdk_proof.len() as u64)
            .reject_trailing_bytes()
            .deserialize(sdk_proof)
            .map_err(|e| ZkVmError::MalformedProof {
                reason: format!("not an SP1ProofWithPublicValues in bincode: {e}"),
            })?;
        let key = self.key(program)?;
        Ok(Proof {
            bytes: encode_proof(&key.vk, &proof)?,
            outputs: PublicOutputs(proof.public_values.as_slice().to_vec()),
            program_id: key.id,
            elapsed: Duration::ZERO,
        })
    }

    fn sdk_proof(&self, proof: &[u8]) -> Result<Vec<u8>> {
        let (_, proof) = decode_proof(proof)?;
        bincode::serialize(&proof)
            .map_err(|e| ZkVmError::MalformedProof { reason: format!("re-encoding: {e}") })
    }

    fn proving_memory(&self, _pgus: u64, mode: ProofMode) -> u64 {
        match mode {
            ProofMode::Compressed => COMPRESSED_PROVING_MEMORY,
            _ => CORE_PROVING_MEMORY,
        }
    }

    fn program_id(&self, program: &[u8]) -> Result<ProgramId> {
        self.key(program).map(|key| key.id)
    }

    fn check_inputs(&self, inputs: &[u8]) -> Result<()> {
        Sp1Inputs::from_json(inputs).map(drop)
    }

    fn execute(&self, program: &[u8], inputs: &[u8], gas_limit: u64) -> Result<Execution> {
        let stdin = Sp1Inputs::from_json(inputs)?.stdin()?;
        let run = self.run_guest(program, stdin, gas_limit)?;
        Ok(Execution {
            pgus: run.gas,
            cycles: run.instructions,
            outputs: PublicOutputs(run.public_values),
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
        let inputs = Sp1Inputs::from_json(&job.inputs)?;
        progress(ProvePhase::Executing);
        // Executing first is cheap and turns a failing guest or a gas overrun into a request
        // error before the CPU prover is created.
        let run = self.run_guest(&job.program, inputs.stdin()?, job.gas_limit)?;
        let key = self.key(&job.program)?;
        if cancel.is_cancelled() {
            return Err(ZkVmError::Cancelled);
        }
        let _turn = self.proving.lock().unwrap_or_else(|e| e.into_inner());
        if cancel.is_cancelled() {
            return Err(ZkVmError::Cancelled);
        }
        progress(ProvePhase::Proving);
        let cpu = self.cpu()?;
        if cancel.is_cancelled() {
            return Err(ZkVmError::Cancelled);
        }
        // The key computed by the light client is SP1's setup: a proving key is just the
        // verifying key and the ELF, so the CPU prover's own setup would redo the same work.
        let pk = SP1ProvingKey::new(key.vk.clone(), Elf::from(&job.program[..]));
        let request = cpu
            .prove(&pk, inputs.stdin()?)
            .cycle_limit(job.gas_limit.saturating_mul(INSTRUCTIONS_PER_PGU));
        let request =
            if job.mode == ProofMode::Compressed { request.compressed() } else { request.core() };
        let proof = match self.runtime.run(request.into_future())? {
            Ok(Ok(proof)) => proof,
            Ok(Err(e)) => return Err(ZkVmError::ProverFailed { reason: format!("SP1: {e}") }),
            Err(panic) => {
                return Err(ZkVmError::ProverFailed { reason: format!("SP1 panicked: {panic}") });
            }
        };
        if proof.public_values.as_slice() != run.public_values.as_slice() {
            return Err(ZkVmError::ProverFailed {
                reason: "the proof's public values differ from the execution's".to_owned(),
            });
        }
        if cancel.is_cancelled() {
            return Err(ZkVmError::Cancelled);
        }
        progress(ProvePhase::Finished);
        Ok(Proof {
            bytes: encode_proof(&key.vk, &proof)?,
            outputs: PublicOutputs(run.public_values),
            program_id: key.id,
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
        // SP1 proofs do not commit to stdin; the inputs only have to be well-formed.
        Sp1Inputs::from_json(inputs)?;
        let (vk, proof) = decode_proof(proof)?;
        let proof_program = ProgramId::from_bytes(vk.bytes32_raw());
        if proof_program != *program_id {
            return Err(ZkVmError::ProofRejected {
                reason: format!("the proof is for program {proof_program}, not {program_id}"),
            });
        }
        if proof.public_values.as_slice() != outputs.0.as_slice() {
            return Err(ZkVmError::ProofRejected {
                reason: format!(
                    "the proof commits to other public values (0x{}) than claimed",
                    hex::encode(proof.public_values.as_slice())
                ),
            });
        }
        if !matches!(proof.proof, SP1Proof::Core(_) | SP1Proof::Compressed(_)) {
            return Err(ZkVmError::ProofRejected {
                reason: "only core and compressed SP1 proofs are accepted".to_owned(),
            });
        }
        let light = self.light()?;
        // The verifier indexes into proof data it trusts to be well-shaped; a crafted proof must
        // be rejected, not crash the process.
        match catch_unwind(AssertUnwindSafe(|| light.verify(&proof, &vk, None))) {
            Ok(Ok(())) => Ok(Verified { security_bits: SECURITY_BITS }),
            Ok(Err(e)) => Err(ZkVmError::ProofRejected { reason: e.to_string() }),
            Err(panic) => Err(ZkVmError::ProofRejected {
                reason: format!("SP1's verifier panicked: {}", panic_message(panic)),
            }),
        }
    }

    fn describe_outputs(&self, outputs: &PublicOutputs) -> String {
        format!("{} bytes of public values: 0x{}", outputs.0.len(), hex::encode(&outputs.0))
    }

    fn check_mode(&self, mode: ProofMode) -> Result<()> {
        if MODES.contains(&mode) {
            return Ok(());
        }
        Err(ZkVmError::UnsupportedProofMode {
            mode: mode.to_string(),
            version: VERSION.to_owned(),
            supported: "default, core, compressed; groth16 and plonk need SP1's circuit files \
                        from Succinct and a gnark prover (docker or Go), which this build has not"
                .to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_follows_the_circuit_version() {
        assert!(sp1_sdk::SP1_CIRCUIT_VERSION.starts_with("v6.1."), "{VERSION} needs updating");
    }

    #[test]
    fn snark_modes_are_refused_with_the_reason() {
        let backend = Sp1Backend::new();
        for mode in [ProofMode::Groth16, ProofMode::Plonk] {
            let err = backend.check_mode(mode).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("circuit files"), "{err}");
        }
        assert!(MODES.iter().all(|&mode| backend.check_mode(mode).is_ok()));
    }

    #[test]
    fn maps_sdk_errors() {
        let err = execution_error("exceeded cycle limit of 40", 10);
        assert!(matches!(err, ZkVmError::GasLimitExceeded { gas_limit: 10, .. }));
        let err = execution_error("failed to dissassemble program: bad", 10);
        assert!(matches!(err, ZkVmError::InvalidProgram { .. }));
    }
}
