//! [`RequestQuery`]: which proof requests a read wants, in one definition that both the
//! requests in memory ([`RequestQuery::matches`]) and the store's SQL (`store::sql`) follow.

use provernet_types::{Address, RequestId};

use super::{Request, Status};

/// A filter over proof requests, and where a page of them starts. Requests come oldest first,
/// by `(created_at, id)`. Every `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestQuery {
    /// Only requests in one of these statuses (empty: none match).
    pub statuses: Option<Vec<Status>>,
    /// Only requests whose execution is one of these ([`super::Execution::name`]; empty: none).
    pub executions: Option<Vec<&'static str>>,
    /// Only requests for this zkVM version.
    pub zkvm_version: Option<String>,
    /// Only requests from this requester.
    pub requester: Option<Address>,
    /// Only requests assigned to this prover (owner address).
    pub prover: Option<Address>,
    /// Only requests this prover (owner address) has not bid on.
    pub not_bid_by: Option<Address>,
    /// Only requests for this program.
    pub program_id: Option<Vec<u8>>,
    /// Only requests in one of these proof modes (`""` is the default mode; empty: none).
    pub proof_modes: Option<Vec<String>>,
    /// Only requests whose deadline is at or after this unix second.
    pub min_deadline: Option<u64>,
    /// Only requests created at or after this unix second.
    pub created_from: Option<u64>,
    /// Only requests created at or before this unix second.
    pub created_to: Option<u64>,
    /// Only requests after this `(created_at, id)`: a page's cursor.
    pub after: Option<(u64, RequestId)>,
}

impl RequestQuery {
    /// Whether `r` is one of the requests asked for.
    pub fn matches(&self, r: &Request) -> bool {
        fn any<T: PartialEq>(set: &Option<Vec<T>>, value: &T) -> bool {
            set.as_ref().is_none_or(|s| s.contains(value))
        }
        any(&self.statuses, &r.status)
            && any(&self.executions, &r.execution.name())
            && self.zkvm_version.as_ref().is_none_or(|v| *v == r.spec.zkvm_version)
            && self.requester.is_none_or(|a| a == r.requester)
            && self.prover.is_none_or(|p| r.assignment.as_ref().is_some_and(|a| a.prover == p))
            && self.not_bid_by.is_none_or(|p| r.bids.iter().all(|b| b.prover != p))
            && self.program_id.as_ref().is_none_or(|id| *id == r.spec.program_id)
            && any(&self.proof_modes, &r.spec.proof_mode)
            && self.min_deadline.is_none_or(|d| r.spec.deadline >= d)
            && self.created_from.is_none_or(|t| r.created_at >= t)
            && self.created_to.is_none_or(|t| r.created_at <= t)
            && self.after.is_none_or(|c| (r.created_at, r.id) > c)
    }

    /// Whether a request in `status` can match at all.
    pub fn admits_status(&self, status: Status) -> bool {
        self.statuses.as_ref().is_none_or(|s| s.contains(&status))
    }
}
