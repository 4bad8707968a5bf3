//! Recoverable secp256k1 signatures over a [`Domain`] and a body: [`Signature`], [`recover`],
//! [`verify`] and [`SignatureError`].
//!
//! The signed digest is `keccak256(separator ‖ body)`, where the 32-byte separator names the
//! network and the kind of message:
//!
//! ```text
//! separator = keccak256("provernet/v1/signed-message"
//!                       ‖ u64be(len(network id)) ‖ network id
//!                       ‖ u64be(len(kind)) ‖ kind)
//! ```
//!
//! The length prefixes keep (network, kind) pairs from colliding, and the fixed-size separator
//! keeps separator and body apart. `kind` is the full proto name of the body message
//! (`provernet.v1.BidBody`) for envelopes, so a body signed for one call cannot be replayed as
//! another call whose body happens to decode from the same bytes; it is empty for untyped bytes.
//!
//! A signature is 65 bytes `r ‖ s ‖ v`: `s` must be in the lower half of the group order (as
//! Ethereum requires, so signatures are not malleable) and `v` is 27 or 28 (0 or 1 accepted).
//!
//! With public-key recovery every well-formed signature recovers *some* address: a tampered body
//! or another domain does not fail recovery, it recovers a different address. [`verify`] can
//! therefore only say "recovered Y, expected X" ([`SignatureError::SignerMismatch`]); the
//! envelope ([`crate::envelope`]) carries the claimed signer, domain and kind in clear so it can
//! tell those cases apart.

use std::{fmt, sync::Arc};

use k256::ecdsa::{self, RecoveryId, VerifyingKey};
use sha3::{Digest, Keccak256};

use crate::address::Address;

/// How many bytes a signature has: `r ‖ s ‖ v`.
pub const SIGNATURE_LEN: usize = 65;

/// The prefix of every separator, naming this scheme and its version.
const SEPARATOR_TAG: &[u8] = b"provernet/v1/signed-message";

/// What a signature is for: a network id and, for typed messages, the kind of body.
///
/// `Domain::new("provernet-devnet")` is the untyped domain of that network;
/// [`Domain::with_kind`] narrows it to one message type, which is what envelopes sign under.
#[derive(Clone, PartialEq, Eq)]
pub struct Domain {
    /// The network id (shared, since every envelope derives a typed domain from it).
    network_id: Arc<str>,
    /// The kind of body, or empty for untyped bytes.
    kind: Arc<str>,
    /// keccak256 of the tag, network id and kind, computed once.
    separator: [u8; 32],
}

impl Domain {
    /// The untyped domain of the network `network_id`, for example `"provernet-devnet"`.
    pub fn new(network_id: impl Into<Arc<str>>) -> Self {
        Self::build(network_id.into(), Arc::from(""))
    }

    /// This network's domain for bodies of `kind` (the full proto name of the body message).
    pub fn with_kind(&self, kind: &str) -> Self {
        Self::build(self.network_id.clone(), Arc::from(kind))
    }

    /// The network id this domain names.
    pub fn network_id(&self) -> &str {
        &self.network_id
    }

    /// The kind of body this domain is for; empty for the untyped domain.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The 32-byte separator hashed in front of every body signed under this domain.
    pub const fn separator(&self) -> &[u8; 32] {
        &self.separator
    }

    /// The digest that is signed: keccak256(separator ‖ body).
    pub fn digest(&self, body: &[u8]) -> [u8; 32] {
        let mut hasher = Keccak256::new();
        hasher.update(self.separator);
        hasher.update(body);
        hasher.finalize().into()
    }

