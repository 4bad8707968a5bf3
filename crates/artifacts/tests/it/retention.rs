//! Retention: expired artifacts stop being served and are deleted by the sweeper.

use std::time::Duration;

use bytes::Bytes;
use provernet_artifacts::{ArtifactId, ArtifactKind, ArtifactStorage, Visibility, kind::unix_now};

use crate::{TestStore, client, expect_error, http, within};

async fn upload(store: &TestStore, data: &'static [u8], retain_until: Option<u64>) -> ArtifactId {
    let id = ArtifactId::of(data);
    let url = store
        .signer
        .presign_put(
            id,
            ArtifactKind::Proof,
            Visibility::Public,
            Duration::from_secs(60),
            retain_until,
        )
        .url(&store.base);
    client().upload_bytes(&url, Bytes::from_static(data)).await.expect("upload");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_deletes() {
    within(async {
        let store = TestStore::start().await;
        let now = unix_now();
        let soon = upload(&store, b"short-lived proof", Some(now + 1_000)).await;
        let later = upload(&store, b"long-lived proof", Some(now + 100_000)).await;
        let forever = upload(&store, b"program kept forever", None).await;

        let report = store.server.retention().sweep_once(now + 2_000).await.expect("sweep");
        assert_eq!(report.deleted, 1);
        let response = http().get(store.public_url(soon)).send().await.expect("send");
        expect_error(response, 404, "not_found").await;
        assert!(!store.object_path(&soon).exists(), "bytes deleted");
        assert!(!store.root().join(ArtifactStorage::meta_key(&soon)).exists(), "metadata deleted");
        for id in [later, forever] {
            assert_eq!(http().get(store.public_url(id)).send().await.expect("send").status(), 200);
        }

        let report = store.server.retention().sweep_once(now + 200_000).await.expect("sweep");
        assert_eq!(report.deleted, 1);
        assert_eq!(http().get(store.public_url(later)).send().await.expect("send").status(), 404);
        assert_eq!(http().get(store.public_url(forever)).send().await.expect("send").status(), 200);
        store.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_artifacts_are_hidden_before_the_sweep() {
    within(async {
        let store = TestStore::start().await;
        let id = upload(&store, b"already expired", Some(unix_now() - 1)).await;
        let response = http().get(store.public_url(id)).send().await.expect("send");
        expect_error(response, 404, "not_found").await;

        // Uploading it again with a longer retention brings it back.
        let id2 = upload(&store, b"already expired", Some(unix_now() + 3_600)).await;
        assert_eq!(id, id2);
        assert_eq!(http().get(store.public_url(id)).send().await.expect("send").status(), 200);
        store.stop().await;
    })
    .await;
}
