//! The ArtifactStore's storage refusing access mid-upload, as a process: `provernet artifacts`
//! runs as an unprivileged user (root ignores file permissions) over a folder that user owns,
//! and the test makes the folder read-only while a large upload streams in. The upload is
//! refused by name (503 `storage_denied`), nothing of it is left or served, what was stored
//! still downloads whole, and once access is restored uploads succeed again.
//!
//! Running the server as another user and changing its folder need root, so the test is
//! `#[ignore]`d; `.ci/run` runs it:
//! `sudo cargo test -p provernet-cli --test it -- --ignored storage_denied::`.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    os::unix::{
        fs::{MetadataExt, PermissionsExt},
        process::CommandExt,
    },
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use axum::body::Bytes;
use provernet_artifacts::{
    ArtifactClient, ArtifactId, ArtifactKind, ArtifactStorage, UrlSigner, Visibility, public_url,
    storage::staged_files,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::procs::{Proc, provernet};

/// The unprivileged user (and group) the server runs as: `nobody`.
const NOBODY: u32 = 65534;
/// The HMAC secret the server and the test's signer share.
const SECRET: &str = "storage-denied-test-secret-0123456789";
/// Bound on each wait for the server (start, staged file, answer).
const WAIT: Duration = Duration::from_secs(30);

/// `len` bytes that differ with `seed` (any bytes do: the id is their hash).
fn bytes(len: usize, seed: u8) -> Bytes {
    (0..len).map(|i| (i as u8).wrapping_mul(31) ^ (i >> 9) as u8 ^ seed).collect::<Vec<_>>().into()
}

/// Sets the mode of `dir` and of every folder below it.
fn chmod_folders(dir: &Path, mode: u32) {
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            }
        }
    }
}

/// `(status, code, message)` of an answer to a PUT sent as raw HTTP/1.1: the body's first
/// `first` bytes, then `between` (awaited), then the rest; a streaming upload the test controls.
async fn put_in_two_steps(
    url: &str,
    body: &[u8],
    first: usize,
    between: impl AsyncFnOnce(),
) -> (u16, String, String) {
    let url = url::Url::parse(url).unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT {}?{} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/octet-stream\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        url.path(),
        url.query().unwrap(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..first]).await.unwrap();
    between().await;
    // The server may answer and close before reading everything: its answer is what counts.
    let _ = stream.write_all(&body[first..]).await;
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let (_, json) = answer.split_once("\r\n\r\n").unwrap();
    let json: serde_json::Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| {
        panic!("no JSON error body ({e}) in {answer}");
    });
    (status, json["code"].as_str().unwrap().to_owned(), json["error"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root (runs the server as nobody, changes its folder): sudo cargo test -p provernet-cli --test it -- --ignored storage_denied:: (.ci/run runs it)"]
async fn storage_refusing_access_mid_upload_is_named_and_leaves_nothing() {
    // /proc/self is owned by the process's effective user.
    let euid = std::fs::metadata("/proc/self").unwrap().uid();
    assert_eq!(euid, 0, "this test needs root: it runs the server as uid {NOBODY} and chmods");

    let root = tempfile::tempdir().unwrap();
    // The temporary folder is root's alone (0700): nobody must reach its storage inside.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let storage = root.path().join("store");
    std::fs::create_dir(&storage).unwrap();
    std::os::unix::fs::chown(&storage, Some(NOBODY), Some(NOBODY)).unwrap();

    let server = Proc::spawn({
        let mut c = provernet();
        c.args(["artifacts", "--listen", "127.0.0.1:0", "--storage"])
            .arg(&storage)
            .env("PROVERNET_ARTIFACTS_SECRET", SECRET)
            .current_dir(root.path())
            .uid(NOBODY)
            .gid(NOBODY);
        c
    });
    let line = server.line_after("artifact store on ", WAIT);
    let base = line.split_whitespace().next().unwrap().to_owned();
    let signer = UrlSigner::new(SECRET).unwrap();
    let put_url = |id| {
        let ttl = Duration::from_secs(300);
        signer.presign_put(id, ArtifactKind::Inputs, Visibility::Public, ttl, None).url(&base)
    };
    let client = ArtifactClient::new().unwrap();

    // One artifact stored while the folder is writable.
    let kept = bytes(3 << 20, 1);
    let kept_id = ArtifactId::of(&kept);
    client.upload_bytes(&put_url(kept_id), kept.clone()).await.expect("first upload");

    // A large upload: once the server has staged its first part, the folder turns read-only.
    let big = bytes(12 << 20, 2);
    let big_id = ArtifactId::of(&big);
    let shard = storage.join(&ArtifactStorage::object_key(&big_id)[..10]);
    let (status, code, message) = put_in_two_steps(&put_url(big_id), &big, 4 << 20, async || {
        let since = Instant::now();
        while std::fs::read_dir(&shard)
            .map_or(true, |d| !d.flatten().any(|f| f.file_name().to_string_lossy().contains('#')))
        {
            assert!(since.elapsed() < WAIT, "the server never staged the upload in {shard:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        chmod_folders(&storage, 0o555);
    })
    .await;
    assert_eq!((status, code.as_str()), (503, "storage_denied"), "{message}");
    assert!(message.contains("storage refused access (permission denied)"), "{message}");
    assert!(message.contains("nothing was written"), "{message}");
    let shown = storage.display().to_string();
    assert!(!message.contains(&shown) && !message.contains("objects/"), "paths leak: {message}");

    // Nothing of it is served; what was stored still is, whole, while the folder is read-only.
    let response = reqwest::get(public_url(&base, &big_id)).await.unwrap();
    assert_eq!(response.status().as_u16(), 404, "the refused upload is not served");
    let read = client.download_to_vec(&public_url(&base, &kept_id), &kept_id, None).await;
    assert_eq!(read.expect("the stored artifact still downloads"), kept);
    // The folder refuses the staged file's removal too: it is left empty, never half-written.
    for path in staged_files(&storage) {
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "{path:?} holds bytes");
    }

    // Access restored: the same upload succeeds, and the empty staged file goes with it.
    chmod_folders(&storage, 0o755);
    let receipt = client.upload_bytes(&put_url(big_id), big.clone()).await;
    receipt.expect("an upload once access is restored");
    let read = client.download_to_vec(&public_url(&base, &big_id), &big_id, None).await;
    assert_eq!(read.expect("the new upload downloads"), big);
    assert_eq!(staged_files(&storage), Vec::<PathBuf>::new(), "no staged upload left");
    let read = client.download_to_vec(&public_url(&base, &kept_id), &kept_id, None).await;
    assert_eq!(read.expect("the first artifact still downloads"), kept);
}
