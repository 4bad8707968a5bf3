//! Content and request identities: [`ArtifactId`] (BLAKE3 of bytes) and [`RequestId`].

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::hex32::{Hex32Error, parse_hex32};

/// Identity of an artifact: the BLAKE3 hash of its bytes.
///
/// Prints as `0x`-prefixed lowercase hex everywhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ArtifactId([u8; 32]);

impl ArtifactId {
    /// Wraps raw hash bytes (no hashing is done).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The id of `content`: its BLAKE3 hash.
    pub fn of(content: &[u8]) -> Self {
        Self(*blake3::hash(content).as_bytes())
    }

    /// The id a streaming [`blake3::Hasher`] has computed so far.
    pub fn from_hasher(hasher: &blake3::Hasher) -> Self {
        Self(*hasher.finalize().as_bytes())
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses an id from a wire byte string, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Hex32Error> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| Hex32Error::Length { what: "artifact id", got: bytes.len() })
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactId({self})")
    }
}

impl FromStr for ArtifactId {
    type Err = Hex32Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex32("artifact id", s).map(Self)
    }
}

impl From<ArtifactId> for String {
    fn from(id: ArtifactId) -> Self {
        id.to_string()
    }
}

impl TryFrom<String> for ArtifactId {
    type Error = Hex32Error;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
