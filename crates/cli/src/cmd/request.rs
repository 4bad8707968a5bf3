//! `provernet request submit|status|wait|get|list|faucet|keygen`: the requester's commands.

use std::{io::IsTerminal, path::PathBuf, time::Duration};

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use provernet_types::{Address, Amount, proto};
use provernet_zkvm::{PublicOutputs, ZkVmRegistry};

use provernet_client::{Requester, Submission, close_reason, execution_name, status_name};

use super::local::ProgramArgs;
use crate::requester::{
    ConnectArgs, explain, parse_request_id, program_name_from, upload_progress,
};

/// The requester's commands.
#[derive(Debug, clap::Subcommand)]
pub enum RequestCommand {
    /// Upload a program and its inputs and ask the network for a proof; prints the request id.
    #[command(
        after_help = "Example:\n  provernet request submit programs/fib --key-file me.key --wait"
    )]
    Submit(SubmitArgs),
    /// Show a request: status, execution, PGUs, winner, price, payment.
    #[command(after_help = "Example:\n  provernet request status 0x1234…")]
    Status(IdArgs),
    /// Wait until a request is fulfilled or closed, printing each change (exit 1 if unfulfilled).
    #[command(after_help = "Example:\n  provernet request wait 0x1234… --timeout-secs 300")]
    Wait(WaitArgs),
    /// Download a request's proof and verify it on this machine.
    #[command(
        after_help = "Example:\n  provernet request get 0x1234… --output fib.proof --key-file me.key"
    )]
    Get(GetArgs),
    /// List requests, oldest first.
    #[command(
        after_help = "Example:\n  provernet request list --mine --status assigned --key-file me.key"
    )]
    List(ListArgs),
    /// Credit the account from the network's faucet (devnets only).
    #[command(
        after_help = "Example:\n  provernet request faucet --amount 1000000000 --key-file me.key"
    )]
    Faucet(FaucetArgs),
    /// Write a new secret key to a file (mode 0600) and print its address.
    #[command(after_help = "Example:\n  provernet request keygen me.key")]
    Keygen(KeygenArgs),
}

/// Arguments of `provernet request submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    program: ProgramArgs,
    /// Upload the inputs as private (readable only by you, the executor and the assigned prover).
    #[arg(long)]
    private: bool,
    /// The name to register the program under if it is new (default: the folder or file name).
    #[arg(long)]
    name: Option<String>,
    /// Seconds from now by which the proof must be fulfilled.
    #[arg(long, default_value_t = 120, conflicts_with = "deadline")]
    deadline_secs: u64,
    /// The deadline as unix seconds (instead of --deadline-secs).
    #[arg(long)]
    deadline: Option<u64>,
    /// The highest price per PGU you accept.
    #[arg(long, default_value = "10")]
    max_price_per_pgu: Amount,
    /// The fee paid to the prover on fulfilment.
    #[arg(long, default_value = "1000")]
    base_fee: Amount,
    /// Seconds the auction stays open at least.
    #[arg(long, default_value_t = 2)]
    auction_secs: u64,
    /// The BLAKE3 hash (hex) of the public outputs you expect; other outputs make the request
    /// unexecutable.
    #[arg(long)]
    expected_outputs_hash: Option<String>,
    /// Then wait until the request is fulfilled or closed.
    #[arg(long)]
    wait: bool,
    /// With --wait: the longest wait, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// A request id and the network.
#[derive(Debug, clap::Args)]
pub struct IdArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The request id (0x and 64 hex digits).
    id: String,
}

/// Arguments of `provernet request wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    #[command(flatten)]
    request: IdArgs,
    /// The longest wait, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// Arguments of `provernet request get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    request: IdArgs,
    /// Where to write the proof bundle once it verifies.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// A request status, as a flag value.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StatusArg {
    Requested,
    Assigned,
    Fulfilled,
    Unfulfillable,
    Cancelled,
}

/// Arguments of `provernet request list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Only requests made by this account (needs the key).
    #[arg(long)]
    mine: bool,
    /// Only requests in these statuses.
    #[arg(long, value_enum, value_delimiter = ',')]
    status: Vec<StatusArg>,
}

/// Arguments of `provernet request faucet`.
#[derive(Debug, clap::Args)]
pub struct FaucetArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The amount to credit.
    #[arg(long, default_value = "1000000000")]
    amount: Amount,
}

/// Arguments of `provernet request keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// The file to create; an existing file is never overwritten.
    path: PathBuf,
}

