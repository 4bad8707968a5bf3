//! `provernet request …` and `provernet program …` against a `provernet network` child process;
//! the test plays the prover itself through `NetworkClient`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use provernet_types::{Amount, NetworkClient, RequestId, Signer, proto};
use provernet_zkvm::{MidenBackend, ProofBundle, ProofMode, ProveJob, ZkVm};
use tokio_util::sync::CancellationToken;

use crate::procs::Proc;

/// The longest any one step may take on a loaded 2-core machine, short of a hang.
const STEP: Duration = Duration::from_secs(60);
/// What a funded requester gets from the faucet.
const FUNDS: u128 = 1_000_000_000;

fn program(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../programs").join(name)
}

/// A `provernet network` child process on free ports, killed when dropped.
struct Network {
    _process: Proc,
    url: String,
    _dir: tempfile::TempDir,
}

impl Network {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_provernet"));
        command
            .args(["network", "--listen", "127.0.0.1:0", "--artifacts-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.path())
            .stderr(Stdio::null());
        let process = Proc::spawn(command);
        let addr = process.line_after("network     grpc://", STEP);
        let url = format!("http://{}", addr.split_whitespace().next().unwrap());
        Self { _process: process, url, _dir: dir }
    }

    /// A `provernet` command pointed at this network, without any key from the environment.
    fn cli(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_provernet"));
        cmd.env("PROVERNET_NETWORK", &self.url)
            .env_remove("PROVERNET_KEY")
            .env_remove("PROVERNET_KEY_FILE");
        cmd
    }

    async fn client(&self) -> NetworkClient {
        NetworkClient::connect(&self.url, Duration::from_secs(5)).await.unwrap()
    }
}

/// A finished command: success, stdout, stderr.
struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to completion within [`STEP`] (killed after it).
fn run(cmd: &mut Command) -> Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    finish(child)
}

/// Waits for `child` within [`STEP`], killing it if it takes longer.
fn finish(child: Child) -> Output {
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || done_tx.send(child.wait_with_output()));
    let out = match done_rx.recv_timeout(STEP) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("provernet (pid {pid}) did not finish within {STEP:?}");
        }
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Output { ok: out.status.success(), stdout: text(&out.stdout), stderr: text(&out.stderr) }
}

/// A new key written to `dir/name`.
fn key_file(dir: &Path, name: &str) -> (Signer, PathBuf) {
    let signer = Signer::random();
    let path = dir.join(name);
    std::fs::write(&path, signer.secret_hex()).unwrap();
    (signer, path)
}

/// Waits, driven by the event stream, until request `id` satisfies `done`.
async fn wait_until(
    client: &NetworkClient,
    id: &RequestId,
    done: impl Fn(&proto::ProofRequest) -> bool,
) -> proto::ProofRequest {
    let filter = proto::SubscribeRequestsRequest::default();
    tokio::time::timeout(STEP, client.wait_until(id, filter, done))
        .await
        .expect("the request did not change in time")
        .unwrap()
}

