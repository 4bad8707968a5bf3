//! The SP1 inputs format.
//!
//! Inputs are a JSON object, UTF-8:
//!
//! ```json
//! { "hints": ["0x14000000", "68656c6c6f"] }
//! ```
//!
//! - `hints` (private, default `[]`): byte strings in hex (optionally `0x`-prefixed), each handed
//!   to the guest as one SP1 stdin slice (`SP1Stdin::write_slice`), read in order by the guest
//!   with `sp1_hint_len` / `sp1_read_hint` (programs/sp1/rt.c). At most [`MAX_HINT_BYTES`] in
//!   total.
//!
//! SP1 proofs do not commit to their stdin: a verifier needs no inputs, and a guest commits to
//! whatever of its input a verifier must see (fib commits `n`). Unknown keys are rejected, so a
//! typo never silently means "no inputs".

use serde::{Deserialize, Serialize};
use sp1_sdk::SP1Stdin;

use crate::{Result, ZkVmError};

/// Largest total size of the hints, in bytes: SP1 keeps stdin in memory, and a request's inputs
/// travel through the network.
pub const MAX_HINT_BYTES: usize = 64 << 20;

/// Inputs to an SP1 guest: private hints, in the order the guest reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sp1Inputs {
    /// The hints, hex-encoded, one SP1 stdin slice each.
    #[serde(default)]
    pub hints: Vec<String>,
}

impl Sp1Inputs {
    /// Inputs of the given hints.
    pub fn from_hints<B: AsRef<[u8]>>(hints: impl IntoIterator<Item = B>) -> Self {
        Self { hints: hints.into_iter().map(|h| format!("0x{}", hex::encode(h))).collect() }
    }

    /// Parses and validates inputs bytes (JSON as documented in this module).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        // serde would also take a struct as a JSON array (`[]`); only the object form is meant.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ZkVmError::MalformedInputs {
                reason: "SP1 inputs must be a JSON object: {\"hints\": [\"hex\", ...]}".to_owned(),
            });
        }
        let inputs: Self = serde_json::from_slice(bytes).map_err(|e| {
            ZkVmError::MalformedInputs { reason: format!("not valid SP1 inputs JSON: {e}") }
        })?;
        inputs.decode()?;
        Ok(inputs)
    }

    /// Encodes the inputs as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether these inputs carry private data (any hint: every hint is private).
    pub fn has_private_data(&self) -> bool {
        !self.hints.is_empty()
    }

    /// The hints as bytes.
    ///
    /// # Errors
    /// [`ZkVmError::MalformedInputs`] if a hint is not hex or they are too large together.
    pub fn decode(&self) -> Result<Vec<Vec<u8>>> {
        let mut total = 0usize;
        self.hints
            .iter()
            .enumerate()
            .map(|(i, hint)| {
                let digits = hint.strip_prefix("0x").unwrap_or(hint);
                total = total.saturating_add(digits.len() / 2);
                if total > MAX_HINT_BYTES {
                    return Err(ZkVmError::MalformedInputs {
                        reason: format!("hints exceed {MAX_HINT_BYTES} bytes in total"),
                    });
                }
                hex::decode(digits).map_err(|e| ZkVmError::MalformedInputs {
                    reason: format!("hint {i} is not hex: {e}"),
                })
            })
            .collect()
    }

    /// The hints as SP1 stdin, one slice each.
    pub(crate) fn stdin(&self) -> Result<SP1Stdin> {
        let mut stdin = SP1Stdin::new();
        for hint in self.decode()? {
            stdin.write_slice(&hint);
        }
        Ok(stdin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_hints_and_rejects_typos() {
        let inputs = Sp1Inputs::from_json(br#"{"hints": ["0x14000000", "ff"]}"#).ok();
        let hints = inputs.as_ref().map(|i| i.decode().ok());
        assert_eq!(hints, Some(Some(vec![vec![20, 0, 0, 0], vec![255]])));
        assert_eq!(Sp1Inputs::from_json(b"{}").ok(), Some(Sp1Inputs::default()));
        assert!(Sp1Inputs::from_json(br#"{"hint": []}"#).is_err());
        let err = Sp1Inputs::from_json(br#"{"hints": ["xyz"]}"#).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("hint 0 is not hex"));
        let round = Sp1Inputs::from_json(&Sp1Inputs::from_hints([[1u8, 2]]).to_json()).ok();
        assert_eq!(round, Some(Sp1Inputs { hints: vec!["0x0102".to_owned()] }));
    }
}
