//! `provernet worker`: a proving machine of a node's pool (`[cluster]` in the node's
//! node.toml). It measures its throughput (unless told it), registers with the pool's
//! PostgreSQL, claims the node's proving tasks it can hold, proves, and hands the proofs back.
//! Ctrl-C or SIGTERM: no more claims, proofs in flight finish; a second signal ends it at once
//! (the claims it held go back to the queue when their lease runs out).

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use anyhow::Context;
use provernet_node::{
    Resources,
    config::Sp1Config,
    pool::{ClusterSecret, Worker, WorkerConfig},
};
use provernet_zkvm::ZkVmRegistry;
use tokio_util::sync::CancellationToken;

use super::{artifacts::shutdown_signal, calibrate};

/// Flags of `provernet worker`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  provernet worker --write-secret cluster.secret\n  \
                        provernet worker --database-url postgres://prover:pw@db/pool \
                        --secret-file cluster.secret --id gpu-box-1")]
pub struct WorkerArgs {
    /// The pool's PostgreSQL URL: the node's `cluster.database_url`.
    #[arg(long, env = "PROVERNET_CLUSTER_DATABASE_URL", required_unless_present = "write_secret")]
    database_url: Option<String>,
    /// The node's cluster secret file (`cluster.secret_file`).
    #[arg(long, default_value = "cluster.secret")]
    secret_file: PathBuf,
    /// This worker's name in the pool [default: the host name]; give each worker on one host
    /// its own.
    #[arg(long)]
    id: Option<String>,
    /// zkVM versions to prove [default: every one this build and the node share].
    #[arg(long, value_delimiter = ',')]
    versions: Vec<String>,
    /// Cores for proving [default: all].
    #[arg(long)]
    cores: Option<u32>,
    /// Cores one proof uses: proofs at once = cores / cores-per-slot.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    cores_per_slot: u32,
    /// Memory for proving, GiB [default: total less 2 GiB].
    #[arg(long)]
    memory_gib: Option<u64>,
    /// Miden throughput, PGUs per second [default: measured at start with a quick proof, as
    /// `provernet calibrate --quick`]; each proof refines it.
    #[arg(long)]
    pgus_per_second: Option<f64>,
    /// Where the artifact cache lives.
    #[arg(long, default_value = "worker-data")]
    data_dir: PathBuf,
    /// The artifact cache's bound, MiB.
    #[arg(long, default_value_t = 1024)]
    cache_mib: u64,
    /// Write a new random cluster secret to this file (mode 0600) and exit: give it to the node
    /// (`cluster.secret_file`) and to every worker.
    #[arg(long, value_name = "FILE", conflicts_with = "database_url")]
    write_secret: Option<PathBuf>,
}

/// Memory kept back for the OS and the worker itself.
const RESERVED_MEMORY: u64 = 2 << 30;

/// Runs `provernet worker`.
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.write_secret {
        return write_secret(path);
    }
    let database_url = args.database_url.clone().context("--database-url is required")?;
    let secret = ClusterSecret::read(&args.secret_file)?;
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let resources = Resources {
        cores: args
            .cores
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32)),
        memory_bytes: args
            .memory_gib
            .map_or_else(|| system.total_memory().saturating_sub(RESERVED_MEMORY), |gib| gib << 30),
        cores_per_slot: args.cores_per_slot,
        gpus: 0,
        gpu_memory_bytes: 0,
    };
    let id =
        args.id.clone().or_else(sysinfo::System::host_name).unwrap_or_else(|| "worker".to_owned());
    let backends = ZkVmRegistry::with_default_backends();
    let pgus_per_second = rates(&backends, args.pgus_per_second).await?;
    let config = WorkerConfig {
        id: id.clone(),
        host: sysinfo::System::host_name().unwrap_or_default(),
        database_url,
        secret,
        versions: args.versions.clone(),
        resources,
        pgus_per_second,
        cache_dir: args.data_dir.join("cache"),
        cache_bytes: args.cache_mib << 20,
    };
    let shutdown = CancellationToken::new();
    let signal = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            println!("worker    stopping: no new claims; finishing the proofs in flight");
            shutdown.cancel();
            shutdown_signal().await;
            println!("worker    stopped at once: its claims return to the queue after their lease");
            std::process::exit(130);
        })
    };
    let worker =
        Worker::register(config, backends, &shutdown).await.context("cannot join the pool")?;
    println!("worker    {id} proves {} for the pool", worker.versions().join(", "));
    let result = Arc::new(worker).run(shutdown).await.context("the worker failed");
    signal.abort();
    result
}

/// Each version's throughput at start: Miden's given or measured by one quick proof, SP1's the
/// node's default.
async fn rates(
    backends: &ZkVmRegistry,
    miden: Option<f64>,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut rates = BTreeMap::new();
    for version in backends.versions() {
        let rate = if version.starts_with("sp1-") {
            Sp1Config::default().pgus_per_second
        } else if let Some(rate) = miden {
            rate
        } else {
            let backend = backends.get(&version)?;
            let rate = calibrate::quick_throughput(&backend).await?;
            println!("measured  {version}: {rate:.0} PGUs/s");
            rate
        };
        rates.insert(version, rate);
    }
    Ok(rates)
}

fn write_secret(path: &std::path::Path) -> anyhow::Result<()> {
    let secret = ClusterSecret::generate();
    std::fs::write(path, format!("{secret}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {} to its owner", path.display()))?;
    }
    println!("wrote a new cluster secret to {}", path.display());
    Ok(())
}
