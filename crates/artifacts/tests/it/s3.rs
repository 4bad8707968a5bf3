//! The same store on S3-compatible storage. Ignored by default: it needs an endpoint.
//!
//! ```text
//! moto_server -p 9000 &                      # or MinIO, or real S3
//! curl -X PUT http://127.0.0.1:9000/provernet-test
//! AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
//! AWS_ENDPOINT=http://127.0.0.1:9000 AWS_ALLOW_HTTP=true \
//! ARTIFACTS_TEST_S3_URL=s3://provernet-test/it \
//!   cargo test -p provernet-artifacts --test it s3 -- --ignored
//! ```

use bytes::Bytes;
use provernet_artifacts::{ArtifactId, ArtifactKind, Visibility, kind::unix_now};
use reqwest::header;

use crate::{TestStore, client, expect_error, http, random_bytes, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs an S3-compatible endpoint: see the module docs"]
async fn s3_round_trip_mismatch_range_and_retention() {
    within(async {
        let url = std::env::var("ARTIFACTS_TEST_S3_URL").expect("ARTIFACTS_TEST_S3_URL");
        let store = TestStore::start_with(|c| c.storage = url).await;
        let client = client();

        // Small (one put) and multipart (20 MiB = 3 parts of 8 MiB) artifacts.
        for (len, seed) in [(1000, "s3-small"), (20 << 20, "s3-large")] {
            let data = Bytes::from(random_bytes(len, &format!("{seed}-{}", unix_now())));
            let id = ArtifactId::of(&data);
            let put = store.put_url(id, ArtifactKind::Inputs, Visibility::Private);
            assert!(client.upload_bytes(&put, data.clone()).await.expect("upload").created);
            let again = client.upload_bytes(&put, data.clone()).await.expect("second upload");
            assert!(!again.created);
            let get = store.get_url(id);
            assert_eq!(client.download_to_vec(&get, &id, None).await.expect("download"), data);
            let response =
                http().get(&get).header(header::RANGE, "bytes=10-19").send().await.expect("send");
            assert_eq!(response.status(), 206);
            assert_eq!(response.bytes().await.expect("body"), data.slice(10..20));
        }

        // Concurrent uploads of one id (multipart): all succeed, one creates.
        let data = Bytes::from(random_bytes(12 << 20, &format!("s3-concurrent-{}", unix_now())));
        let id = ArtifactId::of(&data);
        let uploads = (0..4).map(|_| {
            let (client, data) = (client.clone(), data.clone());
            let url = store.put_url(id, ArtifactKind::Proof, Visibility::Public);
            tokio::spawn(async move { client.upload_bytes(&url, data).await })
        });
        let mut created = 0;
        for upload in futures::future::join_all(uploads).await {
            created += usize::from(upload.expect("task").expect("upload").created);
        }
        assert_eq!(created, 1);
        assert_eq!(
            client.download_to_vec(&store.public_url(id), &id, None).await.expect("download"),
            data
        );

        // A mismatch stores nothing, also after a multipart upload has begun.
        let claimed = ArtifactId::of(format!("claimed-{}", unix_now()).as_bytes());
        let put = store.put_url(claimed, ArtifactKind::Proof, Visibility::Public);
        let response =
            http().put(&put).body(random_bytes(10 << 20, "wrong")).send().await.expect("send");
        expect_error(response, 422, "hash_mismatch").await;
        let response = http().get(store.public_url(claimed)).send().await.expect("send");
        expect_error(response, 404, "not_found").await;

        // Retention deletes from the bucket.
        let data = Bytes::from(format!("expiring-{}", unix_now()));
        let id = ArtifactId::of(&data);
        let put = store
            .signer
            .presign_put(
                id,
                ArtifactKind::Proof,
                Visibility::Public,
                std::time::Duration::from_secs(60),
                Some(unix_now() + 10),
            )
            .url(&store.base);
        client.upload_bytes(&put, data).await.expect("upload");
        let report = store.server.retention().sweep_once(unix_now() + 20).await.expect("sweep");
        assert!(report.deleted >= 1);
        assert_eq!(http().get(store.public_url(id)).send().await.expect("send").status(), 404);
        store.stop().await;
    })
    .await;
}