/// Runs a requester command.
pub async fn run(command: RequestCommand) -> anyhow::Result<()> {
    match command {
        RequestCommand::Submit(args) => submit(args).await,
        RequestCommand::Status(args) => status(args).await,
        RequestCommand::Wait(args) => {
            let id = parse_request_id(&args.request.id)?;
            let requester = args.request.connect.connect().await?;
            wait(&requester, &id, args.timeout_secs).await
        }
        RequestCommand::Get(args) => get(args).await,
        RequestCommand::List(args) => list(args).await,
        RequestCommand::Faucet(args) => faucet(args).await,
        RequestCommand::Keygen(args) => keygen(&args.path),
    }
}

async fn submit(args: SubmitArgs) -> anyhow::Result<()> {
    let loaded = args.program.load()?;
    let expected_outputs_hash = match &args.expected_outputs_hash {
        None => None,
        Some(text) => {
            let digits = text.strip_prefix("0x").unwrap_or(text);
            let bytes = hex::decode(digits).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
            Some(bytes.ok_or_else(|| {
                anyhow!("--expected-outputs-hash must be 64 hex digits (a BLAKE3 hash)")
            })?)
        }
    };
    // The deadline is counted on this machine's clock; the network checks it on its own.
    let deadline = match args.deadline {
        Some(deadline) => deadline,
        None => unix_now()? + args.deadline_secs,
    };
    let submission = Submission {
        program: loaded.program,
        inputs: loaded.inputs,
        private: args.private,
        name: args.name.unwrap_or_else(|| program_name_from(&args.program.program)),
        zkvm_version: args.program.zkvm.clone(),
        gas_limit: args.program.gas_limit,
        deadline,
        max_price_per_pgu: args.max_price_per_pgu,
        base_fee: args.base_fee,
        min_auction_period: args.auction_secs,
        expected_outputs_hash,
    };
    let requester = args.connect.connect().await?.with_upload_progress(upload_progress());
    let id = requester.submit(&submission).await.map_err(explain)?;
    println!("{id}");
    if args.wait {
        wait(&requester, &id, args.timeout_secs).await?;
    }
    Ok(())
}

async fn status(args: IdArgs) -> anyhow::Result<()> {
    let id = parse_request_id(&args.id)?;
    let requester = args.connect.connect().await?;
    let r = requester.status(&id).await.map_err(explain)?;
    let body = r.body.clone().unwrap_or_default();
    println!("request     {id}");
    println!("status      {}", status_name(&r));
    let execution = execution_name(&r);
    if r.execution_status == proto::ExecutionStatus::Executed as i32 {
        println!("execution   {execution}: {} PGUs", r.pgus);
        println!("outputs     {}", describe_outputs(&body.zkvm_version, &r.public_outputs));
    } else {
        println!("execution   {execution}");
    }
    println!("requester   {}", address(&r.requester));
    println!("program     0x{}  ({})", hex::encode(&body.program_id), body.zkvm_version);
    let visibility = if body.inputs_private { "private" } else { "public" };
    println!("inputs      0x{}  ({visibility})", hex::encode(&body.inputs_artifact_id));
    println!("gas limit   {} PGUs", body.gas_limit);
    println!("max price   {} per PGU, base fee {}", body.max_price_per_pgu, body.base_fee);
    println!("deadline    {}{}", body.deadline, in_secs(body.deadline));
    if !r.assigned_prover.is_empty() {
        println!("winner      {}", address(&r.assigned_prover));
        println!("price       {} per PGU", r.winning_price_per_pgu);
    }
    if !r.paid.is_empty() {
        println!("paid        {}", r.paid);
    }
    if !r.proof_artifact_id.is_empty() {
        println!("proof       0x{}", hex::encode(&r.proof_artifact_id));
    }
    if let Some(reason) = close_reason(&r) {
        println!("reason      {reason}");
    }
    Ok(())
}

