//! The byte formats of the Succinct API's artifacts, and their provernet equivalents.
//!
//! - The SDK uploads `zstd(bincode(item))`: a program is `bincode(Vec<u8>)` of the ELF, an
//!   stdin is `bincode(SP1Stdin)` = `(buffer: Vec<Vec<u8>>, ptr: u64, proofs: Vec<…>)`.
//! - Succinct-protocol nodes download the same bincode items, without zstd.
//! - provernet stores a program as its bytes and inputs in the backend's own format: SP1
//!   inputs are JSON hints (`{"hints": ["0x…"]}`, one per stdin slice), so an stdin maps to
//!   them one to one; a Miden request's stdin has one slice, its inputs JSON.
//!
//! Every decoder is bounded: zstd output by the caller's limit, bincode lengths by the input.

use std::io::Read;

use bincode::Options;

/// The version string the Succinct API uses for an SP1 circuit version (`sp1-v6.1.0`) is ours
/// with a patch number (`sp1-v6.1`); other versions (`miden-0.23`) are the same in both.
pub fn version_to_ours(theirs: &str) -> String {
    match theirs.strip_prefix("sp1-v").map(|v| v.split('.').collect::<Vec<_>>()) {
        Some(parts) if parts.len() == 3 => format!("sp1-v{}.{}", parts[0], parts[1]),
        _ => theirs.to_owned(),
    }
}

/// The Succinct API's version string for one of ours (see [`version_to_ours`]).
pub fn version_to_theirs(ours: &str) -> String {
    match ours.strip_prefix("sp1-v").map(|v| v.split('.').count()) {
        Some(2) => format!("{ours}.0"),
        _ => ours.to_owned(),
    }
}

/// Whether `version` (ours) is SP1's.
pub fn is_sp1(version: &str) -> bool {
    version.starts_with("sp1-")
}

/// Why uploaded or submitted bytes do not have the format the Succinct API prescribes.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not one zstd frame, or it decompresses past the limit.
    #[error("not zstd-compressed bincode as the SDK uploads it: {0}")]
    Zstd(String),
    /// Larger than allowed once decompressed.
    #[error("{size}+ bytes once decompressed, above the limit of {max} bytes")]
    TooLarge {
        /// Bytes seen (at least).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The bincode item does not decode.
    #[error("not a bincode {what}: {reason}")]
    Bincode {
        /// The item expected.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The stdin carries proofs to verify inside the guest (proof composition).
    #[error(
        "the stdin carries {0} proofs for the guest to verify: proof composition is not supported"
    )]
    Composition(u64),
    /// A Miden stdin must have exactly one slice (the inputs JSON).
    #[error("a {version} stdin must hold one slice, its inputs JSON; it holds {slices}")]
    Slices {
        /// The version of the request.
        version: String,
        /// The slices it held.
        slices: usize,
    },
    /// Stored inputs are not in the backend's format.
    #[error("stored inputs are not valid: {0}")]
    Inputs(String),
}

/// Decompresses one zstd frame, refusing output above `max` bytes.
pub fn unzstd(bytes: &[u8], max: u64) -> Result<Vec<u8>, FormatError> {
    let decoder =
        zstd::stream::read::Decoder::new(bytes).map_err(|e| FormatError::Zstd(e.to_string()))?;
    let mut out = Vec::new();
    decoder
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| FormatError::Zstd(e.to_string()))?;
    if out.len() as u64 > max {
        return Err(FormatError::TooLarge { size: out.len() as u64, max });
    }
    Ok(out)
}

/// bincode 1 as the SDK uses it (`bincode::serialize`: fixed-width integers, little endian),
/// with the input's length as the limit and nothing left over.
fn bincode() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().reject_trailing_bytes()
}

/// The program bytes of `bincode(Vec<u8>)`.
pub fn program_from_bincode(bytes: &[u8]) -> Result<Vec<u8>, FormatError> {
    bincode()
        .with_limit(bytes.len() as u64)
        .deserialize::<Vec<u8>>(bytes)
        .map_err(|e| FormatError::Bincode { what: "program (Vec<u8>)", reason: e.to_string() })
}

/// `bincode(Vec<u8>)` of program bytes, as Succinct-protocol nodes download a program.
pub fn program_to_bincode(program: &[u8]) -> Vec<u8> {
    // Serializing a byte slice into a vector cannot fail.
    bincode().serialize(program).unwrap_or_default()
}

/// The slices of `bincode(SP1Stdin)`.
pub fn stdin_from_bincode(bytes: &[u8]) -> Result<Vec<Vec<u8>>, FormatError> {
    // SP1Stdin is (buffer, ptr, proofs); with no proofs the last is an empty vector's length.
    let (buffer, _ptr, proofs) = bincode()
        .with_limit(bytes.len() as u64)
        .deserialize::<(Vec<Vec<u8>>, u64, u64)>(bytes)
        .map_err(|e| FormatError::Bincode { what: "SP1Stdin", reason: e.to_string() })?;
    if proofs != 0 {
        return Err(FormatError::Composition(proofs));
    }
    Ok(buffer)
}

