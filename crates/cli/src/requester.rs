//! [`Requester`]: the requester's side of the market, shared by `provernet request`,
//! `provernet program` and the devnet.
//!
//! ```text
//! program + inputs ─check locally (assemble, inputs, deadline, balance)─► presign ─► upload
//!   ─► RegisterProgram (unless registered) ─► RequestProof ─► SubscribeRequests ─► Fulfilled
//!   ─► download proof, program, inputs (verified against their ids) ─► verify locally
//! ```
//!
//! Everything that can be checked before spending a nonce or uploading a byte is checked first,
//! so a mistake costs nothing and leaves nothing behind on the network.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use provernet_artifacts::{ArtifactClient, ProgressFn, public_url};
use provernet_types::{
    Address, Amount, ArtifactId, ClientError, NetworkClient, ProgramName, RequestId, RequestSpec,
    Signer,
    proto::{self, get_program_request::Lookup, request_event::Event},
};
use provernet_zkvm::{ProgramId, ProofBundle, PublicOutputs, ZkVm, ZkVmRegistry};

/// The network URL used when none is given.
pub(crate) const DEFAULT_NETWORK_URL: &str = "http://127.0.0.1:50051";
/// The environment variable holding the requester's secret key (hex).
pub(crate) const KEY_ENV: &str = "PROVERNET_KEY";
/// How long to try reaching the network: loopback answers at once, a remote one within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// gRPC status codes (fixed by the gRPC spec), compared without depending on tonic.
const GRPC_NOT_FOUND: i32 = 5;
/// See [`GRPC_NOT_FOUND`].
const GRPC_ALREADY_EXISTS: i32 = 6;

/// Where the network is and who signs: flags shared by the requester's commands.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnectArgs {
    /// The ProverNetwork's gRPC URL (`provernet network` prints it).
    #[arg(long, env = "PROVERNET_NETWORK", default_value = DEFAULT_NETWORK_URL)]
    pub network: String,
    /// File holding the account's secret key (hex). The environment variable PROVERNET_KEY
    /// (hex) may hold the key instead.
    #[arg(long, env = "PROVERNET_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

impl ConnectArgs {
    /// The signer from `--key-file` or `PROVERNET_KEY`, if either is given.
    ///
    /// # Errors
    /// An unreadable key file, or a key that is not 32 bytes of hex (the key is never echoed).
    pub(crate) fn signer(&self) -> anyhow::Result<Option<Signer>> {
        if let Some(path) = &self.key_file {
            return crate::keys::read_key(path).map(Some);
        }
        match std::env::var(KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Signer::from_hex(&text)
                .map(Some)
                .map_err(|e| anyhow!("{KEY_ENV} does not hold a secret key: {e}")),
            _ => Ok(None),
        }
    }

    /// Connects to the network, with the signer if a key is given.
    ///
    /// # Errors
    /// As [`ConnectArgs::signer`] and [`Requester::connect`].
    pub(crate) async fn connect(&self) -> anyhow::Result<Requester> {
        Requester::connect(&self.network, self.signer()?).await
    }
}

/// What to upload: bytes in memory, or a file streamed from disk.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UploadSource<'a> {
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// A file, streamed (no command uploads a file yet; the devnet and large inputs will).
    #[allow(dead_code)]
    File(&'a Path),
}

/// Everything a proof request needs, before anything is uploaded.
#[derive(Debug, Clone)]
pub(crate) struct Submission {
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

/// A proof downloaded and verified on this machine.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedProof {
    /// The proof bundle.
    pub bundle: ProofBundle,
    /// The public outputs the proof attests.
    pub outputs: PublicOutputs,
    /// The outputs as the backend prints them.
    pub outputs_text: String,
    /// The proof's security level.
    pub security_bits: u32,
}

/// A connection to the network and ArtifactStore, acting for one requester account.
pub(crate) struct Requester {
    client: NetworkClient,
    artifacts: ArtifactClient,
    signer: Option<Signer>,
    zkvms: ZkVmRegistry,
    show_progress: bool,
}

