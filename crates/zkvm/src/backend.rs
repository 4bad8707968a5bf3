//! The [`ZkVm`] trait and the values it trades in.

use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::{Result, ZkVmError};

/// A program's identity inside its backend, against which proofs verify (Miden: the MAST root;
/// SP1: the verifying-key hash). Prints as `0x`-prefixed hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ProgramId([u8; 32]);

impl ProgramId {
    /// Wraps the 32 identity bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 identity bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a program id from wire bytes, which must be exactly 32.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ProgramIdError> {
        bytes.try_into().map(Self).map_err(|_| ProgramIdError(format!("{} bytes", bytes.len())))
    }
}

/// A program id that is not 32 bytes of hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("program id must be 32 bytes (64 hex digits, optionally 0x-prefixed), got {0}")]
pub struct ProgramIdError(String);

impl fmt::Display for ProgramId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for ProgramId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProgramId({self})")
    }
}

impl FromStr for ProgramId {
    type Err = ProgramIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(digits).map_err(|_| ProgramIdError(format!("{s:?}")))?;
        Self::from_slice(&bytes).map_err(|_| ProgramIdError(format!("{s:?}")))
    }
}

impl From<ProgramId> for String {
    fn from(id: ProgramId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for ProgramId {
    type Error = ProgramIdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A program's public outputs in its backend's encoding (Miden: the 16 output stack elements,
/// each 8 bytes little-endian). What a verifier checks a proof against.
#[derive(Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PublicOutputs(#[serde(with = "hex_bytes")] pub Vec<u8>);

impl PublicOutputs {
    /// The BLAKE3 hash of the encoded outputs, as requests name expected outputs.
    pub fn hash(&self) -> [u8; 32] {
        *blake3::hash(&self.0).as_bytes()
    }
}

impl fmt::Debug for PublicOutputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicOutputs(0x{})", hex::encode(&self.0))
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(D::Error::custom)
    }
}

/// The result of executing a program: what proving it will cost, and what it outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// Prover gas units: the backend's measure of proving work (Miden: padded trace rows).
    pub pgus: u64,
    /// VM clock cycles, for people; pricing uses `pgus`.
    pub cycles: u64,
    /// The public outputs.
    pub outputs: PublicOutputs,
}

/// The kind of proof asked for. A backend supports some of them; see [`ZkVm::proof_modes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProofMode {
    /// The backend's native proof (Miden: its STARK; SP1: core).
    #[default]
    Default,
    /// SP1 core proof: one STARK per shard.
    Core,
    /// SP1 compressed proof: shards recursively compressed into one.
    Compressed,
    /// SNARK-wrapped Groth16 proof.
    Groth16,
    /// SNARK-wrapped PLONK proof.
    Plonk,
}

impl ProofMode {
    /// Every mode, for parsing and messages.
    pub const ALL: [ProofMode; 5] =
        [Self::Default, Self::Core, Self::Compressed, Self::Groth16, Self::Plonk];

    /// The mode's name on the wire and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Core => "core",
            Self::Compressed => "compressed",
            Self::Groth16 => "groth16",
            Self::Plonk => "plonk",
        }
    }
}

impl fmt::Display for ProofMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProofMode {
    type Err = ZkVmError;

    /// Parses a mode name; the empty string means [`ProofMode::Default`].
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Ok(Self::Default);
        }
        Self::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| {
            ZkVmError::UnsupportedProofMode {
                mode: s.to_owned(),
                version: "any backend".to_owned(),
                supported: Self::ALL.map(Self::as_str).join(", "),
            }
        })
    }
}

/// What to prove.
#[derive(Debug, Clone)]
pub struct ProveJob {
    /// Program bytes in the backend's format.
    pub program: Arc<[u8]>,
    /// Inputs in the backend's format.
    pub inputs: Arc<[u8]>,
    /// Upper bound on the work, in PGUs; see [`ZkVm::execute`].
    pub gas_limit: u64,
    /// The kind of proof to produce.
    pub mode: ProofMode,
}

/// A stage of proving, reported to a progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvePhase {
    /// Running the program to record its trace.
    Executing,
    /// Building the trace and the STARK proof: the long part.
    Proving,
    /// Done.
    Finished,
}

/// A proof and what it proves.
#[derive(Debug, Clone)]
pub struct Proof {
    /// The proof bytes in the backend's format.
    pub bytes: Vec<u8>,
    /// The public outputs the proof commits to.
    pub outputs: PublicOutputs,
    /// The program the proof is for.
    pub program_id: ProgramId,
    /// Time spent proving (execution included).
    pub elapsed: Duration,
}

/// A successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Conjectured security of the proof, in bits.
    pub security_bits: u32,
}

