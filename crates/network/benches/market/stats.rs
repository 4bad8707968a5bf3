//! Latency percentiles, per-thread CPU accounting from `/proc`, and the printed table.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

/// Which side of the benchmark a thread works for, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The network's tokio runtime (RPCs, market, store writer task, executor, timers).
    Server,
    /// sqlx's SQLite connection threads: the SQLite library itself.
    Sqlite,
    /// The benchmark's clients (gRPC client, HTTP/2, protobuf).
    Client,
    /// Anything else (the main thread).
    Other,
}

impl Role {
    fn of(comm: &str) -> Self {
        if comm.starts_with(super::SERVER_THREADS) {
            Self::Server
        } else if comm.starts_with("sqlx-sqlite") {
            Self::Sqlite
        } else if comm.starts_with(super::CLIENT_THREADS) {
            Self::Client
        } else {
            Self::Other
        }
    }
}

/// CPU time (ns) used so far by each live thread of this process, by thread id.
///
/// From `/proc/self/task/<tid>/schedstat` (nanosecond run time).
pub fn cpu_by_thread() -> HashMap<u32, (Role, u64)> {
    let mut threads = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return threads };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else { continue };
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
            .unwrap_or(0);
        threads.insert(tid, (Role::of(comm.trim()), ns));
    }
    threads
}

/// CPU used per role between two [`cpu_by_thread`] snapshots, in ns: per thread, so that a
/// thread exiting in between (an idle tokio blocking thread, after 10 s) does not take its
/// earlier time with it. A thread that exits loses the time it used in between.
pub fn cpu_delta(
    before: &HashMap<u32, (Role, u64)>,
    after: &HashMap<u32, (Role, u64)>,
) -> BTreeMap<Role, u64> {
    let mut by_role = BTreeMap::new();
    for (tid, (role, ns)) in after {
        let earlier = before.get(tid).map_or(0, |(_, ns)| *ns);
        *by_role.entry(*role).or_insert(0) += ns.saturating_sub(earlier);
    }
    by_role
}

/// CPU time used so far by the calling thread (from `/proc/thread-self/schedstat`), to time
/// work that does not await, unaffected by other processes on the machine.
pub fn thread_cpu() -> Duration {
    let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// The value at percentile `p` (0–100) of sorted `values` (nearest rank).
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The machine's cores.
pub fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, usize::from) as f64
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One timed throughput phase.
#[derive(Debug)]
pub struct Throughput {
    /// What was measured.
    pub name: &'static str,
    /// Concurrent clients.
    pub clients: usize,
    /// Successful calls.
    pub ops: usize,
    /// Wall time from the start signal to the last answer.
    pub wall: Duration,
    /// Every call's latency, sorted.
    pub latencies: Vec<Duration>,
    /// CPU used per role during the phase, in ns.
    pub cpu: BTreeMap<Role, u64>,
}

impl Throughput {
    /// Calls per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }

    /// CPU µs per call used by `roles`.
    pub fn cpu_us_per_op(&self, roles: &[Role]) -> f64 {
        let ns: u64 = roles.iter().map(|r| self.cpu.get(r).copied().unwrap_or(0)).sum();
        ns as f64 / 1e3 / self.ops.max(1) as f64
    }

    /// Prints the phase as a Markdown table row.
    pub fn print_row(&self) {
        let p = |q| percentile(&self.latencies, q).map_or(f64::NAN, ms);
        let all: u64 = self.cpu.values().sum();
        let share = all as f64 / 1e9 / (cores() * self.wall.as_secs_f64());
        println!(
            "| {} | {} | {} | {:.2} | **{:.0}** | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0}% |",
            self.name,
            self.clients,
            self.ops,
            self.wall.as_secs_f64(),
            self.rate(),
            p(50.0),
            p(99.0),
            self.cpu_us_per_op(&[Role::Server]),
            self.cpu_us_per_op(&[Role::Sqlite]),
            self.cpu_us_per_op(&[Role::Client]),
            share * 100.0,
        );
    }
}

/// Header of the throughput table.
pub fn print_header() {
    println!(
        "| calls | clients | ops | seconds | ops/s | p50 ms | p99 ms | server CPU µs/op | SQLite thread CPU µs/op | client CPU µs/op | this process's share of the cores |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
}

/// p50 / p99 / max of sorted millisecond values, for printing.
pub fn spread_ms(sorted: &[f64]) -> String {
    let p = |q| percentile(sorted, q).unwrap_or(f64::NAN);
    format!("{:.1} / {:.1} / {:.1}", p(50.0), p(99.0), sorted.last().copied().unwrap_or(f64::NAN))
}
