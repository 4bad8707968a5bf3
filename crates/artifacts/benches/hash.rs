//! Artifact ids: BLAKE3 of the content ([`ArtifactId::of`]) over 1 KiB, 1 MiB and 64 MiB, in
//! bytes per second. One thread (`blake3` without `rayon`): what the server and client do
//! while streaming.
//!
//! ```sh
//! cargo bench -p provernet-artifacts --bench hash
//! ```

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, Throughput};
use provernet_artifacts::ArtifactId;

fn hash(c: &mut Criterion) {
    let mut group = c.benchmark_group("ArtifactId::of");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (label, size) in [("1 KiB", 1usize << 10), ("1 MiB", 1 << 20), ("64 MiB", 64 << 20)] {
        // Not zeros: incompressible content, the same every run.
        let content: Vec<u8> =
            (0..size).map(|i| (i as u64).wrapping_mul(0x9e37_79b9) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        // 64 MiB takes ~20 ms a hash: fewer samples keep the run to seconds.
        group.sample_size(if size >= 64 << 20 { 10 } else { 50 });
        group.bench_function(label, |b| b.iter(|| ArtifactId::of(black_box(&content))));
    }
    group.finish();
}

fn main() {
    // Not `criterion_group!`: it generates an undocumented `pub fn` (missing_docs).
    let mut c = Criterion::default().configure_from_args();
    hash(&mut c);
    c.final_summary();
}
