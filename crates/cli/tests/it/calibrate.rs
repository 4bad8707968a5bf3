//! `provernet calibrate`: measures, prints the table, and writes the throughput into a config.

use std::{path::Path, process::Command};

use provernet_node::NodeConfig;

fn provernet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_provernet"))
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run provernet: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn calibrate(config: &Path) -> (bool, String, String) {
    run(provernet().args(["calibrate", "--quick", "--runs", "1", "--write"]).arg(config))
}

#[test]
fn quick_calibration_prints_the_table_and_writes_a_loadable_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    let template = NodeConfig::new("http://127.0.0.1:1").template();
    std::fs::write(&path, &template).unwrap();
    let default = NodeConfig::load(&path).unwrap().proving.pgus_per_second;
    assert_eq!(default, 10_000.0);

    let (ok, stdout, stderr) = calibrate(&path);
    assert!(ok, "calibrate failed: {stderr}\n{stdout}");
    assert!(stdout.contains("size (rows)") && stdout.contains("PGUs/s"), "{stdout}");
    // One row, for 2^12 padded rows, and its PGUs.
    let row = stdout.lines().find(|l| l.trim_start().starts_with("2^12")).unwrap_or_else(|| {
        panic!("no 2^12 row in:\n{stdout}");
    });
    assert!(row.split_whitespace().any(|w| w == "4096"), "{row}");
    assert!(stdout.contains("Suggested [proving] pgus_per_second = "), "{stdout}");
    assert!(stdout.contains("asking price per PGU, idle"), "{stdout}");
    assert!(stdout.contains("it loads as a node config"), "{stdout}");

    let written = NodeConfig::load(&path).unwrap();
    let suggested: f64 = stdout
        .split("pgus_per_second = ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no suggestion in:\n{stdout}"));
    assert_eq!(written.proving.pgus_per_second, suggested);
    assert_ne!(written.proving.pgus_per_second, default);
    assert!(written.proving.pgus_per_second >= 1.0);
    // Only the one value changed: comments and every other setting are as they were.
    let text = std::fs::read_to_string(&path).unwrap();
    let changed: Vec<_> = template.lines().zip(text.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(written.bidding, NodeConfig::new("http://127.0.0.1:1").bidding);
}

#[test]
fn a_missing_or_invalid_config_is_named_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let (ok, _, stderr) = calibrate(&missing);
    assert!(!ok && stderr.contains("missing.toml"), "{stderr}");
    assert!(!missing.exists());

    let invalid = dir.path().join("invalid.toml");
    let text = "network_url = \"http://x\"\n[proving\npgus_per_second = 5\n";
    std::fs::write(&invalid, text).unwrap();
    let (ok, _, stderr) = calibrate(&invalid);
    assert!(!ok && stderr.contains("invalid.toml"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&invalid).unwrap(), text);
}
