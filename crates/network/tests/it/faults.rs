//! Faults in what the network depends on: each is survived without losing a request or settling
//! it wrongly.

use provernet_artifacts::ArtifactStorage;
use provernet_types::proto::ExecutionStatus;
use provernet_zkvm::samples::FIB;

use crate::harness::{Net, bounded};

#[tokio::test]
async fn a_storage_failure_while_executing_is_retried_not_charged_as_unexecutable() {
    bounded(async {
        let net = Net::start().await;
        let requester = net.funded().await;
        let program = net.program(&requester, &FIB, false).await;
        // The inputs' bytes become unreadable, as on a failing disk: a folder where the file
        // was, while their metadata still says they are stored.
        let storage = net.handle.state.artifacts.storage();
        let root = storage.local_root().expect("a local folder").to_owned();
        let object = root.join(ArtifactStorage::object_key(&program.inputs_id));
        let aside = object.with_extension("aside");
        std::fs::rename(&object, &aside).expect("move the inputs aside");
        std::fs::create_dir(&object).expect("a folder in their place");

        let mut retries = net.handle.state.executor_read_retries.subscribe();
        let mut events = net.events().await;
        let before = net.balance(&requester.address()).await;
        let spec = program.spec(1);
        let id = net.request(&requester, &spec).await;
        retries.wait_for(|n| *n >= 1).await.expect("the executor retried the read");
        let r = net.get(&id).await;
        assert_eq!(r.execution_status, ExecutionStatus::Unexecuted as i32, "{r:?}");

        // The disk recovers: the request is executed, and nobody pays a penalty.
        std::fs::remove_dir(&object).expect("remove the folder");
        std::fs::rename(&aside, &object).expect("put the inputs back");
        events.executed(&id).await;
        let lock = spec.max_cost().expect("cost").get();
        assert_eq!(net.balance(&requester.address()).await, before - lock, "only the lock");
        net.stop().await;
    })
    .await;
}
