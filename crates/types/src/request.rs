//! [`RequestSpec`]: a `RequestProofBody` read into typed values, and the request's costs.

use crate::{
    address::Address,
    amount::{Amount, AmountArithmeticError},
    field::{self, FieldError},
    ids::ArtifactId,
    proto,
};

/// The most bytes a program id may have (Miden's MAST root and SP1's vk hash have 32).
pub const MAX_PROGRAM_ID_LEN: usize = 64;

/// What a requester asks for, checked field by field: every id, address and amount parsed.
///
/// [`RequestSpec::check_timing`] is the protocol's rule for its deadline and auction period;
/// the rest of the policy (supported version, registered program, balance) is the network's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestSpec {
    /// The backend's identity of the program.
    pub program_id: Vec<u8>,
    /// The zkVM version string, for example `miden-0.23`.
    pub zkvm_version: String,
    /// The program's artifact id.
    pub program_artifact_id: ArtifactId,
    /// The inputs' artifact id.
    pub inputs_artifact_id: ArtifactId,
    /// Whether the inputs are private.
    pub inputs_private: bool,
    /// Unix seconds by which the proof must be fulfilled.
    pub deadline: u64,
    /// The most PGUs the request may use; at least 1.
    pub gas_limit: u64,
    /// The highest price per PGU the requester accepts.
    pub max_price_per_pgu: Amount,
    /// The fixed fee paid on fulfilment.
    pub base_fee: Amount,
    /// Seconds after creation before the auction may settle.
    pub min_auction_period: u64,
    /// The provers allowed to bid; empty means any.
    pub whitelist: Vec<Address>,
    /// The BLAKE3 hash of the public outputs the requester expects, if any.
    pub expected_outputs_hash: Option<[u8; 32]>,
    /// Backend-specific proof mode; empty means the default.
    pub proof_mode: String,
}

/// What a requester pays for `pgus` at `price_per_pgu`: `base_fee + price_per_pgu × pgus`. At
/// the ceiling and the gas limit it is the worst case, locked when the request is made. One rule
/// for both APIs (the Succinct facade checks the worst case before a spec exists).
pub fn cost(
    base_fee: Amount,
    price_per_pgu: Amount,
    pgus: u64,
) -> Result<Amount, AmountArithmeticError> {
    base_fee.checked_add(price_per_pgu.checked_mul_u64(pgus)?)
}

impl RequestSpec {
    /// What the requester pays at `price_per_pgu` for `pgus`: `base_fee + price_per_pgu × pgus`.
    pub fn cost(&self, price_per_pgu: Amount, pgus: u64) -> Result<Amount, AmountArithmeticError> {
        cost(self.base_fee, price_per_pgu, pgus)
    }

    /// The worst-case cost locked at request time: `base_fee + max_price_per_pgu × gas_limit`.
    pub fn max_cost(&self) -> Result<Amount, AmountArithmeticError> {
        cost(self.base_fee, self.max_price_per_pgu, self.gas_limit)
    }

    /// Checks the timing rule at `now` (unix seconds): the deadline is in the future, and the
    /// auction period ends before it, leaving time to prove. Clients check it before they
    /// upload anything; the network checks it again on arrival.
    ///
    /// # Errors
    /// [`FieldError::Invalid`] naming `deadline` or `min_auction_period`.
    pub fn check_timing(&self, now: u64) -> Result<(), FieldError> {
        if self.deadline <= now {
            return Err(FieldError::Invalid {
                field: "deadline",
                reason: format!(
                    "{} has passed (the network's clock says {now}, unix seconds): give a deadline in the future",
                    self.deadline
                ),
            });
        }
        let left = self.deadline - now;
        if self.min_auction_period >= left {
            return Err(FieldError::Invalid {
                field: "min_auction_period",
                reason: format!(
                    "{} s leaves no time to prove before the deadline ({left} s away)",
                    self.min_auction_period
                ),
            });
        }
        Ok(())
    }

    /// Unix seconds at which the auction of a request created at `created_at` may settle.
    pub fn auction_end(&self, created_at: u64) -> u64 {
        created_at.saturating_add(self.min_auction_period)
    }

    /// Whether `prover` may bid (an empty whitelist admits every prover).
    pub fn admits(&self, prover: &Address) -> bool {
        self.whitelist.is_empty() || self.whitelist.contains(prover)
    }

    /// The body to sign for this request, with the signer's `nonce`.
    pub fn to_body(&self, nonce: u64) -> proto::RequestProofBody {
        proto::RequestProofBody {
            nonce,
            program_id: self.program_id.clone(),
            zkvm_version: self.zkvm_version.clone(),
            program_artifact_id: self.program_artifact_id.as_bytes().to_vec(),
            inputs_artifact_id: self.inputs_artifact_id.as_bytes().to_vec(),
            inputs_private: self.inputs_private,
            deadline: self.deadline,
            gas_limit: self.gas_limit,
            max_price_per_pgu: self.max_price_per_pgu.to_string(),
            base_fee: self.base_fee.to_string(),
            min_auction_period: self.min_auction_period,
            whitelist: self.whitelist.iter().map(|a| a.as_bytes().to_vec()).collect(),
            expected_outputs_hash: self.expected_outputs_hash.map(|h| h.to_vec()),
            proof_mode: self.proof_mode.clone(),
        }
    }
}

impl TryFrom<&proto::RequestProofBody> for RequestSpec {
    type Error = FieldError;

