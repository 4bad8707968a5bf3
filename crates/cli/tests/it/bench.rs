//! `provernet bench market`: deterministic for a seed, and writes its three files.

use std::{path::Path, process::Command};

fn market(out: &Path, seed: u64) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_provernet"))
        .args(["bench", "market", "--requests", "300", "--nodes", "3", "--seed"])
        .arg(seed.to_string())
        .arg("--out")
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run provernet: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench market failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_same_seed_gives_the_same_market_and_every_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    let stdout = market(&a, 7);
    market(&b, 7);
    market(&c, 8);
    for row in ["fulfilled", "deadline misses", "utilisation", "revenue per node", "time to proof"]
    {
        assert!(stdout.contains(row), "no {row:?} row in:\n{stdout}");
    }
    let read = |dir: &Path, name: &str| std::fs::read(dir.join(name)).unwrap();
    for name in ["summary.csv", "market.csv"] {
        assert_eq!(read(&a, name), read(&b, name), "{name} differs between two runs of seed 7");
        assert_ne!(read(&a, name), read(&c, name), "{name} is the same for seeds 7 and 8");
    }
    let summary = String::from_utf8(read(&a, "summary.csv")).unwrap();
    assert!(summary.starts_with("metric,ours,baseline\nrequests,300,300\n"), "{summary}");
    let series = String::from_utf8(read(&a, "market.csv")).unwrap();
    assert!(series.lines().count() > 2, "{series}");
    let png = read(&a, "market.png");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} bytes", png.len());
}
