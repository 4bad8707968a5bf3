//! Errors of the proving backends.

/// A backend result.
pub type Result<T, E = ZkVmError> = std::result::Result<T, E>;

/// Everything that can be wrong with a program, its inputs, a proof, or the request for one.
///
/// Each variant is a distinct, user-facing failure; the messages say what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ZkVmError {
    /// No backend serves this version string.
    #[error("zkvm version {version:?} is not supported (supported: {supported})")]
    UnsupportedVersion {
        /// The version that was asked for.
        version: String,
        /// The versions this process supports, comma-separated.
        supported: String,
    },
    /// The backend does not produce proofs of this mode.
    #[error("proof mode {mode:?} is not supported by {version} (supported: {supported})")]
    UnsupportedProofMode {
        /// The mode that was asked for.
        mode: String,
        /// The backend's version string.
        version: String,
        /// The modes the backend supports, comma-separated.
        supported: String,
    },
    /// The program bytes are not a valid program (for Miden: the source does not assemble).
    #[error("program does not assemble:\n{diagnostic}")]
    InvalidProgram {
        /// The assembler's report, with the location of the error.
        diagnostic: String,
    },
    /// The inputs are not in the backend's input format.
    #[error("malformed inputs: {reason}")]
    MalformedInputs {
        /// What was wrong with them.
        reason: String,
    },
    /// The public outputs are not in the backend's output format.
    #[error("malformed public outputs: {reason}")]
    MalformedOutputs {
        /// What was wrong with them.
        reason: String,
    },
    /// The gas limit is zero or above what this backend can prove.
    #[error("gas limit {gas_limit} is out of range: it must be between 1 and {max} PGUs")]
    InvalidGasLimit {
        /// The gas limit that was asked for.
        gas_limit: u64,
        /// The largest gas limit this backend accepts.
        max: u64,
    },
    /// The program needs more PGUs than the gas limit allows; execution stopped at the limit.
    #[error("gas limit exceeded: the program needs {needed} PGUs, the limit is {gas_limit}")]
    GasLimitExceeded {
        /// The gas limit of the request.
        gas_limit: u64,
        /// PGUs needed, or a lower bound on them when execution stopped at the limit.
        needed: String,
    },
    /// The program ran and failed (e.g. an assertion).
    #[error("program failed: {reason}")]
    ProgramFailed {
        /// The VM's account of the failure.
        reason: String,
    },
    /// The proof bytes could not be decoded.
    #[error("malformed proof: {reason}")]
    MalformedProof {
        /// What the decoder said.
        reason: String,
    },
    /// The proof decoded but does not verify against the program, inputs and outputs.
    #[error("proof does not verify: {reason}")]
    ProofRejected {
        /// What the verifier said.
        reason: String,
    },
    /// The work was cancelled before it finished.
    #[error("cancelled")]
    Cancelled,
    /// The prover itself failed (not the program): a bug or resource exhaustion.
    #[error("prover failed: {reason}")]
    ProverFailed {
        /// What went wrong.
        reason: String,
    },
}

impl ZkVmError {
    /// Whether the failure lies with the request (program, inputs, gas limit), so that retrying
    /// on other hardware cannot help: the network records such a request as unexecutable.
    pub fn is_request_fault(&self) -> bool {
        matches!(
            self,
            Self::InvalidProgram { .. }
                | Self::MalformedInputs { .. }
                | Self::InvalidGasLimit { .. }
                | Self::GasLimitExceeded { .. }
                | Self::ProgramFailed { .. }
                | Self::UnsupportedVersion { .. }
                | Self::UnsupportedProofMode { .. }
        )
    }
}
