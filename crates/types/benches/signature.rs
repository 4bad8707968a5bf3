//! Signed envelopes, the network's hottest path (BENCHMARKS.md): sealing a Bid, opening it
//! (signature parse, domain and kind checks, signer recovery, decode), recovery alone, and
//! signing alone.
//!
//! ```sh
//! cargo bench -p provernet-types --bench signature
//! ```

#![allow(clippy::unwrap_used, reason = "a benchmark fails by panicking, like a test")]

use std::{hint::black_box, time::Duration};

use criterion::Criterion;
use prost::Message;
use provernet_types::{Domain, Signature, SignedBody, Signer, open, proto::BidBody, recover, seal};

fn bid(signer: &Signer) -> BidBody {
    BidBody {
        nonce: 7,
        request_id: vec![0xab; 32],
        price_per_pgu: "1250".into(),
        prover: signer.address().as_bytes().to_vec(),
    }
}

fn signatures(c: &mut Criterion) {
    let signer = Signer::from_hex(&"11".repeat(32)).unwrap();
    let domain = Domain::new("provernet-bench");
    let body = bid(&signer);
    let sealed = seal(&signer, &domain, &body);
    let bid_domain = domain.with_kind(BidBody::KIND);
    let signature = Signature::from_slice(&sealed.signature).unwrap();
    let encoded = body.encode_to_vec();
    assert_eq!(recover(&bid_domain, &encoded, &signature).unwrap(), signer.address());

    let mut group = c.benchmark_group("signature");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("seal BidBody", |b| b.iter(|| seal(&signer, &domain, black_box(&body))));
    group.bench_function("open BidBody", |b| {
        b.iter(|| open::<BidBody>(&domain, black_box(&sealed)).unwrap())
    });
    group.bench_function("recover", |b| {
        b.iter(|| recover(&bid_domain, black_box(&encoded), black_box(&signature)).unwrap())
    });
    group.bench_function("Signer::sign", |b| {
        b.iter(|| signer.sign(&bid_domain, black_box(&encoded)))
    });
    group.finish();
}

fn main() {
    // Not `criterion_group!`: it generates an undocumented `pub fn` (missing_docs).
    let mut c = Criterion::default().configure_from_args();
    signatures(&mut c);
    c.final_summary();
}
