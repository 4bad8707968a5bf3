//! What survives crashes and corruption: a flipped byte is caught, a partial upload is never
//! served.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use provernet_artifacts::{
    ArtifactCache, ArtifactId, ArtifactKind, ArtifactStorage, CacheError, ClientError, NewArtifact,
    Visibility,
};
use tokio::sync::mpsc;
use tokio_stream_shim::ReceiverStream;

use crate::{TestStore, client, expect_error, http, random_bytes, within};

/// A tiny stand-in for `tokio_stream::wrappers::ReceiverStream`.
mod tokio_stream_shim {
    use std::{
        pin::Pin,
        task::{Context, Poll},
    };

    use tokio::sync::mpsc;

    /// Stream of an mpsc receiver.
    pub struct ReceiverStream<T>(pub mpsc::Receiver<T>);

    impl<T> futures::Stream for ReceiverStream<T> {
        type Item = T;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_in_storage_is_caught() {
    within(async {
        let store = TestStore::start().await;
        let data = Bytes::from(random_bytes(3 << 20, "flip"));
        let id = ArtifactId::of(&data);
        let put = store.put_url(id, ArtifactKind::Proof, Visibility::Public);
        client().upload_bytes(&put, data).await.expect("upload");

        let path = store.object_path(&id);
        let mut bytes = std::fs::read(&path).expect("stored file");
        bytes[1_234_567] ^= 0x01;
        std::fs::write(&path, bytes).expect("flip");

        let url = store.public_url(id);
        let err = client().download_to_vec(&url, &id, None).await.expect_err("caught in memory");
        assert!(matches!(err, ClientError::Mismatch { id: got, .. } if got == id));
        assert!(err.to_string().contains(&id.to_string()), "error names the artifact: {err}");

        for parallel in [false, true] {
            let client = crate::client_with(|c| {
                c.parallel_connections = if parallel { 3 } else { 1 };
                c.parallel_threshold_bytes = 1 << 20;
                c.range_bytes = 1 << 20;
            });
            let dest = store.scratch(&format!("flip-{parallel}.out"));
            let err =
                client.download_to_file(&url, &id, &dest, None).await.expect_err("caught on file");
            assert!(err.to_string().contains(&id.to_string()), "{err}");
            assert!(!dest.exists(), "nothing left at the destination");
            let leftovers: Vec<_> = std::fs::read_dir(store.dir.path())
                .expect("dir")
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
                .collect();
            assert!(leftovers.is_empty(), "temporary file removed");
        }

        let cache = ArtifactCache::open(store.scratch("cache"), 64 << 20).await.expect("cache");
        let err =
            cache.get_or_download(&client(), &url, &id, None).await.expect_err("caught by cache");
        assert!(matches!(err, CacheError::Client(ClientError::Mismatch { .. })));
        assert!(err.to_string().contains(&id.to_string()), "{err}");
        assert!(cache.is_empty(), "the cache keeps nothing");
        assert_eq!(std::fs::read_dir(cache.dir()).expect("dir").count(), 0, "no file in the cache");
        store.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_upload_left_by_a_killed_server_is_never_served() {
    within(async {
        let store = TestStore::start().await;
        let data = random_bytes(4 << 20, "partial");
        let id = ArtifactId::of(&data);

        // What a process killed mid-upload leaves on disk: a staged file, never published.
        let object = store.object_path(&id);
        std::fs::create_dir_all(object.parent().expect("shard")).expect("mkdir");
        let staged = object
            .with_file_name(format!("{}#1", object.file_name().expect("name").to_string_lossy()));
        std::fs::write(&staged, &data[..1 << 20]).expect("staged part");
        for request in [http().get(store.public_url(id)), http().head(store.public_url(id))] {
            assert_eq!(request.send().await.expect("send").status(), 404);
        }

        // Killed between publishing the bytes and writing the metadata: still not served.
        std::fs::write(&object, &data[..2 << 20]).expect("unpublished object");
        let response = http().get(store.get_url(id)).send().await.expect("send");
        expect_error(response, 404, "not_found").await;

        // A real upload then succeeds and serves the right bytes.
        let put = store.put_url(id, ArtifactKind::Inputs, Visibility::Public);
        assert!(
            client().upload_bytes(&put, Bytes::from(data.clone())).await.expect("upload").created
        );
        let got =
            client().download_to_vec(&store.public_url(id), &id, None).await.expect("download");
        assert_eq!(got, data);

        // On start, a server clears staged uploads older than an hour; with age 0, all of them.
        let removed =
            store.server.storage().remove_stale_uploads(Duration::ZERO).await.expect("sweep");
        assert_eq!(removed, 1);
        assert!(!staged.exists());
        store.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_aborted_mid_stream_is_never_served() {
    within(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = ArtifactStorage::local(dir.path()).expect("local").with_part_bytes(256 << 10);
        let data = random_bytes(4 << 20, "aborted");
        let id = ArtifactId::of(&data);

        // Capacity 1: once the third chunk is accepted, the first two have been consumed and
        // written to the staged multipart upload.
        let (chunk_tx, chunk_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let new = NewArtifact { kind: ArtifactKind::Inputs, visibility: Visibility::Public, retain_until: None };
        let upload = tokio::spawn({
            let storage = storage.clone();
            async move { storage.put_stream(id, new, ReceiverStream(chunk_rx).boxed(), u64::MAX).await }
        });
        for chunk in data.chunks(512 << 10).take(3) {
            chunk_tx.send(Ok(Bytes::copy_from_slice(chunk))).await.expect("send");
        }
        upload.abort();
        assert!(upload.await.expect_err("aborted").is_cancelled());

        assert!(storage.meta(&id).await.expect("meta").is_none());
        assert!(storage.get(&id, None).await.is_err(), "no published bytes");
        assert!(!dir.path().join(ArtifactStorage::object_key(&id)).exists());
    })
    .await;
}
