//! ArtifactStore throughput: a 1 GiB upload and download on loopback, server and client in
//! separate processes, with the peak RSS (VmHWM) of each.
//!
//! Run: `cargo bench -p provernet-artifacts --bench throughput`
//! (`ARTIFACTS_BENCH_MIB=256` for a smaller artifact, `ARTIFACTS_BENCH_DIR` for the scratch folder).
//!
//! The binary plays every role: without `ARTIFACTS_BENCH_ROLE` it orchestrates, and re-runs
//! itself as `server`, `upload` and `download` children.

use std::{
    error::Error,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use provernet_artifacts::{
    ArtifactClient, ArtifactClientConfig, ArtifactId, ArtifactKind, ArtifactServer,
    ArtifactStoreConfig, UrlSigner, Visibility, client::hash_file, serve,
};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const SECRET: &str = "benchmark-secret-0123456789abcdef";
const ROLE: &str = "ARTIFACTS_BENCH_ROLE";

fn main() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    match std::env::var(ROLE).as_deref() {
        Ok("server") => runtime.block_on(run_server()),
        Ok("upload") => runtime.block_on(run_upload()),
        Ok("download") => runtime.block_on(run_download()),
        _ => runtime.block_on(orchestrate()),
    }
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} not set").into())
}

/// Peak resident set size of `pid` in KiB (`self` for this process).
fn vm_hwm_kib(pid: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).ok_or("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmHWM")?.parse()?)
}

/// Server child: prints its port, serves until stdin closes.
async fn run_server() -> Result<()> {
    let config = ArtifactStoreConfig {
        max_artifact_bytes: 2 << 30,
        ..ArtifactStoreConfig::new(env("ARTIFACTS_BENCH_STORE")?, SECRET)
    };
    let server = ArtifactServer::new(&config)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let stdin_closed = async {
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await;
    };
    serve(listener, server, stdin_closed).await?;
    Ok(())
}

fn client(parallel: usize) -> Result<ArtifactClient> {
    Ok(ArtifactClient::with_config(ArtifactClientConfig {
        parallel_connections: parallel,
        ..ArtifactClientConfig::default()
    })?)
}

/// Upload child: prints `RESULT <secs> <vmhwm kib>`.
async fn run_upload() -> Result<()> {
    let client = client(1)?;
    let started = Instant::now();
    client
        .upload_file(&env("ARTIFACTS_BENCH_URL")?, Path::new(&env("ARTIFACTS_BENCH_FILE")?), None)
        .await?;
    println!("RESULT {} {}", started.elapsed().as_secs_f64(), vm_hwm_kib("self")?);
    Ok(())
}

/// Download child: prints `RESULT <secs> <vmhwm kib>`.
async fn run_download() -> Result<()> {
    let client = client(env("ARTIFACTS_BENCH_PARALLEL")?.parse()?)?;
    let id: ArtifactId = env("ARTIFACTS_BENCH_ID")?.parse()?;
    let dest = PathBuf::from(env("ARTIFACTS_BENCH_DEST")?);
    let started = Instant::now();
    client.download_to_file(&env("ARTIFACTS_BENCH_URL")?, &id, &dest, None).await?;
    let secs = started.elapsed().as_secs_f64();
    std::fs::remove_file(&dest)?;
    println!("RESULT {secs} {}", vm_hwm_kib("self")?);
    Ok(())
}

/// Runs a client child and parses its `RESULT` line.
fn run_child(role: &str, vars: &[(&str, String)]) -> Result<(f64, u64)> {
    let mut command = Command::new(std::env::current_exe()?);
    command.env(ROLE, role).stdout(Stdio::piped());
    for (k, v) in vars {
        command.env(k, v);
    }
    let output = command.output()?;
    if !output.status.success() {
        return Err(
            format!("{role} child failed: {}", String::from_utf8_lossy(&output.stderr)).into()
        );
    }
    let text = String::from_utf8(output.stdout)?;
    let line = text.lines().find(|l| l.starts_with("RESULT ")).ok_or("no RESULT line")?;
    let mut fields = line.split_whitespace().skip(1);
    let secs = fields.next().ok_or("no secs")?.parse()?;
    let kib = fields.next().ok_or("no rss")?.parse()?;
    Ok((secs, kib))
}

