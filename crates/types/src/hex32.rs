//! Parsing of 32-byte hex identities, shared by every id type.

/// Why a 32-byte hex id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Hex32Error {
    /// The text is not hex (after an optional `0x`).
    #[error("{what} {input:?} is not hex: expected 64 hex digits, optionally prefixed with 0x")]
    NotHex {
        /// Which kind of id was being parsed.
        what: &'static str,
        /// The rejected text (truncated to 80 characters).
        input: String,
    },
    /// The id does not have 32 bytes.
    #[error("{what} has {got} bytes, expected 32")]
    Length {
        /// Which kind of id was being parsed.
        what: &'static str,
        /// The number of bytes found.
        got: usize,
    },
}

/// Parses `0x`-prefixed (or bare) hex into exactly 32 bytes.
pub(crate) fn parse_hex32(what: &'static str, s: &str) -> Result<[u8; 32], Hex32Error> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    let bytes = hex::decode(digits)
        .map_err(|_| Hex32Error::NotHex { what, input: s.chars().take(80).collect() })?;
    bytes.as_slice().try_into().map_err(|_| Hex32Error::Length { what, got: bytes.len() })
}
