//! The requester's side of the market, as a library: check a proof request locally, upload
//! what the network lacks, register the program, ask for a proof, wait until a predicate on the
//! request holds, then download the proof and verify it on this machine.
//!
//! ```text
//! program + inputs ─check locally (assemble, inputs, deadline, balance)─► presign ─► upload
//!   ─► RegisterProgram (unless registered) ─► RequestProof ─► SubscribeRequests ─► Fulfilled
//!   ─► download proof, program, inputs (verified against their ids) ─► verify locally
//! ```
//!
//! Everything that can be checked before spending a nonce or uploading a byte is checked first,
//! so a mistake costs nothing and leaves nothing behind on the network.
//!
//! **Where it sits**: it depends on `provernet-types` (the [`NetworkClient`]), the ArtifactStore
//! client of `provernet-artifacts` and `provernet-zkvm` (to assemble programs, check inputs and
//! verify proofs); the `provernet` binary (`crates/cli`: `provernet request`, `provernet program`,
//! the devnet) uses it, and adds what is about the command line: flags, key files, progress bars
//! and the hints that name flags. The end-to-end tests' requesters use it too (through the
//! `test-utils` features of `provernet-network` and `provernet-node`). DESIGN.md calls this
//! crate `client/`, the requester library.
//!
//! **Layout**
//! - [`error`]: [`RequesterError`], one variant per thing a caller may need to tell apart.
//! - `requester`: [`Requester`]: connecting, uploads, programs, [`Requester::submit`].
//! - `wait`: [`Requester::wait_until`] and [`Requester::wait`], on
//!   [`NetworkClient::wait_until`].
//! - `fetch`: [`Requester::fetch_proof`], downloading and verifying a proof.
//! - Here: reading a request's status and amounts ([`status_name`], [`close_reason`], …).
//!
//! [`NetworkClient`]: provernet_types::NetworkClient
//! [`NetworkClient::wait_until`]: provernet_types::NetworkClient::wait_until

pub mod error;
mod fetch;
mod requester;
mod wait;

use provernet_types::{Amount, proto};

pub use self::{
    error::{RequesterError, Result},
    fetch::VerifiedProof,
    requester::{Requester, Submission, UploadProgress, UploadProgressFn, UploadSource},
};

/// Whether `request` is closed: fulfilled, unfulfillable or cancelled.
pub fn is_closed(request: &proto::ProofRequest) -> bool {
    proto::RequestStatus::try_from(request.status).is_ok_and(proto::RequestStatus::is_closed)
}

/// The request's status in lower case (`requested`, `assigned`, `fulfilled`, …).
pub fn status_name(request: &proto::ProofRequest) -> &'static str {
    proto::RequestStatus::try_from(request.status).map_or("unknown", proto::RequestStatus::name)
}

/// The request's execution status in lower case (`unexecuted`, `executed`, `unexecutable`).
pub fn execution_name(request: &proto::ProofRequest) -> &'static str {
    use proto::ExecutionStatus as E;
    match E::try_from(request.execution_status) {
        Ok(E::Unexecuted) => "unexecuted",
        Ok(E::Executed) => "executed",
        Ok(E::Unexecutable) => "unexecutable",
        _ => "unknown",
    }
}

/// Why a closed request has no proof, if it says.
pub fn close_reason(request: &proto::ProofRequest) -> Option<&str> {
    [&request.unfulfillable_reason, &request.unexecutable_reason]
        .into_iter()
        .find(|r| !r.is_empty())
        .map(String::as_str)
}

/// Parses a decimal amount from the wire (empty means 0).
///
/// # Errors
/// [`RequesterError::Malformed`] naming the amount.
pub fn parse_amount(text: &str) -> Result<Amount> {
    if text.is_empty() {
        return Ok(Amount::ZERO);
    }
    text.parse().map_err(|e: provernet_types::AmountError| RequesterError::Malformed {
        what: "amount",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_amounts() {
        let mut request = proto::ProofRequest {
            status: proto::RequestStatus::Unfulfillable as i32,
            execution_status: proto::ExecutionStatus::Executed as i32,
            ..Default::default()
        };
        assert!(is_closed(&request));
        assert_eq!(status_name(&request), "unfulfillable");
        assert_eq!(execution_name(&request), "executed");
        assert_eq!(close_reason(&request), None);
        request.unexecutable_reason = "program failed".into();
        assert_eq!(close_reason(&request), Some("program failed"));
        request.status = 99;
        assert!(!is_closed(&request));
        assert_eq!(status_name(&request), "unknown");
        assert_eq!(parse_amount("").ok(), Some(Amount::ZERO));
        assert_eq!(parse_amount("12").ok(), Some(Amount::new(12)));
        let err = parse_amount("1.5").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("the network sent a malformed amount: amount \"1.5\""), "{err}");
    }
}
