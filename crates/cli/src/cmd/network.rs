//! `provernet network`: run the ProverNetwork, with the ArtifactStore embedded.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, bail};
use axum::http::header;
use metrics_exporter_prometheus::PrometheusHandle;
use provernet_network::{NetworkConfig, Role, SuccinctApiConfig, launch, serve::ArtifactsListener};
use provernet_types::{Address, Amount};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::artifacts::{SECRET_ENV, TlsArgs, shutdown_signal};

/// Arguments of `provernet network`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  PROVERNET_ARTIFACTS_SECRET=$(openssl rand -hex 32) provernet network --data-dir ./net\n\n\
PostgreSQL instead of SQLite:\n  provernet network --database-url postgres://user:pass@host/db"
)]
pub struct NetworkArgs {
    /// gRPC address to listen on.
    #[arg(long, default_value = "127.0.0.1:50051", env = "PROVERNET_NETWORK_LISTEN")]
    listen: SocketAddr,
    /// ArtifactStore (HTTP) address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070", env = "PROVERNET_ARTIFACTS_LISTEN")]
    artifacts_listen: SocketAddr,
    /// The ArtifactStore URL handed to clients (default: http://<artifacts-listen>).
    #[arg(long, env = "PROVERNET_ARTIFACTS_URL")]
    artifacts_url: Option<String>,
    /// Folder for the SQLite database and artifacts.
    #[arg(long, default_value = ".provernet/network", env = "PROVERNET_DATA_DIR")]
    data_dir: PathBuf,
    /// Database URL (`sqlite://file` or `postgres://…`); default: SQLite in the data folder.
    #[arg(long, env = "PROVERNET_DATABASE_URL")]
    database_url: Option<String>,
    /// Artifact storage (folder, `memory://`, `s3://bucket/prefix`); default: the data folder.
    #[arg(long, env = "PROVERNET_ARTIFACTS_STORAGE")]
    artifact_storage: Option<String>,
    /// The network id: the signing domain.
    #[arg(long, default_value = "provernet-devnet", env = "PROVERNET_NETWORK_ID")]
    network_id: String,
    /// Largest faucet deposit; 0 disables the faucet (production: use --admin).
    #[arg(long, default_value = "1000000000000")]
    faucet_limit: Amount,
    /// The account allowed to make admin deposits.
    #[arg(long, env = "PROVERNET_ADMIN")]
    admin: Option<Address>,
    /// Serve Prometheus metrics at http://<addr>/metrics.
    #[arg(long, env = "PROVERNET_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Largest artifact the ArtifactStore accepts, in bytes (inputs; 413 above it).
    #[arg(long, default_value_t = 1 << 30)]
    max_artifact_bytes: u64,
    /// Largest program accepted for upload and registration, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    max_program_bytes: u64,
    /// Largest proof accepted for upload and verification, in bytes.
    #[arg(long, default_value_t = 32 << 20)]
    max_proof_bytes: u64,
    /// State-changing calls per second per account; 0 disables the limit.
    #[arg(long, default_value_t = 200, env = "PROVERNET_RATE_LIMIT")]
    rate_limit: u32,
    /// Calls an account may make at once after a quiet while.
    #[arg(long, default_value_t = 400)]
    rate_limit_burst: u32,
    /// Open subscriptions per connection.
    #[arg(long, default_value_t = 16)]
    max_subscriptions_per_connection: usize,
    /// Requests queued for the executor above which RequestProof is refused.
    #[arg(long, default_value_t = 1_000)]
    max_queued_executions: usize,
    /// Proofs queued for the verifier above which FulfillProof is refused.
    #[arg(long, default_value_t = 100)]
    max_queued_verifications: usize,
    /// Also serve the Succinct Prover Network's API (`network.ProverNetwork`,
    /// `artifact.ArtifactStore`) on the gRPC port, for SP1's SDK (`NETWORK_RPC_URL`) and
    /// Succinct-protocol prover nodes.
    #[arg(long, env = "PROVERNET_SUCCINCT_API")]
    succinct_api: bool,
    /// The chain id of the EIP-712 domain Succinct-API bodies must name (1: the original
    /// mainnet's, which reference nodes hard-code).
    #[arg(long, default_value_t = provernet_types::succinct::MAINNET_CHAIN_ID)]
    succinct_chain_id: u64,
    /// Delete accepted proofs from the ArtifactStore this many days after their request
    /// closed (the request keeps its record, with `proof_deleted_at`); 0 keeps them for ever.
    #[arg(long, default_value_t = 0, env = "PROVERNET_PROOF_RETENTION_DAYS")]
    proof_retention_days: u64,
    /// TLS on both ports (gRPC and the ArtifactStore).
    #[command(flatten)]
    tls: TlsArgs,
}

