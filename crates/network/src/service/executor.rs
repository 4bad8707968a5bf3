//! The executor: runs each new request's program on its inputs within the gas limit and
//! publishes its PGUs and outputs, or why it cannot be proven.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use provernet_types::{ArtifactId, RequestId};

use super::{NetworkState, artifact::read_artifact};
use crate::market::{Execution, Status};

/// First wait before reading an artifact again after the storage failed.
const READ_RETRY_FIRST: Duration = Duration::from_millis(200);
/// Longest wait between two reads of an artifact.
const READ_RETRY_MAX: Duration = Duration::from_secs(10);

/// Executes request `id` within its gas limit and records PGUs and outputs, or why it cannot be
/// proven.
pub(crate) async fn execute(state: &Arc<NetworkState>, id: RequestId) {
    let spec = match state.market().request(&id) {
        Some(r) if r.execution == Execution::Unexecuted && r.status == Status::Requested => {
            r.spec.clone()
        }
        _ => return,
    };
    let started = Instant::now();
    let result = async {
        let backend = state.zkvms.get(&spec.zkvm_version).map_err(|e| e.to_string())?;
        let limits = &state.config;
        let Some(program) = read_while_open(
            state,
            id,
            &spec.program_artifact_id,
            "program",
            limits.max_program_bytes,
        )
        .await?
        else {
            return Ok(None);
        };
        let Some(inputs) = read_while_open(
            state,
            id,
            &spec.inputs_artifact_id,
            "inputs",
            limits.max_artifact_bytes,
        )
        .await?
        else {
            return Ok(None);
        };
        let gas = spec.gas_limit;
        tokio::task::spawn_blocking(move || backend.execute(&program, &inputs, gas))
            .await
            .map_err(|e| format!("executor failed: {e}"))?
            .map(|e| Some((e.pgus, e.outputs.0)))
            .map_err(|e| e.to_string())
    }
    .await;
    crate::metrics::executed_in(started.elapsed().as_secs_f64());
    let result = match result {
        Ok(Some(executed)) => Ok(executed),
        // The request closed while its artifacts could not be read: nothing to record.
        Ok(None) => return,
        Err(reason) => Err(reason),
    };
    match &result {
        Ok((pgus, _)) => {
            tracing::info!(target: "provernet::network", request_id = %id, pgus, "executed")
        }
        Err(reason) => {
            tracing::info!(target: "provernet::network", request_id = %id, %reason, "unexecutable")
        }
    }
    if let Err(e) = state.apply(|m, now| Ok((m.record_execution(id, result, now)?, ()))).await {
        tracing::error!(target: "provernet::network", request_id = %id, %e, "cannot record execution");
    }
}

/// Reads an artifact of request `id` for the executor. A definite failure (missing, too large,
/// corrupt) is the request's fault and returned as the reason it is unexecutable; a failing
/// storage is not, so the read is repeated with backoff for as long as the request is open
/// (`Ok(None)` once it closed).
async fn read_while_open(
    state: &NetworkState,
    id: RequestId,
    artifact: &ArtifactId,
    what: &str,
    max_bytes: u64,
) -> Result<Option<Vec<u8>>, String> {
    let mut wait = READ_RETRY_FIRST;
    loop {
        match read_artifact(state, artifact, max_bytes).await {
            Ok(bytes) => return Ok(Some(bytes)),
            Err(e) if e.is_transient() => {
                tracing::warn!(target: "provernet::network", request_id = %id, %artifact, error = %e, "cannot read {what} artifact; retrying");
                crate::metrics::executor_read_retried();
                state.executor_read_retries.send_modify(|n| *n += 1);
            }
            // Missing, too large or corrupt: the request's own fault.
            Err(e) => return Err(format!("{what} artifact {artifact}: {e}")),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(READ_RETRY_MAX);
        let open = state.market().request(&id).is_some_and(|r| r.status == Status::Requested);
        if !open {
            return Ok(None);
        }
    }
}
