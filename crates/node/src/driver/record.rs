//! A request as the network the node works for records it: provernet's `ProofRequest` or the
//! Succinct API's, kept exactly as read (the job store keeps its bytes), with what the node
//! reads from it in one place.
//!
//! The two records do not carry the same facts: a Succinct record has no public outputs, no
//! program id (SP1's `vk_hash` is not one), no artifact ids (only URIs) and no rejected proof.
//! Accessors answer `None` where a record cannot tell, and the node checks what it can.

use prost::Message;
use provernet_artifacts::succinct::version_to_ours;
use provernet_types::{
    Address, Amount, FieldError, RequestId, RequestSpec, field, proto,
    succinct::proto::types as sproto,
};
use provernet_zkvm::{ProgramId, ProofMode};

use crate::{
    config::NetworkApi,
    core::{Offer, Skip},
};

/// The network's record of one proof request.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestRecord {
    /// From a provernet network (`provernet.v1`).
    Provernet(Box<proto::ProofRequest>),
    /// From a Succinct-API network (`network.ProverNetwork`).
    Succinct(Box<sproto::ProofRequest>),
}

/// Where a request stands, as the node acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestState {
    /// Open for bids (executed or not).
    Requested,
    /// Assigned to a prover, whose proof is awaited.
    Assigned(Address),
    /// A prover's proof was accepted and paid `paid` (base fee included).
    Fulfilled {
        /// The prover.
        prover: Address,
        /// What the network paid, as it says.
        paid: Amount,
    },
    /// Closed without a proof (unfulfillable, cancelled, expired): why.
    Closed(String),
}

/// An address field that may be absent or malformed: such a field names nobody.
fn address_or_nobody(bytes: &[u8]) -> Address {
    Address::from_slice(bytes).unwrap_or(Address::from_bytes([0; 20]))
}

impl RequestRecord {
    /// The API the record came from.
    pub const fn api(&self) -> NetworkApi {
        match self {
            Self::Provernet(_) => NetworkApi::Provernet,
            Self::Succinct(_) => NetworkApi::Succinct,
        }
    }

    /// The request's id.
    ///
    /// # Errors
    /// [`FieldError`] when the record's id is not 32 bytes.
    pub fn id(&self) -> Result<RequestId, FieldError> {
        let bytes = match self {
            Self::Provernet(r) => &r.request_id,
            Self::Succinct(r) => &r.request_id,
        };
        field::request_id("request_id", bytes)
    }

    /// The zkVM version, as provernet names it (`sp1-v6.1`, `miden-0.23`).
    pub fn zkvm_version(&self) -> String {
        match self {
            Self::Provernet(r) => {
                r.body.as_ref().map(|b| b.zkvm_version.clone()).unwrap_or_default()
            }
            Self::Succinct(r) => version_to_ours(&r.version),
        }
    }

    /// The proof mode asked for, given the modes its backend proves (the Succinct API's CORE is
    /// a backend's plain proof where it has no core mode, as Miden).
    ///
    /// # Errors
    /// What is wrong with the mode the record names.
    pub fn mode(&self, backend_modes: &[ProofMode]) -> Result<ProofMode, String> {
        match self {
            Self::Provernet(r) => {
                let name = r.body.as_ref().map_or("", |b| b.proof_mode.as_str());
                name.parse().map_err(|e: provernet_zkvm::ZkVmError| e.to_string())
            }
            Self::Succinct(r) => match sproto::ProofMode::try_from(r.mode) {
                Ok(sproto::ProofMode::Core) if backend_modes.contains(&ProofMode::Core) => {
                    Ok(ProofMode::Core)
                }
                Ok(sproto::ProofMode::Core | sproto::ProofMode::UnspecifiedProofMode) => {
                    Ok(ProofMode::Default)
                }
                Ok(sproto::ProofMode::Compressed) => Ok(ProofMode::Compressed),
                Ok(sproto::ProofMode::Groth16) => Ok(ProofMode::Groth16),
                Ok(sproto::ProofMode::Plonk) => Ok(ProofMode::Plonk),
                Err(_) => Err(format!("unknown proof mode {}", r.mode)),
            },
        }
    }

