//! Errors of the proving backends.

/// A backend result.
pub type Result<T, E = ZkVmError> = std::result::Result<T, E>;

/// Everything that can be wrong with a program, its inputs, a proof, or the request for one.
///
/// Each variant is a distinct, user-facing failure; the messages say what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ZkVmError {
    /// No backend serves this version string.
    #[error("zkvm version {:?} is not supported (supported: {supported})", clip(version))]
    UnsupportedVersion {
        /// The version that was asked for.
        version: String,
        /// The versions this process supports, comma-separated.
        supported: String,
    },
    /// The backend does not produce proofs of this mode.
    #[error("proof mode {:?} is not supported by {version} (supported: {supported})", clip(mode))]
    UnsupportedProofMode {
        /// The mode that was asked for.
        mode: String,
        /// The backend's version string.
        version: String,
        /// The modes the backend supports, comma-separated.
        supported: String,
    },
    /// The program bytes are not a valid program (for Miden: the source does not assemble).
    #[error("program does not assemble:\n{}", clip(diagnostic))]
    InvalidProgram {
        /// The assembler's report, with the location of the error.
        diagnostic: String,
    },
    /// The inputs are not in the backend's input format.
    #[error("malformed inputs: {}", clip(reason))]
    MalformedInputs {
        /// What was wrong with them.
        reason: String,
    },
    /// The public outputs are not in the backend's output format.
    #[error("malformed public outputs: {}", clip(reason))]
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
    #[error(
        "gas limit exceeded: the program needs {} PGUs, the limit is {gas_limit}",
        clip(needed)
    )]
    GasLimitExceeded {
        /// The gas limit of the request.
        gas_limit: u64,
        /// PGUs needed, or a lower bound on them when execution stopped at the limit.
        needed: String,
    },
    /// The program ran and failed (e.g. an assertion).
    #[error("program failed: {}", clip(reason))]
    ProgramFailed {
        /// The VM's account of the failure.
        reason: String,
    },
    /// The proof bytes could not be decoded.
    #[error("malformed proof: {}", clip(reason))]
    MalformedProof {
        /// What the decoder said.
        reason: String,
    },
    /// The proof decoded but does not verify against the program, inputs and outputs.
    #[error("proof does not verify: {}", clip(reason))]
    ProofRejected {
        /// What the verifier said.
        reason: String,
    },
    /// The work was cancelled before it finished.
    #[error("cancelled")]
    Cancelled,
    /// The prover itself failed (not the program): a bug or resource exhaustion.
    #[error("prover failed: {}", clip(reason))]
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

/// Longest text (program diagnostics, VM reasons, echoed names) a [`ZkVmError`] message carries.
///
/// Diagnostics can quote the input they are about: an unbounded message from a megabyte of bad
/// source would not fit in a gRPC status header, and the caller would never learn what was wrong.
pub const MAX_MESSAGE_TEXT_BYTES: usize = 2048;

/// `text` cut to [`MAX_MESSAGE_TEXT_BYTES`] on a character boundary, saying how much was left out.
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_MESSAGE_TEXT_BYTES {
        return text.into();
    }
    let mut end = MAX_MESSAGE_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes left out)", &text[..end], text.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_stay_bounded_whatever_the_diagnostic() {
        let huge = "é".repeat(1 << 20);
        let error = ZkVmError::InvalidProgram { diagnostic: huge.clone() };
        let message = error.to_string();
        assert!(message.len() < MAX_MESSAGE_TEXT_BYTES + 100, "{} bytes", message.len());
        assert!(message.starts_with("program does not assemble:\né"));
        assert!(message.ends_with(&format!("({} more bytes left out)", huge.len() - 2048)));
        let error = ZkVmError::UnsupportedVersion { version: huge, supported: "miden-0.23".into() };
        assert!(error.to_string().len() < MAX_MESSAGE_TEXT_BYTES + 100);
        // Short texts are untouched.
        assert_eq!(
            ZkVmError::ProgramFailed { reason: "assertion failed".into() }.to_string(),
            "program failed: assertion failed"
        );
    }
}
