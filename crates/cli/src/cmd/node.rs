//! `provernet node init|register|run|status`: set up and run a prover node.

use std::path::PathBuf;

use anyhow::{Context, bail};
use provernet_node::{NodeConfig, config::NetworkApi, launch};
use provernet_types::{Amount, NetworkClient};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{artifacts::shutdown_signal, status};
use crate::keys::{read_key, write_new_key};

/// The node commands.
#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Write a commented default config and a new operator key (mode 0600).
    #[command(
        after_help = "Example:\n  provernet node init --dir ./node --network http://127.0.0.1:50051"
    )]
    Init(InitArgs),
    /// Register the node's key as a prover on the network, with stake.
    #[command(
        after_help = "Example:\n  provernet node register --config ./node/node.toml --stake 1000000000 --faucet"
    )]
    Register(RegisterArgs),
    /// Run the node: bid, prove, submit, until Ctrl-C or SIGTERM.
    #[command(
        after_help = "Example:\n  provernet node run --config ./node/node.toml --set bidding.margin=0.3"
    )]
    Run(RunArgs),
    /// Print a running node's state, jobs and recent bids (from its monitor endpoint).
    Status(status::StatusArgs),
}

/// Flags of `provernet node init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Folder for the config, key and data.
    #[arg(long, default_value = ".provernet/node")]
    dir: PathBuf,
    /// The network's gRPC URL.
    #[arg(long, default_value = "http://127.0.0.1:50051", env = "PROVERNET_NETWORK")]
    network: String,
    /// The API the network speaks: `provernet` (its own) or `succinct` (the Succinct Prover
    /// Network's, as a provernet network with --succinct-api or any such endpoint serves it).
    #[arg(long, default_value = "provernet")]
    api: NetworkApi,
}

/// Where the node's config is, and overrides.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The node config file.
    #[arg(long, default_value = ".provernet/node/node.toml", env = "PROVERNET_NODE_CONFIG")]
    config: PathBuf,
    /// Override a setting: `--set section.name=value` (repeatable; wins over the environment).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Flags of `provernet node register`.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The stake to lock (at least the network's minimum).
    #[arg(long)]
    stake: Amount,
    /// Fund the key from the faucet first (devnets).
    #[arg(long)]
    faucet: bool,
}

/// Flags of `provernet node run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Runs a node command.
pub async fn run(command: NodeCommand) -> anyhow::Result<()> {
    match command {
        NodeCommand::Init(args) => init(args),
        NodeCommand::Register(args) => register(args).await,
        NodeCommand::Run(args) => run_node(args).await,
        NodeCommand::Status(args) => status::run(args).await,
    }
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let config_path = args.dir.join("node.toml");
    let key_path = args.dir.join("node.key");
    for path in [&config_path, &key_path] {
        if path.exists() {
            bail!("{} already exists: not overwriting it", path.display());
        }
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut config = NodeConfig::new(&args.network);
    config.network.api = args.api;
    config.validate()?;
    let key = write_new_key(&key_path)?;
    std::fs::write(&config_path, config.template())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    println!("config    {}", config_path.display());
    println!("key       {} (operator {})", key_path.display(), key.address());
    if args.api == NetworkApi::Succinct {
        println!("api       succinct (the prover must be registered and staked on the network)");
    }
    println!();
    println!("next: provernet calibrate --write {}", config_path.display());
    println!("      provernet node register --config {} --stake <amount>", config_path.display());
    println!("      provernet node run --config {}", config_path.display());
    Ok(())
}

/// The config from the file, then `PROVERNET_NODE_*`, then `--set`.
pub(crate) fn load(args: &ConfigArgs) -> anyhow::Result<NodeConfig> {
    let mut config = match NodeConfig::load(&args.config) {
        Ok(config) => config,
        Err(e @ provernet_node::ConfigError::Read { .. }) => {
            return Err(anyhow::Error::new(e).context("run `provernet node init` to create one"));
        }
        Err(e) => return Err(e.into()),
    };
    config.apply_env(std::env::vars())?;
    for setting in &args.set {
        let (key, value) = setting
            .split_once('=')
            .with_context(|| format!("--set {setting:?}: expected KEY=VALUE"))?;
        config.set(key.trim(), value.trim())?;
    }
    Ok(config)
}

async fn register(args: RegisterArgs) -> anyhow::Result<()> {
    let config = load(&args.config)?;
    let key = read_key(&config.key_file)?;
    let client = match NetworkClient::connect(
        &config.network_url,
        std::time::Duration::from_secs(5),
    )
    .await
    {
        Err(e) if e.code() == Some(tonic::Code::Unimplemented) => bail!(
            "{} speaks only the Succinct API, which has no call to register a prover: ask the \
             network's operator to register and stake {}",
            config.network_url,
            config.prover.unwrap_or_else(|| key.address())
        ),
        other => {
            other.with_context(|| format!("is a network running at {}?", config.network_url))?
        }
    };
    if args.faucet {
        let info = client.info();
        let amount: Amount = info.faucet_max_amount.parse().unwrap_or(args.stake);
        client.faucet(&key, amount).await.context("faucet")?;
    }
    client.register_prover(&key, args.stake, &key.address()).await.context("register")?;
    println!("registered prover {} with stake {}", key.address(), args.stake);
    Ok(())
}

async fn run_node(args: RunArgs) -> anyhow::Result<()> {
    // The bytes the running config was read from: a change from here on is a change, even one
    // made while the node starts.
    let loaded = std::fs::read(&args.config.config).ok();
    let config = load(&args.config)?;
    // From the start: a SIGHUP's default action ends the process.
    let hangups = Hangups::listen();
    let monitor = TcpListener::bind(&config.monitor.listen)
        .await
        .with_context(|| format!("cannot serve the monitor on {}", config.monitor.listen))?;
    let shutdown = CancellationToken::new();
    let signal = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: no new bids; finishing what can make its deadline");
            shutdown.cancel();
        })
    };
    let node = launch(config, Some(monitor), shutdown.clone()).await;
    let node = match node {
        Ok(node) => node,
        Err(provernet_node::NodeError::Stopped) => return Ok(()),
        Err(e) => return Err(e).context("cannot start the node"),
    };
    if let Some(addr) = node.monitor_addr {
        println!("monitor   http://{addr}/status");
    }
    println!("prover    {}", node.context.prover);
    println!("network   {} ({} API)", node.context.driver.url(), node.context.driver.api());
    let reloads = tokio::spawn(reload_on_change(args.config, loaded, node.reloader(), hangups));
    node.join.await.context("node task failed")?;
    reloads.abort();
    signal.abort();
    Ok(())
}

