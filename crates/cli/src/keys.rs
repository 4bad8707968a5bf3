//! Key and secret files: hex secrets in files only their owner can read.

use std::path::Path;

use anyhow::Context;
use provernet_types::Signer;

/// Reads a hex secret key from `path`.
pub fn read_key(path: &Path) -> anyhow::Result<Signer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}: check the path", path.display()))?;
    Signer::from_hex(text.trim())
        .with_context(|| format!("key file {} does not hold a secret key", path.display()))
}

/// Creates `path` with a new random key (mode 0600); never overwrites an existing file.
pub fn write_new_key(path: &Path) -> anyhow::Result<Signer> {
    let signer = Signer::random();
    write_private(path, &format!("{}\n", signer.secret_hex())).with_context(|| {
        format!("cannot create {} (an existing key file is never overwritten)", path.display())
    })?;
    Ok(signer)
}

/// Writes `text` to a new file readable by its owner only.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}
