//! [`Requester`]: a connection to the network and its ArtifactStore acting for one account;
//! uploads, programs and [`Requester::submit`].

use std::{path::Path, sync::Arc, time::Duration};

use provernet_artifacts::{ArtifactClient, Progress, ProgressFn};
use provernet_types::{
    Address, Amount, ArtifactId, ClientError, NetworkClient, ProgramName, RequestId, RequestSpec,
    Signer,
    proto::{self, get_program_request::Lookup},
};
use provernet_zkvm::{ProgramId, ZkVm, ZkVmRegistry};

use crate::{
    error::{RequesterError, Result},
    parse_amount,
};

/// How long to try reaching the network: loopback answers at once, a remote one within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// gRPC status codes (fixed by the gRPC spec), compared without depending on tonic.
pub(crate) const GRPC_NOT_FOUND: i32 = 5;
/// See [`GRPC_NOT_FOUND`].
const GRPC_ALREADY_EXISTS: i32 = 6;

/// What to upload: bytes in memory, or a file streamed from disk.
#[derive(Debug, Clone, Copy)]
pub enum UploadSource<'a> {
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// A file, streamed.
    File(&'a Path),
}

/// How an upload made on the requester's behalf goes: reported when it starts, as bytes move
/// (files only), and once it is done (`done == total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadProgress {
    /// What is uploaded: `program` or `inputs`.
    pub label: &'static str,
    /// The artifact's id.
    pub id: ArtifactId,
    /// Bytes sent so far.
    pub done: u64,
    /// The artifact's size in bytes.
    pub total: u64,
}

/// Told of [`UploadProgress`]; called often while a file moves, so keep it cheap.
pub type UploadProgressFn = Arc<dyn Fn(UploadProgress) + Send + Sync>;

/// Everything a proof request needs, before anything is uploaded.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The program's bytes (Miden assembly).
    pub program: Vec<u8>,
    /// The inputs' bytes (JSON).
    pub inputs: Vec<u8>,
    /// Whether the inputs are private.
    pub private: bool,
    /// The name to register the program under, if it is not registered yet.
    pub name: String,
    /// The zkVM version, for example `miden-0.23`.
    pub zkvm_version: String,
    /// The most PGUs the request may use.
    pub gas_limit: u64,
    /// Unix seconds by which the proof must be fulfilled.
    pub deadline: u64,
    /// The highest price per PGU accepted.
    pub max_price_per_pgu: Amount,
    /// The fee paid to the prover on fulfilment.
    pub base_fee: Amount,
    /// Seconds the auction stays open at least.
    pub min_auction_period: u64,
    /// The BLAKE3 hash of the public outputs expected, if any.
    pub expected_outputs_hash: Option<[u8; 32]>,
}

/// A connection to the network and ArtifactStore, acting for one requester account.
pub struct Requester {
    pub(crate) client: NetworkClient,
    pub(crate) artifacts: ArtifactClient,
    signer: Option<Signer>,
    zkvms: ZkVmRegistry,
    upload_progress: Option<UploadProgressFn>,
}

