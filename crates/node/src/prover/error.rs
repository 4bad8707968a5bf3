//! Why a job's step failed, and whether trying again may help.

use provernet_types::{ArtifactId, ClientError};

use crate::store::StoreError;

/// Why a step of a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A call to the network failed; retryable when the failure is transient.
    #[error("{what}: {source}")]
    Network {
        /// What the node was doing.
        what: &'static str,
        /// The client's error.
        source: ClientError,
    },
    /// An artifact could not be fetched, or did not match its id.
    #[error("artifact {id} refused: {reason}")]
    Artifact {
        /// The artifact.
        id: ArtifactId,
        /// What was wrong.
        reason: String,
    },
    /// An input a network serves by URL only could not be fetched, or is not what it claims.
    #[error("{what} from {url} refused: {reason}")]
    Fetch {
        /// The program or the stdin.
        what: &'static str,
        /// Where it was fetched from.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The request's own fields are unusable (no body, a bad id or mode).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The backend refused or failed a step (execute, prove, verify).
    #[error("{step} failed: {reason}")]
    Backend {
        /// The step.
        step: &'static str,
        /// The backend's error.
        reason: String,
    },
    /// The node's execution differs from the network's.
    #[error("{0}")]
    Mismatch(String),
    /// The network's verifier rejected the proof this node submitted (and verified itself).
    #[error("the network's verifier rejected the proof: {0}")]
    Rejected(String),
    /// The deadline passed while proving.
    #[error("the deadline passed while proving")]
    DeadlinePassed,
    /// The job was stopped while it waited on a step.
    #[error("cancelled while {0}")]
    Cancelled(&'static str),
    /// The job store keeps no proof for a job that says it has one.
    #[error("the job store lost the proof")]
    ProofLost,
    /// Whether a submitted proof landed could not be learnt (the network kept failing).
    #[error("the submitted proof's fate is unknown: {0}")]
    Unconfirmed(Box<JobError>),
    /// The job store failed: the job is left where it is for the next start.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl JobError {
    /// Whether trying the same step again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Network { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// Whether the job should be left for the next start rather than failed: the node, not the
    /// job, is in trouble.
    pub fn keeps_job(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Unconfirmed(_))
    }
}
