//! What an artifact is: its [`ArtifactKind`], its [`Visibility`] and the [`ArtifactMeta`] sidecar
//! stored next to its bytes.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// What an artifact holds. Signed into every presigned URL and stored with the artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// A guest program (e.g. Miden assembly or a compiled ELF).
    Program,
    /// Inputs to a program; see [`Visibility`] for private inputs.
    Inputs,
    /// A proof produced by a prover.
    Proof,
}

impl ArtifactKind {
    /// The wire name: `program`, `inputs` or `proof`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Program => "program",
            Self::Inputs => "inputs",
            Self::Proof => "proof",
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ArtifactKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "program" => Ok(Self::Program),
            "inputs" => Ok(Self::Inputs),
            "proof" => Ok(Self::Proof),
            _ => Err(UnknownName { what: "artifact kind", got: s.to_owned() }),
        }
    }
}

/// Who may read an artifact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone who knows the id may read it.
    #[default]
    Public,
    /// Readable only through a presigned GET URL (private inputs).
    Private,
}

impl Visibility {
    /// The wire name: `public` or `private`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Visibility {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Self::Public),
            "private" => Ok(Self::Private),
            _ => Err(UnknownName { what: "visibility", got: s.to_owned() }),
        }
    }
}

/// A name that is not one of the known kinds or visibilities.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{got}`")]
pub struct UnknownName {
    /// What was being parsed.
    pub what: &'static str,
    /// The text that was given.
    pub got: String,
}

/// The sidecar stored next to an artifact's bytes: what GET and retention need to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// What the artifact holds.
    pub kind: ArtifactKind,
    /// Who may read it.
    pub visibility: Visibility,
    /// Size of the artifact in bytes.
    pub size: u64,
    /// When it was stored, unix seconds.
    pub created_at: u64,
    /// When retention may delete it, unix seconds; `None` keeps it forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<u64>,
}

impl ArtifactMeta {
    /// Whether the artifact has passed its retention expiry at `now` (unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        self.retain_until.is_some_and(|until| until <= now)
    }

    /// Whether reading it needs a presigned URL.
    pub fn is_private(&self) -> bool {
        self.visibility == Visibility::Private
    }
}

/// Retention that keeps an artifact for at least as long as both `a` and `b` ask (`None` = forever).
pub fn later_retention(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

/// Current unix time in seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in [ArtifactKind::Program, ArtifactKind::Inputs, ArtifactKind::Proof] {
            assert_eq!(kind.as_str().parse::<ArtifactKind>(), Ok(kind));
        }
        for vis in [Visibility::Public, Visibility::Private] {
            assert_eq!(vis.as_str().parse::<Visibility>(), Ok(vis));
        }
        assert!("elf".parse::<ArtifactKind>().is_err());
    }

    #[test]
    fn expiry_and_retention() {
        let meta = ArtifactMeta {
            kind: ArtifactKind::Proof,
            visibility: Visibility::Public,
            size: 1,
            created_at: 10,
            retain_until: Some(100),
        };
        assert!(!meta.is_expired(99));
        assert!(meta.is_expired(100));
        assert_eq!(later_retention(Some(5), Some(9)), Some(9));
        assert_eq!(later_retention(None, Some(9)), None);
    }
}
