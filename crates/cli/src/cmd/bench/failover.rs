//! `provernet bench failover`: two `provernet network` processes on one PostgreSQL (hot standby),
//! the leader SIGKILLed again and again; the time from each kill to the first write the new
//! leader accepts, as p50/p99.
//!
//! Each round: a write lands on the leader (a faucet deposit), the leader is killed, and a
//! client aimed at the standby's address sends the next deposit every 5 ms until one is
//! accepted; the killed process then comes back as the standby. The market holds `--accounts`
//! funded accounts, which each standby follows (it loaded them when it started).

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Args;
use provernet_types::{Amount, NetworkClient, Signer};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

use crate::cmd::devnet::RunSchema;

/// `provernet bench failover`'s flags.
#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// The PostgreSQL to run in (a schema of its own is made, and dropped at the end).
    #[arg(long, env = "PROVERNET_BENCH_POSTGRES_URL")]
    database_url: String,
    /// Leaders killed.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    kills: u32,
    /// Funded accounts in the market (a standby loads them when it starts, then follows).
    #[arg(long, default_value_t = 1_000)]
    accounts: u32,
}

/// Longest wait for a process to start or a leader to serve.
const PATIENCE: Duration = Duration::from_secs(60);

/// A `provernet network` process and its stdout.
struct Process {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Process {
    async fn start(
        root: &std::path::Path,
        k: usize,
        url: &str,
        port: u16,
        artifacts: u16,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this program")?;
        let mut child = Command::new(exe)
            .args(["network", "--database-url", url])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--artifacts-listen", &format!("127.0.0.1:{artifacts}")])
            .args(["--artifacts-url", &format!("http://127.0.0.1:{artifacts}")])
            .arg("--artifact-storage")
            .arg(root.join("artifacts"))
            .arg("--data-dir")
            .arg(root.join(format!("n{k}")))
            .args(["--rate-limit", "0"])
            .env("PROVERNET_ARTIFACTS_SECRET", "the secret both network processes share")
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start provernet network")?;
        let stdout = child.stdout.take().context("no stdout")?;
        Ok(Self { child, lines: BufReader::new(stdout).lines() })
    }

    /// Waits for a stdout line starting with `prefix`.
    async fn line(&mut self, prefix: &str) -> anyhow::Result<String> {
        let wait = async {
            while let Some(line) = self.lines.next_line().await? {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return Ok(rest.to_owned());
                }
            }
            bail!("provernet network exited before printing {prefix:?}")
        };
        tokio::time::timeout(PATIENCE, wait).await.with_context(|| format!("no {prefix:?} line"))?
    }
}

/// Runs the benchmark and prints its table.
pub async fn run(args: FailoverArgs) -> anyhow::Result<()> {
    let schema = RunSchema::create(&args.database_url).await?;
    let result = rounds(&args, &schema.url).await;
    schema.drop().await;
    let mut took = result?;
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    println!("failover    leader SIGKILLed → first write accepted by the new leader");
    println!("kills       {}", took.len());
    println!("accounts    {}", args.accounts);
    println!("p50         {:.0} ms", at(0.5) * 1e3);
    println!("p99         {:.0} ms", at(0.99) * 1e3);
    println!("max         {:.0} ms", at(1.0) * 1e3);
    Ok(())
}

async fn rounds(args: &FailoverArgs, url: &str) -> anyhow::Result<Vec<f64>> {
    let root = tempfile::Builder::new().prefix("provernet-failover-").tempdir()?;
    let ports = [free_port()?, free_port()?];
    let artifacts = free_port()?;
    let mut leader = Process::start(root.path(), 0, url, ports[0], artifacts).await?;
    leader.line("network     ").await?;
    let mut standby = Process::start(root.path(), 1, url, ports[1], artifacts).await?;
    standby.line("standby     ").await?;
    let mut serving = 0;

    let client =
        NetworkClient::connect(&format!("http://127.0.0.1:{}", ports[0]), PATIENCE).await?;
    let signer = Signer::random();
    for _ in 0..args.accounts {
        client.faucet(&Signer::random(), Amount::new(1_000)).await.context("seeding")?;
    }
    let mut took = Vec::new();
    for round in 0..args.kills {
        client_on(ports[serving]).await?.faucet(&signer, Amount::new(1)).await?;
        let killed = Instant::now();
        leader.child.kill().await.context("cannot kill the leader")?;
        serving = 1 - serving;
        // The standby's address, tried until the new leader accepts a write there.
        loop {
            if let Ok(client) = client_on(ports[serving]).await
                && client.faucet(&signer, Amount::new(1)).await.is_ok()
            {
                break;
            }
            if killed.elapsed() > PATIENCE {
                bail!("round {round}: no leader accepted a write within {PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        took.push(killed.elapsed().as_secs_f64());
        eprintln!("round {round}: {:.0} ms", took[took.len() - 1] * 1e3);
        standby.line("leader      ").await?;
        let back =
            Process::start(root.path(), 1 - serving, url, ports[1 - serving], artifacts).await?;
        leader = std::mem::replace(&mut standby, back);
        standby.line("standby     ").await?;
    }
    Ok(took)
}

async fn client_on(port: u16) -> anyhow::Result<NetworkClient> {
    Ok(NetworkClient::connect(&format!("http://127.0.0.1:{port}"), Duration::from_secs(1)).await?)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
