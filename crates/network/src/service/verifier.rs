//! The verifier: judges each submitted proof off the RPC path, so that a prover's FulfillProof
//! (and with it the prover's nonce) never waits for a verification that takes seconds.
//!
//! ```text
//! FulfillProof ──claims checked, proof stored──▶ Market::submit_proof ──event──▶ Work::Verify
//!   verifier: read proof + inputs ──ZkVm::verify (blocking pool)──▶ accept_proof | reject_proof
//! ```
//!
//! A verification that cannot run because the storage fails is retried while the proof is
//! pending; one the network restarts in the middle of is scheduled again at start.

use std::{sync::Arc, time::Duration};

use provernet_types::RequestId;
use provernet_zkvm::{ProgramId, ProofBundle, PublicOutputs, ZkVmError};

use super::{
    NetworkState,
    artifact::{ReadError, read_artifact},
};
use crate::market::{Execution, Request, Status};

/// First wait before reading an artifact again after the storage failed.
const RETRY_FIRST: Duration = Duration::from_millis(200);
/// Longest wait between two tries.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// What a proof of a request must claim: the request's zkvm version, program and outputs.
#[derive(Debug, Clone)]
pub(crate) struct Claims {
    zkvm: String,
    program_id: Vec<u8>,
    outputs: Vec<u8>,
}

impl Claims {
    /// The claims a proof of `request` must make; `None` before it is executed.
    pub(crate) fn of(request: &Request) -> Option<Self> {
        match &request.execution {
            Execution::Executed { outputs, .. } => Some(Self {
                zkvm: request.spec.zkvm_version.clone(),
                program_id: request.spec.program_id.clone(),
                outputs: outputs.clone(),
            }),
            _ => None,
        }
    }

    /// Decodes `bundle` and checks that it claims what the request asks.
    pub(crate) fn check(&self, bundle: &[u8]) -> Result<ProofBundle, ZkVmError> {
        let bundle = ProofBundle::decode(bundle)?;
        let program_id = ProgramId::from_slice(&self.program_id).map_err(|e| {
            ZkVmError::ProofRejected { reason: format!("the request's program id: {e}") }
        })?;
        bundle.check_claims(&self.zkvm, &program_id, &self.outputs)?;
        Ok(bundle)
    }
}

/// Verifies the pending proof of request `id` and records the verdict.
pub(crate) async fn verify(state: &Arc<NetworkState>, id: RequestId) {
    let mut wait = RETRY_FIRST;
    loop {
        match judge(state, id).await {
            Ok(Some(verdict)) => return record(state, id, verdict).await,
            // Nothing pending any more (judged already, or the request closed).
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(target: "provernet::network", request_id = %id, error = %e, "cannot read what the verifier needs; retrying");
                crate::metrics::verifier_read_retried();
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// The verdict on the pending proof of request `id` (`Err` = the storage failed: retry),
/// `Ok(None)` when no proof is pending.
async fn judge(
    state: &Arc<NetworkState>,
    id: RequestId,
) -> Result<Option<Result<(), String>>, ReadError> {
    let (pending, claims, inputs_id) = {
        let market = state.market();
        let Some(r) = market.request(&id) else { return Ok(None) };
        let (Status::Assigned, Some(pending), Some(claims)) =
            (r.status, &r.pending_proof, Claims::of(r))
        else {
            return Ok(None);
        };
        (pending.artifact, claims, r.spec.inputs_artifact_id)
    };
    let config = &state.config;
    let bundle = match read_artifact(state, &pending, config.max_proof_bytes).await {
        Ok(bytes) => bytes,
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => return Ok(Some(Err(format!("the proof artifact {pending}: {e}")))),
    };
    let bundle = match claims.check(&bundle) {
        Ok(bundle) => bundle,
        Err(e) => return Ok(Some(Err(e.to_string()))),
    };
    let inputs = match read_artifact(state, &inputs_id, config.max_artifact_bytes).await {
        Ok(bytes) => bytes,
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => return Ok(Some(Err(format!("the request's inputs {inputs_id}: {e}")))),
    };
    let backend = match state.zkvms.get(&bundle.zkvm) {
        Ok(backend) => backend,
        Err(e) => return Ok(Some(Err(e.to_string()))),
    };
    let started = std::time::Instant::now();
    let ProofBundle { program_id, outputs, proof, .. } = bundle;
    let verified = tokio::task::spawn_blocking(move || {
        backend.verify(&program_id, &inputs, &PublicOutputs(outputs.0), &proof)
    })
    .await;
    crate::metrics::verified_in(started.elapsed().as_secs_f64());
    Ok(Some(match verified {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the verifier failed: {e}")),
    }))
}

/// Records the verifier's verdict in the market.
async fn record(state: &NetworkState, id: RequestId, verdict: Result<(), String>) {
    let applied = match &verdict {
        Ok(()) => state.apply(|m, now| Ok((m.accept_proof(id, now)?, ()))).await,
        Err(reason) => state.apply(|m, now| Ok((m.reject_proof(id, reason, now)?, ()))).await,
    };
    match (&verdict, applied) {
        (Ok(()), Ok(())) => {
            tracing::info!(target: "provernet::network", request_id = %id, "proof accepted")
        }
        (Err(reason), Ok(())) => {
            tracing::warn!(target: "provernet::network", request_id = %id, %reason, "proof rejected")
        }
        // The request closed meanwhile (its prover gave up): the verdict no longer matters.
        (_, Err(e)) if e.code() == tonic::Code::FailedPrecondition => {
            tracing::info!(target: "provernet::network", request_id = %id, %e, "verdict not recorded")
        }
        (_, Err(e)) => {
            tracing::error!(target: "provernet::network", request_id = %id, %e, "cannot record the verifier's verdict")
        }
    }
}