    fn build(network_id: Arc<str>, kind: Arc<str>) -> Self {
        let mut hasher = Keccak256::new();
        hasher.update(SEPARATOR_TAG);
        for part in [network_id.as_bytes(), kind.as_bytes()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        Self { network_id, kind, separator: hasher.finalize().into() }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind.is_empty() {
            write!(f, "{}", self.network_id)
        } else {
            write!(f, "{}/{}", self.network_id, self.kind)
        }
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({self})")
    }
}

/// Why a signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Malformed: not 65 bytes.
    #[error("malformed signature: {got} bytes, expected 65 (r ‖ s ‖ v)")]
    Length {
        /// The number of bytes found.
        got: usize,
    },
    /// Malformed: r or s is zero or not below the secp256k1 group order.
    #[error("malformed signature: r or s is zero or not below the secp256k1 group order")]
    Scalars,
    /// Malformed: s is in the upper half of the group order.
    #[error("malformed signature: s is not in the lower half of the group order (sign with low-s)")]
    HighS,
    /// Malformed: v is not a recovery id.
    #[error("malformed signature: recovery id v = {v}, expected 27 or 28 (or 0 or 1)")]
    RecoveryId {
        /// The rejected last byte.
        v: u8,
    },
    /// Malformed: no public key recovers from r (it is not the x-coordinate of a curve point).
    #[error("malformed signature: no public key recovers from it")]
    Unrecoverable,
    /// Well-formed, but it recovers another address than the expected one: signed by another
    /// key, or over other bytes, or under another domain (recovery cannot tell which).
    #[error(
        "signature recovers {recovered}, expected {expected}: signed by another key, \
         or over another body or domain"
    )]
    SignerMismatch {
        /// The address the caller expected.
        expected: Address,
        /// The address the signature recovers.
        recovered: Address,
    },
}

impl SignatureError {
    /// Whether the signature bytes themselves are malformed (as opposed to well-formed but
    /// from the wrong signer).
    pub const fn is_malformed(&self) -> bool {
        !matches!(self, Self::SignerMismatch { .. })
    }
}

/// A well-formed recoverable signature: 65 bytes `r ‖ s ‖ v`, low-s, v ∈ {27, 28}.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// The canonical bytes, with v as 27 or 28.
    bytes: [u8; SIGNATURE_LEN],
    /// r and s, parsed once.
    inner: ecdsa::Signature,
    /// The recovery id, parsed once.
    recovery_id: RecoveryId,
}

impl Signature {
    /// Parses and checks a signature from its 65 wire bytes (v may be 27, 28, 0 or 1).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SignatureError> {
        let bytes: [u8; SIGNATURE_LEN] =
            bytes.try_into().map_err(|_| SignatureError::Length { got: bytes.len() })?;
        let inner =
            ecdsa::Signature::from_slice(&bytes[..64]).map_err(|_| SignatureError::Scalars)?;
        if inner.normalize_s().is_some() {
            return Err(SignatureError::HighS);
        }
        let v = bytes[64];
        let y_odd = match v {
            0 | 27 => false,
            1 | 28 => true,
            _ => return Err(SignatureError::RecoveryId { v }),
        };
        Ok(Self::from_parts(inner, RecoveryId::new(y_odd, false)))
    }

    /// Assembles a signature from a low-s k256 signature and its recovery id.
    pub(crate) fn from_parts(inner: ecdsa::Signature, recovery_id: RecoveryId) -> Self {
        let mut bytes = [0; SIGNATURE_LEN];
        bytes[..64].copy_from_slice(&inner.to_bytes());
        bytes[64] = 27 + u8::from(recovery_id.is_y_odd());
        Self { bytes, inner, recovery_id }
    }

    /// The 65 bytes `r ‖ s ‖ v`, with v as 27 or 28.
    pub const fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.bytes
    }

    /// The 65 bytes as a vector, for the wire.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes.to_vec()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.bytes))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl TryFrom<&[u8]> for Signature {
    type Error = SignatureError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        Self::from_slice(bytes)
    }
}

/// The address whose key signed `body` under `domain`.
///
/// # Errors
/// [`SignatureError::Unrecoverable`] if no key recovers. A body or domain other than the
/// signed one does *not* fail here: it recovers another address.
pub fn recover(
    domain: &Domain,
    body: &[u8],
    signature: &Signature,
) -> Result<Address, SignatureError> {
    recover_digest(&domain.digest(body), signature)
}

/// The address whose key signed the 32-byte `digest` (for schemes that hash differently from
/// [`Domain::digest`], such as the Succinct API's EIP-191 messages).
///
/// # Errors
/// [`SignatureError::Unrecoverable`] if no key recovers.
pub fn recover_digest(digest: &[u8; 32], signature: &Signature) -> Result<Address, SignatureError> {
    recover_key(digest, &signature.inner, signature.recovery_id)
        .map(|key| Address::from_public_key(&key))
        .ok_or(SignatureError::Unrecoverable)
}

