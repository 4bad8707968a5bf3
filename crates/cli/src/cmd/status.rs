//! `provernet node status`: a running node's health, jobs and recent bids, read from its
//! monitor endpoint (`GET /status` and `GET /health/ready`).

use std::{
    fmt::Write as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, anyhow, bail};
use provernet_node::monitor::{ReadyReport, Severity, StatusReport};

/// How long to wait for the monitor: it answers from memory, so a slow answer means trouble.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Flags of `provernet node status`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  provernet node status --monitor http://127.0.0.1:9464")]
pub struct StatusArgs {
    /// The node's monitor address: its `[monitor] listen` setting.
    #[arg(long, env = "PROVERNET_NODE_MONITOR", default_value = "http://127.0.0.1:9464")]
    monitor: String,
    /// Print the raw `/status` report (JSON) instead of the summary.
    #[arg(long)]
    json: bool,
}

/// Prints a running node's state.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let base = base_url(&args.monitor);
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("cannot set up the HTTP client")?;
    let (status, ready) = tokio::join!(
        get(&client, &base, "/status", true),
        get(&client, &base, "/health/ready", false)
    );
    let body = status?;
    if args.json {
        println!("{}", String::from_utf8_lossy(&body));
        return Ok(());
    }
    let report: StatusReport = serde_json::from_slice(&body).with_context(|| {
        format!("{base}/status did not answer a node status report: is {base} a provernet node's monitor?")
    })?;
    // /health/ready answers 503 with a body when not ready; fall back on the report's flags.
    let ready = ready
        .ok()
        .and_then(|b| serde_json::from_slice::<ReadyReport>(&b).ok())
        .unwrap_or_else(|| ReadyReport::from_health(&report.health));
    print!("{}", render(&report, &ready, unix_now()));
    Ok(())
}

/// `http://` added when no scheme is given, and no trailing slash.
fn base_url(monitor: &str) -> String {
    let monitor = monitor.trim().trim_end_matches('/');
    if monitor.starts_with("http://") || monitor.starts_with("https://") {
        monitor.to_string()
    } else {
        format!("http://{monitor}")
    }
}

/// GETs `base` + `path`. With `success_only`, a status other than 2xx is an error; without,
/// any answer's body is returned (`/health/ready` answers 503 with a body).
async fn get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    success_only: bool,
) -> anyhow::Result<Vec<u8>> {
    let url = format!("{base}{path}");
    let response = client.get(&url).send().await.map_err(|err| {
        anyhow!(
            "cannot reach the node monitor at {base} ({}): the node may not be running. \
             Start it with `provernet node run`, or pass --monitor (PROVERNET_NODE_MONITOR) \
             with the node's [monitor] listen address",
            root_cause(&err)
        )
    })?;
    let code = response.status();
    if success_only && !code.is_success() {
        bail!("{url} answered {code}: is {base} a provernet node's monitor?");
    }
    let body =
        response.bytes().await.with_context(|| format!("cannot read the answer of {url}"))?;
    Ok(body.to_vec())
}