/// SIGHUPs received (on Unix; elsewhere, none ever).
struct Hangups {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangups {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signal = signal(SignalKind::hangup())
                .inspect_err(|err| {
                    tracing::warn!(%err, "cannot listen for SIGHUP: the config reloads when its file changes");
                })
                .ok();
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next SIGHUP.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = self.signal.as_mut() {
            if signal.recv().await.is_some() {
                return;
            }
            self.signal = None;
        }
        std::future::pending::<()>().await;
    }
}

/// How often the config file is read to see whether it changed.
const CONFIG_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a changed config file must hold still before it is read as the new config.
const CONFIG_SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// Reloads the node's config (file, environment, flags) on SIGHUP and whenever the file's
/// bytes differ from those last read (`loaded` at start): what a running node can take takes effect, anything else is refused with the
/// reason and the running config kept ([`provernet_node::Reloader::reload`]).
async fn reload_on_change(
    args: ConfigArgs,
    loaded: Option<Vec<u8>>,
    reloader: provernet_node::Reloader,
    mut hangups: Hangups,
) {
    // Bytes, not the modification time: editors that replace the file, and two writes within
    // the clock's granularity, are both seen.
    let read = || std::fs::read(&args.config).ok();
    let mut seen = loaded;
    let mut tick = tokio::time::interval(CONFIG_CHECK_EVERY);
    loop {
        tokio::select! {
            () = hangups.next() => {
                tracing::info!("SIGHUP: reloading the config");
            }
            _ = tick.tick() => {
                let mut now = read();
                if now == seen {
                    continue;
                }
                // A file still being written (an editor saving in place) is read once it
                // holds still, not half-written.
                loop {
                    tokio::time::sleep(CONFIG_SETTLE).await;
                    let again = read();
                    if again == now {
                        break;
                    }
                    now = again;
                }
                seen = now;
                tracing::info!(path = %args.config.display(), "the config file changed: reloading it");
            }
        }
        let reload = reloader.reload(load(&args).map_err(|e| format!("{e:#}")));
        match (&reload.refused, reload.changed.is_empty()) {
            (Some(reason), _) => {
                // One line here (the parser's snippet spans several); /status has it whole.
                let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
                println!("config    reload refused, running config kept: {reason}");
            }
            (None, true) => println!("config    reloaded: nothing changed"),
            (None, false) => println!("config    reloaded: {}", reload.changed.join(", ")),
        }
    }
}
