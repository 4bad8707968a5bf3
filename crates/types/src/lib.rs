//! provernet's shared vocabulary: the wire protocol, ids, amounts, keys and signed envelopes.
//!
//! Layout:
//! - [`proto`]: the generated `provernet.v1` protocol and its file descriptor set.
//! - [`ids`]: [`ArtifactId`] (BLAKE3 of content) and [`RequestId`].
//! - [`hex32`]: parsing of 32-byte hex identities.

pub mod hex32;
pub mod ids;
pub mod proto;

pub use hex32::Hex32Error;
pub use ids::ArtifactId;
pub use proto::FILE_DESCRIPTOR_SET;