/// The innermost error's text (`Connection refused`), which says more than reqwest's own.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The summary `provernet node status` prints.
fn render(report: &StatusReport, ready: &ReadyReport, now: u64) -> String {
    let s = &report.status;
    let h = &report.health;
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<13}{value}");
    };
    line("prover", or_dash(&s.prover));
    line("operator", or_dash(&s.operator));
    line(
        "network",
        match s.network_api.as_str() {
            "" => or_dash(&s.network_url),
            api => format!("{} ({api} API)", or_dash(&s.network_url)),
        },
    );
    for limitation in &s.limitations {
        line("  limitation", limitation.clone());
    }
    if s.clock_offset_secs != 0 {
        let (by, side) = (
            s.clock_offset_secs.abs(),
            if s.clock_offset_secs > 0 { "behind" } else { "ahead of" },
        );
        line("clock", format!("this machine's is {by} s {side} the network's (corrected)"));
    }
    line("versions", if s.versions.is_empty() { "-".into() } else { s.versions.join(", ") });
    if s.started_at > 0 {
        line("uptime", duration(now.saturating_sub(s.started_at)));
    }
    line(
        "ready",
        if ready.ready { "yes".into() } else { format!("no: {}", ready.not_ready.join("; ")) },
    );
    line("bidding", if s.bidding { "on".into() } else { "off".into() });
    let feed = if s.network_api == "succinct" { "polling" } else { "subscription" };
    line(feed, if h.subscription_up { "up".into() } else { "down".into() });
    let queued = provernet_node::monitor::metrics::queued(s);
    line("slots", format!("{} of {} proving, {queued} queued", s.proving, s.slots));
    line("committed", format!("{} PGUs", s.committed_pgus));
    line(
        "bids",
        format!(
            "won {}, lost {}, expired {}, skipped {}; win rate {}",
            s.won,
            s.lost,
            s.expired,
            s.skipped,
            win_rate(s.won, s.lost)
        ),
    );
    line("earnings", or_dash(&s.earnings));
    for (label, t) in
        [("last hour", &s.economics.last_hour), ("since start", &s.economics.since_start)]
    {
        let skipped: u64 = t.skips.values().sum();
        line(
            "economics",
            format!(
                "{label}: paid {}, cost {}, margin {}; bids {} (won {}, lost {}, expired {}, \
                 refused {}), win rate {}; skipped {skipped}; missed {}, forfeiting {}",
                or_dash(&t.revenue),
                or_dash(&t.cost),
                or_dash(&t.margin),
                t.bids,
                t.won,
                t.lost,
                t.expired,
                t.refused,
                t.win_rate.map_or("-".into(), |r| format!("{:.0}%", r * 100.0)),
                t.deadline_misses,
                or_dash(&t.penalties)
            ),
        );
    }
    if let Some(stake) = &s.economics.stake {
        line("stake", format!("{}, of it {} locked as collateral", stake.stake, stake.collateral));
    }
    for c in &s.calibration {
        let measured = &c.measured;
        let what = format!("{} {}", c.version, c.mode);
        let in_use = |b: bool| if b { "measured" } else { "configured" };
        let mut text = if measured.samples == 0 {
            format!("{what}: {:.0} PGUs/s configured, no proof yet", c.configured_pgus_per_second)
        } else {
            format!(
                "{what}: {:.0} PGUs/s measured over {} proofs (spread {:.0}%), {:.0} configured; {} in use",
                measured.pgus_per_second,
                measured.samples,
                measured.spread() * 100.0,
                c.configured_pgus_per_second,
                in_use(c.in_use)
            )
        };
        if c.memory.samples > 0 {
            let _ = write!(
                text,
                "; memory {:.0} B/PGU measured over {} proofs, {:.0} configured; {} in use",
                c.memory.bytes_per_pgu,
                c.memory.samples,
                c.configured_memory_per_pgu_bytes,
                in_use(c.memory_in_use)
            );
        }
        if !c.programs.is_empty() {
            let _ = write!(
                text,
                "; {} programs measured, {} by their own figures",
                c.programs.len(),
                c.programs_in_use()
            );
        }
        line("calibration", text);
    }
    if let Some(reload) = &report.last_reload {
        let ago = duration(now.saturating_sub(reload.at));
        line(
            "config",
            match &reload.refused {
                Some(reason) => format!("reload refused {ago} ago, running config kept: {reason}"),
                None if reload.changed.is_empty() => format!("reloaded {ago} ago, nothing changed"),
                None => format!("reloaded {ago} ago: {}", reload.changed.join(", ")),
            },
        );
    }
    line(
        "jobs",
        format!(
            "{} failed in a row, {} at risk of missing a deadline",
            h.consecutive_failures, h.jobs_at_risk
        ),
    );
    if let Some(sys) = &report.system {
        let memory = sys.memory_used_percent().map_or("-".into(), |p| {
            format!(
                "{p:.1}% ({} of {})",
                bytes(sys.memory_used_bytes),
                bytes(sys.memory_total_bytes)
            )
        });
        let disk = match (&sys.disk, sys.disk_free_percent()) {
            (Some(d), Some(p)) => format!(
                "{p:.1}% free ({} of {}) on {}",
                bytes(d.free_bytes),
                bytes(d.total_bytes),
                d.mount_point.display()
            ),
            _ => "-".into(),
        };
        line("system", format!("cpu {:.1}%, memory {memory}, disk {disk}", sys.cpu_usage_percent));
        if sys.gpus.is_empty() {
            line("gpus", "none (no NVIDIA GPU through NVML)".into());
        }
        for g in &sys.gpus {
            let power = g
                .power_milliwatts
                .map_or(String::new(), |mw| format!(", {:.0} W", f64::from(mw) / 1000.0));
            line(
                &format!("gpu {}", g.index),
                format!(
                    "{}: {}% busy, memory {} of {}, {} °C{power}, {} process(es)",
                    g.model,
                    g.utilisation_percent,
                    bytes(g.memory_used_bytes),
                    bytes(g.memory_total_bytes),
                    g.temperature_celsius,
                    g.processes.len()
                ),
            );
        }
    }

    if report.alerts.is_empty() {
        line("alerts", "none".into());
    } else {
        let _ = writeln!(out, "\nalerts");
        for a in &report.alerts {
            let level = match a.severity {
                Severity::Warn => "WARN",
                Severity::Error => "ERROR",
            };
            let _ = writeln!(out, "  {level:<6}{:<22}{}", a.code, a.message);
        }
    }

    if let Some(workers) = &s.pool {
        let _ = writeln!(out, "\nproving pool");
        if workers.is_empty() {
            let _ = writeln!(out, "  no worker has registered (start `provernet worker`)");
        } else {
            let _ = writeln!(
                out,
                "  {:<16} {:<8} {:>5} {:>9} {:>12} {:>9}  TASKS",
                "WORKER", "STATE", "SLOTS", "MEM GIB", "PGUS/S", "HEARTBEAT"
            );
            for w in workers {
                let rate: f64 = w.pgus_per_second.values().sum();
                let _ = writeln!(
                    out,
                    "  {:<16} {:<8} {:>5} {:>9.1} {:>12.0} {:>8.0}s  {}",
                    w.id,
                    w.state,
                    w.slots,
                    w.memory_bytes as f64 / f64::from(1u32 << 30),
                    rate,
                    w.heartbeat_age_secs,
                    if w.tasks.is_empty() { "-".to_owned() } else { w.tasks.join(", ") }
                );
            }
        }
    }

    let _ = writeln!(out, "\njobs");
    if s.jobs.is_empty() {
        let _ = writeln!(out, "  none");
    } else {
        let _ = writeln!(
            out,
            "  {:<14} {:<10} {:>12} {:>12}  DEADLINE",
            "REQUEST", "STATE", "PGUS", "PRICE/PGU"
        );
        for j in &s.jobs {
            let deadline = match j.state.as_str() {
                "done" => "-".to_string(),
                "failed" => j.error.clone().map_or("-".into(), |e| format!("failed: {e}")),
                _ if j.deadline == 0 => "-".into(),
                _ if j.deadline >= now => format!("in {}", duration(j.deadline - now)),
                _ => format!("passed {} ago", duration(now - j.deadline)),
            };
            let _ = writeln!(
                out,
                "  {:<14} {:<10} {:>12} {:>12}  {deadline}",
                short_id(&j.request_id),
                j.state,
                j.pgus,
                or_dash(&j.price_per_pgu)
            );
        }
    }

    let _ = writeln!(out, "\nrecent bids");
    if s.recent_bids.is_empty() {
        let _ = writeln!(out, "  none");
    } else {
        let _ = writeln!(out, "  {:<14} {:>10} {:>12}  OUTCOME", "REQUEST", "AGE", "PRICE/PGU");
        for b in &s.recent_bids {
            let _ = writeln!(
                out,
                "  {:<14} {:>10} {:>12}  {}",
                short_id(&b.request_id),
                format!("{} ago", duration(now.saturating_sub(b.at))),
                b.price_per_pgu.as_deref().unwrap_or("-"),
                b.outcome
            );
        }
    }
    out
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