/// A proving backend: one zkVM at one version.
///
/// Implementations hold whatever is expensive to create (a prover, key caches) for the life of
/// the process and cache per-program setup by program id. Every method is blocking and may be
/// CPU-heavy: async callers use [`prove_async`] or `spawn_blocking`.
pub trait ZkVm: Send + Sync + 'static {
    /// The version string requests name, e.g. `miden-0.23`.
    fn version(&self) -> &str;

    /// The proof modes this backend produces.
    fn proof_modes(&self) -> &[ProofMode];

    /// The largest gas limit (in PGUs) this backend accepts: work above it cannot be held.
    fn max_gas_limit(&self) -> u64;
    /// Memory, in bytes, that proving `pgus` PGUs in `mode` takes (measured; what a node's
    /// resource manager reserves for the proof).
    fn proving_memory(&self, pgus: u64, mode: ProofMode) -> u64;
    /// GPU memory, in bytes, that proving `pgus` PGUs in `mode` takes on one GPU: 0 for a CPU
    /// prover (Miden's, SP1's CPU prover). A node holds a job that asks for some only on a GPU
    /// with that much memory, one job per GPU.
    fn proving_gpu_memory(&self, _pgus: u64, _mode: ProofMode) -> u64 {
        0
    }

    /// Computes the program's identity from its bytes, validating them.
    fn program_id(&self, program: &[u8]) -> Result<ProgramId>;

    /// The hash its own SDK names the program by (SP1: the verifying key's `hash_bytes`, which
    /// SP1's network client registers and requests under); for backends without such an SDK,
    /// the program id. Validates the bytes as [`ZkVm::program_id`] does.
    fn sdk_program_hash(&self, program: &[u8]) -> Result<Vec<u8>> {
        Ok(self.program_id(program)?.as_bytes().to_vec())
    }

    /// A proof in the form its own SDK reads (SP1: `bincode(SP1ProofWithPublicValues)`, which
    /// SP1's network client decodes as its `ProofFromNetwork`); for backends without such an
    /// SDK, the proof bytes as they are.
    fn sdk_proof(&self, proof: &[u8]) -> Result<Vec<u8>> {
        Ok(proof.to_vec())
    }

    /// The inverse of [`ZkVm::sdk_proof`]: a proof of `program` from the form its own SDK
    /// produces (SP1: `bincode(SP1ProofWithPublicValues)`), as this backend verifies it. Only
    /// decodes and re-encodes: whether the proof holds is [`ZkVm::verify`]'s to say.
    fn proof_from_sdk(&self, program: &[u8], sdk_proof: &[u8]) -> Result<Proof> {
        let _ = (program, sdk_proof);
        Err(ZkVmError::MalformedProof {
            reason: format!(
                "{} has no SDK proof format: send a provernet proof bundle",
                self.version()
            ),
        })
    }

    /// Checks that `inputs` are well-formed for this backend, without running anything.
    fn check_inputs(&self, inputs: &[u8]) -> Result<()>;

    /// Runs the program on its inputs, stopping as soon as the work exceeds `gas_limit` PGUs.
    fn execute(&self, program: &[u8], inputs: &[u8], gas_limit: u64) -> Result<Execution>;

    /// Proves `job`, checking `cancel` between phases and reporting them to `progress`.
    fn prove(
        &self,
        job: &ProveJob,
        cancel: &CancellationToken,
        progress: &(dyn Fn(ProvePhase) + Send + Sync),
    ) -> Result<Proof>;

    /// Verifies `proof` of `program_id` run on `inputs` with public `outputs`.
    fn verify(
        &self,
        program_id: &ProgramId,
        inputs: &[u8],
        outputs: &PublicOutputs,
        proof: &[u8],
    ) -> Result<Verified>;

    /// Renders public outputs for people (e.g. a list of field elements).
    fn describe_outputs(&self, outputs: &PublicOutputs) -> String;

    /// Checks that the backend supports `mode`.
    fn check_mode(&self, mode: ProofMode) -> Result<()> {
        if self.proof_modes().contains(&mode) {
            return Ok(());
        }
        Err(ZkVmError::UnsupportedProofMode {
            mode: mode.to_string(),
            version: self.version().to_owned(),
            supported: self.proof_modes().iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", "),
        })
    }
}

/// Proves `job` on a blocking thread, off the async runtime.
///
/// Cancelling `cancel` returns [`ZkVmError::Cancelled`] at once. The backend stops at its next
/// phase boundary; a phase already running (Miden's STARK prover cannot be interrupted) finishes
/// on its thread and its result is dropped.
pub async fn prove_async(
    backend: Arc<dyn ZkVm>,
    job: ProveJob,
    cancel: CancellationToken,
    progress: Arc<dyn Fn(ProvePhase) + Send + Sync>,
) -> Result<Proof> {
    let worker_cancel = cancel.clone();
    let task = tokio::task::spawn_blocking(move || backend.prove(&job, &worker_cancel, &*progress));
    tokio::select! {
        joined = task => joined.map_err(|e| ZkVmError::ProverFailed { reason: e.to_string() })?,
        () = cancel.cancelled() => Err(ZkVmError::Cancelled),
    }
}
