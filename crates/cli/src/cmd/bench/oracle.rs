//! An offline reference for the market simulation: what a clairvoyant scheduler of the same
//! machines fulfils from the same request stream. It knows every request in advance, each
//! one's true time (fetch, execution, proof with its noise, submission, as the time model says)
//! and deadline; it takes only requests whose ceiling covers the cheapest machine's cost per
//! PGU (no node proves at a loss), ignores network latency, and runs greedy
//! earliest-deadline-first:
//! whenever a machine is free, it starts the open request with the earliest deadline that it
//! can still finish in time, dropping those it no longer can. Not a proven upper bound (no
//! exact optimum is computed: maximising on-time jobs with release dates is NP-hard), but a
//! schedule no online market can be expected to beat by much.

use std::{cmp::Reverse, collections::BinaryHeap};

use super::{
    timing,
    workload::{AUCTION_PERIOD_SECS, Planned},
};

/// One request as the oracle sees it, seconds.
struct Job {
    release: f64,
    deadline: f64,
    secs: f64,
}

/// Requests of `plan` a clairvoyant greedy-EDF schedule on `machines` one-slot machines fulfils,
/// of those whose ceiling is at least `min_cost_per_pgu`.
pub fn greedy_edf(plan: &[Planned], machines: usize, min_cost_per_pgu: u128) -> usize {
    let mut jobs: Vec<Job> = plan
        .iter()
        .filter(|p| p.max_price_per_pgu >= min_cost_per_pgu)
        .map(|p| {
            // As the engine: whole seconds of arrival, assignment at the auction's end.
            let created = (p.arrive_ms / 1_000) as f64;
            let release = created + AUCTION_PERIOD_SECS as f64;
            Job {
                release,
                deadline: release + p.deadline_after_auction_secs as f64,
                secs: timing::fetch_secs(p.noise)
                    + timing::execute_secs(p.pgus)
                    + timing::prove_secs(p.pgus, p.noise)
                    + timing::SUBMIT_SECS,
            }
        })
        .collect();
    jobs.sort_by(|a, b| a.release.total_cmp(&b.release));
    // Machines by the time they are free (as integer microseconds, for a total order).
    let micros = |secs: f64| (secs * 1e6).round() as u64;
    let mut free: BinaryHeap<Reverse<u64>> = (0..machines.max(1)).map(|_| Reverse(0)).collect();
    // Open requests by deadline.
    let mut open: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let (mut next, mut fulfilled) = (0, 0);
    while let Some(Reverse(at)) = free.pop() {
        let mut now = at as f64 / 1e6;
        if open.is_empty() {
            let Some(job) = jobs.get(next) else { break };
            now = now.max(job.release);
        }
        while let Some(job) = jobs.get(next).filter(|j| j.release <= now) {
            open.push(Reverse((micros(job.deadline), next)));
            next += 1;
        }
        let mut started = false;
        while let Some(Reverse((_, i))) = open.pop() {
            if now + jobs[i].secs <= jobs[i].deadline {
                fulfilled += 1;
                free.push(Reverse(micros(now + jobs[i].secs)));
                started = true;
                break;
            }
        }
        if !started {
            // Nothing open can be made: idle until the next arrival.
            match jobs.get(next) {
                Some(job) => free.push(Reverse(micros(job.release.max(now)))),
                None => break,
            }
        }
    }
    fulfilled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(arrive_secs: u64, pgus: u64, deadline_after_auction_secs: u64) -> Planned {
        Planned {
            arrive_ms: arrive_secs * 1_000,
            pgus,
            gas_limit: pgus * 2,
            deadline_after_auction_secs,
            max_price_per_pgu: 100,
            noise: 1.0,
        }
    }

    #[test]
    fn earliest_deadline_first_fits_what_fits_and_drops_what_cannot() {
        // 2^16 PGUs take ~10 s here; two at once on one machine with deadlines 15 s and 25 s
        // after the auction: both fit in deadline order.
        let both = [planned(0, 1 << 16, 25), planned(0, 1 << 16, 15)];
        assert_eq!(greedy_edf(&both, 1, 0), 2);
        assert_eq!(greedy_edf(&both, 1, 101), 0, "ceilings below every machine's cost");
        // A third, as urgent, cannot fit on one machine; on two machines all three do.
        let three = [planned(0, 1 << 16, 15), planned(0, 1 << 16, 15), planned(0, 1 << 16, 25)];
        assert_eq!(greedy_edf(&three, 1, 0), 2);
        assert_eq!(greedy_edf(&three, 2, 0), 3);
        // One that could never make its deadline is dropped; a later one still runs.
        let hopeless = [planned(0, 1 << 18, 5), planned(100, 1 << 10, 5)];
        assert_eq!(greedy_edf(&hopeless, 1, 0), 1);
        assert_eq!(greedy_edf(&[], 3, 0), 0);
    }
}