    /// PGUs as the network's executor measured them (0 before execution).
    pub fn pgus(&self) -> u64 {
        match self {
            Self::Provernet(r) => r.pgus,
            Self::Succinct(r) => r.gas_used.unwrap_or(0),
        }
    }

    /// Unix seconds by which the proof must be accepted.
    pub fn deadline(&self) -> u64 {
        match self {
            Self::Provernet(r) => r.body.as_ref().map_or(0, |b| b.deadline),
            Self::Succinct(r) => r.deadline,
        }
    }

    /// The gas limit the proof runs under.
    pub fn gas_limit(&self) -> u64 {
        match self {
            Self::Provernet(r) => r.body.as_ref().map_or(0, |b| b.gas_limit),
            Self::Succinct(r) => r.gas_limit,
        }
    }

    /// The price per PGU the auction settled at (0 before it did).
    pub fn winning_price(&self) -> Amount {
        match self {
            Self::Provernet(r) => {
                field::optional_amount("winning_price_per_pgu", &r.winning_price_per_pgu)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }
            Self::Succinct(r) => Amount::from(r.gas_price.unwrap_or(0)),
        }
    }

    /// The public outputs the network's execution published, where the record has them (the
    /// Succinct API publishes none).
    pub fn expected_outputs(&self) -> Option<&[u8]> {
        match self {
            Self::Provernet(r) => Some(&r.public_outputs),
            Self::Succinct(_) => None,
        }
    }

    /// The program's id, where the record has it (SP1's `vk_hash` on the Succinct API is not).
    ///
    /// # Errors
    /// What is wrong with a native record's program id.
    pub fn program_id(&self) -> Result<Option<ProgramId>, String> {
        match self {
            Self::Provernet(r) => {
                let bytes = r.body.as_ref().map_or(&[][..], |b| &b.program_id);
                ProgramId::from_slice(bytes).map(Some).map_err(|e| format!("program id: {e}"))
            }
            Self::Succinct(_) => Ok(None),
        }
    }

    /// What the bidder's decision needs of an executed open request, or why it cannot bid.
    ///
    /// # Errors
    /// [`Skip::Malformed`] naming the field, or [`Skip::InputsUnreachable`] for inputs this
    /// node cannot read.
    pub fn offer(&self, prover: &Address) -> Result<Offer, Skip> {
        match self {
            Self::Provernet(r) => {
                let body = r.body.as_ref().ok_or_else(|| Skip::Malformed("no body".into()))?;
                let spec =
                    RequestSpec::try_from(body).map_err(|e| Skip::Malformed(e.to_string()))?;
                Ok(Offer {
                    zkvm_version: spec.zkvm_version.clone(),
                    pgus: r.pgus,
                    max_price_per_pgu: spec.max_price_per_pgu,
                    deadline: spec.deadline,
                    auction_end: r.created_at + body.min_auction_period,
                    admitted: spec.admits(prover),
                })
            }
            Self::Succinct(r) => {
                let malformed = |what: &str| Skip::Malformed(what.to_owned());
                if r.stdin_private || r.stdin_public_uri.is_empty() {
                    return Err(Skip::InputsUnreachable(
                        "the Succinct API serves private stdin to no prover node".into(),
                    ));
                }
                let pgus = r.gas_used.ok_or_else(|| malformed("not executed: no gas_used"))?;
                let max_price = r
                    .max_price_per_pgu
                    .as_deref()
                    .ok_or_else(|| malformed("no max_price_per_pgu"))?;
                let max_price_per_pgu = field::amount("max_price_per_pgu", max_price)
                    .map_err(|e| Skip::Malformed(e.to_string()))?;
                let whitelist: Vec<Address> =
                    r.whitelist.iter().filter_map(|a| Address::from_slice(a).ok()).collect();
                Ok(Offer {
                    zkvm_version: version_to_ours(&r.version),
                    pgus,
                    max_price_per_pgu,
                    deadline: r.deadline,
                    auction_end: r.created_at.saturating_add(r.min_auction_period),
                    admitted: r.whitelist.is_empty() || whitelist.contains(prover),
                })
            }
        }
    }