/// Won over decided (won + lost), or `-` before any bid was decided.
fn win_rate(won: u64, lost: u64) -> String {
    let decided = won + lost;
    if decided == 0 { "-".into() } else { format!("{:.1}%", won as f64 * 100.0 / decided as f64) }
}

/// `0x1234ab…cdef` for long ids, the id as is otherwise.
fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 14 {
        return id.into();
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// `45s`, `3m 05s`, `2h 10m`, `3d 4h`.
fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// Bytes in binary units with one decimal (`3.2 GiB`).
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use provernet_node::monitor::{
        Alert, BidStatus, HealthSnapshot, JobStatus, NodeStatus, alerts::DISK_LOW,
    };

    use super::*;

    #[test]
    fn the_summary_shows_state_alerts_jobs_and_bids() {
        let report = StatusReport {
            status: NodeStatus {
                prover: "0xprover".into(),
                network_url: "http://127.0.0.1:50051".into(),
                clock_offset_secs: -30,
                versions: vec!["miden-0.23".into()],
                started_at: 1000,
                bidding: true,
                slots: 2,
                proving: 1,
                won: 3,
                lost: 1,
                earnings: "12345".into(),
                economics: provernet_node::monitor::EconomicsReport {
                    since_start: provernet_node::monitor::economics::Tally {
                        revenue: "12345".into(),
                        cost: "2345".into(),
                        margin: "9900".into(),
                        penalties: "100".into(),
                        bids: 4,
                        won: 3,
                        lost: 1,
                        win_rate: Some(0.75),
                        deadline_misses: 1,
                        ..Default::default()
                    },
                    stake: Some(provernet_node::monitor::economics::StakeAtRisk {
                        stake: "1000".into(),
                        collateral: "40".into(),
                        at: 1050,
                    }),
                    ..Default::default()
                },
                calibration: vec![provernet_node::core::VersionCalibration {
                    version: "miden-0.23".into(),
                    configured_pgus_per_second: 10_000.0,
                    measured: provernet_node::core::Throughput {
                        samples: 12,
                        pgus_per_second: 8_000.0,
                        variance: 160_000.0,
                    },
                    in_use: true,
                    configured_memory_per_pgu_bytes: 10_240.0,
                    memory: provernet_node::core::MemoryUse {
                        samples: 6,
                        bytes_per_pgu: 9_000.0,
                        variance: 0.0,
                    },
                    memory_in_use: true,
                    ..Default::default()
                }],
                jobs: vec![
                    JobStatus {
                        request_id: format!("0x{}", "ab".repeat(32)),
                        state: "proving".into(),
                        pgus: 1024,
                        price_per_pgu: "10".into(),
                        deadline: 1100,
                        ..JobStatus::default()
                    },
                    JobStatus {
                        request_id: "0x02".into(),
                        state: "executed".into(),
                        deadline: 1000,
                        ..JobStatus::default()
                    },
                ],
                recent_bids: vec![BidStatus {
                    request_id: "0x03".into(),
                    at: 1050,
                    price_per_pgu: None,
                    outcome: "skipped: version".into(),
                }],
                ..NodeStatus::default()
            },
            health: HealthSnapshot { subscription_up: true, ready: true, ..Default::default() },
            alerts: vec![Alert {
                code: DISK_LOW,
                severity: Severity::Error,
                message: "full".into(),
            }],
            system: Some(provernet_node::monitor::SystemSample {
                cpu_usage_percent: 50.0,
                memory_total_bytes: 16 << 30,
                memory_available_bytes: 8 << 30,
                memory_used_bytes: 8 << 30,
                disk: None,
                gpus: vec![provernet_node::monitor::GpuSample {
                    index: 0,
                    model: "NVIDIA L4".into(),
                    utilisation_percent: 97,
                    memory_used_bytes: 12 << 30,
                    memory_total_bytes: 24 << 30,
                    temperature_celsius: 70,
                    power_milliwatts: Some(71_430),
                    processes: vec![4242],
                }],
                gpus_lost: Vec::new(),
            }),
            last_reload: Some(provernet_node::monitor::ConfigReload {
                at: 1030,
                changed: vec!["bidding.margin".into()],
                refused: None,
            }),
        };
        let ready = ReadyReport::from_health(&report.health);
        let text = render(&report, &ready, 1060);
        assert!(
            text.contains("gpu 0        NVIDIA L4: 97% busy, memory 12.0 GiB of 24.0 GiB, 70 °C, 71 W, 1 process(es)"),
            "{text}"
        );
        for want in [
            "prover       0xprover",
            "clock        this machine's is 30 s ahead of the network's (corrected)",
            "uptime       1m 00s",
            "config       reloaded 30s ago: bidding.margin",
            "economics    since start: paid 12345, cost 2345, margin 9900; bids 4 (won 3, lost 1, expired 0, refused 0), win rate 75%; skipped 0; missed 1, forfeiting 100",
            "stake        1000, of it 40 locked as collateral",
            "calibration  miden-0.23 default: 8000 PGUs/s measured over 12 proofs (spread 5%), 10000 configured; measured in use; memory 9000 B/PGU measured over 6 proofs, 10240 configured; measured in use",
            "ready        yes",
            "slots        1 of 2 proving, 1 queued",
            "win rate 75.0%",
            "ERROR PN-DISK-LOW",
            "0xababab…abab",
            "in 40s",
            "passed 1m 00s ago",
            "skipped: version",
            "10s ago",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
    }

    #[test]
    fn helpers_format_edges() {
        assert_eq!(base_url("127.0.0.1:9464/"), "http://127.0.0.1:9464");
        assert_eq!(base_url("https://n:1"), "https://n:1");
        assert_eq!(win_rate(0, 0), "-");
        assert_eq!(win_rate(1, 0), "100.0%");
        assert_eq!(short_id("0x01"), "0x01");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3600), "1h 00m");
        assert_eq!(duration(90000), "1d 1h");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