impl Requester {
    /// Connects to the network at `network_url` (`http://`, `grpc://` or `host:port`).
    ///
    /// # Errors
    /// A network that does not answer, named with what to do about it.
    pub(crate) async fn connect(network_url: &str, signer: Option<Signer>) -> anyhow::Result<Self> {
        let url = normalize_url(network_url);
        let client = match NetworkClient::connect(&url, CONNECT_TIMEOUT).await {
            Ok(client) => client,
            Err(e @ ClientError::Url { .. }) => bail!("{e}: use http://HOST:PORT"),
            Err(e) if e.is_transient() => bail!(
                "cannot reach the network at {url} ({}): is it running? Start one with \
                 `provernet network` (or `provernet devnet --keep`), or pass --network URL",
                error_chain(&e)
            ),
            Err(e) => bail!("the network at {url} answered with an error: {e}"),
        };
        let artifacts = ArtifactClient::new().context("cannot set up the ArtifactStore client")?;
        Ok(Self {
            client,
            artifacts,
            signer,
            zkvms: ZkVmRegistry::with_default_backends(),
            show_progress: false,
        })
    }

    /// Shows progress bars (on a terminal) or progress lines (otherwise) on stderr.
    pub(crate) fn with_progress(mut self, on: bool) -> Self {
        self.show_progress = on;
        self
    }

    /// The network client.
    pub(crate) fn client(&self) -> &NetworkClient {
        &self.client
    }

    /// The requester's address, when a key was given.
    pub(crate) fn address(&self) -> Option<Address> {
        self.signer.as_ref().map(Signer::address)
    }

    fn signer(&self) -> anyhow::Result<&Signer> {
        self.signer.as_ref().ok_or_else(|| {
            anyhow!("this needs the account's key: pass --key-file FILE or set {KEY_ENV} (hex)")
        })
    }

    fn backend(&self, zkvm_version: &str) -> anyhow::Result<Arc<dyn ZkVm>> {
        Ok(self.zkvms.get(zkvm_version)?)
    }

    /// The requester's spendable balance.
    ///
    /// # Errors
    /// No key, or the call's error.
    pub(crate) async fn balance(&self) -> anyhow::Result<Amount> {
        let account = self.client.account(&self.signer()?.address()).await?;
        parse_amount(&account.balance)
    }

    /// A progress bar for an upload of `len` bytes, when progress is shown on a terminal.
    pub(crate) fn upload_bar(&self, label: &str, len: u64) -> Option<ProgressBar> {
        if !self.show_progress || !std::io::stderr().is_terminal() {
            return None;
        }
        let style = ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        Some(ProgressBar::new(len).with_style(style).with_message(label.to_owned()))
    }

    /// Uploads `source` as an artifact of `kind` through a URL presigned by the network;
    /// returns its id. `progress` follows the bytes sent.
    ///
    /// # Errors
    /// No key, an unreadable file, the network's refusal or the store's.
    pub(crate) async fn upload(
        &self,
        source: UploadSource<'_>,
        kind: proto::ArtifactKind,
        progress: Option<ProgressBar>,
    ) -> anyhow::Result<ArtifactId> {
        let signer = self.signer()?;
        let (id, size) = match source {
            UploadSource::Bytes(bytes) => (ArtifactId::of(bytes), bytes.len() as u64),
            UploadSource::File(path) => {
                let size = tokio::fs::metadata(path)
                    .await
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .len();
                (provernet_artifacts::client::hash_file(path).await?, size)
            }
        };
        let url = self
            .client
            .presign_upload(signer, &id, kind, size)
            .await
            .context("the network refused an upload URL")?;
        let receipt = match source {
            UploadSource::Bytes(bytes) => {
                self.artifacts.upload_bytes(&url, bytes.to_vec().into()).await
            }
            UploadSource::File(path) => {
                let report: Option<ProgressFn> = progress.clone().map(|bar| -> ProgressFn {
                    Arc::new(move |p: provernet_artifacts::Progress| bar.set_position(p.done))
                });
                self.artifacts.upload_file(&url, path, report).await
            }
        }
        .with_context(|| format!("cannot upload {id} to the ArtifactStore"))?;
        if receipt.id != id {
            bail!("the ArtifactStore stored {} instead of {id}", receipt.id);
        }
        if let Some(bar) = progress {
            bar.set_position(size);
            bar.finish();
        }
        Ok(id)
    }

