//! [`RequesterError`]: what went wrong, with the data a caller needs to explain it or act on it.

use std::{path::PathBuf, time::Duration};

use provernet_artifacts::ClientError as ArtifactsError;
use provernet_types::{
    Address, Amount, AmountArithmeticError, ArtifactId, ClientError, FieldError, RequestId,
};
use provernet_zkvm::{ProgramId, ZkVmError};

/// A result with [`RequesterError`].
pub type Result<T, E = RequesterError> = std::result::Result<T, E>;

/// Why a requester operation failed. Checks made before anything is sent come first.
#[derive(Debug, thiserror::Error)]
pub enum RequesterError {
    /// The operation signs, or reads private inputs, and no key was given.
    #[error("this needs the account's key")]
    NoKey,
    /// The network URL is not a valid endpoint.
    #[error(transparent)]
    BadUrl(ClientError),
    /// The network does not answer at `url`.
    #[error("cannot reach the network at {url}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// Why it did not answer.
        #[source]
        source: ClientError,
    },
    /// The network answered the first call with an error.
    #[error("the network at {url} answered with an error")]
    Connect {
        /// The network's URL.
        url: String,
        /// Its answer.
        #[source]
        source: ClientError,
    },
    /// The ArtifactStore client cannot be set up.
    #[error("cannot set up the ArtifactStore client")]
    ArtifactClient(#[source] ArtifactsError),
    /// A call to the network failed.
    #[error(transparent)]
    Call(#[from] ClientError),
    /// The network refused what the requester asked for (`what`: "the request", …).
    #[error("the network refused {what}")]
    Refused {
        /// What was asked for, as a noun phrase.
        what: &'static str,
        /// The network's answer.
        #[source]
        source: ClientError,
    },
    /// The network refused to register the program under `name`.
    #[error("cannot register the program as {name:?}")]
    Register {
        /// The name asked for.
        name: String,
        /// The network's answer.
        #[source]
        source: ClientError,
    },
    /// The program is registered already, for another zkVM version.
    #[error("the program is registered as {name:?} for {registered}, not for {wanted}")]
    OtherVersion {
        /// The name it is registered under.
        name: String,
        /// The zkVM version it is registered for.
        registered: String,
        /// The zkVM version asked for.
        wanted: String,
    },
    /// A program name the network would refuse.
    #[error(transparent)]
    Name(FieldError),
    /// A request-spec rule is broken; [`FieldError::field`] names the field.
    #[error(transparent)]
    Spec(FieldError),
    /// The gas limit is outside what the backend accepts.
    #[error("gas limit {gas_limit} is out of range: {zkvm_version} takes 1 to {max} PGUs")]
    GasLimit {
        /// The gas limit asked for.
        gas_limit: u64,
        /// The zkVM version.
        zkvm_version: String,
        /// Its largest gas limit.
        max: u64,
    },
    /// The worst-case cost (base fee + max price × gas limit) does not fit an amount.
    #[error("the worst-case cost overflows ({0})")]
    CostOverflow(AmountArithmeticError),
    /// The account cannot cover the worst-case cost the request locks.
    #[error(
        "insufficient balance: {address} has {balance} spendable, the request locks up to \
         {needed} (base fee {base_fee} + {max_price_per_pgu} per PGU × gas limit {gas_limit})"
    )]
    InsufficientBalance {
        /// The requester's account.
        address: Address,
        /// Its spendable balance.
        balance: Amount,
        /// The worst-case cost.
        needed: Amount,
        /// The request's base fee.
        base_fee: Amount,
        /// The request's highest price per PGU.
        max_price_per_pgu: Amount,
        /// The request's gas limit.
        gas_limit: u64,
    },
    /// The zkVM refused: an unsupported version, a program that does not assemble, inputs it
    /// cannot read, a malformed proof bundle.
    #[error(transparent)]
    ZkVm(#[from] ZkVmError),
    /// A program id that is not 0x and 64 hex digits.
    #[error("malformed program id {text:?}: {reason}")]
    BadProgramId {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No program is registered under this name.
    #[error("no program named {name:?} is registered")]
    NoProgramNamed {
        /// The name looked up.
        name: String,
    },
    /// No program is registered with this program id.
    #[error("no program {id} is registered")]
    NoProgramId {
        /// The program id looked up.
        id: ProgramId,
    },
    /// The network has no request with this id.
    #[error("no proof request {id} on the network at {url}")]
    NotFound {
        /// The request id.
        id: RequestId,
        /// The network's URL.
        url: String,
    },
    /// A file to upload cannot be read.
    #[error("cannot read {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ArtifactsError,
    },
    /// The ArtifactStore did not take an upload.
    #[error("cannot upload {id} to the ArtifactStore")]
    Upload {
        /// The artifact.
        id: ArtifactId,
        /// Why.
        #[source]
        source: ArtifactsError,
    },
    /// The ArtifactStore stored other bytes than those sent.
    #[error("the ArtifactStore stored {stored} instead of {id}")]
    StoredOther {
        /// The artifact sent.
        id: ArtifactId,
        /// What the store says it stored.
        stored: ArtifactId,
    },
    /// A download failed or did not match its id.
    #[error("cannot download the {what} {id}")]
    Download {
        /// Which artifact: `proof`, `program` or `inputs`.
        what: &'static str,
        /// Its id.
        id: ArtifactId,
        /// Why.
        #[source]
        source: ArtifactsError,
    },
    /// The request has no proof (yet).
    #[error("request {id} is {status}, not fulfilled: there is no proof yet")]
    NotFulfilled {
        /// The request.
        id: RequestId,
        /// Its status ([`crate::status_name`]).
        status: &'static str,
    },
    /// The wait ended before the predicate held.
    #[error(
        "request {id} is still {status}{} after {} s",
        if *status == "requested" { " (no prover has won it yet: is a node running?)" } else { "" },
        waited.as_secs()
    )]
    TimedOut {
        /// The request.
        id: RequestId,
        /// Its last status seen ([`crate::status_name`]), `unknown` if never read.
        status: &'static str,
        /// How long the wait lasted.
        waited: Duration,
    },
    /// The event stream ended or failed again after being reopened once.
    #[error("the event stream broke twice while waiting")]
    StreamLost(#[source] ClientError),
    /// The network sent something malformed.
    #[error("the network sent a malformed {what}: {reason}")]
    Malformed {
        /// What it sent.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The downloaded program is not the one the request names.
    #[error("the downloaded program is {downloaded}, the request names {named}")]
    ProgramMismatch {
        /// The downloaded program's id.
        downloaded: ProgramId,
        /// The request's program id.
        named: ProgramId,
    },
    /// The proof's claims (zkVM, program, outputs) are not what the request asked.
    #[error("the proof does not prove what request {id} asked")]
    Claims {
        /// The request.
        id: RequestId,
        /// The mismatch.
        #[source]
        source: ZkVmError,
    },
    /// The proof does not verify.
    #[error("the proof of request {id} does not verify")]
    Verify {
        /// The request.
        id: RequestId,
        /// The verifier's answer.
        #[source]
        source: ZkVmError,
    },
    /// The verifier's thread panicked or was cancelled.
    #[error("the verifier thread failed")]
    VerifierThread(#[source] tokio::task::JoinError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_is_wrong() {
        let id = RequestId::from_bytes([0xab; 32]);
        let timed_out =
            RequesterError::TimedOut { id, status: "requested", waited: Duration::from_secs(5) };
        assert_eq!(
            timed_out.to_string(),
            format!(
                "request {id} is still requested (no prover has won it yet: is a node running?) after 5 s"
            )
        );
        let timed_out =
            RequesterError::TimedOut { id, status: "assigned", waited: Duration::from_secs(5) };
        assert_eq!(timed_out.to_string(), format!("request {id} is still assigned after 5 s"));
        let not_fulfilled = RequesterError::NotFulfilled { id, status: "cancelled" };
        assert!(
            not_fulfilled
                .to_string()
                .ends_with("is cancelled, not fulfilled: there is no proof yet")
        );
        let spec = RequesterError::Spec(FieldError::Invalid {
            field: "deadline",
            reason: "has passed".into(),
        });
        assert_eq!(spec.to_string(), "field `deadline`: has passed");
    }
}