    fn try_from(body: &proto::RequestProofBody) -> Result<Self, Self::Error> {
        if body.program_id.is_empty() {
            return Err(FieldError::Missing { field: "program_id" });
        }
        if body.program_id.len() > MAX_PROGRAM_ID_LEN {
            return Err(FieldError::Invalid {
                field: "program_id",
                reason: format!(
                    "{} bytes, at most {MAX_PROGRAM_ID_LEN} allowed",
                    body.program_id.len()
                ),
            });
        }
        if body.zkvm_version.is_empty() {
            return Err(FieldError::Missing { field: "zkvm_version" });
        }
        if body.gas_limit == 0 {
            return Err(FieldError::Invalid {
                field: "gas_limit",
                reason: "must be at least 1 PGU".into(),
            });
        }
        let whitelist = body
            .whitelist
            .iter()
            .map(|bytes| field::address("whitelist", bytes))
            .collect::<Result<_, _>>()?;
        let expected_outputs_hash = match &body.expected_outputs_hash {
            None => None,
            Some(hash) => Some(hash.as_slice().try_into().map_err(|_| FieldError::Invalid {
                field: "expected_outputs_hash",
                reason: format!("{} bytes, expected a 32-byte BLAKE3 hash", hash.len()),
            })?),
        };
        Ok(Self {
            program_id: body.program_id.clone(),
            zkvm_version: body.zkvm_version.clone(),
            program_artifact_id: field::artifact_id(
                "program_artifact_id",
                &body.program_artifact_id,
            )?,
            inputs_artifact_id: field::artifact_id("inputs_artifact_id", &body.inputs_artifact_id)?,
            inputs_private: body.inputs_private,
            deadline: body.deadline,
            gas_limit: body.gas_limit,
            max_price_per_pgu: field::amount("max_price_per_pgu", &body.max_price_per_pgu)?,
            base_fee: field::amount("base_fee", &body.base_fee)?,
            min_auction_period: body.min_auction_period,
            whitelist,
            expected_outputs_hash,
            proof_mode: body.proof_mode.clone(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    fn spec() -> RequestSpec {
        RequestSpec {
            program_id: vec![9; 32],
            zkvm_version: "miden-0.23".into(),
            program_artifact_id: ArtifactId::of(b"program"),
            inputs_artifact_id: ArtifactId::of(b"inputs"),
            inputs_private: false,
            deadline: 1_800_000_000,
            gas_limit: 131_072,
            max_price_per_pgu: Amount::new(10),
            base_fee: Amount::new(500),
            min_auction_period: 1,
            whitelist: vec![Address::from_bytes([1; 20])],
            expected_outputs_hash: Some([2; 32]),
            proof_mode: String::new(),
        }
    }

    #[test]
    fn body_round_trips_through_the_spec() {
        let spec = spec();
        let body = spec.to_body(4);
        assert_eq!(body.nonce, 4);
        assert_eq!(RequestSpec::try_from(&body), Ok(spec));
    }

    #[test]
    fn costs_are_checked() {
        let spec = spec();
        assert_eq!(spec.max_cost(), Ok(Amount::new(500 + 10 * 131_072)));
        assert_eq!(spec.cost(Amount::new(3), 100), Ok(Amount::new(800)));
        let huge = RequestSpec { max_price_per_pgu: Amount::MAX, ..spec };
        assert!(huge.max_cost().is_err());
        assert!(huge.admits(&Address::from_bytes([1; 20])));
        assert!(!huge.admits(&Address::from_bytes([3; 20])));
    }

    #[test]
    fn timing_leaves_time_to_prove() {
        let spec = RequestSpec { deadline: 1_000, min_auction_period: 10, ..spec() };
        assert_eq!(spec.check_timing(900), Ok(()));
        assert_eq!(spec.auction_end(900), 910);
        assert_eq!(spec.check_timing(1_000).unwrap_err().field(), "deadline");
        assert!(spec.check_timing(1_000).unwrap_err().to_string().contains("has passed"));
        assert_eq!(spec.check_timing(990).unwrap_err().field(), "min_auction_period");
        assert_eq!(spec.check_timing(989), Ok(()));
    }

    #[test]
    fn bad_fields_are_named() {
        let good = spec().to_body(0);
        let check = |body: proto::RequestProofBody, field: &str| {
            let err = RequestSpec::try_from(&body).unwrap_err();
            assert_eq!(err.field(), field, "{err}");
        };
        check(proto::RequestProofBody { base_fee: "-1".into(), ..good.clone() }, "base_fee");
        check(
            proto::RequestProofBody { max_price_per_pgu: String::new(), ..good.clone() },
            "max_price_per_pgu",
        );
        check(
            proto::RequestProofBody { whitelist: vec![vec![1; 19]], ..good.clone() },
            "whitelist",
        );
        check(
            proto::RequestProofBody { inputs_artifact_id: vec![], ..good.clone() },
            "inputs_artifact_id",
        );
        check(proto::RequestProofBody { program_id: vec![], ..good.clone() }, "program_id");
        check(proto::RequestProofBody { gas_limit: 0, ..good.clone() }, "gas_limit");
        check(
            proto::RequestProofBody { zkvm_version: String::new(), ..good.clone() },
            "zkvm_version",
        );
        check(
            proto::RequestProofBody { expected_outputs_hash: Some(vec![0; 31]), ..good },
            "expected_outputs_hash",
        );
    }
}
