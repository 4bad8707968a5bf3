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
    ArtifactStorage, ArtifactStoreConfig, UrlSigner, Visibility, client::hash_file, serve,
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

/// Writes dirty pages back (`sync`), so one phase's writeback is not billed to the next.
fn flush_page_cache() {
    let _ = Command::new("sync").status();
}

struct ServerChild(Child);

impl Drop for ServerChild {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Writes and deletes a scratch file as large as the working set, so that guest memory the VM has
/// never touched is not billed to the first measured phase (on this machine a first write of
/// 1 GiB into never-used page cache takes about 4x longer than later ones).
fn warm_up(dir: &Path, mib: usize) -> Result<()> {
    let path = dir.join("warm-up.bin");
    let block = vec![0x5au8; 1 << 20];
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    for _ in 0..mib * 3 {
        file.write_all(&block)?;
    }
    file.flush()?;
    drop(file);
    flush_page_cache();
    std::fs::remove_file(path)?;
    Ok(())
}

/// One measured transfer.
struct Sample {
    what: String,
    secs: f64,
    client_kib: u64,
}

async fn orchestrate() -> Result<()> {
    let mib: usize =
        std::env::var("ARTIFACTS_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let rounds: usize =
        std::env::var("ARTIFACTS_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let scratch = match std::env::var("ARTIFACTS_BENCH_DIR") {
        Ok(dir) => tempfile::tempdir_in(dir)?,
        Err(_) => tempfile::tempdir()?,
    };
    warm_up(scratch.path(), mib)?;
    let source = scratch.path().join("artifact.bin");
    write_artifact(&source, mib)?;
    flush_page_cache();
    let started = Instant::now();
    let id = hash_file(&source).await?;
    let hash_secs = started.elapsed().as_secs_f64();
    let bytes = (mib as u64) << 20;

    let store = scratch.path().join("store");
    let mut server = ServerChild(
        Command::new(std::env::current_exe()?)
            .env(ROLE, "server")
            .env("ARTIFACTS_BENCH_STORE", &store)
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

    let mut samples = Vec::new();
    for round in 0..rounds {
        if round > 0 {
            // Remove the stored artifact behind the server's back so the next upload stores again.
            std::fs::remove_file(store.join(ArtifactStorage::meta_key(&id)))?;
            std::fs::remove_file(store.join(ArtifactStorage::object_key(&id)))?;
        }
        let vars = [
            ("ARTIFACTS_BENCH_URL", put.clone()),
            ("ARTIFACTS_BENCH_FILE", source.display().to_string()),
        ];
        let (secs, client_kib) = run_child("upload", &vars)?;
        samples.push(Sample { what: "upload".into(), secs, client_kib });
        flush_page_cache();
        for parallel in [1usize, 4] {
            let vars = [
                ("ARTIFACTS_BENCH_URL", get.clone()),
                ("ARTIFACTS_BENCH_ID", id.to_string()),
                ("ARTIFACTS_BENCH_DEST", scratch.path().join("download.bin").display().to_string()),
                ("ARTIFACTS_BENCH_PARALLEL", parallel.to_string()),
            ];
            let (secs, client_kib) = run_child("download", &vars)?;
            let what = if parallel == 1 {
                "download, 1 stream".to_owned()
            } else {
                format!("download, {parallel} ranges")
            };
            samples.push(Sample { what, secs, client_kib });
            flush_page_cache();
        }
    }
    let server_kib = vm_hwm_kib(&server_pid)?;
    drop(server);

    let mbps = |secs: f64| bytes as f64 / 1e6 / secs;
    println!("ArtifactStore loopback benchmark: {mib} MiB artifact, {rounds} rounds, id {id}");
    println!(
        "client-side BLAKE3 of the file before upload: {hash_secs:.2} s ({:.0} MB/s)",
        mbps(hash_secs)
    );
    println!("| transfer | runs, MB/s | median MB/s | client peak RSS (MiB, max) |");
    println!("|---|---|---|---|");
    for what in ["upload", "download, 1 stream", "download, 4 ranges"] {
        let runs: Vec<&Sample> = samples.iter().filter(|s| s.what == what).collect();
        let mut speeds: Vec<f64> = runs.iter().map(|s| mbps(s.secs)).collect();
        let listed = speeds.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(", ");
        speeds.sort_by(f64::total_cmp);
        let median = speeds.get(speeds.len() / 2).copied().unwrap_or(0.0);
        let rss = runs.iter().map(|s| s.client_kib).max().unwrap_or(0) as f64 / 1024.0;
        println!("| {what} | {listed} | {median:.0} | {rss:.1} |");
    }
    println!("server peak RSS over all rounds: {:.1} MiB", server_kib as f64 / 1024.0);
    Ok(())
}
