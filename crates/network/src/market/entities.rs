//! What the market stores: accounts, provers, programs, proof requests and their bids.

use provernet_types::{Address, Amount, ArtifactId, RequestId, RequestSpec};
use serde::{Deserialize, Serialize};

/// An account: a balance it may spend, the part of it locked by open requests, and its nonce.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account's address.
    pub address: Address,
    /// Spendable balance.
    pub balance: Amount,
    /// Locked by the account's open requests (their worst-case cost).
    pub locked: Amount,
    /// The nonce the next state-changing call must carry.
    pub nonce: u64,
}

/// A registered prover: its owner's stake, the part of it held as collateral, and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prover {
    /// The owner account, which is paid and whose stake backs bids.
    pub owner: Address,
    /// The key allowed to sign bids and fulfilments for the owner (may be the owner).
    pub operator: Address,
    /// Total stake, collateral included.
    pub stake: Amount,
    /// Part of the stake locked as collateral for assigned requests.
    pub collateral: Amount,
    /// Unix seconds of recent misses, within the miss window.
    pub misses: Vec<u64>,
    /// Unix second until which the prover may not bid (0: not suspended).
    pub suspended_until: u64,
    /// Unix seconds of registration.
    pub registered_at: u64,
}

impl Prover {
    /// Stake not held as collateral.
    pub fn free_stake(&self) -> Amount {
        self.stake.checked_sub(self.collateral).unwrap_or(Amount::ZERO)
    }
}

/// A registered program version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// The backend's identity of the program (hex of its bytes in the store).
    pub program_id: Vec<u8>,
    /// The name it was registered under.
    pub name: String,
    /// The zkvm version it runs on.
    pub zkvm_version: String,
    /// The artifact holding its bytes.
    pub artifact_id: ArtifactId,
    /// Who registered it.
    pub registered_by: Address,
    /// Unix seconds of registration.
    pub registered_at: u64,
    /// The hash its zkVM's own SDK names it by, where that differs from the program id
    /// (SP1's `vk.hash_bytes()`): how the Succinct API looks programs up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_hash: Option<Vec<u8>>,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Open for bids.
    Requested,
    /// Won by a prover, which must fulfil it before the deadline.
    Assigned,
    /// A verified proof was accepted and paid for.
    Fulfilled,
    /// Closed without a proof: unexecutable, deadline passed, or the prover failed.
    Unfulfillable,
    /// Cancelled by the requester before assignment.
    Cancelled,
}

impl From<Status> for provernet_types::proto::RequestStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Requested => Self::Requested,
            Status::Assigned => Self::Assigned,
            Status::Fulfilled => Self::Fulfilled,
            Status::Unfulfillable => Self::Unfulfillable,
            Status::Cancelled => Self::Cancelled,
        }
    }
}

impl Status {
    /// Whether the request is closed for good.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::Fulfilled | Self::Unfulfillable | Self::Cancelled)
    }
}

/// What the network's executor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Execution {
    /// Not yet run.
    Unexecuted,
    /// Ran within its gas limit.
    Executed {
        /// Proving work in PGUs.
        pgus: u64,
        /// Public outputs in the backend's encoding.
        outputs: Vec<u8>,
    },
    /// Cannot be proven.
    Unexecutable {
        /// Why.
        reason: String,
    },
}

impl Execution {
    /// The variant's name, as the store's `execution` column holds it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Unexecuted => "Unexecuted",
            Self::Executed { .. } => "Executed",
            Self::Unexecutable { .. } => "Unexecutable",
        }
    }
}

/// A prover's offer to prove a request at a price per PGU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// The prover (owner address).
    pub prover: Address,
    /// Offered price per PGU.
    pub price_per_pgu: Amount,
    /// Unix milliseconds when the network accepted the bid.
    pub at_ms: u64,
}

/// The winner of an auction and what it committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The winning prover (owner address).
    pub prover: Address,
    /// Its price per PGU: it is paid `base_fee + price × pgus`.
    pub price_per_pgu: Amount,
    /// Stake locked from the prover until it fulfils or misses.
    pub collateral: Amount,
    /// Unix milliseconds of assignment.
    pub at_ms: u64,
}

/// A proof request and everything that happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Its id: keccak256(requester ‖ signed body).
    pub id: RequestId,
    /// Who asked and pays.
    pub requester: Address,
    /// What was asked.
    pub spec: RequestSpec,
    /// Where it stands.
    pub status: Status,
    /// What the executor found.
    pub execution: Execution,
    /// Amount locked from the requester: the worst-case cost.
    pub lock: Amount,
    /// Unix seconds of creation; the auction ends `min_auction_period` later.
    pub created_at: u64,
    /// Bids received, in order of arrival. Stored as rows of their own (inserted once, not
    /// rewritten with the request), so never written into the request's JSON; read from it
    /// only to move the bids of a database from before that (`store::sql`'s upgrade).
    #[serde(default, skip_serializing)]
    pub bids: Vec<Bid>,
    /// The auction's winner.
    pub assignment: Option<Assignment>,
    /// Unix seconds when it closed.
    pub closed_at: Option<u64>,
    /// Why it is unfulfillable or cancelled.
    pub close_reason: Option<String>,
    /// What the requester paid (set on fulfilment).
    pub paid: Amount,
    /// The accepted proof bundle.
    pub proof_artifact_id: Option<ArtifactId>,
    /// A proof the assigned prover submitted, waiting for the network's verifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_proof: Option<PendingProof>,
    /// Why the verifier rejected the last proof submitted for this request, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_proof: Option<String>,
    /// Unix seconds when the proof retention deleted the accepted proof from the
    /// ArtifactStore (`proof_artifact_id` stays, as the record of what was accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_deleted_at: Option<u64>,
}

/// A submitted proof bundle that the verifier has not judged yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingProof {
    /// The proof bundle, stored in the ArtifactStore.
    pub artifact: ArtifactId,
    /// Unix milliseconds of submission (before the deadline, or it was refused).
    pub submitted_at_ms: u64,
}

impl Request {
    /// Unix seconds at which the auction period ends.
    pub fn auction_end(&self) -> u64 {
        self.spec.auction_end(self.created_at)
    }

    /// The executor's PGU count, if it ran.
    pub fn pgus(&self) -> Option<u64> {
        match self.execution {
            Execution::Executed { pgus, .. } => Some(pgus),
            _ => None,
        }
    }
}
