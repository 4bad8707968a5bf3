//! Size limits (413) and content checks (422): nothing is stored in either case.

use bytes::Bytes;
use futures::stream;
use provernet_artifacts::{ArtifactId, ArtifactKind, ClientError, Visibility};

use crate::{TestStore, client, expect_error, http, random_bytes, staged_files, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_uploads_get_413() {
    within(async {
        let store = TestStore::start_with(|c| c.max_artifact_bytes = 3 << 20).await;
        let data = Bytes::from(random_bytes((3 << 20) + 1, "oversize"));
        let id = ArtifactId::of(&data);
        let url = store.put_url(id, ArtifactKind::Inputs, Visibility::Public);

        // Declared by Content-Length: refused before the body is read.
        let err = client().upload_bytes(&url, data.clone()).await.expect_err("too large");
        assert_eq!(err.status(), Some(413));
        assert!(matches!(&err, ClientError::Status { code, .. } if code == "too_large"));

        // Streamed without a length: refused once the limit is passed, after a part was staged.
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            data.chunks(64 << 10).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let body = reqwest::Body::wrap_stream(stream::iter(chunks));
        let response = http().put(&url).body(body).send().await.expect("send");
        expect_error(response, 413, "too_large").await;

        let response = http().get(store.public_url(id)).send().await.expect("send");
        expect_error(response, 404, "not_found").await;
        assert!(staged_files(&store.root()).is_empty(), "staged parts removed");

        // Exactly at the limit is fine.
        let fits = data.slice(..3 << 20);
        let fits_id = ArtifactId::of(&fits);
        let url = store.put_url(fits_id, ArtifactKind::Inputs, Visibility::Public);
        assert!(client().upload_bytes(&url, fits).await.expect("at the limit").created);
        store.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_that_do_not_match_the_id_get_422() {
    within(async {
        let store = TestStore::start().await;
        let claimed = ArtifactId::of(b"what the network was told");
        for data in
            [Bytes::from_static(b"something else"), Bytes::from(random_bytes(5 << 20, "big"))]
        {
            let url = store.put_url(claimed, ArtifactKind::Program, Visibility::Public);
            let response = http().put(&url).body(data.clone()).send().await.expect("send");
            let message = expect_error(response, 422, "hash_mismatch").await;
            assert!(message.contains(&claimed.to_string()), "names the expected id: {message}");
            assert!(
                message.contains(&ArtifactId::of(&data).to_string()),
                "names the actual id: {message}"
            );
        }
        let response = http().get(store.public_url(claimed)).send().await.expect("send");
        expect_error(response, 404, "not_found").await;
        assert!(staged_files(&store.root()).is_empty());
        assert!(!store.object_path(&claimed).exists());
        store.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_download_refuses_more_than_its_limit() {
    within(async {
        let store = TestStore::start().await;
        let data = Bytes::from(random_bytes(1 << 20, "bounded"));
        let id = ArtifactId::of(&data);
        let url = store.put_url(id, ArtifactKind::Inputs, Visibility::Public);
        client().upload_bytes(&url, data.clone()).await.expect("upload");

        let got = client().download_bounded(&store.public_url(id), 1 << 20).await.expect("fits");
        assert_eq!(got, data, "exactly at the limit is fine");
        let err = client()
            .download_bounded(&store.public_url(id), (1 << 20) - 1)
            .await
            .expect_err("one byte over");
        assert!(matches!(err, ClientError::TooLarge { max } if max == (1 << 20) - 1), "{err}");
        assert!(!err.is_retryable(), "a limit is final: {err}");
        assert!(err.to_string().contains("1048575"), "names the limit: {err}");
        store.stop().await;
    })
    .await;
}