    /// Where the request stands.
    pub fn state(&self) -> RequestState {
        match self {
            Self::Provernet(r) => {
                use proto::RequestStatus as S;
                let prover = address_or_nobody(&r.assigned_prover);
                match S::try_from(r.status).unwrap_or_default() {
                    S::Requested => RequestState::Requested,
                    S::Assigned => RequestState::Assigned(prover),
                    S::Fulfilled => RequestState::Fulfilled {
                        prover,
                        paid: field::optional_amount("paid", &r.paid)
                            .ok()
                            .flatten()
                            .unwrap_or_default(),
                    },
                    other => RequestState::Closed(format!(
                        "request is {} ({})",
                        other.as_str_name(),
                        r.unfulfillable_reason
                    )),
                }
            }
            Self::Succinct(r) => {
                use sproto::FulfillmentStatus as S;
                let prover = address_or_nobody(r.fulfiller.as_deref().unwrap_or_default());
                let trace = r
                    .error_trace
                    .as_deref()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .unwrap_or_default();
                match S::try_from(r.fulfillment_status) {
                    Ok(S::Requested) => RequestState::Requested,
                    Ok(S::Assigned) => RequestState::Assigned(prover),
                    Ok(S::Fulfilled) => RequestState::Fulfilled {
                        prover,
                        paid: r
                            .deduction_amount
                            .as_deref()
                            .and_then(|a| a.parse().ok())
                            .unwrap_or_default(),
                    },
                    Ok(other) => RequestState::Closed(format!(
                        "request is {}{}{trace}",
                        other.as_str_name(),
                        if r.is_canceled { " (cancelled) " } else { " " }
                    )),
                    Err(_) => RequestState::Closed(format!(
                        "unknown fulfillment status {}",
                        r.fulfillment_status
                    )),
                }
            }
        }
    }

    /// Why the network's verifier rejected the proof this node submitted, read once the verdict
    /// is in and the request stays assigned (`None`: the record shows no rejection).
    pub fn rejection(&self) -> Option<String> {
        match self {
            Self::Provernet(r) => (r.status == proto::RequestStatus::Assigned as i32
                && r.pending_proof_artifact_id.is_empty())
            .then(|| r.proof_rejected_reason.clone()),
            Self::Succinct(r) => (r.fulfillment_status
                == sproto::FulfillmentStatus::Assigned as i32
                && r.error == sproto::ProofRequestError::VerificationFailure as i32)
                .then(|| {
                    r.error_trace
                        .as_deref()
                        .map(|t| String::from_utf8_lossy(t).into_owned())
                        .unwrap_or_else(|| "verification failed".into())
                }),
        }
    }

