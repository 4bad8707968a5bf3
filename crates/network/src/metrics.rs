//! Every metric the network records, in one place: its name, its help text and its unit, so
//! that `/metrics` describes itself and no name is spelt twice. No label carries an id.

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

const REQUESTS: &str = "network_requests";
const BIDS: &str = "network_auction_bids_total";
const SETTLE_DELAY: &str = "network_auction_settle_delay_seconds";
const EXECUTION: &str = "network_execution_seconds";
const VERIFICATION: &str = "network_verification_seconds";
const EXECUTOR_RETRIES: &str = "network_executor_read_retries_total";
const VERIFIER_RETRIES: &str = "network_verifier_read_retries_total";
const RATE_LIMITED: &str = "network_rate_limited_total";
const SUBSCRIPTIONS_REFUSED: &str = "network_subscriptions_refused_total";
const LOAD_SHED: &str = "network_load_shed_total";
const PROOFS_DELETED: &str = "network_proofs_deleted_total";
const LEADER: &str = "network_leader";
const LEADER_EPOCH: &str = "network_leader_epoch";
const STANDBY_LAG: &str = "network_standby_lag_seconds";

/// Registers the help text and unit of every metric (call once at start).
pub fn describe() {
    describe_gauge!(REQUESTS, "Proof requests in each state (label state).");
    describe_counter!(BIDS, "Bids accepted.");
    describe_histogram!(
        SETTLE_DELAY,
        Unit::Seconds,
        "Delay between an auction's end and its settlement."
    );
    describe_histogram!(EXECUTION, Unit::Seconds, "Time the executor took per request.");
    describe_histogram!(VERIFICATION, Unit::Seconds, "Time the verifier took per proof.");
    describe_counter!(
        EXECUTOR_RETRIES,
        "Artifact reads the executor retried after a storage failure."
    );
    describe_counter!(VERIFIER_RETRIES, "Reads the verifier retried after a storage failure.");
    describe_counter!(RATE_LIMITED, "State-changing calls refused by an account's rate limit.");
    describe_counter!(SUBSCRIPTIONS_REFUSED, "Subscriptions refused by the per-connection limit.");
    describe_counter!(PROOFS_DELETED, "Accepted proofs deleted by the proof retention.");
    describe_gauge!(LEADER, "1 while this process leads the network, 0 while it stands by.");
    describe_gauge!(LEADER_EPOCH, "The leader epoch this process last held or saw (hot standby).");
    describe_gauge!(
        STANDBY_LAG,
        Unit::Seconds,
        "How long ago the leader committed the last change this standby applied."
    );
    describe_counter!(
        LOAD_SHED,
        "Calls refused because a background queue was full (label queue)."
    );
    // Every counter exists from the start, at 0: a dashboard or rule sees "none yet", not
    // "no such series". (An increment of 0 leaves a counter another launch counted alone.)
    for name in [
        BIDS,
        EXECUTOR_RETRIES,
        VERIFIER_RETRIES,
        RATE_LIMITED,
        SUBSCRIPTIONS_REFUSED,
        PROOFS_DELETED,
    ] {
        counter!(name).increment(0);
    }
    for queue in ["executor", "verifier"] {
        counter!(LOAD_SHED, "queue" => queue).increment(0);
    }
}

/// The number of requests in `state`.
pub fn requests_in(state: &'static str, count: u64) {
    gauge!(REQUESTS, "state" => state).set(count as f64);
}

/// A bid was accepted.
pub fn bid_accepted() {
    counter!(BIDS).increment(1);
}

/// An auction settled `seconds` after its end.
pub fn settled_after(seconds: f64) {
    histogram!(SETTLE_DELAY).record(seconds);
}

/// The executor spent `seconds` on a request.
pub fn executed_in(seconds: f64) {
    histogram!(EXECUTION).record(seconds);
}

/// The verifier spent `seconds` on a proof.
pub fn verified_in(seconds: f64) {
    histogram!(VERIFICATION).record(seconds);
}

/// The executor will read an artifact again after a storage failure.
pub fn executor_read_retried() {
    counter!(EXECUTOR_RETRIES).increment(1);
}

/// The verifier will read again after a storage failure.
pub fn verifier_read_retried() {
    counter!(VERIFIER_RETRIES).increment(1);
}

/// A call was refused by its account's rate limit.
pub fn rate_limited() {
    counter!(RATE_LIMITED).increment(1);
}

/// A subscription was refused by the per-connection limit.
pub fn subscription_refused() {
    counter!(SUBSCRIPTIONS_REFUSED).increment(1);
}

/// A call was refused because `queue` was full.
pub fn load_shed(queue: &'static str) {
    counter!(LOAD_SHED, "queue" => queue).increment(1);
}

/// The proof retention deleted an accepted proof.
pub fn proof_deleted() {
    counter!(PROOFS_DELETED).increment(1);
}

/// Whether this process leads the network (hot standby), and at which epoch.
pub fn leading(leads: bool, epoch: i64) {
    gauge!(LEADER).set(f64::from(u8::from(leads)));
    gauge!(LEADER_EPOCH).set(epoch as f64);
}

/// A standby applied a change the leader committed `seconds` ago.
pub fn standby_lag(seconds: f64) {
    gauge!(STANDBY_LAG).set(seconds);
}
