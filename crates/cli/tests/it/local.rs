//! `provernet execute | prove | verify` on the sample programs.

use std::{path::PathBuf, process::Command};

fn provernet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_provernet"))
}

fn program(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../programs").join(name)
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run provernet: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_proof_verifies_and_any_changed_byte_is_rejected() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proof = dir.path().join("fib.proof");
    let (ok, stdout, stderr) =
        run(provernet().arg("prove").arg(program("fib")).arg("--output").arg(&proof));
    assert!(ok, "prove failed: {stderr}");
    assert!(stdout.contains("PGUs        1024") && stdout.contains("12586269025"), "{stdout}");

    let (ok, stdout, stderr) =
        run(provernet().arg("verify").arg(program("fib")).arg("--proof").arg(&proof));
    assert!(ok, "verify failed: {stderr}");
    assert!(stdout.starts_with("verified"), "{stdout}");

    let bytes = std::fs::read(&proof).unwrap_or_else(|e| panic!("{e}"));
    // A byte in the header (inside the program id), in the outputs, and in the proof itself.
    for position in [20, 60, bytes.len() / 2, bytes.len() - 10] {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x40;
        let bad = dir.path().join(format!("bad-{position}.proof"));
        std::fs::write(&bad, tampered).unwrap_or_else(|e| panic!("{e}"));
        let (ok, _, stderr) =
            run(provernet().arg("verify").arg(program("fib")).arg("--proof").arg(&bad));
        assert!(!ok, "a proof changed at byte {position} was accepted");
        assert!(stderr.starts_with("error: "), "byte {position}: {stderr}");
    }
}

#[test]
fn a_proof_of_other_inputs_or_another_program_is_rejected() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let proof = dir.path().join("fib.proof");
    let (ok, _, stderr) =
        run(provernet().arg("prove").arg(program("fib")).arg("--output").arg(&proof));
    assert!(ok, "{stderr}");

    let other_inputs = dir.path().join("inputs.json");
    std::fs::write(&other_inputs, r#"{"stack": [51]}"#).unwrap_or_else(|e| panic!("{e}"));
    let (ok, _, stderr) = run(provernet()
        .arg("verify")
        .arg(program("fib"))
        .arg("--inputs")
        .arg(&other_inputs)
        .arg("--proof")
        .arg(&proof));
    assert!(!ok && stderr.contains("proof does not verify"), "{stderr}");

    let (ok, _, stderr) =
        run(provernet().arg("verify").arg(program("hashchain")).arg("--proof").arg(&proof));
    assert!(!ok && stderr.contains("the proof is for program 0x08f2"), "{stderr}");
}

#[test]
fn bad_programs_inputs_and_paths_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (ok, _, stderr) = run(provernet().arg("execute").arg(program("assert42")));
    assert!(!ok && stderr.contains("program failed") && stderr.contains("input must be 42"));

    let broken = dir.path().join("broken.masm");
    std::fs::write(&broken, "begin\n  push.1 frobnicate\nend\n").unwrap_or_else(|e| panic!("{e}"));
    let (ok, _, stderr) = run(provernet().arg("execute").arg(&broken));
    assert!(!ok && stderr.contains("program does not assemble"), "{stderr}");
    assert!(stderr.contains("frobnicate"), "{stderr}");

    let (ok, _, stderr) = run(provernet().arg("execute").arg(dir.path().join("missing.masm")));
    assert!(!ok && stderr.contains("cannot read program"), "{stderr}");

    let inputs = dir.path().join("inputs.json");
    std::fs::write(&inputs, r#"{"stack": "ten"}"#).unwrap_or_else(|e| panic!("{e}"));
    let (ok, _, stderr) =
        run(provernet().arg("execute").arg(program("fib")).arg("--inputs").arg(&inputs));
    assert!(!ok && stderr.contains("malformed inputs"), "{stderr}");

    let (ok, _, stderr) =
        run(provernet().arg("execute").arg(program("fib")).args(["--gas-limit", "100"]));
    assert!(!ok && stderr.contains("gas limit exceeded"), "{stderr}");

    let (ok, _, stderr) =
        run(provernet().arg("execute").arg(program("fib")).args(["--zkvm", "sp1-v6"]));
    assert!(!ok && stderr.contains("\"sp1-v6\" is not supported"), "{stderr}");
}

#[test]
fn node_init_writes_the_api_asked_for_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let node = dir.path().join("node");
    let (ok, stdout, stderr) = run(provernet()
        .args(["node", "init", "--api", "succinct", "--network", "http://127.0.0.1:1", "--dir"])
        .arg(&node));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("api       succinct"), "{stdout}");
    let config = provernet_node::NodeConfig::load(&node.join("node.toml"))
        .unwrap_or_else(|e| panic!("the written config loads: {e}"));
    assert_eq!(config.network.api, provernet_node::config::NetworkApi::Succinct);

    let (ok, _, stderr) = run(provernet()
        .args(["node", "init", "--api", "grpc", "--dir"])
        .arg(dir.path().join("other")));
    assert!(!ok, "an unknown API was accepted");
    assert!(stderr.contains("\"grpc\" is not an API"), "{stderr}");
    assert!(!dir.path().join("other").exists(), "nothing written");
}
