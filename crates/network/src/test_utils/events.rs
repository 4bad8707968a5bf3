//! [`Events`]: a subscription read in tests, one expected event at a time, each within
//! [`WAIT`].

use provernet_types::{
    RequestId,
    proto::{self, request_event::Event},
};

use super::WAIT;

/// A stream of events.
pub struct Events(pub tonic::Streaming<proto::RequestEvent>);

impl Events {
    /// The next event about `id`, within [`WAIT`].
    pub async fn next_about(&mut self, id: &RequestId, what: &str) -> Event {
        let wait = async {
            loop {
                let event = self.0.message().await.expect("event stream").expect("stream open");
                if event.request_id == id.as_bytes() {
                    return event.event.expect("event body");
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no event about {id} while waiting for {what}"))
    }

    /// Skips events about `id` until `pick` returns something.
    pub async fn wait_for<T>(
        &mut self,
        id: &RequestId,
        what: &str,
        pick: impl Fn(&Event) -> Option<T>,
    ) -> T {
        loop {
            if let Some(found) = pick(&self.next_about(id, what).await) {
                return found;
            }
        }
    }

    /// The `Executed` event of `id` (panics if it is unexecutable).
    pub async fn executed(&mut self, id: &RequestId) -> proto::RequestExecuted {
        self.wait_for(id, "Executed", |e| match e {
            Event::Executed(x) => Some(x.clone()),
            Event::Unexecutable(x) => panic!("request {id} is unexecutable: {}", x.reason),
            _ => None,
        })
        .await
    }

    /// Waits until every request of `ids` is executed, in whatever order: requests execute
    /// concurrently, and [`Events::executed`] on one skips the others' events.
    pub async fn executed_each(&mut self, ids: &[RequestId]) {
        let mut waiting: Vec<&RequestId> = ids.iter().collect();
        let wait = async {
            while !waiting.is_empty() {
                let event = self.0.message().await.expect("event stream").expect("stream open");
                let id = event.request_id.as_slice();
                match event.event.expect("event body") {
                    Event::Executed(_) => waiting.retain(|w| w.as_bytes() != id),
                    Event::Unexecutable(x) => panic!("a request is unexecutable: {}", x.reason),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("not every request executed: {ids:?}"));
    }

    /// The verifier's verdict on the proof just submitted for `id`: `Ok` once it is fulfilled,
    /// `Err(reason)` once the proof is rejected.
    pub async fn verdict(&mut self, id: &RequestId) -> Result<(), String> {
        self.wait_for(id, "the verifier's verdict", |e| match e {
            Event::Fulfilled(_) => Some(Ok(())),
            Event::ProofRejected(r) => Some(Err(r.reason.clone())),
            _ => None,
        })
        .await
    }

    /// The `Assigned` event of `id`.
    pub async fn assigned(&mut self, id: &RequestId) -> proto::RequestAssigned {
        self.wait_for(id, "Assigned", |e| match e {
            Event::Assigned(x) => Some(x.clone()),
            _ => None,
        })
        .await
    }
}