    /// Uploads `source` with a bar or a line labelled `label` on stderr, as configured.
    async fn upload_shown(
        &self,
        label: &str,
        bytes: &[u8],
        kind: proto::ArtifactKind,
    ) -> anyhow::Result<ArtifactId> {
        let bar = self.upload_bar(label, bytes.len() as u64);
        let plain = self.show_progress && bar.is_none();
        let id = self.upload(UploadSource::Bytes(bytes), kind, bar).await?;
        if plain {
            eprintln!("uploaded {label} {id} ({} bytes)", bytes.len());
        }
        Ok(id)
    }

    /// The registered program with `program_id`, if any.
    ///
    /// # Errors
    /// The call's error.
    pub(crate) async fn program_by_id(
        &self,
        program_id: &ProgramId,
    ) -> anyhow::Result<Option<proto::Program>> {
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
    /// A malformed id, nothing found (with what to do), or the call's error.
    pub(crate) async fn find_programs(&self, query: &str) -> anyhow::Result<Vec<proto::Program>> {
        if query.starts_with("0x") {
            let id: ProgramId = query.parse()?;
            return match self.program_by_id(&id).await? {
                Some(p) => Ok(vec![p]),
                None => bail!(
                    "no program {id} is registered: register it with `provernet program register`"
                ),
            };
        }
        let lookup = Some(Lookup::Name(query.to_owned()));
        match self.client.program(proto::GetProgramRequest { lookup }).await {
            Ok(found) if !found.programs.is_empty() => Ok(found.programs),
            Err(e) if grpc_code(&e) != Some(GRPC_NOT_FOUND) => Err(e.into()),
            _ => bail!(
                "no program named {query:?} is registered: register it with `provernet program register`"
            ),
        }
    }

    /// Registers `source` under `name` for `zkvm_version`, or returns its registration if the
    /// same program (same program id) is registered already. The program is assembled here first:
    /// one that does not assemble is an error before anything is uploaded.
    ///
    /// # Errors
    /// A program that does not assemble, a bad name, no key, or the network's refusal.
    pub(crate) async fn register_program(
        &self,
        name: &str,
        zkvm_version: &str,
        source: &[u8],
    ) -> anyhow::Result<proto::Program> {
        let program_id = self.backend(zkvm_version)?.program_id(source)?;
        ProgramName::parse(name).map_err(|e| anyhow!("{e}: pass --name"))?;
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
    ) -> anyhow::Result<proto::Program> {
        if let Some(existing) = self.program_by_id(program_id).await? {
            return same_version(existing, zkvm_version);
        }
        let artifact = self.upload_shown("program", source, proto::ArtifactKind::Program).await?;
        match self.client.register_program(self.signer()?, name, zkvm_version, &artifact).await {
            Ok(program) => Ok(program),
            // Registered by someone else since we looked.
            Err(e) if grpc_code(&e) == Some(GRPC_ALREADY_EXISTS) => {
                let existing = self.program_by_id(program_id).await?.ok_or_else(|| anyhow!(e))?;
                same_version(existing, zkvm_version)
            }
            Err(e) => Err(anyhow!(e).context(format!(
                "cannot register the program as {name:?} (pass --name to choose another name)"
            ))),
        }
    }

    /// Checks `submission` locally (program, inputs, gas limit, deadline, balance), then uploads
    /// what the network lacks, registers the program if needed, and asks for a proof.
    ///
    /// # Errors
    /// Each local check names what is wrong and what to do; then the network's refusals.
    pub(crate) async fn submit(&self, submission: &Submission) -> anyhow::Result<RequestId> {
        let s = submission;
        let signer = self.signer()?;
        let backend = self.backend(&s.zkvm_version)?;
        let program_id = backend.program_id(&s.program)?;
        backend.check_inputs(&s.inputs)?;
        ProgramName::parse(&s.name).map_err(|e| anyhow!("{e}: pass --name"))?;
        if s.gas_limit == 0 || s.gas_limit > backend.max_gas_limit() {
            bail!(
                "gas limit {} is out of range: {} takes 1 to {} PGUs",
                s.gas_limit,
                backend.version(),
                backend.max_gas_limit()
            );
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
        spec.check_timing(now).map_err(|e| {
            let what = match e.field() {
                "deadline" => "e.g. --deadline-secs 120",
                _ => "shorten --auction-secs or lengthen --deadline-secs",
            };
            anyhow!("{e}: {what}")
        })?;
        let needed = spec.max_cost().map_err(|e| {
            anyhow!("the worst-case cost overflows ({e}): lower --max-price-per-pgu or --gas-limit")
        })?;
        let balance = self.balance().await?;
        if balance < needed {
            bail!(
                "insufficient balance: {} has {balance} spendable, the request locks up to \
                 {needed} (base fee {} + {} per PGU × gas limit {}): fund the account with \
                 `provernet request faucet` on a devnet (or ask the network's operator for a \
                 deposit), or lower --max-price-per-pgu or --gas-limit",
                signer.address(),
                s.base_fee,
                s.max_price_per_pgu,
                s.gas_limit
            );
        }
        let program =
            self.ensure_registered(&s.name, &s.zkvm_version, &s.program, &program_id).await?;
        spec.program_artifact_id = ArtifactId::from_slice(&program.artifact_id)
            .map_err(|e| anyhow!("the network's program registration: {e}"))?;
        let kind = if s.private {
            proto::ArtifactKind::PrivateInputs
        } else {
            proto::ArtifactKind::Inputs
        };
        self.upload_shown("inputs", &s.inputs, kind).await?;
        self.client
            .request_proof(signer, &spec)
            .await
            .map_err(|e| anyhow!(e).context("the network refused the request"))
    }

    /// The request `id` as the network stores it.
    ///
    /// # Errors
    /// An unknown id, or the call's error.
    pub(crate) async fn status(&self, id: &RequestId) -> anyhow::Result<proto::ProofRequest> {
        self.client.proof_request(id).await.map_err(|e| {
            if grpc_code(&e) == Some(GRPC_NOT_FOUND) {
                anyhow!(
                    "no proof request {id} on the network at {}: check the id",
                    self.client.url()
                )
            } else {
                e.into()
            }
        })
    }

    /// Waits until request `id` is fulfilled, unfulfillable or cancelled, at most `timeout`;
    /// calls `on_change` with the request on the first read and whenever its status or execution
    /// status changes. Driven by the network's event stream: it subscribes first and then reads
    /// the stored request, so no change is missed; a closed stream is reopened once.
    ///
    /// # Errors
    /// The timeout (naming the last state), an unknown id, or a stream closed twice.
    pub(crate) async fn wait(
        &self,
        id: &RequestId,
        timeout: Duration,
        mut on_change: impl FnMut(&proto::ProofRequest),
    ) -> anyhow::Result<proto::ProofRequest> {
        let mut last: Option<proto::ProofRequest> = None;
        let waited = tokio::time::timeout(timeout, self.wait_events(id, &mut last, &mut on_change));
        match waited.await {
            Ok(result) => result,
            Err(_) => {
                let hint = match &last {
                    Some(r) if r.status == proto::RequestStatus::Requested as i32 => {
                        " (no prover has won it yet: is a node running?)"
                    }
                    _ => "",
                };
                bail!(
                    "request {id} is still {}{hint} after {} s: wait longer with --timeout-secs",
                    last.as_ref().map_or("unknown", status_name),
                    timeout.as_secs()
                )
            }
        }
    }

    async fn wait_events(
        &self,
        id: &RequestId,
        last: &mut Option<proto::ProofRequest>,
        on_change: &mut impl FnMut(&proto::ProofRequest),
    ) -> anyhow::Result<proto::ProofRequest> {
        let mut reopened = false;
        loop {
            let mut events =
                self.client.subscribe(proto::SubscribeRequestsRequest::default()).await?;
            // Read after subscribing: a change between the two is then seen in the stream.
            if let Some(done) = self.observe(id, last, on_change).await? {
                return Ok(done);
            }
            loop {
                let event = match events.message().await {
                    Ok(Some(event)) => event,
                    Ok(None) | Err(_) if !reopened => break,
                    Ok(None) => bail!("the network closed the event stream twice while waiting"),
                    Err(e) => bail!("the event stream failed twice while waiting: {}", e.message()),
                };
                let about = event.request_id == id.as_bytes();
                // After a lag, events about this request may be among those dropped.
                if (about || matches!(event.event, Some(Event::Lagged(_))))
                    && let Some(done) = self.observe(id, last, on_change).await?
                {
                    return Ok(done);
                }
            }
            reopened = true;
        }
    }

    /// Reads request `id`, reports a change, and returns it if it is closed.
    async fn observe(
        &self,
        id: &RequestId,
        last: &mut Option<proto::ProofRequest>,
        on_change: &mut impl FnMut(&proto::ProofRequest),
    ) -> anyhow::Result<Option<proto::ProofRequest>> {
        let request = self.status(id).await?;
        let changed = last.as_ref().is_none_or(|l| {
            (l.status, l.execution_status) != (request.status, request.execution_status)
        });
        if changed {
            on_change(&request);
        }
        let closed = is_closed(&request);
        *last = Some(request);
        Ok(if closed { last.clone() } else { None })
    }

    /// Downloads the proof of the fulfilled request `id` (verified against its artifact id),
    /// its program and inputs (private inputs through a URL the network presigns for the
    /// requester), and verifies the proof here against the program id and the network's public
    /// outputs. Writes the proof to `out` once it verifies.
    ///
    /// # Errors
    /// A request that is not fulfilled, a download that fails or does not match its id, a proof
    /// that does not verify, or a file that cannot be written.
    pub(crate) async fn fetch_proof(
        &self,
        id: &RequestId,
        out: Option<&Path>,
    ) -> anyhow::Result<VerifiedProof> {
        let request = self.status(id).await?;
        if request.status != proto::RequestStatus::Fulfilled as i32 {
            bail!(
                "request {id} is {}, not fulfilled: there is no proof yet (`provernet request wait {id}`)",
                status_name(&request)
            );
        }
        let body =
            request.body.as_ref().ok_or_else(|| anyhow!("the network's answer has no body"))?;
        let proof_id = artifact_id("proof", &request.proof_artifact_id)?;
        let program_artifact = artifact_id("program", &body.program_artifact_id)?;
        let inputs_artifact = artifact_id("inputs", &body.inputs_artifact_id)?;
        let base = self.client.artifact_store_url();
        let download = |url: String, artifact: ArtifactId, what: &'static str| async move {
            self.artifacts
                .download_to_vec(&url, &artifact, None)
                .await
                .with_context(|| format!("cannot download the {what} {artifact}"))
        };
        // Private inputs first: a missing key or a refusal fails before any download.
        let inputs_url = if body.inputs_private {
            self.client
                .presign_download(self.signer()?, id, &inputs_artifact)
                .await
                .context("the network refused to presign the private inputs")?
        } else {
            public_url(base, &inputs_artifact)
        };
        let bundle_bytes = download(public_url(base, &proof_id), proof_id, "proof").await?;
        let program =
            download(public_url(base, &program_artifact), program_artifact, "program").await?;
        let inputs = download(inputs_url, inputs_artifact, "inputs").await?;

        let bundle = ProofBundle::decode(&bundle_bytes)?;
        let backend = self.backend(&body.zkvm_version)?;
        let program_id = ProgramId::from_slice(&body.program_id)?;
        let local_id = backend.program_id(&program)?;
        if local_id != program_id {
            bail!("the downloaded program is {local_id}, the request names {program_id}");
        }
        bundle
            .check_claims(&body.zkvm_version, &program_id, &request.public_outputs)
            .with_context(|| format!("the proof does not prove what request {id} asked"))?;
        let outputs = bundle.outputs.clone();
        let (proof, check_outputs, check_backend) =
            (bundle.proof.clone(), outputs.clone(), backend.clone());
        let verified = tokio::task::spawn_blocking(move || {
            check_backend.verify(&program_id, &inputs, &check_outputs, &proof)
        })
        .await
        .context("the verifier thread failed")?
        .with_context(|| format!("the proof of request {id} does not verify"))?;
        if let Some(path) = out {
            tokio::fs::write(path, &bundle_bytes)
                .await
                .with_context(|| format!("cannot write the proof to {}", path.display()))?;
        }
        Ok(VerifiedProof {
            outputs_text: backend.describe_outputs(&outputs),
            bundle,
            outputs,
            security_bits: verified.security_bits,
        })
    }
}

/// A registration found for a program id, if it is for `zkvm_version`.
fn same_version(existing: proto::Program, zkvm_version: &str) -> anyhow::Result<proto::Program> {
    if existing.zkvm_version != zkvm_version {
        bail!(
            "the program is registered as {:?} for {}, not for {zkvm_version}",
            existing.name,
            existing.zkvm_version
        );
    }
    Ok(existing)
}

/// Whether `request` is closed: fulfilled, unfulfillable or cancelled.
pub(crate) fn is_closed(request: &proto::ProofRequest) -> bool {
    proto::RequestStatus::try_from(request.status).is_ok_and(proto::RequestStatus::is_closed)
}

/// The request's status in lower case (`requested`, `assigned`, `fulfilled`, …).
pub(crate) fn status_name(request: &proto::ProofRequest) -> &'static str {
    proto::RequestStatus::try_from(request.status).map_or("unknown", proto::RequestStatus::name)
}