    /// The record's bytes, as the job store keeps them (with [`Self::api`] beside them).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Provernet(r) => r.encode_to_vec(),
            Self::Succinct(r) => r.encode_to_vec(),
        }
    }

    /// A record of `api` from the bytes [`Self::encode`] made.
    ///
    /// # Errors
    /// The decoding error.
    pub fn decode(api: NetworkApi, bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Ok(match api {
            NetworkApi::Provernet => Self::Provernet(Box::new(proto::ProofRequest::decode(bytes)?)),
            NetworkApi::Succinct => Self::Succinct(Box::new(sproto::ProofRequest::decode(bytes)?)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn succinct(edit: impl FnOnce(&mut sproto::ProofRequest)) -> RequestRecord {
        let mut r = sproto::ProofRequest {
            request_id: vec![1; 32],
            version: "sp1-v6.1.0".into(),
            mode: sproto::ProofMode::Core as i32,
            deadline: 1_000,
            created_at: 100,
            min_auction_period: 2,
            gas_used: Some(5_000),
            gas_limit: 10_000,
            max_price_per_pgu: Some("7".into()),
            stdin_public_uri: "http://x/v1/succinct/stdins/1".into(),
            fulfillment_status: sproto::FulfillmentStatus::Requested as i32,
            ..Default::default()
        };
        edit(&mut r);
        RequestRecord::Succinct(Box::new(r))
    }

    #[test]
    fn a_succinct_record_offers_what_the_bidder_needs() {
        let me = Address::from_bytes([9; 20]);
        let offer = succinct(|_| {}).offer(&me).unwrap();
        assert_eq!(offer.zkvm_version, "sp1-v6.1");
        assert_eq!(offer.pgus, 5_000);
        assert_eq!(offer.max_price_per_pgu, Amount::new(7));
        assert_eq!((offer.deadline, offer.auction_end), (1_000, 102));
        assert!(offer.admitted);
        let other = succinct(|r| r.whitelist = vec![vec![8; 20]]).offer(&me).unwrap();
        assert!(!other.admitted, "a whitelist without this prover");
        let named = succinct(|r| r.whitelist = vec![vec![8; 20], vec![9; 20]]).offer(&me).unwrap();
        assert!(named.admitted);
    }

    #[test]
    fn a_succinct_record_that_cannot_be_bid_on_says_why() {
        let me = Address::from_bytes([9; 20]);
        let private = succinct(|r| r.stdin_private = true).offer(&me).unwrap_err();
        assert!(matches!(private, Skip::InputsUnreachable(_)), "{private}");
        let unexecuted = succinct(|r| r.gas_used = None).offer(&me).unwrap_err();
        assert!(unexecuted.to_string().contains("gas_used"), "{unexecuted}");
        let price = succinct(|r| r.max_price_per_pgu = Some("-1".into())).offer(&me).unwrap_err();
        assert!(price.to_string().contains("max_price_per_pgu"), "{price}");
    }

    #[test]
    fn succinct_modes_map_onto_the_backend() {
        let core = succinct(|_| {});
        assert_eq!(core.mode(&[ProofMode::Default]), Ok(ProofMode::Default), "Miden has no core");
        assert_eq!(core.mode(&[ProofMode::Core, ProofMode::Compressed]), Ok(ProofMode::Core));
        let compressed = succinct(|r| r.mode = sproto::ProofMode::Compressed as i32);
        assert_eq!(compressed.mode(&[]), Ok(ProofMode::Compressed));
        assert!(succinct(|r| r.mode = 42).mode(&[]).unwrap_err().contains("42"));
    }

    #[test]
    fn succinct_states_and_verdicts_read_as_the_node_needs() {
        let me = Address::from_bytes([9; 20]);
        let assigned = succinct(|r| {
            r.fulfillment_status = sproto::FulfillmentStatus::Assigned as i32;
            r.fulfiller = Some(me.as_bytes().to_vec());
        });
        assert_eq!(assigned.state(), RequestState::Assigned(me));
        assert_eq!(assigned.rejection(), None);
        let rejected = succinct(|r| {
            r.fulfillment_status = sproto::FulfillmentStatus::Assigned as i32;
            r.error = sproto::ProofRequestError::VerificationFailure as i32;
            r.error_trace = Some(b"bad proof".to_vec());
        });
        assert_eq!(rejected.rejection().as_deref(), Some("bad proof"));
        let paid = succinct(|r| {
            r.fulfillment_status = sproto::FulfillmentStatus::Fulfilled as i32;
            r.fulfiller = Some(me.as_bytes().to_vec());
            r.deduction_amount = Some("1500".into());
        });
        assert_eq!(paid.state(), RequestState::Fulfilled { prover: me, paid: Amount::new(1500) });
        let cancelled = succinct(|r| {
            r.fulfillment_status = sproto::FulfillmentStatus::Unfulfillable as i32;
            r.is_canceled = true;
        });
        assert!(
            matches!(cancelled.state(), RequestState::Closed(why) if why.contains("cancelled"))
        );
    }

    #[test]
    fn records_round_trip_through_their_bytes() {
        let record = succinct(|_| {});
        let back = RequestRecord::decode(record.api(), &record.encode()).unwrap();
        assert_eq!(back, record);
        let native = RequestRecord::Provernet(Box::new(proto::ProofRequest {
            request_id: vec![2; 32],
            pgus: 9,
            ..Default::default()
        }));
        assert_eq!(RequestRecord::decode(NetworkApi::Provernet, &native.encode()).unwrap(), native);
    }
}
