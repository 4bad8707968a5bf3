//! SP1 requests (feature `sp1`): the network registers SP1 programs, executes requests with
//! SP1's light client and verifies proofs, here the core proof committed as a fixture by the
//! zkvm crate (`crates/zkvm/tests/fixtures/sp1-fib-core.proof`, fib n=20), so no proving runs.
//! (A guest halting with a non-zero code is an execution error like any other: the zkvm crate's
//! SP1 tests check its message, the Miden suites its path to Unfulfillable.)
#![cfg(feature = "sp1")]

use std::time::Duration;

use provernet_types::proto::RequestStatus;
use provernet_zkvm::{
    ProgramId, ProofBundle,
    sp1::{
        self,
        samples::{self, fib_outputs},
    },
};
use tonic::Code;

use crate::harness::{Net, assert_status};

/// SP1's setup (computing the program id at registration) takes ~15 s in release and a minute
/// or more in the test profile on 2 cores: this test's bound, and the network's RPC timeout.
const SP1_SETUP_BOUND: Duration = Duration::from_secs(600);

/// The committed proof and its program id.
fn fixture() -> (Vec<u8>, ProgramId) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../zkvm/tests/fixtures/sp1-fib-core.proof");
    let proof = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("the committed fixture {}: {e}", path.display()));
    let id = std::fs::read_to_string(path.with_extension("program-id"))
        .expect("the fixture's program id");
    (proof, id.trim().parse().expect("the fixture's program id"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp1_requests_are_executed_and_their_proofs_verified() {
    let (proof, fixture_id) = fixture();
    let test = async {
        let net = Net::start_with(|config| config.request_timeout = SP1_SETUP_BOUND).await;
        let requester = net.funded().await;
        let prover = net.prover().await;
        let fib = samples::FIB_ELF;
        let program = net
            .program_of(&requester, "fib", sp1::VERSION, fib, &samples::fib_inputs(20), false)
            .await;
        assert_eq!(program.program_id, fixture_id.as_bytes(), "the program id is the vk hash");
        let mut spec = program.spec(1);
        spec.gas_limit = 1_000_000;
        let mut events = net.events().await;
        let id = net.request(&requester, &spec).await;
        let executed = events.executed(&id).await;
        assert!(executed.pgus > 1_000 && executed.pgus < 100_000, "SP1's gas: {executed:?}");
        net.bid(&prover, &id, 3).await.expect("Bid");
        events.assigned(&id).await;

        let genuine = ProofBundle {
            zkvm: sp1::VERSION.into(),
            program_id: fixture_id,
            outputs: fib_outputs(20),
            proof: proof.clone(),
        };
        let mut flipped = genuine.clone();
        let middle = flipped.proof.len() / 2;
        flipped.proof[middle] ^= 0x01;
        let mut other_outputs = genuine.clone();
        other_outputs.outputs = fib_outputs(21);
        let mut truncated = genuine.clone();
        truncated.proof.truncate(middle);
        let before = net.get(&id).await;
        let result = net.fulfill(&prover, &id, other_outputs.encode()).await;
        assert_status(result, Code::InvalidArgument, "public outputs differ");
        assert_eq!(net.get(&id).await, before, "other outputs: the request stays assigned");
        for (what, bundle) in [("a flipped byte", flipped), ("a cut proof", truncated)] {
            net.fulfill(&prover, &id, bundle.encode()).await.expect("submitted");
            let reason = events.verdict(&id).await.expect_err("rejected by the verifier");
            assert!(reason.contains("proof"), "{what}: {reason}");
            let r = net.get(&id).await;
            assert_eq!(r.status, RequestStatus::Assigned as i32, "{what}: stays assigned");
        }
        net.fulfill(&prover, &id, genuine.encode()).await.expect("submitted");
        events.verdict(&id).await.expect("the committed proof verifies");
        let done =
            net.wait_until(&id, "Fulfilled", |r| r.status == RequestStatus::Fulfilled as i32).await;
        assert_eq!(done.pgus, executed.pgus);

        // A file that is not an RV64IM ELF is refused at registration, naming the problem.
        let artifact = net
            .upload(
                &requester,
                b"\x7fELF not really",
                provernet_types::proto::ArtifactKind::Program,
            )
            .await;
        let message = net
            .sign(&requester, |nonce| provernet_types::proto::RegisterProgramBody {
                nonce,
                name: "junk".into(),
                zkvm_version: sp1::VERSION.into(),
                program_artifact_id: artifact.as_bytes().to_vec(),
            })
            .await;
        assert_status(net.rpc().register_program(message).await, Code::InvalidArgument, "ELF");
        net.stop().await;
    };
    tokio::time::timeout(SP1_SETUP_BOUND, test).await.expect("the SP1 test did not finish in time");
}
