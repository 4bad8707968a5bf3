//! The harness: the shared test network of `provernet_network::test_utils` (in process, on
//! loopback ports chosen at run time, data in a temp dir, the ledger checked on every stop),
//! nodes launched with real keys and configs and a requester from `provernet_node::test_utils`.

use std::time::Duration;

pub use provernet_client::is_closed;
pub use provernet_network::test_utils::{MIDEN, TestNetwork as Net, bounded};
use provernet_network::{SuccinctApiConfig, test_utils::Options};
pub use provernet_node::clock::now_secs as now;
pub use provernet_node::test_utils::{
    NodeSpec, TestNode as Prover, TestRequester as Requester, WAIT, launch_refused, stop,
};
use provernet_types::proto;

/// A network on fresh loopback ports.
pub async fn start() -> Net {
    Net::start_with(long_requests).await
}

/// A network on fresh loopback ports that also serves the Succinct API.
pub async fn start_succinct() -> Net {
    Net::start_with_options(Options {
        tweak: |config| {
            long_requests(config);
            config.succinct = Some(SuccinctApiConfig::for_network(&config.network_id));
        },
        ..Options::default()
    })
    .await
}

/// SP1's setup (registering an SP1 program) takes a minute or more in the test profile.
fn long_requests(config: &mut provernet_network::NetworkConfig) {
    config.request_timeout = Duration::from_secs(600);
}

/// A new prover (its own operator, funded and staked) and its node's config, as `spec` says.
pub async fn register(net: &Net, spec: NodeSpec) -> Prover {
    Prover::register(&net.client, net.funded().await, spec).await
}

/// A new funded requester.
pub async fn requester(net: &Net) -> Requester {
    Requester::new(&net.client, net.funded().await)
}

/// The request's status.
pub fn status(request: &proto::ProofRequest) -> proto::RequestStatus {
    proto::RequestStatus::try_from(request.status).unwrap()
}
