//! The figures of a simulated market: a summary per policy, time series per interval, the
//! printed table and the CSV files.

use std::fmt::Write as _;

use super::{
    engine::{End, SimResult},
    workload::CALIBRATED_PGUS_PER_SECOND,
};

/// One policy's figures over the whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Requests in the stream.
    pub requests: usize,
    /// Proven in time.
    pub fulfilled: usize,
    /// Assigned but not proven by the deadline.
    pub missed: usize,
    /// Closed at the deadline with nobody assigned.
    pub untaken: usize,
    /// Proving time over wall time, all nodes.
    pub utilisation: f64,
    /// What each node was paid.
    pub revenue: Vec<u128>,
    /// What requesters paid in all.
    pub paid: u128,
    /// PGUs of the fulfilled requests.
    pub pgus_delivered: u64,
    /// Mean seconds from request to accepted proof.
    pub mean_time_to_proof_secs: f64,
    /// 90th percentile of the same, seconds.
    pub p90_time_to_proof_secs: f64,
}

impl Summary {
    /// The figures of `result` for `nodes` nodes over `wall_ms`.
    pub fn of(result: &SimResult, nodes: usize, wall_ms: u64) -> Self {
        let mut s = Summary {
            requests: result.records.len(),
            fulfilled: 0,
            missed: 0,
            untaken: 0,
            utilisation: 0.0,
            revenue: vec![0; nodes],
            paid: 0,
            pgus_delivered: 0,
            mean_time_to_proof_secs: 0.0,
            p90_time_to_proof_secs: 0.0,
        };
        let mut times = Vec::new();
        for r in &result.records {
            match r.closed {
                Some((at, End::Fulfilled(paid))) => {
                    s.fulfilled += 1;
                    s.paid += paid;
                    s.pgus_delivered += r.pgus;
                    if let Some((node, _)) = r.assigned {
                        s.revenue[node] += paid;
                    }
                    times.push((at - r.created_ms) as f64 / 1000.0);
                }
                Some((_, End::Missed)) => s.missed += 1,
                Some((_, End::Untaken)) | None => s.untaken += 1,
            }
        }
        if !times.is_empty() {
            s.mean_time_to_proof_secs = times.iter().sum::<f64>() / times.len() as f64;
            times.sort_by(f64::total_cmp);
            s.p90_time_to_proof_secs = times[(times.len() * 9 / 10).min(times.len() - 1)];
        }
        let busy: u64 = result.busy.iter().flatten().map(|(a, b)| b.saturating_sub(*a)).sum();
        s.utilisation = busy as f64 / (nodes.max(1) as f64 * wall_ms.max(1) as f64);
        s
    }

    /// Misses of both kinds.
    pub fn misses(&self) -> usize {
        self.missed + self.untaken
    }

    /// What requesters paid per proof delivered.
    pub fn cost_per_proof(&self) -> f64 {
        self.paid as f64 / self.fulfilled.max(1) as f64
    }

    /// What requesters paid per PGU delivered.
    pub fn cost_per_pgu(&self) -> f64 {
        self.paid as f64 / self.pgus_delivered.max(1) as f64
    }

    /// Mean revenue per node.
    pub fn mean_revenue(&self) -> f64 {
        self.revenue.iter().sum::<u128>() as f64 / self.revenue.len().max(1) as f64
    }
}

/// One interval of the time series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Start, seconds after the simulation starts.
    pub start_secs: u64,
    /// Work arriving in the interval over the nodes' calibrated capacity.
    pub offered_load: f64,
    /// Each policy's utilisation (ours, baseline).
    pub utilisation: [f64; 2],
    /// Each policy's misses (assigned and late, or untaken) closing in the interval.
    pub misses: [usize; 2],
}

/// The time series of both policies in intervals of `interval_secs` up to `wall_ms`.
pub fn series(
    results: [&SimResult; 2],
    nodes: usize,
    wall_ms: u64,
    interval_secs: u64,
) -> Vec<Interval> {
    let step = interval_secs.max(1) * 1000;
    let count = wall_ms.div_ceil(step).max(1) as usize;
    let mut out: Vec<Interval> = (0..count)
        .map(|i| Interval {
            start_secs: i as u64 * interval_secs.max(1),
            offered_load: 0.0,
            utilisation: [0.0; 2],
            misses: [0; 2],
        })
        .collect();
    let capacity = nodes.max(1) as f64 * CALIBRATED_PGUS_PER_SECOND * interval_secs.max(1) as f64;
    for r in &results[0].records {
        let i = ((r.created_ms / step) as usize).min(count - 1);
        out[i].offered_load += r.pgus as f64 / capacity;
    }
    for (p, result) in results.iter().enumerate() {
        for &(a, b) in result.busy.iter().flatten() {
            // Spread each proving interval over the buckets it overlaps.
            let mut t = a;
            while t < b {
                let i = (t / step) as usize;
                let end = ((i as u64 + 1) * step).min(b);
                if let Some(slot) = out.get_mut(i) {
                    slot.utilisation[p] += (end - t) as f64 / (nodes.max(1) as u64 * step) as f64;
                }
                t = end;
            }
        }
        for r in &result.records {
            if let Some((at, End::Missed | End::Untaken)) = r.closed {
                out[((at / step) as usize).min(count - 1)].misses[p] += 1;
            }
        }
    }
    out
}

