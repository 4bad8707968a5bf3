//! `provernet artifacts`: run the ArtifactStore on its own.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, bail};
use provernet_artifacts::{ArtifactServer, ArtifactStoreConfig, TlsIdentity, TlsListener, serve};
use tokio::net::TcpListener;

/// Environment variable holding the HMAC secret shared with the network.
pub const SECRET_ENV: &str = "PROVERNET_ARTIFACTS_SECRET";

/// Arguments of `provernet artifacts`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  PROVERNET_ARTIFACTS_SECRET=$(openssl rand -hex 32) \\\n    provernet artifacts --storage ./artifacts --listen 127.0.0.1:7070\n\n\
S3-compatible storage: --storage s3://bucket/prefix with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n\
AWS_REGION and (for MinIO and friends) AWS_ENDPOINT, AWS_ALLOW_HTTP=true."
)]
pub struct ArtifactsArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070", env = "PROVERNET_ARTIFACTS_LISTEN")]
    pub listen: SocketAddr,
    /// Where artifacts are stored: a folder, `file:///abs/path`, `memory://` or
    /// `s3://bucket/prefix`.
    #[arg(long, default_value = ".provernet/artifacts", env = "PROVERNET_ARTIFACTS_STORAGE")]
    pub storage: String,
    /// Largest artifact accepted, in bytes (larger uploads get 413).
    #[arg(long, default_value_t = 4 << 30)]
    pub max_artifact_bytes: u64,
    /// File holding the HMAC secret shared with the network (mode 0600). Without it, the secret
    /// is read from PROVERNET_ARTIFACTS_SECRET.
    #[arg(long, env = "PROVERNET_ARTIFACTS_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// Seconds between retention sweeps that delete expired artifacts.
    #[arg(long, default_value_t = 60)]
    pub retention_sweep_secs: u64,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS from certificate and key files, for the servers' ports.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// Serve TLS with this certificate chain (PEM, leaf first); needs --tls-key. Clients then use
    /// https:// URLs (a private CA: PROVERNET_TLS_CA=ca.pem on their side).
    #[arg(long, env = "PROVERNET_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "PROVERNET_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The identity the flags name, read from its files (`None` without the flags).
    pub fn identity(&self) -> anyhow::Result<Option<TlsIdentity>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(
                TlsIdentity::from_files(cert, key)
                    .context("cannot read the TLS certificate or key")?,
            )),
            _ => Ok(None),
        }
    }
}

impl ArtifactsArgs {
    /// The store config these flags describe (reads the secret).
    pub fn config(&self) -> anyhow::Result<ArtifactStoreConfig> {
        let secret = match &self.secret_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| {
                    format!("cannot read the secret file {}: check the path", path.display())
                })?
                .trim()
                .to_owned(),
            None => std::env::var(SECRET_ENV).unwrap_or_default(),
        };
        if secret.is_empty() {
            bail!(
                "no HMAC secret: set {SECRET_ENV} or pass --secret-file (e.g. `openssl rand -hex 32`)"
            );
        }
        Ok(ArtifactStoreConfig {
            storage: self.storage.clone(),
            max_artifact_bytes: self.max_artifact_bytes,
            secret,
            retention_sweep_secs: self.retention_sweep_secs,
            ..ArtifactStoreConfig::default()
        })
    }
}

/// Serves the ArtifactStore until Ctrl-C or SIGTERM.
pub async fn run(args: ArtifactsArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let server = ArtifactServer::new(&config).context("cannot start the artifact store")?;
    let listener = TcpListener::bind(args.listen).await.with_context(|| {
        format!("cannot listen on {}: is the port in use? try --listen", args.listen)
    })?;
    let addr = listener.local_addr()?;
    match args.tls.identity()? {
        Some(identity) => {
            let tls = identity.server_config().context("cannot serve TLS")?;
            println!("artifact store on https://{addr} ({})", config.storage);
            serve(TlsListener::new(listener, tls)?, server, shutdown_signal()).await
        }
        None => {
            println!("artifact store on http://{addr} ({})", config.storage);
            serve(listener, server, shutdown_signal()).await
        }
    }
    .context("artifact store failed")?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
