//! Uploads and downloads that should succeed.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;
use provernet_artifacts::{ArtifactId, ArtifactKind, Progress, Visibility, client::hash_file};

use crate::{TestStore, client, client_with, random_bytes, staged_files, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_round_trip() {
    within(async {
        let store = TestStore::start().await;
        let client = client();
        let data = Bytes::from_static(b"(begin push.1 push.2 add end)");
        let id = ArtifactId::of(&data);

        let receipt = client
            .upload_bytes(
                &store.put_url(id, ArtifactKind::Program, Visibility::Public),
                data.clone(),
            )
            .await
            .expect("upload");
        assert_eq!((receipt.id, receipt.size, receipt.created), (id, data.len() as u64, true));

        let url = store.public_url(id);
        assert_eq!(client.download_to_vec(&url, &id, None).await.expect("download"), data);
        let info = client.head(&url).await.expect("head");
        assert_eq!(
            (info.size, info.kind, info.visibility),
            (data.len() as u64, Some(ArtifactKind::Program), Some(Visibility::Public))
        );

        let dest = store.scratch("small.out");
        client.download_to_file(&url, &id, &dest, None).await.expect("download to file");
        assert_eq!(std::fs::read(&dest).expect("read"), data);

        // An id already stored: success, nothing rewritten.
        let again = client
            .upload_bytes(
                &store.put_url(id, ArtifactKind::Program, Visibility::Public),
                data.clone(),
            )
            .await
            .expect("second upload");
        assert!(!again.created);

        // The empty artifact is an artifact too.
        let empty = ArtifactId::of(b"");
        let put = store.put_url(empty, ArtifactKind::Inputs, Visibility::Public);
        client.upload_bytes(&put, Bytes::new()).await.expect("empty upload");
        let got = client
            .download_to_vec(&store.public_url(empty), &empty, None)
            .await
            .expect("empty download");
        assert!(got.is_empty());
        store.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_round_trip_100_mib() {
    within(async {
        let store = TestStore::start().await;
        let data = random_bytes(100 << 20, "large");
        let id = ArtifactId::of(&data);
        let src = store.scratch("large.in");
        tokio::fs::write(&src, &data).await.expect("write");
        drop(data);

        let seen = Arc::new(AtomicU64::new(0));
        let progress = {
            let seen = seen.clone();
            Arc::new(move |p: Progress| {
                assert_eq!(p.total, Some(100 << 20));
                seen.store(p.done, Ordering::Relaxed);
            })
        };
        let put = store.put_url(id, ArtifactKind::Inputs, Visibility::Private);
        let receipt = client().upload_file(&put, &src, Some(progress)).await.expect("upload");
        assert_eq!(receipt.size, 100 << 20);
        assert_eq!(seen.load(Ordering::Relaxed), 100 << 20, "progress reached the end");

        // Sequential, then parallel ranged, both verified.
        let url = store.get_url(id);
        let sequential = client_with(|c| c.parallel_connections = 1);
        let dest = store.scratch("large.seq");
        sequential.download_to_file(&url, &id, &dest, None).await.expect("sequential download");
        assert_eq!(hash_file(&dest).await.expect("hash"), id);

        let parallel = client_with(|c| {
            c.parallel_threshold_bytes = 1 << 20;
            c.range_bytes = 7 << 20; // not a divisor of the size: last range is short
        });
        let dest = store.scratch("large.par");
        let seen = Arc::new(AtomicU64::new(0));
        let progress = {
            let seen = seen.clone();
            Arc::new(move |p: Progress| {
                seen.fetch_max(p.done, Ordering::Relaxed);
            })
        };
        parallel
            .download_to_file(&url, &id, &dest, Some(progress))
            .await
            .expect("parallel download");
        assert_eq!(hash_file(&dest).await.expect("hash"), id);
        assert_eq!(seen.load(Ordering::Relaxed), 100 << 20);

        let in_memory = sequential.download_to_vec(&url, &id, None).await.expect("to memory");
        assert_eq!(ArtifactId::of(&in_memory), id);
        assert!(staged_files(&store.root()).is_empty());
        store.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_of_one_id() {
    within(async {
        let store = TestStore::start().await;
        // Larger than the local part size, so each upload goes through a staged multipart upload.
        let data = Bytes::from(random_bytes(5 << 20, "concurrent"));
        let id = ArtifactId::of(&data);
        let client = client();
        let uploads = (0..6).map(|_| {
            let client = client.clone();
            let url = store.put_url(id, ArtifactKind::Proof, Visibility::Public);
            let data = data.clone();
            tokio::spawn(async move { client.upload_bytes(&url, data).await })
        });
        let mut created = 0;
        for upload in futures::future::join_all(uploads).await {
            let receipt = upload.expect("task").expect("every upload succeeds");
            assert_eq!(receipt.size, data.len() as u64);
            created += usize::from(receipt.created);
        }
        assert_eq!(created, 1, "exactly one upload created the artifact");
        let got = client.download_to_vec(&store.public_url(id), &id, None).await.expect("download");
        assert_eq!(got, data);
        assert!(staged_files(&store.root()).is_empty(), "no staged upload left behind");
        store.stop().await;
    })
    .await;
}
