//! The node's errors.

use std::path::PathBuf;

use provernet_types::ClientError;

use crate::{ConfigError, store::StoreError};

/// Why the node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The operator key file cannot be read.
    #[error("cannot read the operator key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A file or folder could not be made.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Something the node needs could not be set up.
    #[error("{0}")]
    Setup(String),
    /// The network refused or failed a call the node cannot do without.
    #[error(transparent)]
    Network(#[from] ClientError),
    /// The job store failed: the node stops rather than lose track of its work.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Shutdown was asked for before the node was up.
    #[error("stopped before the node was up")]
    Stopped,
}
