//! The signed envelope: [`seal`] a body into a [`SignedMessage`], [`open`] one into its
//! signer and body, and the [`SignedBody`] / [`Nonced`] traits every state-changing body has.
//!
//! A `SignedMessage` carries the encoded body, the signature, and in clear the claimed signer,
//! the network id (domain) and the body's kind. The signature is made under
//! `Domain::new(network).with_kind(kind)` (see [`crate::signature`]), so it covers all of them:
//! the claimed signer through recovery, domain and kind through the separator.
//!
//! [`open`] checks, in order, and reports the first failure:
//!
//! ```text
//! signature bytes well-formed?        no → Signature(Length | Scalars | HighS | RecoveryId)
//! signer field 20 bytes?              no → SignerField
//! domain field = this network?        no → WrongDomain   ("signed for network X, this is Y")
//! kind field = the body type expected? no → WrongKind    ("a BidBody, this call takes …")
//! recovered address = signer field?   no → Tampered      (body, domain or kind altered, or forged)
//! body decodes as the expected type?  no → Decode
//! ```
//!
//! A message validly signed by an account that may not make the call (another key than the
//! prover or its operator, say) opens fine; [`check_signer`] then rejects it with
//! [`EnvelopeError::OtherSigner`]. A message that *claims* one signer but was signed by another
//! key cannot be told from a tampered one and is reported as [`EnvelopeError::Tampered`].

use prost::Message;

use crate::{
    address::Address,
    proto::{self, SignedMessage},
    signature::{Domain, Signature, SignatureError, recover},
    signer::Signer,
};

/// A body that carries its signer's nonce: the network accepts exactly the account's current
/// nonce and increments it, so a replayed or reordered message is rejected.
pub trait Nonced {
    /// The signer's nonce this body was made with.
    fn nonce(&self) -> u64;
}

/// A body message of a state-changing call, signed inside a [`SignedMessage`].
pub trait SignedBody: Message + Default + Nonced {
    /// The full proto name of the message (`provernet.v1.BidBody`), signed as the domain's kind.
    const KIND: &'static str;
}

/// Why a [`SignedMessage`] was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    /// The signature bytes are malformed.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The signer field is not a 20-byte address.
    #[error("malformed envelope: signer has {got} bytes, expected a 20-byte address")]
    SignerField {
        /// The number of bytes found.
        got: usize,
    },
    /// The message was signed for another network.
    #[error("message was signed for network {got:?}, but this is network {expected:?}")]
    WrongDomain {
        /// The network id in the envelope (truncated to 80 characters).
        got: String,
        /// This network's id.
        expected: String,
    },
    /// The message holds another body type than the call takes.
    #[error("message holds a {got:?}, but this call takes a {expected:?}")]
    WrongKind {
        /// The kind in the envelope (truncated to 80 characters).
        got: String,
        /// The body type the call takes.
        expected: &'static str,
    },
    /// The signature does not match the envelope: it recovers another address than the
    /// claimed signer, so the body, domain or kind was altered after signing, or the claim is
    /// false.
    #[error(
        "signature does not match the message: it recovers {recovered}, but the message claims \
         {claimed} (the body, domain or kind was altered after signing, or the signer is forged)"
    )]
    Tampered {
        /// The signer the envelope claims.
        claimed: Address,
        /// The address the signature recovers.
        recovered: Address,
    },
    /// A valid message from an account that may not make this call.
    #[error(
        "message is signed by {signer}, which may not make this call (expected {})",
        list(expected)
    )]
    OtherSigner {
        /// The actual signer.
        signer: Address,
        /// The accounts that may make the call.
        expected: Vec<Address>,
    },
    /// The body bytes do not decode as the expected message.
    #[error("malformed body: not a valid {kind}: {source}")]
    Decode {
        /// The body type expected.
        kind: &'static str,
        /// What the decoder found.
        source: prost::DecodeError,
    },
}

/// Formats addresses as "a or b" for error messages.
fn list(addresses: &[Address]) -> String {
    let names: Vec<String> = addresses.iter().map(Address::to_string).collect();
    names.join(" or ")
}

/// Keeps error messages bounded whatever the client sent.
fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl EnvelopeError {
    /// Whether the client sent something malformed (as opposed to well-formed but not
    /// authorised).
    pub const fn is_malformed(&self) -> bool {
        match self {
            Self::Signature(_) | Self::SignerField { .. } | Self::Decode { .. } => true,
            Self::WrongKind { .. } => true,
            Self::WrongDomain { .. } | Self::Tampered { .. } | Self::OtherSigner { .. } => false,
        }
    }
}

