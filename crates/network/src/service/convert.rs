//! Market entities as protocol messages, and refusals as gRPC statuses.

use provernet_types::proto;
use tonic::Status;

use crate::market::{
    Account, Execution, MarketError, Program, Prover, Request, Status as RequestStatus,
};

/// A request as the protocol carries it.
pub fn request(r: &Request) -> proto::ProofRequest {
    let (execution_status, pgus, outputs, reason) = match &r.execution {
        Execution::Unexecuted => (proto::ExecutionStatus::Unexecuted, 0, Vec::new(), String::new()),
        Execution::Executed { pgus, outputs } => {
            (proto::ExecutionStatus::Executed, *pgus, outputs.clone(), String::new())
        }
        Execution::Unexecutable { reason } => {
            (proto::ExecutionStatus::Unexecutable, 0, Vec::new(), reason.clone())
        }
    };
    proto::ProofRequest {
        request_id: r.id.as_bytes().to_vec(),
        requester: r.requester.as_bytes().to_vec(),
        body: Some(r.spec.to_body(0)),
        status: status(r.status) as i32,
        execution_status: execution_status as i32,
        unexecutable_reason: reason,
        pgus,
        public_outputs: outputs,
        assigned_prover: r
            .assignment
            .as_ref()
            .map(|a| a.prover.as_bytes().to_vec())
            .unwrap_or_default(),
        winning_price_per_pgu: r
            .assignment
            .as_ref()
            .map(|a| a.price_per_pgu.to_string())
            .unwrap_or_default(),
        created_at: r.created_at,
        executed_at: 0,
        assigned_at: r.assignment.as_ref().map_or(0, |a| a.at_ms / 1000),
        closed_at: r.closed_at.unwrap_or(0),
        proof_artifact_id: r.proof_artifact_id.map(|a| a.as_bytes().to_vec()).unwrap_or_default(),
        unfulfillable_reason: if r.status == RequestStatus::Unfulfillable {
            r.close_reason.clone().unwrap_or_default()
        } else {
            String::new()
        },
        paid: r.paid.to_string(),
        pending_proof_artifact_id: r
            .pending_proof
            .as_ref()
            .map(|p| p.artifact.as_bytes().to_vec())
            .unwrap_or_default(),
        proof_rejected_reason: r.rejected_proof.clone().unwrap_or_default(),
        proof_deleted_at: r.proof_deleted_at.unwrap_or(0),
    }
}

/// A status as the protocol names it.
pub fn status(s: RequestStatus) -> proto::RequestStatus {
    s.into()
}

/// The status a protocol status number names (`None`: not one).
pub fn status_from(number: i32) -> Option<RequestStatus> {
    Some(match proto::RequestStatus::try_from(number).ok()? {
        proto::RequestStatus::Requested => RequestStatus::Requested,
        proto::RequestStatus::Assigned => RequestStatus::Assigned,
        proto::RequestStatus::Fulfilled => RequestStatus::Fulfilled,
        proto::RequestStatus::Unfulfillable => RequestStatus::Unfulfillable,
        proto::RequestStatus::Cancelled => RequestStatus::Cancelled,
        _ => return None,
    })
}

/// The [`Execution::name`] a protocol execution status number names (`None`: not one).
pub fn execution_from(number: i32) -> Option<&'static str> {
    Some(match proto::ExecutionStatus::try_from(number).ok()? {
        proto::ExecutionStatus::Unexecuted => "Unexecuted",
        proto::ExecutionStatus::Executed => "Executed",
        proto::ExecutionStatus::Unexecutable => "Unexecutable",
        _ => return None,
    })
}

/// An account (and its prover record) as the protocol carries it.
pub fn account(a: &Account, prover: Option<&Prover>) -> proto::Account {
    proto::Account {
        address: a.address.as_bytes().to_vec(),
        balance: a.balance.to_string(),
        locked: a.locked.to_string(),
        nonce: a.nonce,
        prover: prover.map(prover_info),
    }
}

/// A prover's public record.
pub fn prover_info(p: &Prover) -> proto::ProverInfo {
    proto::ProverInfo {
        stake: p.stake.to_string(),
        free_stake: p.free_stake().to_string(),
        operator: p.operator.as_bytes().to_vec(),
        suspended_until: p.suspended_until,
        recent_misses: p.misses.len() as u32,
        registered_at: p.registered_at,
    }
}

/// A program version; `version` is its 1-based position among programs of its name.
pub fn program(p: &Program, version: u32) -> proto::Program {
    proto::Program {
        program_id: p.program_id.clone(),
        name: p.name.clone(),
        version,
        zkvm_version: p.zkvm_version.clone(),
        artifact_id: p.artifact_id.as_bytes().to_vec(),
        owner: p.registered_by.as_bytes().to_vec(),
        registered_at: p.registered_at,
    }
}

/// The gRPC status for a refused operation.
pub fn market_status(e: MarketError) -> Status {
    let message = e.to_string();
    match e {
        MarketError::InvalidField { .. }
        | MarketError::Overflow { .. }
        | MarketError::DeadlinePassed { .. } => Status::invalid_argument(message),
        MarketError::Unauthorized { .. }
        | MarketError::NotWhitelisted(_)
        | MarketError::FaucetDisabled => Status::permission_denied(message),
        MarketError::UnknownRequest(_)
        | MarketError::UnknownProgram(_)
        | MarketError::NotAProver(_) => Status::not_found(message),
        MarketError::DuplicateRequest(_)
        | MarketError::AlreadyAProver(_)
        | MarketError::ProgramExists(_) => Status::already_exists(message),
        MarketError::BadNonce { .. }
        | MarketError::InsufficientBalance { .. }
        | MarketError::WrongStatus { .. }
        | MarketError::NotExecuted(_)
        | MarketError::PriceTooHigh { .. }
        | MarketError::Suspended { .. }
        | MarketError::InsufficientStake { .. }
        | MarketError::StakeLocked { .. }
        | MarketError::ProofPending(_)
        | MarketError::NoPendingProof(_) => Status::failed_precondition(message),
    }
}
