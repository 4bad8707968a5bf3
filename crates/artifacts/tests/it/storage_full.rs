//! The storage filling up mid-upload, on a real filesystem: a 1 MiB tmpfs (mounting it needs
//! root, so the test is `#[ignore]`d; `.ci/run` runs it:
//! `sudo cargo test -p provernet-artifacts --test it -- --ignored storage_full`).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use provernet_artifacts::{ArtifactId, ArtifactKind, ClientError, Visibility};

use crate::{TestStore, client, expect_error, http, random_bytes, staged_files, within};

/// A tmpfs of `size` mounted at `path` for the guard's life.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("cannot run mount");
        assert!(status.success(), "cannot mount a tmpfs at {} (needs root)", path.display());
        Self(path.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs: sudo cargo test -p provernet-artifacts --test it -- --ignored storage_full (.ci/run runs it)"]
async fn a_full_disk_refuses_the_upload_by_name_and_keeps_what_was_stored() {
    within(async {
        let mount = tempfile::tempdir().expect("tempdir");
        let root = mount.path().join("disk");
        let _disk = Tmpfs::mount(&root, "1m");
        let store = TestStore::start_with(|c| c.storage = root.display().to_string()).await;

        let kept = Bytes::from(random_bytes(300 << 10, "kept"));
        let kept_id = ArtifactId::of(&kept);
        let put = store.put_url(kept_id, ArtifactKind::Inputs, Visibility::Public);
        client().upload_bytes(&put, kept.clone()).await.expect("room for the first");

        // Twice the disk: it fills up mid-upload.
        let big = Bytes::from(random_bytes(2 << 20, "big"));
        let big_id = ArtifactId::of(&big);
        let put = store.put_url(big_id, ArtifactKind::Inputs, Visibility::Public);
        let response = http().put(&put).body(big.clone()).send().await.expect("answered");
        let message = expect_error(response, 507, "storage_full").await;
        assert!(message.contains("storage is full"), "{message}");
        let err = client().upload_bytes(&put, big).await.expect_err("still full");
        assert!(
            matches!(&err, ClientError::Status { status: 507, code, .. } if code == "storage_full"),
            "{err}"
        );

        // Nothing half-written is left or served, and what was stored is whole.
        assert_eq!(staged_files(&root), Vec::<PathBuf>::new(), "no staged upload left");
        let url = store.public_url(big_id);
        assert!(client().download_to_vec(&url, &big_id, None).await.is_err(), "not served");
        let url = store.public_url(kept_id);
        let read = client().download_to_vec(&url, &kept_id, None).await.expect("kept");
        assert_eq!(read, kept);
        // Room for a small one still.
        let small = Bytes::from(random_bytes(100 << 10, "small"));
        let put = store.put_url(ArtifactId::of(&small), ArtifactKind::Inputs, Visibility::Public);
        client().upload_bytes(&put, small).await.expect("room for a small one");
        store.stop().await;
    })
    .await;
}