impl From<EnvelopeError> for tonic::Status {
    fn from(err: EnvelopeError) -> Self {
        match err {
            EnvelopeError::OtherSigner { .. } => Self::permission_denied(err.to_string()),
            EnvelopeError::WrongDomain { .. } | EnvelopeError::Tampered { .. } => {
                Self::unauthenticated(err.to_string())
            }
            _ => Self::invalid_argument(err.to_string()),
        }
    }
}

/// Encodes `body`, signs it under `domain` narrowed to the body's kind, and wraps it.
pub fn seal<B: SignedBody>(signer: &Signer, domain: &Domain, body: &B) -> SignedMessage {
    seal_bytes::<B>(signer, domain, body.encode_to_vec())
}

/// Signs already-encoded `body` bytes as a body of kind `B` and wraps them (for callers that
/// encode themselves, and tests that send bodies which do not decode).
pub fn seal_bytes<B: SignedBody>(signer: &Signer, domain: &Domain, body: Vec<u8>) -> SignedMessage {
    let signature = signer.sign(&domain.with_kind(B::KIND), &body);
    SignedMessage {
        body,
        signature: signature.to_vec(),
        signer: signer.address().as_bytes().to_vec(),
        domain: domain.network_id().to_owned(),
        kind: B::KIND.to_owned(),
    }
}

/// Checks `message` against this network's `domain` and decodes its body as `B`.
///
/// Returns the signer's address and the body. The signer may be any account: check it with
/// [`check_signer`] where only some may call, and check the body's nonce.
///
/// # Errors
/// The first failed check, as listed in the module docs.
pub fn open<B: SignedBody>(
    domain: &Domain,
    message: &SignedMessage,
) -> Result<(Address, B), EnvelopeError> {
    let signature = Signature::from_slice(&message.signature)?;
    let claimed = Address::from_slice(&message.signer)
        .map_err(|_| EnvelopeError::SignerField { got: message.signer.len() })?;
    if message.domain != domain.network_id() {
        return Err(EnvelopeError::WrongDomain {
            got: truncate(&message.domain),
            expected: domain.network_id().to_owned(),
        });
    }
    if message.kind != B::KIND {
        return Err(EnvelopeError::WrongKind { got: truncate(&message.kind), expected: B::KIND });
    }
    let recovered = recover(&domain.with_kind(B::KIND), &message.body, &signature)?;
    if recovered != claimed {
        return Err(EnvelopeError::Tampered { claimed, recovered });
    }
    let body = B::decode(message.body.as_slice())
        .map_err(|source| EnvelopeError::Decode { kind: B::KIND, source })?;
    Ok((recovered, body))
}

/// Checks that `signer` is one of the accounts that may make a call (a prover and its
/// operator, say).
///
/// # Errors
/// [`EnvelopeError::OtherSigner`] naming the signer and the allowed accounts.
pub fn check_signer(signer: &Address, allowed: &[Address]) -> Result<(), EnvelopeError> {
    if allowed.contains(signer) {
        Ok(())
    } else {
        Err(EnvelopeError::OtherSigner { signer: *signer, expected: allowed.to_vec() })
    }
}

/// Implements [`Nonced`] and [`SignedBody`] for body messages with a `nonce` field.
macro_rules! signed_bodies {
    ($($body:ident),* $(,)?) => {$(
        impl Nonced for proto::$body {
            fn nonce(&self) -> u64 {
                self.nonce
            }
        }

        impl SignedBody for proto::$body {
            const KIND: &'static str = concat!("provernet.v1.", stringify!($body));
        }
    )*};
}

