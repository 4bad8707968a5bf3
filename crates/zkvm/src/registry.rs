//! Backends by version string.

use std::{collections::BTreeMap, sync::Arc};

use crate::{MidenBackend, Result, ZkVm, ZkVmError};

/// The proving backends this process supports, by version string.
///
/// Cheap to clone; backends are shared.
#[derive(Clone, Default)]
pub struct ZkVmRegistry {
    backends: BTreeMap<String, Arc<dyn ZkVm>>,
}

impl ZkVmRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every backend compiled into this build (Miden always, SP1 with the `sp1` feature).
    pub fn with_default_backends() -> Self {
        let mut registry = Self::new();
        registry.register(Arc::new(MidenBackend::new()));
        #[cfg(feature = "sp1")]
        registry.register(Arc::new(crate::Sp1Backend::new()));
        registry
    }

    /// Adds `backend` under its version string, replacing any backend of the same version.
    pub fn register(&mut self, backend: Arc<dyn ZkVm>) {
        self.backends.insert(backend.version().to_owned(), backend);
    }

    /// The backend for `version`, or an error listing what is supported.
    pub fn get(&self, version: &str) -> Result<Arc<dyn ZkVm>> {
        self.backends.get(version).cloned().ok_or_else(|| ZkVmError::UnsupportedVersion {
            version: version.to_owned(),
            supported: self.versions().join(", "),
        })
    }

    /// Whether `version` is supported here.
    pub fn supports(&self, version: &str) -> bool {
        self.backends.contains_key(version)
    }

    /// The supported version strings, sorted.
    pub fn versions(&self) -> Vec<String> {
        self.backends.keys().cloned().collect()
    }
}

impl std::fmt::Debug for ZkVmRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkVmRegistry").field("versions", &self.versions()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_version_names_what_is_supported() {
        let registry = ZkVmRegistry::with_default_backends();
        assert!(registry.supports(crate::miden::VERSION));
        let err = registry.get("miden-9.9").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("\"miden-9.9\" is not supported"), "{err}");
        assert!(err.contains(crate::miden::VERSION), "{err}");
    }
}
