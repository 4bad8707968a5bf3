//! ArtifactStore (in progress).