signed_bodies!(
    FaucetBody,
    AdminDepositBody,
    RegisterProverBody,
    AddStakeBody,
    WithdrawStakeBody,
    RegisterProgramBody,
    RequestProofBody,
    CancelRequestBody,
    BidBody,
    FulfillProofBody,
    FailFulfillmentBody,
    PresignArtifactUploadBody,
    PresignArtifactDownloadBody,
);

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use proptest::prelude::*;
    use prost::Name;

    use super::*;
    use crate::{ids::RequestId, proto::RequestProofBody};

    fn devnet() -> Domain {
        Domain::new("provernet-devnet")
    }

    fn bid(nonce: u64) -> proto::BidBody {
        proto::BidBody {
            nonce,
            request_id: vec![7; 32],
            price_per_pgu: "12".into(),
            prover: vec![1; 20],
        }
    }

    #[test]
    fn every_kind_is_the_full_proto_name() {
        fn check<B: SignedBody + Name>() {
            assert_eq!(B::KIND, B::full_name());
        }
        check::<proto::FaucetBody>();
        check::<proto::AdminDepositBody>();
        check::<proto::RegisterProverBody>();
        check::<proto::AddStakeBody>();
        check::<proto::WithdrawStakeBody>();
        check::<proto::RegisterProgramBody>();
        check::<proto::RequestProofBody>();
        check::<proto::CancelRequestBody>();
        check::<proto::BidBody>();
        check::<proto::FulfillProofBody>();
        check::<proto::FailFulfillmentBody>();
        check::<proto::PresignArtifactUploadBody>();
        check::<proto::PresignArtifactDownloadBody>();
    }

    #[test]
    fn seal_then_open_round_trips() {
        let signer = Signer::random();
        let message = seal(&signer, &devnet(), &bid(3));
        assert_eq!(message.signer, signer.address().as_bytes().to_vec());
        assert_eq!(message.domain, "provernet-devnet");
        assert_eq!(message.kind, "provernet.v1.BidBody");
        let (from, body) = open::<proto::BidBody>(&devnet(), &message).unwrap();
        assert_eq!(from, signer.address());
        assert_eq!(body, bid(3));
        assert_eq!(body.nonce(), 3);
        assert_eq!(check_signer(&from, &[Address::ZERO, signer.address()]), Ok(()));
    }

    #[test]
    fn request_proof_body_survives_the_envelope_and_the_wire() {
        let signer = Signer::random();
        let body = RequestProofBody {
            nonce: 9,
            program_id: vec![0xaa; 32],
            zkvm_version: "miden-0.23".into(),
            program_artifact_id: vec![1; 32],
            inputs_artifact_id: vec![2; 32],
            inputs_private: true,
            deadline: 1_800_000_000,
            gas_limit: 1 << 20,
            max_price_per_pgu: "1000".into(),
            base_fee: "5".into(),
            min_auction_period: 2,
            whitelist: vec![vec![3; 20], vec![4; 20]],
            expected_outputs_hash: Some(vec![5; 32]),
            proof_mode: "stark".into(),
        };
        let message = seal(&signer, &devnet(), &body);
        // Through the gRPC encoding of the envelope itself.
        let wire = message.encode_to_vec();
        let received = SignedMessage::decode(wire.as_slice()).unwrap();
        let (requester, opened) = open::<RequestProofBody>(&devnet(), &received).unwrap();
        assert_eq!(requester, signer.address());
        assert_eq!(opened, body);
        assert_eq!(opened.nonce(), 9);
        // Both sides derive the same request id from the exact signed bytes.
        let id = RequestId::derive(&requester, &received.body);
        assert_eq!(id, RequestId::derive(&signer.address(), &body.encode_to_vec()));
    }

    #[test]
    fn tampered_body_other_domain_other_key_and_malformed_signature_are_distinct_errors() {
        let signer = Signer::random();
        let message = seal(&signer, &devnet(), &bid(1));

        // Tampered body: a changed price.
        let mut tampered = message.clone();
        let mut changed = bid(1);
        changed.price_per_pgu = "1".into();
        tampered.body = changed.encode_to_vec();
        let err = open::<proto::BidBody>(&devnet(), &tampered).unwrap_err();
        assert!(
            matches!(err, EnvelopeError::Tampered { claimed, .. } if claimed == signer.address()),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("signature does not match the message"), "{err}");

        // Other domain: signed for testnet, presented to devnet.
        let testnet = seal(&signer, &Domain::new("provernet-testnet"), &bid(1));
        let err = open::<proto::BidBody>(&devnet(), &testnet).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::WrongDomain {
                got: "provernet-testnet".into(),
                expected: "provernet-devnet".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "message was signed for network \"provernet-testnet\", but this is network \"provernet-devnet\""
        );
        // ... and with the domain field rewritten to ours, the signature no longer matches.
        let mut relabelled = testnet.clone();
        relabelled.domain = "provernet-devnet".into();
        let err = open::<proto::BidBody>(&devnet(), &relabelled).unwrap_err();
        assert!(matches!(err, EnvelopeError::Tampered { .. }), "{err:?}");

        // Other key: a valid message from an account that may not make the call.
        let intruder = Signer::random();
        let theirs = seal(&intruder, &devnet(), &bid(1));
        let (from, _) = open::<proto::BidBody>(&devnet(), &theirs).unwrap();
        let err = check_signer(&from, &[signer.address()]).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::OtherSigner {
                signer: intruder.address(),
                expected: vec![signer.address()]
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "message is signed by {}, which may not make this call (expected {})",
                intruder.address(),
                signer.address()
            )
        );
        // ... and a message claiming our signer but signed by the intruder does not open.
        let mut forged = theirs.clone();
        forged.signer = signer.address().as_bytes().to_vec();
        let err = open::<proto::BidBody>(&devnet(), &forged).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::Tampered { claimed: signer.address(), recovered: intruder.address() }
        );

        // Malformed signature.
        let mut short = message.clone();
        short.signature.pop();
        let err = open::<proto::BidBody>(&devnet(), &short).unwrap_err();
        assert_eq!(err, EnvelopeError::Signature(SignatureError::Length { got: 64 }));
        assert_eq!(err.to_string(), "malformed signature: 64 bytes, expected 65 (r ‖ s ‖ v)");
        let mut bad_v = message.clone();
        bad_v.signature[64] = 5;
        let err = open::<proto::BidBody>(&devnet(), &bad_v).unwrap_err();
        assert_eq!(err, EnvelopeError::Signature(SignatureError::RecoveryId { v: 5 }));
        let mut zero = message.clone();
        zero.signature[..32].fill(0);
        let err = open::<proto::BidBody>(&devnet(), &zero).unwrap_err();
        assert_eq!(err, EnvelopeError::Signature(SignatureError::Scalars));
        assert!(err.is_malformed());
    }

    #[test]
    fn a_body_cannot_be_replayed_as_another_call() {
        let signer = Signer::random();
        // AddStakeBody and WithdrawStakeBody have identical fields.
        let add = seal(&signer, &devnet(), &proto::AddStakeBody { nonce: 0, amount: "10".into() });
        let err = open::<proto::WithdrawStakeBody>(&devnet(), &add).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::WrongKind {
                got: "provernet.v1.AddStakeBody".into(),
                expected: "provernet.v1.WithdrawStakeBody"
            }
        );
        let mut relabelled = add.clone();
        relabelled.kind = "provernet.v1.WithdrawStakeBody".into();
        let err = open::<proto::WithdrawStakeBody>(&devnet(), &relabelled).unwrap_err();
        assert!(matches!(err, EnvelopeError::Tampered { .. }), "{err:?}");
    }

    #[test]
    fn malformed_envelopes_are_rejected() {
        let signer = Signer::random();
        let mut message = seal(&signer, &devnet(), &bid(1));
        message.signer.pop();
        let err = open::<proto::BidBody>(&devnet(), &message).unwrap_err();
        assert_eq!(err, EnvelopeError::SignerField { got: 19 });

        // Bytes that are not a BidBody, properly signed.
        let garbage = vec![0xff, 0xff, 0xff];
        let signature = signer.sign(&devnet().with_kind(proto::BidBody::KIND), &garbage);
        let message = SignedMessage {
            body: garbage,
            signature: signature.to_vec(),
            signer: signer.address().as_bytes().to_vec(),
            domain: "provernet-devnet".into(),
            kind: proto::BidBody::KIND.into(),
        };
        let err = open::<proto::BidBody>(&devnet(), &message).unwrap_err();
        assert!(
            matches!(err, EnvelopeError::Decode { kind: "provernet.v1.BidBody", .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("malformed body: not a valid provernet.v1.BidBody"),
            "{err}"
        );
    }

    #[test]
    fn errors_map_to_grpc_codes() {
        let code = |err: EnvelopeError| tonic::Status::from(err).code();
        assert_eq!(code(EnvelopeError::SignerField { got: 0 }), tonic::Code::InvalidArgument);
        assert_eq!(
            code(EnvelopeError::Tampered { claimed: Address::ZERO, recovered: Address::ZERO }),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            code(EnvelopeError::OtherSigner { signer: Address::ZERO, expected: vec![] }),
            tonic::Code::PermissionDenied
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn seal_open_round_trips_over_random_bodies_and_keys(
            secret in any::<[u8; 32]>(),
            nonce: u64,
            reason in ".{0,64}",
            request_id in proptest::collection::vec(any::<u8>(), 32),
        ) {
            let Ok(signer) = Signer::from_bytes(&secret) else { return Ok(()) };
            let body = proto::FailFulfillmentBody {
                nonce,
                request_id,
                prover: signer.address().as_bytes().to_vec(),
                reason,
            };
            let message = seal(&signer, &devnet(), &body);
            let (from, opened) = open::<proto::FailFulfillmentBody>(&devnet(), &message).unwrap();
            prop_assert_eq!(from, signer.address());
            prop_assert_eq!(opened.nonce(), nonce);
            prop_assert_eq!(opened, body);
        }
    }
}