/// Ledger units in a short form (k, M, G).
fn units(x: f64) -> String {
    match x.abs() {
        v if v >= 1e9 => format!("{:.2}G", x / 1e9),
        v if v >= 1e6 => format!("{:.2}M", x / 1e6),
        v if v >= 1e4 => format!("{:.1}k", x / 1e3),
        _ => format!("{x:.1}"),
    }
}

fn share(n: usize, of: usize) -> String {
    format!("{n} ({:.1}%)", 100.0 * n as f64 / of.max(1) as f64)
}

/// The comparison table, with the node names in `names`.
pub fn table(ours: &Summary, base: &Summary, names: &[String]) -> String {
    let mut rows: Vec<(String, String, String)> = vec![
        ("requests".into(), ours.requests.to_string(), base.requests.to_string()),
        (
            "fulfilled".into(),
            share(ours.fulfilled, ours.requests),
            share(base.fulfilled, base.requests),
        ),
        (
            "deadline misses, all".into(),
            share(ours.misses(), ours.requests),
            share(base.misses(), base.requests),
        ),
        ("  assigned, proven too late".into(), ours.missed.to_string(), base.missed.to_string()),
        ("  nobody took it".into(), ours.untaken.to_string(), base.untaken.to_string()),
        (
            "utilisation (proving / wall)".into(),
            format!("{:.1}%", 100.0 * ours.utilisation),
            format!("{:.1}%", 100.0 * base.utilisation),
        ),
        ("revenue per node, mean".into(), units(ours.mean_revenue()), units(base.mean_revenue())),
    ];
    if names.len() <= 8 {
        for (i, name) in names.iter().enumerate() {
            rows.push((
                format!("  {name}"),
                units(ours.revenue[i] as f64),
                units(base.revenue[i] as f64),
            ));
        }
    }
    rows.extend([
        (
            String::from("requester cost per proof"),
            units(ours.cost_per_proof()),
            units(base.cost_per_proof()),
        ),
        (
            String::from("requester cost per PGU"),
            format!("{:.2}", ours.cost_per_pgu()),
            format!("{:.2}", base.cost_per_pgu()),
        ),
        (
            String::from("mean time to proof"),
            format!("{:.1} s", ours.mean_time_to_proof_secs),
            format!("{:.1} s", base.mean_time_to_proof_secs),
        ),
        (
            String::from("p90 time to proof"),
            format!("{:.1} s", ours.p90_time_to_proof_secs),
            format!("{:.1} s", base.p90_time_to_proof_secs),
        ),
    ]);
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max("ours (default)".len());
    let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max("baseline".len());
    let mut out = String::new();
    let _ = writeln!(out, "| {:w0$} | {:>w1$} | {:>w2$} |", "", "ours (default)", "baseline");
    let _ =
        writeln!(out, "|{}|{}:|{}:|", "-".repeat(w0 + 2), "-".repeat(w1 + 1), "-".repeat(w2 + 1));
    for (a, b, c) in rows {
        let _ = writeln!(out, "| {a:w0$} | {b:>w1$} | {c:>w2$} |");
    }
    out
}

/// `summary.csv`: one row per figure, raw numbers.
pub fn summary_csv(ours: &Summary, base: &Summary, names: &[String]) -> String {
    let mut out = String::from("metric,ours,baseline\n");
    let mut row = |name: &str, a: String, b: String| {
        let _ = writeln!(out, "{name},{a},{b}");
    };
    row("requests", ours.requests.to_string(), base.requests.to_string());
    row("fulfilled", ours.fulfilled.to_string(), base.fulfilled.to_string());
    row("missed_late", ours.missed.to_string(), base.missed.to_string());
    row("untaken", ours.untaken.to_string(), base.untaken.to_string());
    row("utilisation", format!("{:.4}", ours.utilisation), format!("{:.4}", base.utilisation));
    row(
        "revenue_per_node_mean",
        format!("{:.0}", ours.mean_revenue()),
        format!("{:.0}", base.mean_revenue()),
    );
    for (i, name) in names.iter().enumerate() {
        let key = format!("revenue_{}", name.replace(" (", "_").replace(')', "").replace('-', "_"));
        row(&key, ours.revenue[i].to_string(), base.revenue[i].to_string());
    }
    row("requester_paid_total", ours.paid.to_string(), base.paid.to_string());
    row(
        "cost_per_proof",
        format!("{:.1}", ours.cost_per_proof()),
        format!("{:.1}", base.cost_per_proof()),
    );
    row(
        "cost_per_pgu",
        format!("{:.3}", ours.cost_per_pgu()),
        format!("{:.3}", base.cost_per_pgu()),
    );
    row(
        "mean_time_to_proof_secs",
        format!("{:.2}", ours.mean_time_to_proof_secs),
        format!("{:.2}", base.mean_time_to_proof_secs),
    );
    row(
        "p90_time_to_proof_secs",
        format!("{:.2}", ours.p90_time_to_proof_secs),
        format!("{:.2}", base.p90_time_to_proof_secs),
    );
    out
}

/// `market.csv`: the time series, one row per interval.
pub fn series_csv(series: &[Interval]) -> String {
    let mut out = String::from(
        "t_start_secs,offered_load,ours_utilisation,ours_misses,baseline_utilisation,baseline_misses\n",
    );
    for i in series {
        let _ = writeln!(
            out,
            "{},{:.4},{:.4},{},{:.4},{}",
            i.start_secs,
            i.offered_load,
            i.utilisation[0],
            i.misses[0],
            i.utilisation[1],
            i.misses[1]
        );
    }
    out
}
