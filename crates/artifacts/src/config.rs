//! [`ArtifactStoreConfig`]: how a store is set up, with documented defaults.

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

use crate::error::ServerError;

/// Configuration of an artifact store server (TOML section `[artifacts]`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ArtifactStoreConfig {
    /// Where artifacts live: a folder path, `file:///abs/path`, `memory://`, or
    /// `s3://bucket[/prefix]` (S3 settings from `AWS_*` env vars; see the crate README).
    /// Default: `.provernet/artifacts`.
    pub storage: String,
    /// Largest artifact accepted, in bytes; larger uploads get 413. Default: 4 GiB.
    pub max_artifact_bytes: u64,
    /// HMAC-SHA256 secret shared with the network, at least 16 bytes. No default: required.
    #[serde(skip_serializing)]
    pub secret: String,
    /// Seconds between retention sweeps that delete expired artifacts. Default: 60.
    pub retention_sweep_secs: u64,
    /// Multipart part size in bytes; 0 picks per backend (2 MiB local, 8 MiB S3, whose minimum
    /// is 5 MiB). Memory per upload is about three parts. Default: 0.
    pub part_bytes: usize,
    /// Seconds an upload body may stall before the upload is abandoned. Default: 60.
    pub upload_idle_timeout_secs: u64,
}

impl Default for ArtifactStoreConfig {
    fn default() -> Self {
        Self {
            storage: ".provernet/artifacts".to_owned(),
            max_artifact_bytes: 4 << 30,
            secret: String::new(),
            retention_sweep_secs: 60,
            part_bytes: 0,
            upload_idle_timeout_secs: 60,
        }
    }
}

impl fmt::Debug for ArtifactStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactStoreConfig")
            .field("storage", &self.storage)
            .field("max_artifact_bytes", &self.max_artifact_bytes)
            .field("secret", &"<redacted>")
            .field("retention_sweep_secs", &self.retention_sweep_secs)
            .field("part_bytes", &self.part_bytes)
            .field("upload_idle_timeout_secs", &self.upload_idle_timeout_secs)
            .finish()
    }
}

impl ArtifactStoreConfig {
    /// A config storing in `storage` with `secret`, other fields at their defaults.
    pub fn new(storage: impl Into<String>, secret: impl Into<String>) -> Self {
        Self { storage: storage.into(), secret: secret.into(), ..Self::default() }
    }

    /// The retention sweep interval.
    pub fn retention_sweep_interval(&self) -> Duration {
        Duration::from_secs(self.retention_sweep_secs.max(1))
    }

    /// The upload idle timeout.
    pub fn upload_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.upload_idle_timeout_secs.max(1))
    }

    /// Checks the fields that have no safe fallback.
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the field and what to do about it.
    pub fn validate(&self) -> Result<(), ServerError> {
        if self.storage.trim().is_empty() {
            return Err(ServerError::Config("`storage` is empty: set a folder or URL".into()));
        }
        if self.max_artifact_bytes == 0 {
            return Err(ServerError::Config("`max_artifact_bytes` must be positive".into()));
        }
        if self.secret.len() < crate::presign::MIN_SECRET_LEN {
            return Err(ServerError::Config(format!(
                "`secret` must be at least {} bytes: set PROVERNET_ARTIFACTS_SECRET",
                crate::presign::MIN_SECRET_LEN
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let config = ArtifactStoreConfig::default();
        assert!(config.validate().is_err(), "no secret");
        let config = ArtifactStoreConfig::new("memory://", "a-secret-of-sixteen");
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains("sixteen"));
        let parsed: ArtifactStoreConfig = serde_json::from_str(r#"{"secret":"x"}"#).expect("json");
        assert_eq!(parsed.max_artifact_bytes, 4 << 30);
    }
}