impl std::fmt::Debug for Requester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requester")
            .field("network", &self.client.url())
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl Requester {
    /// Connects to the network at `network_url` (`http://`, `grpc://` or `host:port`).
    ///
    /// # Errors
    /// [`RequesterError::BadUrl`], [`RequesterError::Unreachable`] (naming the URL) or
    /// [`RequesterError::Connect`] for the network's refusal;
    /// [`RequesterError::ArtifactClient`].
    pub async fn connect(network_url: &str, signer: Option<Signer>) -> Result<Self> {
        let url = normalize_url(network_url);
        let client = match NetworkClient::connect(&url, CONNECT_TIMEOUT).await {
            Ok(client) => client,
            Err(e @ ClientError::Url { .. }) => return Err(RequesterError::BadUrl(e)),
            Err(source) if source.is_transient() => {
                return Err(RequesterError::Unreachable { url, source });
            }
            Err(source) => return Err(RequesterError::Connect { url, source }),
        };
        let artifacts = ArtifactClient::new().map_err(RequesterError::ArtifactClient)?;
        Ok(Self::from_parts(client, artifacts, signer))
    }

    /// A requester over clients the caller holds already (tests, benches, the devnet).
    pub fn from_parts(
        client: NetworkClient,
        artifacts: ArtifactClient,
        signer: Option<Signer>,
    ) -> Self {
        Self {
            client,
            artifacts,
            signer,
            zkvms: ZkVmRegistry::with_default_backends(),
            upload_progress: None,
        }
    }

    /// Reports the uploads that [`submit`](Self::submit) and
    /// [`register_program`](Self::register_program) make to `progress`.
    #[must_use]
    pub fn with_upload_progress(mut self, progress: UploadProgressFn) -> Self {
        self.upload_progress = Some(progress);
        self
    }

    /// The network client.
    pub fn client(&self) -> &NetworkClient {
        &self.client
    }

    /// The requester's address, when a key was given.
    pub fn address(&self) -> Option<Address> {
        self.signer.as_ref().map(Signer::address)
    }

    /// The signer.
    ///
    /// # Errors
    /// [`RequesterError::NoKey`].
    pub(crate) fn signer(&self) -> Result<&Signer> {
        self.signer.as_ref().ok_or(RequesterError::NoKey)
    }

    /// The backend of `zkvm_version`.
    pub(crate) fn backend(&self, zkvm_version: &str) -> Result<Arc<dyn ZkVm>> {
        Ok(self.zkvms.get(zkvm_version)?)
    }

    /// The requester's spendable balance.
    ///
    /// # Errors
    /// No key, the call's error, or a malformed amount.
    pub async fn balance(&self) -> Result<Amount> {
        let account = self.client.account(&self.signer()?.address()).await?;
        parse_amount(&account.balance)
    }

    /// Uploads `source` as an artifact of `kind` through a URL presigned by the network;
    /// returns its id. `progress` follows the bytes sent (a file's as they move; bytes in memory
    /// at the end).
    ///
    /// # Errors
    /// No key, an unreadable file, the network's refusal or the store's.
    pub async fn upload(
        &self,
        source: UploadSource<'_>,
        kind: proto::ArtifactKind,
        progress: Option<ProgressFn>,
    ) -> Result<ArtifactId> {
        let signer = self.signer()?;
        let (id, size) = match source {
            UploadSource::Bytes(bytes) => (ArtifactId::of(bytes), bytes.len() as u64),
            UploadSource::File(path) => {
                let unreadable =
                    |source| RequesterError::ReadFile { path: path.to_owned(), source };
                let size = tokio::fs::metadata(path)
                    .await
                    .map_err(|source| {
                        unreadable(provernet_artifacts::ClientError::Io {
                            path: path.to_owned(),
                            source,
                        })
                    })?
                    .len();
                let id = provernet_artifacts::client::hash_file(path).await.map_err(unreadable)?;
                (id, size)
            }
        };
        let url = self
            .client
            .presign_upload(signer, &id, kind, size)
            .await
            .map_err(|source| RequesterError::Refused { what: "an upload URL", source })?;
        let receipt = match source {
            UploadSource::Bytes(bytes) => {
                self.artifacts.upload_bytes(&url, bytes.to_vec().into()).await
            }
            UploadSource::File(path) => {
                self.artifacts.upload_file(&url, path, progress.clone()).await
            }
        }
        .map_err(|source| RequesterError::Upload { id, source })?;
        if receipt.id != id {
            return Err(RequesterError::StoredOther { id, stored: receipt.id });
        }
        if let Some(report) = progress {
            report(Progress { done: size, total: Some(size) });
        }
        Ok(id)
    }

    /// Uploads `bytes`, reporting to the configured [`UploadProgressFn`] as `label`.
    async fn upload_labelled(
        &self,
        label: &'static str,
        bytes: &[u8],
        kind: proto::ArtifactKind,
    ) -> Result<ArtifactId> {
        let progress = self.upload_progress.clone().map(|report| -> ProgressFn {
            let (id, total) = (ArtifactId::of(bytes), bytes.len() as u64);
            // An empty artifact's only report is its end: `done == total` means done.
            if total > 0 {
                report(UploadProgress { label, id, done: 0, total });
            }
            Arc::new(move |p: Progress| report(UploadProgress { label, id, done: p.done, total }))
        });
        self.upload(UploadSource::Bytes(bytes), kind, progress).await
    }

    /// The registered program with `program_id`, if any.
    ///
    /// # Errors
    /// The call's error.
    pub async fn program_by_id(&self, program_id: &ProgramId) -> Result<Option<proto::Program>> {
        let query = proto::GetProgramRequest {
            lookup: Some(Lookup::ProgramId(program_id.as_bytes().to_vec())),
        };
        match self.client.program(query).await {
            Ok(found) => Ok(found.programs.into_iter().next()),
            Err(e) if grpc_code(&e) == Some(GRPC_NOT_FOUND) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The programs named `query` (every version), or the one with program id `0x…`.
    ///
    /// # Errors
    /// [`RequesterError::BadProgramId`], [`RequesterError::NoProgramId`],
    /// [`RequesterError::NoProgramNamed`], or the call's error.
    pub async fn find_programs(&self, query: &str) -> Result<Vec<proto::Program>> {
        if query.starts_with("0x") {
            let id: ProgramId =
                query.parse().map_err(|e: provernet_zkvm::backend::ProgramIdError| {
                    RequesterError::BadProgramId { text: query.to_owned(), reason: e.to_string() }
                })?;
            return match self.program_by_id(&id).await? {
                Some(p) => Ok(vec![p]),
                None => Err(RequesterError::NoProgramId { id }),
            };
        }
        let lookup = Some(Lookup::Name(query.to_owned()));
        match self.client.program(proto::GetProgramRequest { lookup }).await {
            Ok(found) if !found.programs.is_empty() => Ok(found.programs),
            Err(e) if grpc_code(&e) != Some(GRPC_NOT_FOUND) => Err(e.into()),
            _ => Err(RequesterError::NoProgramNamed { name: query.to_owned() }),
        }
    }

    /// Registers `source` under `name` for `zkvm_version`, or returns its registration if the
    /// same program (same program id) is registered already. The program is assembled here first:
    /// one that does not assemble is an error before anything is uploaded.
    ///
    /// # Errors
    /// A program that does not assemble, a bad name, no key, or the network's refusal.
    pub async fn register_program(
        &self,
        name: &str,
        zkvm_version: &str,
        source: &[u8],
    ) -> Result<proto::Program> {
        let program_id = self.backend(zkvm_version)?.program_id(source)?;
        ProgramName::parse(name).map_err(RequesterError::Name)?;
        self.signer()?;
        self.ensure_registered(name, zkvm_version, source, &program_id).await
    }

    /// The registration of `program_id`, registering it (upload, RegisterProgram) if needed.
    async fn ensure_registered(
        &self,
        name: &str,
        zkvm_version: &str,
        source: &[u8],
        program_id: &ProgramId,
    ) -> Result<proto::Program> {
        if let Some(existing) = self.program_by_id(program_id).await? {
            return same_version(existing, zkvm_version);
        }
        let artifact =
            self.upload_labelled("program", source, proto::ArtifactKind::Program).await?;
        match self.client.register_program(self.signer()?, name, zkvm_version, &artifact).await {
            Ok(program) => Ok(program),
            // Registered by someone else since we looked.
            Err(e) if grpc_code(&e) == Some(GRPC_ALREADY_EXISTS) => {
                match self.program_by_id(program_id).await? {
                    Some(existing) => same_version(existing, zkvm_version),
                    None => Err(e.into()),
                }
            }
            Err(source) => Err(RequesterError::Register { name: name.to_owned(), source }),
        }
    }

    /// Checks `submission` locally (program, inputs, name, gas limit, deadline, balance), then
    /// uploads what the network lacks, registers the program if needed, and asks for a proof.
    ///
    /// # Errors
    /// Each local check's own variant ([`RequesterError::ZkVm`], [`RequesterError::Name`],
    /// [`RequesterError::GasLimit`], [`RequesterError::Spec`],
    /// [`RequesterError::InsufficientBalance`], …); then the network's refusals.
    pub async fn submit(&self, submission: &Submission) -> Result<RequestId> {
        let s = submission;
        let signer = self.signer()?;
        let backend = self.backend(&s.zkvm_version)?;
        let program_id = backend.program_id(&s.program)?;
        backend.check_inputs(&s.inputs)?;
        ProgramName::parse(&s.name).map_err(RequesterError::Name)?;
        if s.gas_limit == 0 || s.gas_limit > backend.max_gas_limit() {
            return Err(RequesterError::GasLimit {
                gas_limit: s.gas_limit,
                zkvm_version: backend.version().to_owned(),
                max: backend.max_gas_limit(),
            });
        }
        let now = self.client.network_info().await?.now;
        let mut spec = RequestSpec {
            program_id: program_id.as_bytes().to_vec(),
            zkvm_version: s.zkvm_version.clone(),
            program_artifact_id: ArtifactId::of(&s.program),
            inputs_artifact_id: ArtifactId::of(&s.inputs),
            inputs_private: s.private,
            deadline: s.deadline,
            gas_limit: s.gas_limit,
            max_price_per_pgu: s.max_price_per_pgu,
            base_fee: s.base_fee,
            min_auction_period: s.min_auction_period,
            whitelist: Vec::new(),
            expected_outputs_hash: s.expected_outputs_hash,
            proof_mode: String::new(),
        };
        spec.check_timing(now).map_err(RequesterError::Spec)?;
        let needed = spec.max_cost().map_err(RequesterError::CostOverflow)?;
        let balance = self.balance().await?;
        if balance < needed {
            return Err(RequesterError::InsufficientBalance {
                address: signer.address(),
                balance,
                needed,
                base_fee: s.base_fee,
                max_price_per_pgu: s.max_price_per_pgu,
                gas_limit: s.gas_limit,
            });
        }
        let program =
            self.ensure_registered(&s.name, &s.zkvm_version, &s.program, &program_id).await?;
        spec.program_artifact_id = ArtifactId::from_slice(&program.artifact_id).map_err(|e| {
            RequesterError::Malformed { what: "program registration", reason: e.to_string() }
        })?;
        let kind = if s.private {
            proto::ArtifactKind::PrivateInputs
        } else {
            proto::ArtifactKind::Inputs
        };
        self.upload_labelled("inputs", &s.inputs, kind).await?;
        self.client
            .request_proof(signer, &spec)
            .await
            .map_err(|source| RequesterError::Refused { what: "the request", source })
    }

    /// The request `id` as the network stores it.
    ///
    /// # Errors
    /// [`RequesterError::NotFound`], or the call's error.
    pub async fn status(&self, id: &RequestId) -> Result<proto::ProofRequest> {
        self.client.proof_request(id).await.map_err(|e| self.not_found(id, e))
    }

    /// `e`, or [`RequesterError::NotFound`] when it says request `id` is unknown.
    pub(crate) fn not_found(&self, id: &RequestId, e: ClientError) -> RequesterError {
        if grpc_code(&e) == Some(GRPC_NOT_FOUND) {
            RequesterError::NotFound { id: *id, url: self.client.url().to_owned() }
        } else {
            e.into()
        }
    }
}

/// A registration found for a program id, if it is for `zkvm_version`.
fn same_version(existing: proto::Program, zkvm_version: &str) -> Result<proto::Program> {
    if existing.zkvm_version != zkvm_version {
        return Err(RequesterError::OtherVersion {
            name: existing.name,
            registered: existing.zkvm_version,
            wanted: zkvm_version.to_owned(),
        });
    }
    Ok(existing)
}

/// The gRPC status code of a call's error, as a number.
pub(crate) fn grpc_code(e: &ClientError) -> Option<i32> {
    e.code().map(|c| c as i32)
}

/// `http://` for `grpc://` (as `provernet network` prints) or no scheme.
fn normalize_url(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("grpc://") {
        format!("http://{rest}")
    } else if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_names_and_ids() {
        assert_eq!(normalize_url("grpc://127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(normalize_url("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(normalize_url("https://x:1"), "https://x:1");
    }

    #[tokio::test]
    async fn connecting_names_the_url_it_could_not_reach() {
        match Requester::connect("127.0.0.1:1", None).await {
            Err(RequesterError::Unreachable { url, source }) => {
                assert_eq!(url, "http://127.0.0.1:1");
                assert!(source.is_transient(), "{source}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        assert!(matches!(
            Requester::connect("http://[bad", None).await,
            Err(RequesterError::BadUrl(ClientError::Url { .. }))
        ));
    }
}
