//! HTTP range requests.

use bytes::Bytes;
use provernet_artifacts::{ArtifactId, ArtifactKind, Visibility};
use reqwest::header;

use crate::{TestStore, client, expect_error, http, random_bytes, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests_get_206() {
    within(async {
        let store = TestStore::start().await;
        let data = Bytes::from(random_bytes(1_000_000, "ranges"));
        let id = ArtifactId::of(&data);
        let put = store.put_url(id, ArtifactKind::Inputs, Visibility::Private);
        client().upload_bytes(&put, data.clone()).await.expect("upload");
        let url = store.get_url(id);

        for (range, expected, content_range) in [
            ("bytes=0-9", 0..10, "bytes 0-9/1000000"),
            ("bytes=999990-", 999_990..1_000_000, "bytes 999990-999999/1000000"),
            ("bytes=-5", 999_995..1_000_000, "bytes 999995-999999/1000000"),
            ("bytes=500000-599999", 500_000..600_000, "bytes 500000-599999/1000000"),
            ("bytes=999999-2000000", 999_999..1_000_000, "bytes 999999-999999/1000000"),
        ] {
            let response =
                http().get(&url).header(header::RANGE, range).send().await.expect("send");
            assert_eq!(response.status(), 206, "{range}");
            assert_eq!(response.headers()[header::CONTENT_RANGE], content_range);
            assert_eq!(response.bytes().await.expect("body"), data.slice(expected), "{range}");
        }

        let response =
            http().get(&url).header(header::RANGE, "bytes=1000000-").send().await.expect("send");
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */1000000");
        expect_error(response, 416, "range_not_satisfiable").await;

        // No Range, or one we don't serve (multi-range): the whole artifact.
        let response =
            http().get(&url).header(header::RANGE, "bytes=0-1,5-6").send().await.expect("send");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::ACCEPT_RANGES], "bytes");
        assert_eq!(response.bytes().await.expect("body"), data);

        let response = http().head(&url).send().await.expect("send");
        assert_eq!(response.headers()[header::CONTENT_LENGTH], "1000000");
        store.stop().await;
    })
    .await;
}