#[test]
fn programs_register_and_show_requests_submit_and_every_error_is_clear() {
    let net = Network::start();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(net.client());
    let (funded, key) = key_file(dir.path(), "funded.key");
    rt.block_on(client.faucet(&funded, Amount::new(FUNDS))).unwrap();
    let nonce = |signer: &Signer| rt.block_on(client.account(&signer.address())).unwrap().nonce;
    assert_eq!(nonce(&funded), 1);

    // Register and show, by name and by program id; registering again returns the same.
    let out = run(net
        .cli()
        .args(["program", "register"])
        .arg(program("fib"))
        .arg("--key-file")
        .arg(&key));
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("name        fib (version 1)"), "{}", out.stdout);
    let program_id =
        out.stdout.lines().find_map(|l| l.strip_prefix("program id  ")).unwrap().to_owned();
    let expected =
        MidenBackend::new().program_id(provernet_zkvm::samples::FIB.source.as_bytes()).unwrap();
    assert_eq!(program_id, expected.to_string());
    let out = run(net.cli().args(["program", "show", "fib"]));
    assert!(out.ok && out.stdout.contains(&program_id), "{}{}", out.stdout, out.stderr);
    let out = run(net.cli().args(["program", "show", &program_id]));
    assert!(out.ok && out.stdout.contains("name        fib (version 1)"), "{}", out.stderr);
    let out = run(net
        .cli()
        .args(["program", "register"])
        .arg(program("fib"))
        .arg("--key-file")
        .arg(&key));
    assert!(out.ok && out.stdout.contains(&program_id), "{}", out.stderr);
    let out = run(net.cli().args(["program", "show", "nothing-here"]));
    assert!(!out.ok && out.stderr.contains("no program named \"nothing-here\""), "{}", out.stderr);

    // Submit prints the id; status shows it.
    let out =
        run(net.cli().args(["request", "submit"]).arg(program("fib")).arg("--key-file").arg(&key));
    assert!(out.ok, "{}", out.stderr);
    let id = out.stdout.trim().to_owned();
    assert!(id.starts_with("0x") && id.len() == 66, "{}", out.stdout);
    let out = run(net.cli().args(["request", "status", &id]));
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains(&format!("request     {id}")), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("program     {program_id}")), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("requester   {}", funded.address())), "{}", out.stdout);
    let out = run(net.cli().args(["request", "list", "--mine", "--key-file"]).arg(&key));
    assert!(out.ok && out.stdout.contains(&id), "{}", out.stderr);

    // A request that cannot be proven: `wait` exits non-zero with the reason.
    let out = run(net
        .cli()
        .args(["request", "submit"])
        .arg(program("assert42"))
        .arg("--key-file")
        .arg(&key));
    assert!(out.ok, "{}", out.stderr);
    let failing = out.stdout.trim().to_owned();
    let out = run(net.cli().args(["request", "wait", &failing, "--timeout-secs", "30"]));
    assert!(!out.ok, "{}", out.stdout);
    assert!(
        out.stderr.contains("unfulfillable") && out.stderr.contains("program failed"),
        "{}",
        out.stderr
    );

    // Nothing below may spend a nonce (no upload, no registration, no request).
    let before = nonce(&funded);

    let out = run(net.cli().args(["request", "status", &id, "--network", "http://127.0.0.1:1"]));
    assert!(
        !out.ok && out.stderr.contains("cannot reach the network at http://127.0.0.1:1"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("provernet network"), "{}", out.stderr);

    let out = run(net.cli().args(["request", "status", "0x12"]));
    assert!(!out.ok && out.stderr.contains("malformed request id"), "{}", out.stderr);
    let out = run(net.cli().args(["request", "status", &format!("0x{}", "ab".repeat(32))]));
    assert!(!out.ok && out.stderr.contains("no proof request"), "{}", out.stderr);

    let out = run(net
        .cli()
        .args(["request", "submit"])
        .arg(dir.path().join("missing.masm"))
        .arg("--key-file")
        .arg(&key));
    assert!(!out.ok && out.stderr.contains("cannot read program"), "{}", out.stderr);
    let out = run(net
        .cli()
        .args(["request", "submit"])
        .arg(program("fib"))
        .arg("--key-file")
        .arg(dir.path().join("none.key")));
    assert!(!out.ok && out.stderr.contains("cannot read key file"), "{}", out.stderr);

    let broken = dir.path().join("broken.masm");
    std::fs::write(&broken, "begin\n  push.1 frobnicate\nend\n").unwrap();
    let out = run(net.cli().args(["request", "submit"]).arg(&broken).arg("--key-file").arg(&key));
    assert!(!out.ok && out.stderr.contains("program does not assemble"), "{}", out.stderr);
    let out = run(net.cli().args(["program", "register"]).arg(&broken).arg("--key-file").arg(&key));
    assert!(!out.ok && out.stderr.contains("program does not assemble"), "{}", out.stderr);
    let out = run(net.cli().args(["program", "show", "broken"]));
    assert!(!out.ok && out.stderr.contains("no program named"), "{}", out.stderr);

    let out = run(net
        .cli()
        .args(["request", "submit"])
        .arg(program("fib"))
        .args(["--deadline", "1000000000", "--key-file"])
        .arg(&key));
    assert!(!out.ok && out.stderr.contains("deadline`: 1000000000 has passed"), "{}", out.stderr);
    assert_eq!(nonce(&funded), before, "a failed command spent a nonce");

    let (unfunded, poor_key) = key_file(dir.path(), "unfunded.key");
    let out = run(net
        .cli()
        .args(["request", "submit"])
        .arg(program("fib"))
        .arg("--key-file")
        .arg(&poor_key));
    assert!(!out.ok && out.stderr.contains("insufficient balance"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&unfunded.address().to_string()) && out.stderr.contains("faucet"),
        "{}",
        out.stderr
    );
    assert_eq!(nonce(&unfunded), 0, "an unfunded submit spent a nonce");
}

