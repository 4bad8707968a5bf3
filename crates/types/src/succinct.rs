//! The Succinct Prover Network's API, as SP1's SDK (`sp1-sdk` 6.10, feature `network`) and
//! Succinct-protocol prover nodes speak it: the generated subset of its protocol ([`proto`]),
//! its signatures (EIP-191 `personal_sign` over the prost-encoded body) and its signing domain
//! (an EIP-712 domain separator carried in some bodies).
//!
//! A provernet network serves this API beside its own (`provernet.v1`); both drive one market.
//! The two never accept each other's messages: a native signature is over
//! `keccak256(separator ‖ body)` with a provernet separator, a Succinct one over
//! `keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ body)`, so a signature made for one
//! recovers an unrelated address under the other.
//!
//! ```text
//! client: body ──prost──▶ bytes ──sign_message──▶ {format, signature, body: bytes} ──gRPC──▶
//! network: open::<Body>(signature, bytes) ──▶ (signer, body) ──check domain, nonce──▶ market
//! ```
//!
//! The envelopes keep their body as `bytes` (wire-compatible with the embedded message the
//! public API declares), so the signature is checked over exactly the bytes the client sent:
//! decoding and re-encoding could drop a field the client signed.

use prost::Message;
use sha3::{Digest, Keccak256};

use crate::{Address, Signature, SignatureError, Signer, signature::recover_digest};

/// The generated Succinct-API protocol: packages `types` (messages), `network`
/// (`network.ProverNetwork`) and `artifact` (`artifact.ArtifactStore`), from
/// `crates/types/proto/succinct/`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    /// Messages and enums (package `types`).
    pub mod types {
        tonic::include_proto!("types");
    }
    /// The `network.ProverNetwork` service.
    pub mod network {
        tonic::include_proto!("network");
    }
    /// The `artifact.ArtifactStore` service and its messages.
    pub mod artifact {
        tonic::include_proto!("artifact");
    }
}

/// The message that `CreateArtifact` signs: a constant, with no nonce (the SDK's choice).
pub const CREATE_ARTIFACT_MESSAGE: &[u8] = b"create_artifact";

/// The EIP-712 domain name of the Succinct Prover Network.
pub const DOMAIN_NAME: &str = "Succinct Prover Network";

/// The EIP-712 domain version of the Succinct Prover Network.
pub const DOMAIN_VERSION: &str = "1.0.0";

/// The chain id of the original network's mainnet domain, which reference nodes hard-code.
pub const MAINNET_CHAIN_ID: u64 = 1;

/// The hash an Ethereum `personal_sign` signs:
/// `keccak256("\x19Ethereum Signed Message:\n" ‖ decimal(len) ‖ message)` (EIP-191, version 0x45).
pub fn personal_digest(message: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(b"\x19Ethereum Signed Message:\n");
    hasher.update(message.len().to_string().as_bytes());
    hasher.update(message);
    hasher.finalize().into()
}

/// The EIP-712 domain separator of `{name, version, chainId}` (no verifying contract), the value
/// of the `domain` field in request, bid and fulfilment bodies.
pub fn domain_separator(name: &str, version: &str, chain_id: u64) -> [u8; 32] {
    let type_hash = Keccak256::digest(b"EIP712Domain(string name,string version,uint256 chainId)");
    let mut chain = [0u8; 32];
    chain[24..].copy_from_slice(&chain_id.to_be_bytes());
    let mut hasher = Keccak256::new();
    hasher.update(type_hash);
    hasher.update(Keccak256::digest(name.as_bytes()));
    hasher.update(Keccak256::digest(version.as_bytes()));
    hasher.update(chain);
    hasher.finalize().into()
}

/// The Succinct Prover Network's domain separator for `chain_id`.
pub fn network_domain(chain_id: u64) -> [u8; 32] {
    domain_separator(DOMAIN_NAME, DOMAIN_VERSION, chain_id)
}

/// Signs `message` as `personal_sign` does: 65 bytes `r ‖ s ‖ v`, v 27 or 28.
pub fn sign_message(signer: &Signer, message: &[u8]) -> Vec<u8> {
    signer.sign_digest(&personal_digest(message)).to_vec()
}

/// The address that signed `message` with `personal_sign`.
///
/// `v` may be 27/28 or 0/1. The SDK's `CreateArtifact` adds 27 twice (54/55): pass
/// `double_offset = true` to accept that for the constant [`CREATE_ARTIFACT_MESSAGE`] only.
///
/// # Errors
/// A [`SignatureError`] naming what is malformed (length, scalars, high s, `v`), or
/// `Unrecoverable`. A signature over other bytes recovers another address, not an error.
pub fn recover_message(
    message: &[u8],
    signature: &[u8],
    double_offset: bool,
) -> Result<Address, SignatureError> {
    let signature = match signature {
        [rs @ .., v @ (54 | 55)] if double_offset && rs.len() == 64 => {
            let mut normal = [0u8; 65];
            normal[..64].copy_from_slice(rs);
            normal[64] = v - 27;
            Signature::from_slice(&normal)?
        }
        _ => Signature::from_slice(signature)?,
    };
    recover_digest(&personal_digest(message), &signature)
}

/// A signed body of the Succinct API: the account's nonce, and the domain where the body has one.
pub trait SignedBody: Message + Default {
    /// The message's name, for errors.
    const NAME: &'static str;
    /// The nonce the body carries.
    fn nonce(&self) -> u64;
    /// The EIP-712 domain the body names, if its message has one.
    fn domain(&self) -> Option<&[u8]> {
        None
    }
}

