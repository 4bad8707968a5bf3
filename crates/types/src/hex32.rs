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

/// Implements the conveniences every 32-byte id shares: `from_bytes`, `as_bytes`,
/// `from_slice`, `0x…` Display/Debug, FromStr, and serde as a string.
///
/// `$what` names the id in error messages ("artifact id").
macro_rules! hex32_id {
    ($name:ident, $what:literal) => {
        impl $name {
            /// Wraps raw id bytes (no hashing is done).
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw 32 bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Parses an id from a wire byte string, which must be exactly 32 bytes.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, $crate::hex32::Hex32Error> {
                bytes.try_into().map(Self).map_err(|_| $crate::hex32::Hex32Error::Length {
                    what: $what,
                    got: bytes.len(),
                })
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "0x{}", hex::encode(self.0))
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::hex32::Hex32Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::hex32::parse_hex32($what, s).map(Self)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.to_string()
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::hex32::Hex32Error;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    };
}

pub(crate) use hex32_id;
