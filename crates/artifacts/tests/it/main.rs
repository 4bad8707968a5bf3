//! Integration tests: the real server on `127.0.0.1:0` over a temporary folder, driven through
//! the client and raw HTTP. Every test is bounded by [`within`].

mod cache;
mod durability;
mod limits;
mod ranges;
mod retention;
mod retry;
mod roundtrip;
mod s3;
mod signatures;
mod storage_full;

use std::{future::Future, time::Duration};

use provernet_artifacts::{
    ArtifactClient, ArtifactClientConfig, ArtifactId, ArtifactKind, ArtifactServer,
    ArtifactStoreConfig, RetryPolicy, UrlSigner, Visibility, presign::Grant, public_url, serve,
};
use tempfile::TempDir;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// Secret shared by the test server and its signer.
pub const SECRET: &str = "integration-test-secret-0123456789";

/// Upper bound on any one test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `fut`, failing the test if it takes longer than [`TEST_TIMEOUT`].
pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, fut).await.expect("test timed out")
}

/// A running store over a temporary folder; stopped (and the folder removed) on drop.
pub struct TestStore {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// Signer with the server's secret.
    pub signer: UrlSigner,
    /// The server state (storage, retention).
    pub server: ArtifactServer,
    /// Temporary folder: storage in `store/`, scratch files elsewhere.
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestStore {
    /// Starts a store with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a store after `tweak`ing its config.
    pub async fn start_with(tweak: impl FnOnce(&mut ArtifactStoreConfig)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config =
            ArtifactStoreConfig::new(dir.path().join("store").display().to_string(), SECRET);
        tweak(&mut config);
        let server = ArtifactServer::new(&config).expect("server");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn({
            let server = server.clone();
            async move {
                serve(listener, server, async move {
                    let _ = stop.await;
                })
                .await
                .expect("serve");
            }
        });
        Self {
            base,
            signer: UrlSigner::new(SECRET).expect("signer"),
            server,
            dir,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// The storage folder.
    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("store")
    }

    /// A scratch path inside the temporary folder.
    pub fn scratch(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A presigned PUT URL valid for a minute.
    pub fn put_url(&self, id: ArtifactId, kind: ArtifactKind, visibility: Visibility) -> String {
        self.signer.presign_put(id, kind, visibility, Duration::from_secs(60), None).url(&self.base)
    }

    /// A presigned GET URL valid for a minute.
    pub fn get_url(&self, id: ArtifactId) -> String {
        self.signer
            .presign_get(id, ArtifactKind::Inputs, Visibility::Private, Duration::from_secs(60))
            .url(&self.base)
    }

    /// A URL for an arbitrary grant.
    pub fn url_for(&self, grant: Grant) -> String {
        self.signer.sign(grant).url(&self.base)
    }

    /// The unsigned URL of `id`.
    pub fn public_url(&self, id: ArtifactId) -> String {
        public_url(&self.base, &id)
    }

    /// Where the bytes of `id` sit on disk.
    pub fn object_path(&self, id: &ArtifactId) -> std::path::PathBuf {
        self.root().join(provernet_artifacts::ArtifactStorage::object_key(id))
    }

    /// Shuts the server down and waits for it.
    pub async fn stop(mut self) {
        self.stop_now().await;
    }

    async fn stop_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops")
                .expect("server task");
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A client that retries fast (tests must not wait on backoff).
pub fn client() -> ArtifactClient {
    client_with(|_| {})
}

/// A fast-retrying client after `tweak`ing its config.
pub fn client_with(tweak: impl FnOnce(&mut ArtifactClientConfig)) -> ArtifactClient {
    let mut config = ArtifactClientConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        },
        ..ArtifactClientConfig::default()
    };
    tweak(&mut config);
    ArtifactClient::with_config(config).expect("client")
}

/// `len` pseudo-random bytes from `seed` (BLAKE3 XOF: fast even in debug builds).
pub fn random_bytes(len: usize, seed: &str) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new().update(seed.as_bytes()).finalize_xof().fill(&mut out);
    out
}

/// Raw HTTP for checking statuses and bodies.
pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// Asserts a response has `status` and a JSON error body with `code`; returns the message.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "status");
    let body = response.bytes().await.expect("body");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON error body");
    assert_eq!(body["code"], code, "code in {body}");
    body["error"].as_str().expect("error message").to_owned()
}

/// The staged uploads under `dir`.
pub use provernet_artifacts::storage::staged_files;
