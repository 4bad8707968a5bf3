//! provernet's shared vocabulary: the wire protocol, ids, amounts, keys and signed envelopes.
//!
//! Layout:
//! - [`proto`]: the generated `provernet.v1` protocol (messages, `ProverNetwork` client and
//!   server) and [`FILE_DESCRIPTOR_SET`] for gRPC reflection.
//! - [`address`]: [`Address`], an account's 20-byte Ethereum-style identity.
//! - [`amount`]: [`Amount`], a u128 ledger quantity written as plain decimal.
//! - [`ids`]: [`ArtifactId`] (BLAKE3 of content) and [`RequestId`] (keccak256 of signer ‖ body).
//! - [`hex32`]: parsing of 32-byte hex identities.
//! - [`signature`]: [`Domain`], [`Signature`], [`recover`] and [`verify`].
//! - [`signer`]: [`Signer`], an account's secret key.
//! - [`envelope`]: [`seal`] and [`open`] a [`proto::SignedMessage`]; the [`SignedBody`] and
//!   [`Nonced`] traits of state-changing bodies.
//! - [`field`]: reading proto fields into typed values, errors naming the field.
//! - [`request`]: [`RequestSpec`], a typed `RequestProofBody`, its timing rules and costs.
//! - [`program`]: [`ProgramName`], the rule for program names.
//! - [`client`]: [`NetworkClient`], the gRPC client that signs and keeps nonces.
//! - [`succinct`]: the Succinct Prover Network's API (the subset SP1's SDK and Succinct-protocol
//!   nodes use), its EIP-191 signatures and EIP-712 domain.
//! - [`LATENCY_BUCKETS_SECONDS`]: the buckets of every exported latency histogram.
//!
//! How a state-changing call travels:
//!
//! ```text
//! client: body ──encode──▶ bytes ──Signer::sign(domain/kind)──▶ SignedMessage ──gRPC──▶
//! network: SignedMessage ──open(domain)──▶ (signer Address, body) ──check nonce, fields──▶ ledger
//! ```

pub mod address;
pub mod amount;
pub mod client;
pub mod envelope;
pub mod field;
pub mod hex32;
pub mod ids;
pub mod program;
pub mod proto;
pub mod request;
pub mod signature;
pub mod signer;
pub mod succinct;

pub use address::{Address, AddressError};
pub use amount::{Amount, AmountArithmeticError, AmountError};
pub use client::{ClientError, NetworkClient};
pub use envelope::{EnvelopeError, Nonced, SignedBody, check_signer, open, seal, seal_bytes};
pub use field::FieldError;
pub use hex32::Hex32Error;
pub use ids::{ArtifactId, RequestId};
pub use program::ProgramName;
pub use proto::FILE_DESCRIPTOR_SET;
pub use request::RequestSpec;
pub use signature::{Domain, Signature, SignatureError, recover, verify};
pub use signer::{KeyError, Signer};

/// The histogram buckets, in seconds, of every latency provernet exports (node, network and
/// ArtifactStore): one set, so that the same latency aggregates across processes. From a
/// millisecond (a bid, a read) to an hour (a large proof).
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0,
];
