//! [`Signer`]: an account's secret key, which signs bodies under a [`Domain`].
//!
//! The secret never leaves this type except through [`Signer::secret_hex`], which exists to
//! write key files; `Debug` prints only the address, and [`KeyError`] never quotes the input.

use std::fmt;

use k256::ecdsa::{SigningKey, VerifyingKey};

use crate::{
    address::Address,
    signature::{Domain, Signature},
};

/// Why a secret key could not be loaded. Messages never show the key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not hex.
    #[error(
        "secret key is not hex: expected 64 hex digits, optionally prefixed with 0x \
         (the text is not shown, to keep it secret)"
    )]
    NotHex,
    /// The key does not have 32 bytes.
    #[error("secret key has {got} bytes, expected 32 (64 hex digits)")]
    Length {
        /// The number of bytes found.
        got: usize,
    },
    /// The bytes are zero or not below the secp256k1 group order.
    #[error("secret key is not a valid secp256k1 key (zero, or not below the group order)")]
    Invalid,
}

/// An account's secp256k1 signing key, with its address.
#[derive(Clone)]
pub struct Signer {
    /// The secret key.
    key: SigningKey,
    /// The key's address, derived once.
    address: Address,
}

impl Signer {
    /// A new random key from the operating system's generator.
    pub fn random() -> Self {
        Self::from_key(SigningKey::random(&mut rand::rngs::OsRng))
    }

    /// Loads a key from its 32 secret bytes.
    pub fn from_bytes(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() != 32 {
            return Err(KeyError::Length { got: secret.len() });
        }
        SigningKey::from_slice(secret).map(Self::from_key).map_err(|_| KeyError::Invalid)
    }

    /// Loads a key from 64 hex digits, optionally `0x`-prefixed; surrounding whitespace (a key
    /// file's trailing newline) is ignored.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
        let secret = hex::decode(digits).map_err(|_| KeyError::NotHex)?;
        Self::from_bytes(&secret)
    }

    fn from_key(key: SigningKey) -> Self {
        let address = Address::from_public_key(key.verifying_key());
        Self { key, address }
    }

    /// The account's address.
    pub const fn address(&self) -> Address {
        self.address
    }

    /// The public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// The secret as `0x` and 64 hex digits, to write a key file (mode 0600). Never log it.
    pub fn secret_hex(&self) -> String {
        format!("0x{}", hex::encode(self.key.to_bytes()))
    }

    /// Signs `body` under `domain`: a recoverable signature over keccak256(separator ‖ body).
    pub fn sign(&self, domain: &Domain, body: &[u8]) -> Signature {
        self.sign_digest(&domain.digest(body))
    }

    /// Signs a 32-byte digest computed by another scheme (the Succinct API's EIP-191 hash).
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Signature {
        // RFC 6979 signing of a 32-byte prehash fails only if it derives r = 0 or s = 0, which
        // happens with probability about 2^-256; it is not reachable from any input.
        let (signature, recovery_id) =
            self.key.sign_prehash_recoverable(digest).expect("signing a 32-byte digest");
        Signature::from_parts(signature, recovery_id)
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("address", &self.address).finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::signature::{SignatureError, recover, verify};

    fn devnet() -> Domain {
        Domain::new("provernet-devnet")
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let signer = Signer::random();
        let body = b"a body";
        let signature = signer.sign(&devnet(), body);
        assert_eq!(recover(&devnet(), body, &signature), Ok(signer.address()));
        assert_eq!(verify(&devnet(), &signer.address(), body, &signature), Ok(()));
        let wire = Signature::from_slice(&signature.to_vec()).unwrap();
        assert_eq!(wire, signature);
        assert!(matches!(wire.as_bytes()[64], 27 | 28));
    }

    #[test]
    fn tampered_body_other_domain_and_other_key_recover_another_address() {
        let signer = Signer::random();
        let other = Signer::random();
        let body = b"a body";
        let signature = signer.sign(&devnet(), body);
        let mismatch = |result: Result<(), SignatureError>| match result {
            Err(SignatureError::SignerMismatch { expected, recovered }) => {
                assert_eq!(expected, signer.address());
                assert_ne!(recovered, signer.address());
            }
            other => panic!("expected a signer mismatch, got {other:?}"),
        };
        mismatch(verify(&devnet(), &signer.address(), b"a bodY", &signature));
        mismatch(verify(&Domain::new("provernet-testnet"), &signer.address(), body, &signature));
        mismatch(verify(
            &devnet().with_kind("provernet.v1.BidBody"),
            &signer.address(),
            body,
            &signature,
        ));
        let by_other = other.sign(&devnet(), body);
        assert_eq!(
            verify(&devnet(), &signer.address(), body, &by_other),
            Err(SignatureError::SignerMismatch {
                expected: signer.address(),
                recovered: other.address()
            })
        );
    }

    #[test]
    fn an_r_that_is_no_curve_point_is_unrecoverable() {
        let unrecoverable = (1u8..=64).find_map(|r| {
            let mut bytes = [0u8; 65];
            bytes[31] = r;
            bytes[63] = 1;
            bytes[64] = 27;
            let signature = Signature::from_slice(&bytes).unwrap();
            recover(&devnet(), b"x", &signature).err()
        });
        assert_eq!(unrecoverable, Some(SignatureError::Unrecoverable));
    }

    #[test]
    fn keys_load_from_hex_and_bytes_and_never_show_the_secret() {
        let signer = Signer::random();
        let secret = signer.secret_hex();
        let loaded = Signer::from_hex(&format!("{secret}\n")).unwrap();
        assert_eq!(loaded.address(), signer.address());
        assert_eq!(Signer::from_hex(&secret[2..]).unwrap().address(), signer.address());
        let bytes = hex::decode(&secret[2..]).unwrap();
        assert_eq!(Signer::from_bytes(&bytes).unwrap().address(), signer.address());
        let debug = format!("{signer:?}");
        assert!(debug.contains(&signer.address().to_string()), "{debug}");
        assert!(!debug.contains(&secret[2..]), "Debug must not print the secret");

        let not_hex = Signer::from_hex("0xsecretsecret").unwrap_err();
        assert_eq!(not_hex, KeyError::NotHex);
        assert!(!not_hex.to_string().contains("secretsecret"));
        assert_eq!(Signer::from_hex("0x1234").unwrap_err(), KeyError::Length { got: 2 });
        assert_eq!(Signer::from_bytes(&[0; 32]).unwrap_err(), KeyError::Invalid);
        assert_eq!(Signer::from_bytes(&[0xff; 32]).unwrap_err(), KeyError::Invalid);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn sign_recover_round_trips(
            secret in any::<[u8; 32]>(),
            body in proptest::collection::vec(any::<u8>(), 0..512),
            network in "[a-z0-9-]{0,24}",
        ) {
            // Nearly every 32-byte string is a valid key; skip the rest.
            let Ok(signer) = Signer::from_bytes(&secret) else { return Ok(()) };
            let domain = Domain::new(network);
            let signature = signer.sign(&domain, &body);
            prop_assert_eq!(recover(&domain, &body, &signature), Ok(signer.address()));
            let wire = Signature::from_slice(signature.as_bytes());
            prop_assert_eq!(wire, Ok(signature));
            let mut tampered = body.clone();
            tampered.push(0);
            prop_assert_ne!(recover(&domain, &tampered, &signature).ok(), Some(signer.address()));
        }
    }
}