/// Waits with a spinner (on a terminal), printing each change; fails unless fulfilled.
async fn wait(
    requester: &Requester,
    id: &provernet_types::RequestId,
    timeout_secs: u64,
) -> anyhow::Result<()> {
    let spinner = if std::io::stderr().is_terminal() {
        let style = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::new_spinner().with_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let printer = spinner.clone();
    let result = requester
        .wait(id, Duration::from_secs(timeout_secs), move |r| {
            let mut line = format!("{:>6.1}s  {}", started.elapsed().as_secs_f64(), status_name(r));
            line.push_str(&format!(", {}", execution_name(r)));
            if r.pgus > 0 {
                line.push_str(&format!(" ({} PGUs)", r.pgus));
            }
            if !r.assigned_prover.is_empty() {
                line.push_str(&format!(
                    ", prover {} at {} per PGU",
                    address(&r.assigned_prover),
                    r.winning_price_per_pgu
                ));
            }
            printer.suspend(|| println!("{line}"));
            printer.set_message(format!("request {}", status_name(r)));
        })
        .await;
    spinner.finish_and_clear();
    let r = result.map_err(explain)?;
    if r.status != proto::RequestStatus::Fulfilled as i32 {
        bail!(
            "request {id} ended {} without a proof: {}",
            status_name(&r),
            close_reason(&r).unwrap_or("no reason given")
        );
    }
    println!("fulfilled: paid {}; fetch the proof with `provernet request get {id}`", r.paid);
    Ok(())
}

async fn get(args: GetArgs) -> anyhow::Result<()> {
    let id = parse_request_id(&args.request.id)?;
    let requester = args.request.connect.connect().await?;
    let proof = requester.fetch_proof(&id).await.map_err(explain)?;
    if let Some(path) = &args.output {
        tokio::fs::write(path, &proof.bundle_bytes)
            .await
            .with_context(|| format!("cannot write the proof to {}", path.display()))?;
    }
    println!("verified    proof of request {id}");
    println!("program id  {}", proof.bundle.program_id);
    println!("zkvm        {}", proof.bundle.zkvm);
    println!("outputs     {}", proof.outputs_text);
    println!(
        "outputs id  0x{}  (BLAKE3, for --expected-outputs-hash)",
        hex::encode(proof.outputs.hash())
    );
    println!("security    {} bits", proof.security_bits);
    if let Some(path) = &args.output {
        println!("proof       {}", path.display());
    }
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let requester = args.connect.connect().await?;
    let mut filter = proto::ListProofRequestsRequest::default();
    if args.mine {
        let me = requester.address().ok_or_else(|| {
            anyhow!("--mine needs the account's key: pass --key-file FILE or set PROVERNET_KEY")
        })?;
        filter.requester = me.as_bytes().to_vec();
    }
    filter.statuses = args
        .status
        .iter()
        .map(|s| {
            (match s {
                StatusArg::Requested => proto::RequestStatus::Requested,
                StatusArg::Assigned => proto::RequestStatus::Assigned,
                StatusArg::Fulfilled => proto::RequestStatus::Fulfilled,
                StatusArg::Unfulfillable => proto::RequestStatus::Unfulfillable,
                StatusArg::Cancelled => proto::RequestStatus::Cancelled,
            }) as i32
        })
        .collect();
    let requests = requester.client().list_all(filter).await?;
    for r in &requests {
        println!(
            "0x{}  {:<13} {:<12} {:>8} PGUs  created {}",
            hex::encode(&r.request_id),
            status_name(r),
            execution_name(r),
            r.pgus,
            r.created_at
        );
    }
    eprintln!("{} request(s)", requests.len());
    Ok(())
}

async fn faucet(args: FaucetArgs) -> anyhow::Result<()> {
    let requester = args.connect.connect().await?;
    let signer = args.connect.signer()?.ok_or_else(|| {
        anyhow!(
            "the faucet credits the account of a key: pass --key-file FILE or set PROVERNET_KEY"
        )
    })?;
    requester.client().faucet(&signer, args.amount).await.context(
        "the faucet refused (is this a devnet? its limit is in `provernet network --faucet-limit`)",
    )?;
    let balance = requester.balance().await.map_err(explain)?;
    println!("{}  balance {balance}", signer.address());
    Ok(())
}

fn keygen(path: &std::path::Path) -> anyhow::Result<()> {
    let signer = crate::keys::write_new_key(path)?;
    println!("{}", signer.address());
    Ok(())
}

fn describe_outputs(zkvm: &str, outputs: &[u8]) -> String {
    match ZkVmRegistry::with_default_backends().get(zkvm) {
        Ok(backend) => backend.describe_outputs(&PublicOutputs(outputs.to_vec())),
        Err(_) => format!("0x{}", hex::encode(outputs)),
    }
}

fn address(bytes: &[u8]) -> String {
    Address::from_slice(bytes)
        .map_or_else(|_| format!("0x{}", hex::encode(bytes)), |a| a.to_string())
}

fn unix_now() -> anyhow::Result<u64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("this machine's clock is before 1970")?
        .as_secs())
}

/// " (in N s)" or " (N s ago)" for a unix time.
fn in_secs(at: u64) -> String {
    match unix_now() {
        Ok(now) if at >= now => format!(" (in {} s)", at - now),
        Ok(now) => format!(" ({} s ago)", now - at),
        Err(_) => String::new(),
    }
}
