//! The local cache in front of the store.

use bytes::Bytes;
use provernet_artifacts::{ArtifactCache, ArtifactId, ArtifactKind, Visibility};

use crate::{TestStore, client, random_bytes, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_downloads_once_and_evicts_least_recent() {
    within(async {
        let store = TestStore::start().await;
        let client = client();
        let mut ids = Vec::new();
        for seed in ["a", "b", "c"] {
            let data = Bytes::from(random_bytes(1 << 20, seed));
            let id = ArtifactId::of(&data);
            let url = store.put_url(id, ArtifactKind::Program, Visibility::Public);
            client.upload_bytes(&url, data).await.expect("upload");
            ids.push(id);
        }
        // Outside the store's folder, which goes away with the store.
        let cache_dir = tempfile::tempdir().expect("tempdir");
        let cache = ArtifactCache::open(cache_dir.path(), (2 << 20) + 10).await.expect("cache");
        for id in &ids[..2] {
            let path = cache
                .get_or_download(&client, &store.public_url(*id), id, None)
                .await
                .expect("fetch");
            assert_eq!(ArtifactId::of(&std::fs::read(path).expect("read")), *id);
        }
        // Touch the first, then fetch the third: the second is evicted.
        assert!(cache.get(&ids[0]).await.expect("get").is_some());
        cache
            .get_or_download(&client, &store.public_url(ids[2]), &ids[2], None)
            .await
            .expect("fetch");
        assert!(cache.contains(&ids[0]) && cache.contains(&ids[2]) && !cache.contains(&ids[1]));
        assert_eq!(cache.used_bytes(), 2 << 20);

        // Served from the cache with the store gone.
        let base = store.base.clone();
        store.stop().await;
        let url = format!("{base}/v1/artifacts/{}", ids[0]);
        cache.get_or_download(&client, &url, &ids[0], None).await.expect("cache hit, no network");
    })
    .await;
}