/// The request's execution status in lower case (`unexecuted`, `executed`, `unexecutable`).
pub(crate) fn execution_name(request: &proto::ProofRequest) -> &'static str {
    use proto::ExecutionStatus as E;
    match E::try_from(request.execution_status) {
        Ok(E::Unexecuted) => "unexecuted",
        Ok(E::Executed) => "executed",
        Ok(E::Unexecutable) => "unexecutable",
        _ => "unknown",
    }
}

/// Why a closed request has no proof, if it says.
pub(crate) fn close_reason(request: &proto::ProofRequest) -> Option<&str> {
    [&request.unfulfillable_reason, &request.unexecutable_reason]
        .into_iter()
        .find(|r| !r.is_empty())
        .map(String::as_str)
}

/// A program name the network accepts, made from a file or folder name: lower case, other
/// characters replaced by `-`.
pub(crate) fn program_name_from(path: &Path) -> String {
    let stem = if path.is_dir() { path.file_name() } else { path.file_stem() };
    ProgramName::from_text(&stem.map(|s| s.to_string_lossy()).unwrap_or_default()).to_string()
}

/// Parses a request id given on the command line.
///
/// # Errors
/// Anything but `0x` and 64 hex digits, with an example.
pub(crate) fn parse_request_id(text: &str) -> anyhow::Result<RequestId> {
    text.parse().map_err(|_| {
        anyhow!(
            "malformed request id {text:?}: expected 0x and 64 hex digits, as `provernet request submit` prints"
        )
    })
}

/// Parses a decimal amount from the wire (empty means 0).
pub(crate) fn parse_amount(text: &str) -> anyhow::Result<Amount> {
    if text.is_empty() {
        return Ok(Amount::ZERO);
    }
    text.parse().map_err(|e| anyhow!("the network sent a malformed amount {text:?}: {e}"))
}

fn artifact_id(what: &str, bytes: &[u8]) -> anyhow::Result<ArtifactId> {
    ArtifactId::from_slice(bytes).map_err(|e| anyhow!("the request's {what} artifact id: {e}"))
}

fn grpc_code(e: &ClientError) -> Option<i32> {
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

/// The error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_names_and_ids() {
        assert_eq!(normalize_url("grpc://127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(normalize_url("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(normalize_url("https://x:1"), "https://x:1");
        assert_eq!(program_name_from(Path::new("dir/My Prog.masm")), "my-prog");
        assert!(parse_request_id("0x12").is_err());
        assert!(parse_request_id(&format!("0x{}", "ab".repeat(32))).is_ok());
        assert_eq!(parse_amount("").ok(), Some(Amount::ZERO));
    }
}
