#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

//! Child processes of the built binary: stdout read line by line on a thread, waited on with
//! a bound, killed (SIGKILL) when dropped.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// The built `provernet`, logging warnings and errors only (to the test's stderr).
pub fn provernet() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provernet"));
    command.env("RUST_LOG", "warn,miden_core::mast::serialization=off");
    command
}

/// A running child process.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Spawns `command` with stdout piped (stderr inherited, for the test's log).
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The rest of the first stdout line starting with `prefix`, within `within`.
    pub fn line_after(&self, prefix: &str, within: Duration) -> String {
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no line starting {prefix:?}: {e}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
