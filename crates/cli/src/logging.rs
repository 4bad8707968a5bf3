//! Tracing set-up: human-readable or JSON logs on stderr, filtered by `RUST_LOG`.

use tracing_subscriber::{EnvFilter, fmt};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain text for people.
    Human,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// The filter when `RUST_LOG` is unset: `info` for provernet, `warn` for the rest.
///
/// miden-core logs two ERROR lines each time the verifier loads its core library (its own
/// artifact is not in the stripped form its reader prefers); they are not errors of ours or the
/// user's, so they are silenced.
const DEFAULT_FILTER: &str = "warn,provernet=info,miden_core::mast::serialization=off";

/// The filter when `RUST_LOG` is unset and the command draws its own progress (the devnet):
/// warnings and errors only.
pub const QUIET_FILTER: &str = "warn,miden_core::mast::serialization=off";

/// Installs the global subscriber, filtered by `RUST_LOG` or else `default` (or
/// [`DEFAULT_FILTER`]).
pub fn init(format: LogFormat, default: Option<&str>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default.unwrap_or(DEFAULT_FILTER)));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