/// Recovers the public key `Q = r⁻¹(s·R − z·G)` of an ECDSA signature over `digest`.
///
/// `VerifyingKey::recover_from_prehash` computes the same key and then verifies the signature
/// with it again, which doubles the cost and cannot fail for a key obtained this way; signature
/// verification is the network's hottest path (BENCHMARKS.md), so the second check is skipped.
/// The rare x-reduced recovery ids (probability ~2⁻¹²⁸) go through the library.
fn recover_key(
    digest: &[u8; 32],
    signature: &ecdsa::Signature,
    id: RecoveryId,
) -> Option<VerifyingKey> {
    use k256::{
        AffinePoint, FieldBytes, ProjectivePoint, Scalar, U256,
        elliptic_curve::{
            PrimeField,
            ops::{LinearCombination, Reduce},
            point::DecompressPoint,
        },
    };
    if id.is_x_reduced() {
        return VerifyingKey::recover_from_prehash(digest, signature, id).ok();
    }
    let (r, s) = signature.split_scalars();
    let z = <Scalar as Reduce<U256>>::reduce_bytes(FieldBytes::from_slice(digest));
    let big_r: AffinePoint =
        Option::from(AffinePoint::decompress(&r.to_repr(), u8::from(id.is_y_odd()).into()))?;
    let r_inv: Scalar = Option::from(r.invert())?;
    let u1 = -(r_inv * z);
    let u2 = r_inv * *s;
    let key = ProjectivePoint::lincomb(
        &ProjectivePoint::GENERATOR,
        &u1,
        &ProjectivePoint::from(big_r),
        &u2,
    );
    VerifyingKey::from_affine(key.to_affine()).ok()
}

/// Checks that `expected` signed `body` under `domain`.
///
/// # Errors
/// [`SignatureError::Unrecoverable`], or [`SignatureError::SignerMismatch`] naming both
/// addresses when the signature recovers another one.
pub fn verify(
    domain: &Domain,
    expected: &Address,
    body: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let recovered = recover(domain, body, signature)?;
    if recovered == *expected {
        Ok(())
    } else {
        Err(SignatureError::SignerMismatch { expected: *expected, recovered })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn separator_depends_on_network_and_kind_unambiguously() {
        let devnet = Domain::new("provernet-devnet");
        assert_eq!(devnet, Domain::new(String::from("provernet-devnet")));
        assert_ne!(devnet.separator(), Domain::new("provernet-testnet").separator());
        let bid = devnet.with_kind("provernet.v1.BidBody");
        assert_ne!(bid.separator(), devnet.separator());
        assert_eq!(bid.network_id(), "provernet-devnet");
        assert_eq!(bid.kind(), "provernet.v1.BidBody");
        assert_eq!(bid.to_string(), "provernet-devnet/provernet.v1.BidBody");
        // Moving bytes between network id and kind changes the separator.
        assert_ne!(
            Domain::new("ab").with_kind("c").separator(),
            Domain::new("a").with_kind("bc").separator()
        );
    }

    #[test]
    fn malformed_signatures_are_rejected() {
        assert_eq!(Signature::from_slice(&[1; 64]), Err(SignatureError::Length { got: 64 }));
        assert_eq!(Signature::from_slice(&[]), Err(SignatureError::Length { got: 0 }));
        let mut zero = [0u8; 65];
        zero[64] = 27;
        assert_eq!(Signature::from_slice(&zero), Err(SignatureError::Scalars));
        let mut over = [0xffu8; 65];
        over[64] = 27;
        assert_eq!(Signature::from_slice(&over), Err(SignatureError::Scalars));
        let mut high_s = [1u8; 65];
        high_s[32..64].copy_from_slice(&[0x90; 32]);
        high_s[64] = 27;
        assert_eq!(Signature::from_slice(&high_s), Err(SignatureError::HighS));
        let mut bad_v = [1u8; 65];
        bad_v[64] = 29;
        assert_eq!(Signature::from_slice(&bad_v), Err(SignatureError::RecoveryId { v: 29 }));
        let err = SignatureError::RecoveryId { v: 29 };
        assert_eq!(
            err.to_string(),
            "malformed signature: recovery id v = 29, expected 27 or 28 (or 0 or 1)"
        );
        assert!(err.is_malformed());
    }

    #[test]
    fn v_may_be_0_or_1_and_prints_as_27_or_28() {
        let mut bytes = [1u8; 65];
        bytes[64] = 1;
        let sig = Signature::from_slice(&bytes).unwrap();
        assert_eq!(sig.as_bytes()[64], 28);
        bytes[64] = 0;
        assert_eq!(Signature::from_slice(&bytes).unwrap().as_bytes()[64], 27);
    }
}
