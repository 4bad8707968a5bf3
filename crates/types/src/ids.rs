//! Content and request identities: [`ArtifactId`] (BLAKE3 of bytes) and [`RequestId`]
//! (keccak256 of the requester and its signed body).

use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::{address::Address, hex32::hex32_id};

/// Identity of an artifact: the BLAKE3 hash of its bytes.
///
/// Prints as `0x`-prefixed lowercase hex everywhere.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ArtifactId([u8; 32]);

hex32_id!(ArtifactId, "artifact id");

impl ArtifactId {
    /// The id of `content`: its BLAKE3 hash.
    pub fn of(content: &[u8]) -> Self {
        Self(*blake3::hash(content).as_bytes())
    }

    /// The id a streaming [`blake3::Hasher`] has computed so far.
    pub fn from_hasher(hasher: &blake3::Hasher) -> Self {
        Self(*hasher.finalize().as_bytes())
    }
}

/// Identity of a proof request: `keccak256(signer address ‖ signed body bytes)`.
///
/// The body bytes are the `body` of the request's `SignedMessage`, exactly as signed, so the
/// requester knows the id before the network answers. Prints as `0x`-prefixed lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct RequestId([u8; 32]);

hex32_id!(RequestId, "request id");

impl RequestId {
    /// The id of the request `body` (its encoded `RequestProofBody`) signed by `signer`.
    pub fn derive(signer: &Address, body: &[u8]) -> Self {
        let mut hasher = Keccak256::new();
        hasher.update(signer.as_bytes());
        hasher.update(body);
        Self(hasher.finalize().into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn artifact_id_is_blake3_and_round_trips_through_text_and_serde() {
        let id = ArtifactId::of(b"hello");
        assert_eq!(id.as_bytes(), blake3::hash(b"hello").as_bytes());
        let text = id.to_string();
        assert!(text.starts_with("0x") && text.len() == 66);
        assert_eq!(text.parse::<ArtifactId>().unwrap(), id);
        assert_eq!(text.trim_start_matches("0x").parse::<ArtifactId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<ArtifactId>(&json).unwrap(), id);
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"hel");
        hasher.update(b"lo");
        assert_eq!(ArtifactId::from_hasher(&hasher), id);
        assert_eq!(format!("{id:?}"), format!("ArtifactId({text})"));
    }

    #[test]
    fn request_id_is_keccak_of_signer_and_body() {
        let signer = Address::from_bytes([7; 20]);
        let body = b"body bytes";
        let mut preimage = signer.as_bytes().to_vec();
        preimage.extend_from_slice(body);
        let expected: [u8; 32] = Keccak256::digest(&preimage).into();
        let id = RequestId::derive(&signer, body);
        assert_eq!(id.as_bytes(), &expected);
        assert_ne!(RequestId::derive(&Address::from_bytes([8; 20]), body), id);
        assert_eq!(id.to_string().parse::<RequestId>().unwrap(), id);
        assert_eq!(RequestId::from_slice(id.as_bytes()).unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("RequestId({id})"));
    }

    #[test]
    fn malformed_ids_are_rejected_with_the_kind_and_input_named() {
        let err = "0x12zz".parse::<RequestId>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "request id \"0x12zz\" is not hex: expected 64 hex digits, optionally prefixed with 0x"
        );
        let err = "0x1234".parse::<ArtifactId>().unwrap_err();
        assert_eq!(err.to_string(), "artifact id has 2 bytes, expected 32");
        let err = RequestId::from_slice(&[0; 31]).unwrap_err();
        assert_eq!(err.to_string(), "request id has 31 bytes, expected 32");
        assert!(serde_json::from_str::<ArtifactId>("\"0x00\"").is_err());
    }
}
