//! Presigned URLs: forged, expired, wrong-method and missing signatures are refused with 403.

use std::time::Duration;

use bytes::Bytes;
use provernet_artifacts::{
    ArtifactId, ArtifactKind, Method, UrlSigner, Visibility, kind::unix_now, presign::Grant,
};

use crate::{TestStore, client, expect_error, http, within};

fn grant(method: Method, id: ArtifactId, visibility: Visibility, expires: u64) -> Grant {
    Grant {
        method,
        id,
        kind: ArtifactKind::Inputs,
        visibility,
        expires,
        retain_until: None,
        max_bytes: None,
    }
}

async fn store_private(store: &TestStore, data: &'static [u8]) -> ArtifactId {
    let id = ArtifactId::of(data);
    let url = store.put_url(id, ArtifactKind::Inputs, Visibility::Private);
    client().upload_bytes(&url, Bytes::from_static(data)).await.expect("upload");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_signatures_are_refused() {
    within(async {
        let store = TestStore::start().await;
        let data: &[u8] = b"secret inputs";
        let id = ArtifactId::of(data);
        let later = unix_now() + 60;

        // Signed with another secret.
        let other = UrlSigner::new("not-the-store-secret-at-all").expect("signer");
        let url = other.sign(grant(Method::Put, id, Visibility::Private, later)).url(&store.base);
        let response = http().put(&url).body(data).send().await.expect("send");
        expect_error(response, 403, "signature_invalid").await;

        // A field changed after signing (private → public).
        let url = store
            .url_for(grant(Method::Put, id, Visibility::Private, later))
            .replace("visibility=private", "visibility=public");
        let response = http().put(&url).body(data).send().await.expect("send");
        expect_error(response, 403, "signature_invalid").await;

        // A signature for another id.
        let url =
            store.url_for(grant(Method::Put, ArtifactId::of(b"x"), Visibility::Private, later));
        let url = url.replace(&ArtifactId::of(b"x").to_string(), &id.to_string());
        let response = http().put(&url).body(data).send().await.expect("send");
        expect_error(response, 403, "signature_invalid").await;

        // Nothing was stored by any of them.
        let response = http().get(store.get_url(id)).send().await.expect("send");
        expect_error(response, 404, "not_found").await;

        // Reading a private artifact with a forged GET signature.
        let id = store_private(&store, b"private bytes").await;
        let forged =
            other.sign(grant(Method::Get, id, Visibility::Private, later)).url(&store.base);
        let response = http().get(&forged).send().await.expect("send");
        expect_error(response, 403, "signature_invalid").await;
        store.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_signatures_are_refused() {
    within(async {
        let store = TestStore::start().await;
        let id = store_private(&store, b"expiring").await;
        let past = unix_now() - 1;

        let url = store.url_for(grant(Method::Get, id, Visibility::Private, past));
        let response = http().get(&url).send().await.expect("send");
        let message = expect_error(response, 403, "signature_expired").await;
        assert!(message.contains("expired"), "{message}");

        let data: &[u8] = b"late upload";
        let url = store.url_for(grant(Method::Put, ArtifactId::of(data), Visibility::Public, past));
        let response = http().put(&url).body(data).send().await.expect("send");
        expect_error(response, 403, "signature_expired").await;
        store.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_and_missing_signatures_are_refused() {
    within(async {
        let store = TestStore::start().await;
        let id = store_private(&store, b"private").await;

        // A GET URL used to upload.
        let data: &[u8] = b"other";
        let get = store.url_for(grant(
            Method::Get,
            ArtifactId::of(data),
            Visibility::Public,
            unix_now() + 60,
        ));
        let response = http().put(&get).body(data).send().await.expect("send");
        expect_error(response, 403, "signature_wrong_method").await;

        // A PUT URL used to read.
        let put = store.put_url(id, ArtifactKind::Inputs, Visibility::Private);
        let response = http().get(&put).send().await.expect("send");
        expect_error(response, 403, "signature_wrong_method").await;

        // A private artifact without any signature; an upload without one.
        let response = http().get(store.public_url(id)).send().await.expect("send");
        expect_error(response, 403, "signature_required").await;
        let response = http().put(store.public_url(id)).body("private").send().await.expect("send");
        expect_error(response, 403, "signature_required").await;

        // A valid GET URL works, for HEAD too.
        let url = store.get_url(id);
        assert_eq!(http().get(&url).send().await.expect("send").status(), 200);
        assert_eq!(http().head(&url).send().await.expect("send").status(), 200);
        assert_eq!(
            client().download_to_vec(&url, &id, None).await.expect("download"),
            &b"private"[..]
        );
        store.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_ids() {
    within(async {
        let store = TestStore::start().await;
        let id = ArtifactId::of(b"never uploaded");
        let response = http().get(store.public_url(id)).send().await.expect("send");
        let message = expect_error(response, 404, "not_found").await;
        assert!(message.contains(&id.to_string()), "{message}");
        let response = http().head(store.public_url(id)).send().await.expect("send");
        assert_eq!(response.status(), 404);

        let response =
            http().get(format!("{}/v1/artifacts/0xnothex", store.base)).send().await.expect("send");
        expect_error(response, 400, "bad_id").await;
        let response = http().get(format!("{}/v1/nothing", store.base)).send().await.expect("send");
        expect_error(response, 404, "no_route").await;
        let response = http().delete(store.public_url(id)).send().await.expect("send");
        expect_error(response, 405, "method_not_allowed").await;

        // Presigned URLs carry their expiry; a far-future one still works.
        let url = store
            .signer
            .presign_put(
                id,
                ArtifactKind::Proof,
                Visibility::Public,
                Duration::from_secs(86_400),
                None,
            )
            .url(&store.base);
        let response = http().put(&url).body("never uploaded").send().await.expect("send");
        assert_eq!(response.status(), 201);
        store.stop().await;
    })
    .await;
}