fn write_artifact(path: &Path, mib: usize) -> Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut xof = blake3::Hasher::new().update(b"artifacts bench").finalize_xof();
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        xof.fill(&mut block);
        file.write_all(&block)?;
    }
    file.flush()?;
    Ok(())
}

struct ServerChild(Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

async fn orchestrate() -> Result<()> {
    let mib: usize =
        std::env::var("ARTIFACTS_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let scratch = match std::env::var("ARTIFACTS_BENCH_DIR") {
        Ok(dir) => tempfile::tempdir_in(dir)?,
        Err(_) => tempfile::tempdir()?,
    };
    let source = scratch.path().join("artifact.bin");
    write_artifact(&source, mib)?;
    let started = Instant::now();
    let id = hash_file(&source).await?;
    let hash_secs = started.elapsed().as_secs_f64();
    let bytes = (mib as u64) << 20;

    let mut server = ServerChild(
        Command::new(std::env::current_exe()?)
            .env(ROLE, "server")
            .env("ARTIFACTS_BENCH_STORE", scratch.path().join("store"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?,
    );
    let server_pid = server.0.id().to_string();
    let mut lines = BufReader::new(server.0.stdout.take().ok_or("no server stdout")?).lines();
    let port = lines
        .next()
        .ok_or("server exited")??
        .strip_prefix("PORT ")
        .ok_or("bad PORT line")?
        .to_owned();
    let base = format!("http://127.0.0.1:{port}");

    let signer = UrlSigner::new(SECRET)?;
    let put = signer
        .presign_put(id, ArtifactKind::Inputs, Visibility::Private, Duration::from_secs(3600), None)
        .url(&base);
    let get = signer
        .presign_get(id, ArtifactKind::Inputs, Visibility::Private, Duration::from_secs(3600))
        .url(&base);

    let (up_secs, up_kib) = run_child(
        "upload",
        &[("ARTIFACTS_BENCH_URL", put), ("ARTIFACTS_BENCH_FILE", source.display().to_string())],
    )?;
    let server_after_upload = vm_hwm_kib(&server_pid)?;
    let mut downloads = Vec::new();
    for parallel in [1usize, 4] {
        let vars = [
            ("ARTIFACTS_BENCH_URL", get.clone()),
            ("ARTIFACTS_BENCH_ID", id.to_string()),
            ("ARTIFACTS_BENCH_DEST", scratch.path().join("download.bin").display().to_string()),
            ("ARTIFACTS_BENCH_PARALLEL", parallel.to_string()),
        ];
        downloads.push((parallel, run_child("download", &vars)?));
    }
    let server_kib = vm_hwm_kib(&server_pid)?;
    drop(server);

    let mbps = |secs: f64| bytes as f64 / 1e6 / secs;
    println!("ArtifactStore loopback benchmark: {mib} MiB artifact, id {id}");
    println!(
        "client-side BLAKE3 of the file (before upload): {hash_secs:.2} s ({:.0} MB/s)",
        mbps(hash_secs)
    );
    println!("| transfer | time (s) | MB/s | client peak RSS (MiB) |");
    println!("|---|---|---|---|");
    println!(
        "| upload (streamed PUT, server hashes + stores) | {up_secs:.2} | {:.0} | {:.1} |",
        mbps(up_secs),
        up_kib as f64 / 1024.0
    );
    for (parallel, (secs, kib)) in downloads {
        let how = if parallel == 1 {
            "download, 1 stream (hash while writing)".to_owned()
        } else {
            format!("download, {parallel} ranged streams + hash")
        };
        println!("| {how} | {secs:.2} | {:.0} | {:.1} |", mbps(secs), kib as f64 / 1024.0);
    }
    println!(
        "server peak RSS: {:.1} MiB after upload, {:.1} MiB at the end",
        server_after_upload as f64 / 1024.0,
        server_kib as f64 / 1024.0
    );
    Ok(())
}