#[test]
fn a_private_request_is_proven_waited_for_fetched_and_verified() {
    let net = Network::start();
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(net.client());
    let (requester, key) = key_file(dir.path(), "requester.key");
    let owner = Signer::random();
    let operator = Signer::random();
    rt.block_on(async {
        client.faucet(&requester, Amount::new(FUNDS)).await.unwrap();
        client.faucet(&owner, Amount::new(FUNDS)).await.unwrap();
        client.register_prover(&owner, Amount::new(FUNDS / 2), &operator.address()).await.unwrap();
    });

    let out = run(net
        .cli()
        .args(["request", "submit"])
        .arg(program("fib"))
        .args(["--private", "--auction-secs", "1", "--gas-limit", "65536", "--key-file"])
        .arg(&key));
    assert!(out.ok, "{}", out.stderr);
    let id: RequestId = out.stdout.trim().parse().unwrap();
    let waiter = net
        .cli()
        .args(["request", "wait", &id.to_string(), "--timeout-secs", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The prover: bid once executed, prove once assigned, fulfil.
    rt.block_on(async {
        let executed = proto::ExecutionStatus::Executed as i32;
        wait_until(&client, &id, |r| r.execution_status == executed).await;
        client.bid(&operator, &owner.address(), &id, Amount::new(3)).await.unwrap();
        let assigned = proto::RequestStatus::Assigned as i32;
        wait_until(&client, &id, |r| r.status == assigned).await;
        let job = ProveJob {
            program: provernet_zkvm::samples::FIB.source.as_bytes().into(),
            inputs: provernet_zkvm::samples::FIB.inputs.as_bytes().into(),
            gas_limit: 1 << 16,
            mode: ProofMode::Default,
        };
        let bundle = tokio::task::spawn_blocking(move || {
            let backend = MidenBackend::new();
            let proof = backend.prove(&job, &CancellationToken::new(), &|_| {}).unwrap();
            ProofBundle::new(backend.version(), proof).encode()
        })
        .await
        .unwrap();
        client.fulfill(&operator, &owner.address(), &id, bundle).await.unwrap();
    });

    let out = finish(waiter);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("assigned") && out.stdout.contains("fulfilled"), "{}", out.stdout);

    // Private inputs: fetching needs the requester's key.
    let proof = dir.path().join("fib.proof");
    let out = run(net.cli().args(["request", "get", &id.to_string(), "--output"]).arg(&proof));
    assert!(!out.ok && out.stderr.contains("--key-file"), "{}", out.stderr);
    assert!(!proof.exists());
    let out = run(net
        .cli()
        .args(["request", "get", &id.to_string(), "--output"])
        .arg(&proof)
        .arg("--key-file")
        .arg(&key));
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("verified") && out.stdout.contains("12586269025"),
        "{}",
        out.stdout
    );
    let out = run(net.cli().arg("verify").arg(program("fib")).arg("--proof").arg(&proof));
    assert!(out.ok, "{}", out.stderr);

    let out = run(net.cli().args(["request", "status", &id.to_string()]));
    assert!(out.ok && out.stdout.contains("status      fulfilled"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("winner      {}", owner.address())), "{}", out.stdout);
    assert!(out.stdout.contains("paid        "), "{}", out.stdout);
}