/// `bincode(SP1Stdin)` of `slices`, as Succinct-protocol nodes download an stdin.
pub fn stdin_to_bincode(slices: &[Vec<u8>]) -> Vec<u8> {
    bincode().serialize(&(slices, 0u64, 0u64)).unwrap_or_default()
}

/// SP1 inputs JSON, one hint per slice (the format of `provernet_zkvm::sp1::Sp1Inputs`).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Hints {
    #[serde(default)]
    hints: Vec<String>,
}

/// provernet inputs for a request of `version` (ours) from the stdin's slices.
pub fn inputs_from_stdin(version: &str, slices: Vec<Vec<u8>>) -> Result<Vec<u8>, FormatError> {
    if is_sp1(version) {
        let hints = slices.iter().map(|s| format!("0x{}", hex::encode(s))).collect();
        return serde_json::to_vec(&Hints { hints })
            .map_err(|e| FormatError::Inputs(e.to_string()));
    }
    match <[Vec<u8>; 1]>::try_from(slices) {
        Ok([inputs]) => Ok(inputs),
        Err(slices) => {
            Err(FormatError::Slices { version: version.to_owned(), slices: slices.len() })
        }
    }
}

/// The stdin slices of provernet inputs of `version` (ours).
pub fn stdin_from_inputs(version: &str, inputs: &[u8]) -> Result<Vec<Vec<u8>>, FormatError> {
    if !is_sp1(version) {
        return Ok(vec![inputs.to_vec()]);
    }
    let hints: Hints =
        serde_json::from_slice(inputs).map_err(|e| FormatError::Inputs(e.to_string()))?;
    hints
        .hints
        .iter()
        .map(|h| {
            hex::decode(h.trim_start_matches("0x")).map_err(|e| FormatError::Inputs(e.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_both_ways() {
        assert_eq!(version_to_ours("sp1-v6.1.0"), "sp1-v6.1");
        assert_eq!(version_to_theirs("sp1-v6.1"), "sp1-v6.1.0");
        assert_eq!(version_to_ours("miden-0.23"), "miden-0.23");
        assert_eq!(version_to_theirs("miden-0.23"), "miden-0.23");
    }

    #[test]
    fn an_sdk_stdin_of_one_u32_is_the_documented_36_bytes() {
        // SP1Stdin::write(&20u32): one slice holding bincode(20u32).
        let slices = vec![20u32.to_le_bytes().to_vec()];
        let bytes = stdin_to_bincode(&slices);
        assert_eq!(bytes.len(), 36);
        assert_eq!(stdin_from_bincode(&bytes).unwrap(), slices);
        let inputs = inputs_from_stdin("sp1-v6.1", slices.clone()).unwrap();
        assert_eq!(inputs, br#"{"hints":["0x14000000"]}"#);
        assert_eq!(stdin_from_inputs("sp1-v6.1", &inputs).unwrap(), slices);
    }

    #[test]
    fn malformed_uploads_are_refused_with_what_was_wrong() {
        let packed = zstd::encode_all(&program_to_bincode(b"\x7fELF...")[..], 3).unwrap();
        assert_eq!(
            program_from_bincode(&unzstd(&packed, 1 << 20).unwrap()).unwrap(),
            b"\x7fELF..."
        );
        assert!(matches!(unzstd(b"not zstd", 100), Err(FormatError::Zstd(_))));
        let bomb = zstd::encode_all(&vec![0u8; 1 << 20][..], 3).unwrap();
        assert!(matches!(unzstd(&bomb, 1000), Err(FormatError::TooLarge { max: 1000, .. })));
        // A length prefix far beyond the bytes is refused, not allocated.
        let mut lying = u64::MAX.to_le_bytes().to_vec();
        lying.extend_from_slice(b"abc");
        assert!(matches!(program_from_bincode(&lying), Err(FormatError::Bincode { .. })));
        let mut trailing = program_to_bincode(b"abc");
        trailing.push(0);
        assert!(matches!(program_from_bincode(&trailing), Err(FormatError::Bincode { .. })));
        let mut composed = stdin_to_bincode(&[]);
        composed[16..24].copy_from_slice(&1u64.to_le_bytes());
        assert!(matches!(stdin_from_bincode(&composed), Err(FormatError::Composition(1))));
        assert!(matches!(
            inputs_from_stdin("miden-0.23", vec![vec![1], vec![2]]),
            Err(FormatError::Slices { slices: 2, .. })
        ));
    }
}
