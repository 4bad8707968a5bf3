//! [`Requester::fetch_proof`]: download a fulfilled request's proof, program and inputs, each
//! verified against its id, and verify the proof on this machine.

use provernet_artifacts::public_url;
use provernet_types::{ArtifactId, RequestId, proto};
use provernet_zkvm::{ProgramId, ProofBundle, PublicOutputs};

use crate::{
    Requester,
    error::{RequesterError, Result},
    status_name,
};

/// A proof downloaded and verified on this machine.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// The proof bundle.
    pub bundle: ProofBundle,
    /// The bundle's bytes as downloaded (what to write to a file).
    pub bundle_bytes: Vec<u8>,
    /// The public outputs the proof attests.
    pub outputs: PublicOutputs,
    /// The outputs as the backend prints them.
    pub outputs_text: String,
    /// The proof's security level.
    pub security_bits: u32,
}

impl Requester {
    /// Downloads the proof of the fulfilled request `id` (verified against its artifact id),
    /// its program and inputs (private inputs through a URL the network presigns for the
    /// requester), and verifies the proof here, on a blocking thread, against the program id and
    /// the network's public outputs.
    ///
    /// # Errors
    /// [`RequesterError::NotFulfilled`], [`RequesterError::NoKey`] for private inputs without a
    /// key, [`RequesterError::Download`] naming the artifact, [`RequesterError::ProgramMismatch`],
    /// [`RequesterError::Claims`] or [`RequesterError::Verify`].
    pub async fn fetch_proof(&self, id: &RequestId) -> Result<VerifiedProof> {
        let request = self.status(id).await?;
        if request.status != proto::RequestStatus::Fulfilled as i32 {
            return Err(RequesterError::NotFulfilled { id: *id, status: status_name(&request) });
        }
        let body = request.body.as_ref().ok_or_else(|| RequesterError::Malformed {
            what: "proof request",
            reason: "it has no body".to_owned(),
        })?;
        let proof_id = artifact_id("proof artifact id", &request.proof_artifact_id)?;
        let program_artifact = artifact_id("program artifact id", &body.program_artifact_id)?;
        let inputs_artifact = artifact_id("inputs artifact id", &body.inputs_artifact_id)?;
        let base = self.client.artifact_store_url();
        let download = |url: String, artifact: ArtifactId, what: &'static str| async move {
            self.artifacts
                .download_to_vec(&url, &artifact, None)
                .await
                .map_err(|source| RequesterError::Download { what, id: artifact, source })
        };
        // Private inputs first: a missing key or a refusal fails before any download.
        let inputs_url = if body.inputs_private {
            self.client.presign_download(self.signer()?, id, &inputs_artifact).await.map_err(
                |source| RequesterError::Refused { what: "to presign the private inputs", source },
            )?
        } else {
            public_url(base, &inputs_artifact)
        };
        let bundle_bytes = download(public_url(base, &proof_id), proof_id, "proof").await?;
        let program =
            download(public_url(base, &program_artifact), program_artifact, "program").await?;
        let inputs = download(inputs_url, inputs_artifact, "inputs").await?;

        let bundle = ProofBundle::decode(&bundle_bytes)?;
        let backend = self.backend(&body.zkvm_version)?;
        let program_id = ProgramId::from_slice(&body.program_id)
            .map_err(|e| RequesterError::Malformed { what: "program id", reason: e.to_string() })?;
        let local_id = backend.program_id(&program)?;
        if local_id != program_id {
            return Err(RequesterError::ProgramMismatch {
                downloaded: local_id,
                named: program_id,
            });
        }
        bundle
            .check_claims(&body.zkvm_version, &program_id, &request.public_outputs)
            .map_err(|source| RequesterError::Claims { id: *id, source })?;
        let outputs = bundle.outputs.clone();
        let (proof, check_outputs, check_backend) =
            (bundle.proof.clone(), outputs.clone(), backend.clone());
        // Verifying is CPU-bound: off the runtime's workers.
        let verified = tokio::task::spawn_blocking(move || {
            check_backend.verify(&program_id, &inputs, &check_outputs, &proof)
        })
        .await
        .map_err(RequesterError::VerifierThread)?
        .map_err(|source| RequesterError::Verify { id: *id, source })?;
        Ok(VerifiedProof {
            outputs_text: backend.describe_outputs(&outputs),
            bundle,
            bundle_bytes: bundle_bytes.to_vec(),
            outputs,
            security_bits: verified.security_bits,
        })
    }
}

/// Reads a 32-byte artifact id the network sent.
fn artifact_id(what: &'static str, bytes: &[u8]) -> Result<ArtifactId> {
    ArtifactId::from_slice(bytes)
        .map_err(|e| RequesterError::Malformed { what, reason: e.to_string() })
}
