//! The command line's side of the requester ([`provernet_client`]): the flags that say where
//! the network is and who signs, progress bars for uploads, and the library's errors turned into
//! messages that name the flags to change.

use std::{
    collections::HashMap,
    io::IsTerminal,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use provernet_client::{Requester, RequesterError, UploadProgress, UploadProgressFn};
use provernet_types::{ProgramName, RequestId, Signer};

/// The network URL used when none is given.
pub(crate) const DEFAULT_NETWORK_URL: &str = "http://127.0.0.1:50051";
/// The environment variable holding the requester's secret key (hex).
pub(crate) const KEY_ENV: &str = "PROVERNET_KEY";

/// Where the network is and who signs: flags shared by the requester's commands.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnectArgs {
    /// The ProverNetwork's gRPC URL (`provernet network` prints it).
    #[arg(long, env = "PROVERNET_NETWORK", default_value = DEFAULT_NETWORK_URL)]
    pub network: String,
    /// File holding the account's secret key (hex). The environment variable PROVERNET_KEY
    /// (hex) may hold the key instead.
    #[arg(long, env = "PROVERNET_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

impl ConnectArgs {
    /// The signer from `--key-file` or `PROVERNET_KEY`, if either is given.
    ///
    /// # Errors
    /// An unreadable key file, or a key that is not 32 bytes of hex (the key is never echoed).
    pub(crate) fn signer(&self) -> anyhow::Result<Option<Signer>> {
        if let Some(path) = &self.key_file {
            return crate::keys::read_key(path).map(Some);
        }
        match std::env::var(KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Signer::from_hex(&text)
                .map(Some)
                .map_err(|e| anyhow!("{KEY_ENV} does not hold a secret key: {e}")),
            _ => Ok(None),
        }
    }

    /// Connects to the network, with the signer if a key is given.
    ///
    /// # Errors
    /// As [`ConnectArgs::signer`] and [`Requester::connect`], explained by [`explain`].
    pub(crate) async fn connect(&self) -> anyhow::Result<Requester> {
        Requester::connect(&self.network, self.signer()?).await.map_err(explain)
    }
}

/// The requester's error as the command line says it: the library's message, with what to do
/// about it in terms of this command's flags.
pub(crate) fn explain(e: RequesterError) -> anyhow::Error {
    use RequesterError as E;
    let e = match e {
        E::Unreachable { url, source } => {
            return anyhow!(
                "cannot reach the network at {url} ({}): is it running? Start one with \
                 `provernet network` (or `provernet devnet --keep`), or pass --network URL",
                error_chain(&source)
            );
        }
        E::Register { name, source } => {
            return anyhow::Error::new(source).context(format!(
                "cannot register the program as {name:?} (pass --name to choose another name)"
            ));
        }
        e => e,
    };
    let hint = match &e {
        E::NoKey => format!(": pass --key-file FILE or set {KEY_ENV} (hex)"),
        E::BadUrl(_) => ": use http://HOST:PORT".to_owned(),
        E::Name(_) => ": pass --name".to_owned(),
        E::Spec(field) => match field.field() {
            "deadline" => ": e.g. --deadline-secs 120".to_owned(),
            _ => ": shorten --auction-secs or lengthen --deadline-secs".to_owned(),
        },
        E::CostOverflow(_) => ": lower --max-price-per-pgu or --gas-limit".to_owned(),
        E::InsufficientBalance { .. } => ": fund the account with `provernet request faucet` on \
                                          a devnet (or ask the network's operator for a \
                                          deposit), or lower --max-price-per-pgu or --gas-limit"
            .to_owned(),
        E::NoProgramNamed { .. } | E::NoProgramId { .. } => {
            ": register it with `provernet program register`".to_owned()
        }
        E::NotFound { .. } => ": check the id".to_owned(),
        E::NotFulfilled { id, .. } => format!(" (`provernet request wait {id}`)"),
        E::TimedOut { .. } => ": wait longer with --timeout-secs".to_owned(),
        _ => return anyhow::Error::new(e),
    };
    anyhow!("{e}{hint}")
}

/// The error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An [`UploadProgressFn`] that draws a bar per upload on a terminal, or prints a line once each
/// upload is done otherwise.
pub(crate) fn upload_progress() -> UploadProgressFn {
    let terminal = std::io::stderr().is_terminal();
    // Bars by artifact; a std mutex: nothing awaits while it is held.
    let bars: Mutex<HashMap<(&'static str, provernet_types::ArtifactId), ProgressBar>> =
        Mutex::default();
    Arc::new(move |p: UploadProgress| {
        if !terminal {
            if p.done == p.total {
                eprintln!("uploaded {} {} ({} bytes)", p.label, p.id, p.total);
            }
            return;
        }
        let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry((p.label, p.id)).or_insert_with(|| upload_bar(p.label, p.total));
        bar.set_position(p.done);
        if p.done == p.total {
            bar.finish();
            bars.remove(&(p.label, p.id));
        }
    })
}

/// A progress bar for an upload of `len` bytes.
fn upload_bar(label: &str, len: u64) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len).with_style(style).with_message(label.to_owned())
}

/// A program name the network accepts, made from a file or folder name: lower case, other
/// characters replaced by `-`.
pub(crate) fn program_name_from(path: &Path) -> String {
    let stem = if path.is_dir() { path.file_name() } else { path.file_stem() };
    ProgramName::from_text(&stem.map(|s| s.to_string_lossy()).unwrap_or_default()).to_string()
}

/// Parses a request id given on the command line.
///
/// # Errors
/// Anything but `0x` and 64 hex digits, with an example.
pub(crate) fn parse_request_id(text: &str) -> anyhow::Result<RequestId> {
    text.parse().map_err(|_| {
        anyhow!(
            "malformed request id {text:?}: expected 0x and 64 hex digits, as `provernet request submit` prints"
        )
    })
}

#[cfg(test)]
mod tests {
    use provernet_types::Amount;

    use super::*;

    #[test]
    fn names_and_ids() {
        assert_eq!(program_name_from(Path::new("dir/My Prog.masm")), "my-prog");
        assert!(parse_request_id("0x12").is_err());
        assert!(parse_request_id(&format!("0x{}", "ab".repeat(32))).is_ok());
    }

    #[test]
    fn errors_name_the_flags_to_change() {
        let said = |e| format!("{:#}", explain(e));
        let id = RequestId::from_bytes([1; 32]);
        let timed_out = RequesterError::TimedOut {
            id,
            status: "assigned",
            waited: std::time::Duration::from_secs(3),
        };
        assert!(said(timed_out).ends_with("after 3 s: wait longer with --timeout-secs"));
        assert!(said(RequesterError::NoKey).contains("--key-file"));
        let poor = RequesterError::InsufficientBalance {
            address: provernet_types::Address::from_bytes([2; 20]),
            balance: Amount::ZERO,
            needed: Amount::new(10),
            base_fee: Amount::new(1),
            max_price_per_pgu: Amount::new(1),
            gas_limit: 9,
        };
        let said_poor = said(poor);
        assert!(said_poor.starts_with("insufficient balance: 0x0202"), "{said_poor}");
        assert!(said_poor.contains("`provernet request faucet`"), "{said_poor}");
    }
}