/// Serves the network until Ctrl-C or SIGTERM.
pub async fn run(args: NetworkArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data folder {}", args.data_dir.display()))?;
    let secret = secret(&args.data_dir)?;
    if let Some(addr) = args.metrics_listen {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(provernet_types::LATENCY_BUCKETS_SECONDS)
            .context("metrics buckets")?
            .install_recorder()
            .context("cannot install the metrics recorder")?;
        // Bound here rather than by the exporter, so that port 0 works and the address printed
        // is the one bound.
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
        println!("metrics     http://{}/metrics", listener.local_addr()?);
        tokio::spawn(serve_metrics(listener, handle));
    }
    let cancel = CancellationToken::new();
    let grpc = TcpListener::bind(args.listen).await.with_context(|| {
        format!("cannot listen on {}: is another network running?", args.listen)
    })?;
    // Several processes on one PostgreSQL may share the ArtifactStore's address: each binds it
    // once it leads. Port 0 (any free port) is bound now, to know it.
    let shared = args.database_url.as_deref().is_some_and(|url| url.starts_with("postgres"))
        && args.artifacts_listen.port() != 0;
    let artifacts = if shared {
        ArtifactsListener::WhenLeading(args.artifacts_listen)
    } else {
        ArtifactsListener::Bound(
            TcpListener::bind(args.artifacts_listen)
                .await
                .with_context(|| format!("cannot listen on {}", args.artifacts_listen))?,
        )
    };
    let tls = args.tls.identity()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // From the bound address, so that port 0 (any free port) works.
    let artifacts_url = match (args.artifacts_url, &artifacts) {
        (Some(url), _) => url,
        (None, ArtifactsListener::Bound(listener)) => {
            format!("{scheme}://{}", listener.local_addr()?)
        }
        (None, ArtifactsListener::WhenLeading(addr)) => format!("{scheme}://{addr}"),
    };
    let mut config =
        NetworkConfig::local(&args.data_dir, &args.network_id, &artifacts_url, &secret);
    if let Some(url) = args.database_url {
        config.database_url = url;
    }
    if let Some(storage) = args.artifact_storage {
        config.artifact_storage = storage;
    }
    config.market.faucet_limit = (!args.faucet_limit.is_zero()).then_some(args.faucet_limit);
    config.market.admin = args.admin;
    config.max_artifact_bytes = args.max_artifact_bytes;
    config.max_program_bytes = args.max_program_bytes.min(args.max_artifact_bytes);
    config.max_proof_bytes = args.max_proof_bytes.min(args.max_artifact_bytes);
    config.account_rate_limit = (args.rate_limit > 0).then_some(provernet_network::RateLimit {
        per_second: args.rate_limit,
        burst: args.rate_limit_burst.max(args.rate_limit),
    });
    config.max_subscriptions_per_connection = args.max_subscriptions_per_connection.max(1);
    config.max_queued_executions = args.max_queued_executions.max(1);
    config.max_queued_verifications = args.max_queued_verifications.max(1);
    config.tls = tls;
    config.proof_retention = (args.proof_retention_days > 0)
        .then(|| std::time::Duration::from_secs(args.proof_retention_days.saturating_mul(86_400)));
    if args.succinct_api {
        let mut succinct = SuccinctApiConfig::for_network(&args.network_id);
        succinct.chain_id = args.succinct_chain_id;
        config.succinct = Some(succinct);
    }
    // On PostgreSQL, several network processes may share the database: one leads, the others
    // stand by (serving reads) and take over when it goes. Ctrl-C while the database is being
    // opened or the market loaded stops at once.
    let launching = launch(config, grpc, artifacts, cancel.clone());
    let handle = tokio::select! {
        launched = launching => launched,
        () = shutdown_signal() => return Ok(()),
    };
    let handle = match handle {
        Err(provernet_network::serve::LaunchError::StoodBy) => return Ok(()),
        other => other.context("cannot start the network")?,
    };
    let mut role = handle.role.clone();
    print_role(*role.borrow_and_update());
    tokio::spawn(async move {
        while role.changed().await.is_ok() {
            print_role(*role.borrow_and_update());
        }
    });
    // grpc:// for plain h2c, as scripts expect; https:// with TLS.
    let shown = if scheme == "https" { "https" } else { "grpc" };
    println!("network     {shown}://{}  (id {})", handle.grpc_addr, args.network_id);
    if args.succinct_api {
        println!("succinct    NETWORK_RPC_URL={scheme}://{}", handle.grpc_addr);
    }
    println!("artifacts   {artifacts_url}");
    let stopped_itself = tokio::select! {
        () = shutdown_signal() => false,
        () = cancel.cancelled() => true,
    };
    cancel.cancel();
    handle.join.await.context("network task failed")?;
    if stopped_itself {
        bail!(
            "the network stopped: another process leads the database now, or its store failed \
             (see the log above)"
        );
    }
    Ok(())
}

/// Says what this process does in a database several network processes share.
fn print_role(role: Role) {
    match role {
        Role::StandingBy => println!(
            "standby     another network process leads this database; serving reads, waiting to take over"
        ),
        Role::Leading { epoch: Some(epoch) } => {
            println!("leader      epoch {epoch} of this database")
        }
        Role::Leading { epoch: None } => {}
    }
}

/// The artifact HMAC secret: from the environment, or kept in the data folder (mode 0600),
/// created on first start.
fn secret(data_dir: &std::path::Path) -> anyhow::Result<String> {
    if let Ok(secret) = std::env::var(SECRET_ENV)
        && !secret.is_empty()
    {
        return Ok(secret);
    }
    let path = data_dir.join("artifacts.secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().to_owned());
    }
    let secret = provernet_types::Signer::random().secret_hex();
    crate::keys::write_private(&path, &secret)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(secret)
}

/// Serves the process's Prometheus text at `/metrics` until the process ends.
async fn serve_metrics(listener: TcpListener, handle: PrometheusHandle) {
    let render = move || {
        let handle = handle.clone();
        async move {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render())
        }
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(render));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("the metrics endpoint failed: {e}");
    }
}
