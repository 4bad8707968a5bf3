//! Test support for the node's tests and benchmarks and the CLI's (feature `test-utils`, as
//! reth does): a node configured in a temp dir for a registered prover key ([`TestNode`]),
//! launched and stopped within [`WAIT`], and a requester that uploads, registers and asks
//! through [`NetworkClient`] ([`TestRequester`]). The network they run against is
//! `provernet_network::test_utils::TestNetwork`; this module does not depend on it, as the
//! node never does.
//!
//! Helpers panic on failure: a failed call in a test's setup is a failed test, named.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::{sync::Arc, time::Duration};

use provernet_artifacts::ArtifactClient;
use provernet_client::{Requester, UploadSource, VerifiedProof};
use provernet_types::{
    Address, Amount, ArtifactId, NetworkClient, RequestId, RequestSpec, Signer, proto,
};
use provernet_zkvm::samples::Sample;
use tokio_util::sync::CancellationToken;

use crate::{Clock, NodeConfig, NodeHandle};

/// The longest wait for a node to stop.
pub const WAIT: Duration = Duration::from_secs(40);
/// The Miden version string.
pub const MIDEN: &str = "miden-0.23";
/// The stake [`TestNode::register`] stakes.
pub const STAKE: u128 = 1_000_000_000;

/// A node's economics and capacity for a test.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpec {
    /// What an hour of proving costs the operator.
    pub cost_per_hour: u128,
    /// The proving speed the node assumes before it has calibrated.
    pub pgus_per_second: f64,
    /// Memory for proving, GiB.
    pub memory_gib: u64,
}

impl Default for NodeSpec {
    fn default() -> Self {
        Self { cost_per_hour: 360_000_000, pgus_per_second: 5_000.0, memory_gib: 4 }
    }
}

/// A prover key (its own operator) and its node's config, with the key file and data in a
/// temp dir that lives as long as this.
pub struct TestNode {
    /// The prover's key.
    pub key: Signer,
    /// The node's config (editable before launch).
    pub config: NodeConfig,
    _dir: tempfile::TempDir,
}

impl TestNode {
    /// Registers the funded `key` as a prover (its own operator, [`STAKE`]) on the network at
    /// `client`, and writes its node's config as `spec` says.
    pub async fn register(client: &NetworkClient, key: Signer, spec: NodeSpec) -> Self {
        client.register_prover(&key, Amount::new(STAKE), &key.address()).await.unwrap();
        Self::configure(client.url(), key, spec)
    }

    /// A node config for the prover `key` on the network at `url`, as `spec` says (2 cores).
    pub fn configure(url: &str, key: Signer, spec: NodeSpec) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node.key"), key.secret_hex()).unwrap();
        let mut config = NodeConfig::new(url);
        config.key_file = dir.path().join("node.key");
        config.data_dir = dir.path().join("data");
        config.bidding.cost_per_hour = Amount::new(spec.cost_per_hour);
        config.proving.pgus_per_second = spec.pgus_per_second;
        config.proving.cores = 2;
        config.proving.memory_gib = spec.memory_gib;
        Self { key, config, _dir: dir }
    }

    /// The prover's address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// Launches the node; returns it with its shutdown token.
    pub async fn launch(&self) -> (NodeHandle, CancellationToken) {
        let cancel = CancellationToken::new();
        let node = crate::launch(self.config.clone(), None, cancel.clone()).await.unwrap();
        (node, cancel)
    }

    /// [`Self::launch`] on `clock`.
    pub async fn launch_with_clock(
        &self,
        clock: Arc<dyn Clock>,
    ) -> (NodeHandle, CancellationToken) {
        let cancel = CancellationToken::new();
        let node = crate::launch_with_clock(self.config.clone(), None, cancel.clone(), clock)
            .await
            .unwrap();
        (node, cancel)
    }
}

/// Launches a node that must be refused; what it said.
pub async fn launch_refused(config: NodeConfig) -> String {
    match crate::launch(config, None, CancellationToken::new()).await {
        Ok(_) => panic!("a bad setup was accepted"),
        Err(e) => e.to_string(),
    }
}

/// Stops a node and waits for it, at most [`WAIT`].
pub async fn stop(node: (NodeHandle, CancellationToken)) {
    node.1.cancel();
    tokio::time::timeout(WAIT, node.0.join).await.expect("node stopped in time").unwrap();
}

/// A funded requester on the requester client library ([`Requester`]), with specs that tests
/// tweak before they ask.
pub struct TestRequester {
    /// Its key.
    pub key: Signer,
    /// The network's client.
    pub client: NetworkClient,
    /// The requester client library, acting for [`Self::key`].
    pub requester: Requester,
}

impl TestRequester {
    /// A requester with the funded `key`.
    pub fn new(client: &NetworkClient, key: Signer) -> Self {
        let artifacts = ArtifactClient::new().unwrap();
        let requester = Requester::from_parts(client.clone(), artifacts, Some(key.clone()));
        Self { key, client: client.clone(), requester }
    }

    /// Uploads `bytes` as `kind` through a URL the network presigns; its id.
    pub async fn upload(&self, bytes: &[u8], kind: proto::ArtifactKind) -> ArtifactId {
        self.requester.upload(UploadSource::Bytes(bytes), kind, None).await.unwrap()
    }

    /// Downloads the fulfilled request's proof, program and inputs and verifies the proof here.
    pub async fn fetch_proof(&self, id: &RequestId) -> VerifiedProof {
        self.requester.fetch_proof(id).await.unwrap()
    }

    /// Uploads and registers `sample` (under a name unique to this requester), uploads
    /// `inputs`; a request for them: deadline in `deadline_secs`, auction period 1 s.
    pub async fn spec(&self, sample: &Sample, inputs: &str, deadline_secs: u64) -> RequestSpec {
        let source = sample.source.as_bytes();
        self.spec_of(sample.name, MIDEN, source, inputs.as_bytes(), deadline_secs).await
    }

    /// Registers `program` of `zkvm_version`, uploads `inputs`; a request for them: at most
    /// 2^16 PGUs at 1,000 per PGU, base fee 1,000, deadline in `deadline_secs`, auction 1 s.
    pub async fn spec_of(
        &self,
        name: &str,
        zkvm_version: &str,
        program: &[u8],
        inputs: &[u8],
        deadline_secs: u64,
    ) -> RequestSpec {
        let artifact = self.upload(program, proto::ArtifactKind::Program).await;
        let name = format!("{name}-{}", self.key.address());
        let registered =
            self.client.register_program(&self.key, &name, zkvm_version, &artifact).await.unwrap();
        let inputs_id = self.upload(inputs, proto::ArtifactKind::Inputs).await;
        RequestSpec {
            program_id: registered.program_id,
            zkvm_version: zkvm_version.into(),
            program_artifact_id: artifact,
            inputs_artifact_id: inputs_id,
            inputs_private: false,
            deadline: crate::clock::now_secs() + deadline_secs,
            gas_limit: 1 << 16,
            max_price_per_pgu: Amount::new(1_000),
            base_fee: Amount::new(1_000),
            min_auction_period: 1,
            whitelist: Vec::new(),
            expected_outputs_hash: None,
            proof_mode: String::new(),
        }
    }

    /// Asks for a proof of `spec`; its id.
    pub async fn request(&self, spec: &RequestSpec) -> RequestId {
        self.client.request_proof(&self.key, spec).await.unwrap()
    }
}