macro_rules! signed_body {
    ($($body:ident $(with $domain:ident)?),* $(,)?) => {$(
        impl SignedBody for proto::types::$body {
            const NAME: &'static str = stringify!($body);
            fn nonce(&self) -> u64 {
                self.nonce
            }
            $(fn domain(&self) -> Option<&[u8]> {
                Some(&self.$domain)
            })?
        }
    )*};
}

signed_body! {
    RequestProofRequestBody with domain,
    BidRequestBody with domain,
    FulfillProofRequestBody with domain,
    FailFulfillmentRequestBody,
    CancelRequestRequestBody,
    CreateProgramRequestBody,
}

/// Why a signed Succinct-API message was refused before its content was looked at.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The envelope carried no body.
    #[error("the {0} is missing: sign a body and send it in field `body`")]
    MissingBody(&'static str),
    /// The body bytes do not decode as the message.
    #[error("the body does not decode as a {kind}: {source}")]
    Body {
        /// The message expected.
        kind: &'static str,
        /// The decoding error.
        source: prost::DecodeError,
    },
    /// The signature is malformed or recovers no key.
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
}

/// Checks a signed body: decodes it and recovers who signed its bytes.
///
/// The caller then checks the domain (where the body has one), the nonce and the rights of the
/// recovered address; a tampered body recovers another address, which those checks refuse.
///
/// # Errors
/// [`OpenError`] naming the missing body, the decoding error or the malformed signature.
pub fn open<B: SignedBody>(signature: &[u8], body: &[u8]) -> Result<(Address, B), OpenError> {
    if body.is_empty() {
        return Err(OpenError::MissingBody(B::NAME));
    }
    // The signature first: it is constant-size work, the body decode grows with the input.
    let signer = recover_message(body, signature, false)?;
    let decoded = B::decode(body).map_err(|source| OpenError::Body { kind: B::NAME, source })?;
    Ok((signer, decoded))
}

/// Encodes and signs `body` as the SDK does: `(signature, body bytes)` for the envelope.
pub fn seal<B: SignedBody>(signer: &Signer, body: &B) -> (Vec<u8>, Vec<u8>) {
    let bytes = body.encode_to_vec();
    (sign_message(signer, &bytes), bytes)
}

#[cfg(test)]
mod tests {
    use super::{proto::types::*, *};

    /// The `personal_sign` example of web3.js's documentation (`web3.eth.accounts.sign`).
    #[test]
    fn personal_sign_matches_a_published_vector() {
        let signer =
            Signer::from_hex("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
                .unwrap();
        assert_eq!(
            hex::encode(personal_digest(b"Some data")),
            "1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655"
        );
        assert_eq!(
            hex::encode(sign_message(&signer, b"Some data")),
            "b91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd\
             6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a029\
             1c"
        );
        assert_eq!(signer.address().to_checksum(), "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23");
    }

    #[test]
    fn the_mainnet_domain_is_the_separator_reference_nodes_hard_code() {
        assert_eq!(
            hex::encode(network_domain(MAINNET_CHAIN_ID)),
            "55ea66757c5b1aecda6619905f594b320092db1cf4c8b6f89025c092f0bb7b5b"
        );
        assert_ne!(network_domain(1), network_domain(11_155_111));
    }

    #[test]
    fn v_may_carry_the_sdks_double_offset_only_where_allowed() {
        let signer = Signer::random();
        let mut signature = sign_message(&signer, CREATE_ARTIFACT_MESSAGE);
        let normal = recover_message(CREATE_ARTIFACT_MESSAGE, &signature, false).unwrap();
        assert_eq!(normal, signer.address());
        signature[64] += 27;
        assert!(matches!(signature[64], 54 | 55));
        assert_eq!(recover_message(CREATE_ARTIFACT_MESSAGE, &signature, true).unwrap(), normal);
        assert!(matches!(
            recover_message(CREATE_ARTIFACT_MESSAGE, &signature, false),
            Err(SignatureError::RecoveryId { v: 54 | 55 })
        ));
        signature[64] -= 54;
        assert_eq!(recover_message(CREATE_ARTIFACT_MESSAGE, &signature, false).unwrap(), normal);
    }

    #[test]
    fn open_recovers_the_signer_and_a_tampered_body_recovers_another() {
        let signer = Signer::random();
        let body = BidRequestBody {
            nonce: 7,
            request_id: vec![1; 32],
            amount: "100".into(),
            domain: network_domain(1).to_vec(),
            prover: signer.address().as_bytes().to_vec(),
            variant: TransactionVariant::BidVariant as i32,
        };
        let (signature, mut bytes) = seal(&signer, &body);
        let (who, opened) = open::<BidRequestBody>(&signature, &bytes).unwrap();
        assert_eq!((who, &opened), (signer.address(), &body));
        assert_eq!(opened.domain(), Some(&network_domain(1)[..]));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let (other, _) = open::<BidRequestBody>(&signature, &bytes).unwrap();
        assert_ne!(other, signer.address());
        assert!(matches!(open::<BidRequestBody>(&signature, &[]), Err(OpenError::MissingBody(_))));
        assert!(matches!(
            open::<BidRequestBody>(&signature[..64], &bytes),
            Err(OpenError::Signature(SignatureError::Length { got: 64 }))
        ));
        assert!(matches!(
            open::<BidRequestBody>(&signature, &[0xff, 0xff]),
            Err(OpenError::Body { kind: "BidRequestBody", .. })
        ));
    }

    #[test]
    fn the_service_paths_are_the_public_apis() {
        use tonic::server::NamedService;
        assert_eq!(
            <super::proto::network::prover_network_server::ProverNetworkServer<()>>::NAME,
            "network.ProverNetwork"
        );
        assert_eq!(
            <super::proto::artifact::artifact_store_server::ArtifactStoreServer<()>>::NAME,
            "artifact.ArtifactStore"
        );
    }
}
