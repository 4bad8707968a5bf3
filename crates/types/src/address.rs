//! [`Address`]: an account's 20-byte, Ethereum-style identity.
//!
//! The address of a secp256k1 key is the last 20 bytes of keccak256 of its uncompressed public
//! key without the leading `0x04`. It prints as `0x` and 40 lowercase hex digits; parsing takes
//! that form with or without `0x`, in lower, upper or EIP-55 mixed case (mixed case must carry a
//! valid checksum, so a mistyped checksummed address is caught).

use std::{fmt, str::FromStr};

use k256::ecdsa::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

/// How many bytes an address has.
pub const ADDRESS_LEN: usize = 20;

/// An account's address: 20 bytes, derived from its public key as on Ethereum.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Address([u8; ADDRESS_LEN]);

/// Why an address could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AddressError {
    /// The text is not hex.
    #[error("address {input:?} is not hex ({source}): expected 0x and 40 hex digits")]
    NotHex {
        /// The rejected text (truncated to 80 characters).
        input: String,
        /// What the hex decoder found.
        source: hex::FromHexError,
    },
    /// The address does not have 20 bytes.
    #[error("address {input:?} has {got} bytes, expected 20 (0x and 40 hex digits)")]
    Length {
        /// The rejected text, or the rejected wire bytes as hex (truncated to 80 characters).
        input: String,
        /// The number of bytes found.
        got: usize,
    },
    /// A mixed-case address whose EIP-55 checksum is wrong: most likely a typo.
    #[error(
        "address {input:?} has a wrong EIP-55 checksum (expected {expected}): check it for typos"
    )]
    Checksum {
        /// The rejected text.
        input: String,
        /// The correctly checksummed spelling of the same bytes.
        expected: String,
    },
}

impl Address {
    /// The all-zero address, which no known key has.
    pub const ZERO: Self = Self([0; ADDRESS_LEN]);

    /// Wraps raw address bytes.
    pub const fn from_bytes(bytes: [u8; ADDRESS_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw 20 bytes.
    pub const fn as_bytes(&self) -> &[u8; ADDRESS_LEN] {
        &self.0
    }

    /// The address of a public key: the last 20 bytes of keccak256(uncompressed key without 0x04).
    pub fn from_public_key(key: &VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        let hash = Keccak256::digest(&point.as_bytes()[1..]);
        let mut bytes = [0; ADDRESS_LEN];
        bytes.copy_from_slice(&hash[32 - ADDRESS_LEN..]);
        Self(bytes)
    }

    /// Parses an address from a wire byte string, which must be exactly 20 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, AddressError> {
        bytes.try_into().map(Self).map_err(|_| AddressError::Length {
            input: truncate(&format!("0x{}", hex::encode(bytes))),
            got: bytes.len(),
        })
    }

    /// The EIP-55 mixed-case spelling, `0x` included.
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = Keccak256::digest(lower.as_bytes());
        let mut out = String::with_capacity(2 + 2 * ADDRESS_LEN);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0x0f;
            out.push(if nibble >= 8 { c.to_ascii_uppercase() } else { c });
        }
        out
    }
}

/// Keeps error messages bounded whatever the caller passed in.
fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
        let bytes = hex::decode(digits)
            .map_err(|source| AddressError::NotHex { input: truncate(s), source })?;
        let address = Self::from_slice(&bytes)
            .map_err(|_| AddressError::Length { input: truncate(s), got: bytes.len() })?;
        let mixed_case = digits.bytes().any(|b| b.is_ascii_lowercase())
            && digits.bytes().any(|b| b.is_ascii_uppercase());
        if mixed_case {
            let expected = address.to_checksum();
            if expected[2..] != *digits {
                return Err(AddressError::Checksum { input: s.to_owned(), expected });
            }
        }
        Ok(address)
    }
}

impl TryFrom<&[u8]> for Address {
    type Error = AddressError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        Self::from_slice(bytes)
    }
}

impl From<Address> for String {
    fn from(address: Address) -> Self {
        address.to_string()
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Address> for Vec<u8> {
    fn from(address: Address) -> Self {
        address.0.to_vec()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    // From EIP-55's test vectors.
    const CHECKSUMMED: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

    #[test]
    fn parses_and_prints_lowercase_and_eip55() {
        let address: Address = CHECKSUMMED.parse().unwrap();
        assert_eq!(address.to_string(), CHECKSUMMED.to_lowercase());
        assert_eq!(address.to_checksum(), CHECKSUMMED);
        assert_eq!(CHECKSUMMED.to_lowercase().parse::<Address>().unwrap(), address);
        assert_eq!(CHECKSUMMED[2..].to_uppercase().parse::<Address>().unwrap(), address);
        assert_eq!(CHECKSUMMED[2..].parse::<Address>().unwrap(), address);
        assert_eq!(format!("{address:?}"), format!("Address({})", CHECKSUMMED.to_lowercase()));
        for vector in [
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            assert_eq!(vector.parse::<Address>().unwrap().to_checksum(), vector);
        }
    }

    #[test]
    fn address_of_a_known_key_matches_ethereum() {
        // The well-known key 0x…01 has address 0x7e5f4552091a69125d5dfcb7b8c2659029395bdf.
        let mut secret = [0u8; 32];
        secret[31] = 1;
        let key = k256::ecdsa::SigningKey::from_bytes(&secret.into()).unwrap();
        let address = Address::from_public_key(key.verifying_key());
        assert_eq!(address.to_string(), "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf");
    }

    #[test]
    fn malformed_addresses_are_rejected_naming_the_input() {
        let short = "0x1234".parse::<Address>().unwrap_err();
        assert_eq!(
            short.to_string(),
            "address \"0x1234\" has 2 bytes, expected 20 (0x and 40 hex digits)"
        );
        let long = format!("0x{}", "ab".repeat(21)).parse::<Address>().unwrap_err();
        assert!(matches!(long, AddressError::Length { got: 21, .. }), "{long}");
        assert!(long.to_string().contains(&"ab".repeat(21)), "{long}");
        let not_hex = "0xzz5aeb6053f3e94c9b9a09f33669435e7ef1beaed".parse::<Address>().unwrap_err();
        assert!(matches!(not_hex, AddressError::NotHex { .. }), "{not_hex}");
        assert!(not_hex.to_string().starts_with("address \"0xzz5aeb"), "{not_hex}");
        let odd = "0x123".parse::<Address>().unwrap_err();
        assert!(odd.to_string().contains("0x123"), "{odd}");
        let empty = "".parse::<Address>().unwrap_err();
        assert_eq!(
            empty.to_string(),
            "address \"\" has 0 bytes, expected 20 (0x and 40 hex digits)"
        );
        let typo = CHECKSUMMED.replace("aAeb", "aAEb").parse::<Address>().unwrap_err();
        assert!(matches!(typo, AddressError::Checksum { .. }), "{typo}");
        assert!(typo.to_string().contains(CHECKSUMMED), "{typo}");
        let huge = "f".repeat(10_000).parse::<Address>().unwrap_err();
        assert!(huge.to_string().len() < 200, "error messages stay bounded");
    }

    #[test]
    fn wire_bytes_must_be_20_long() {
        let address = Address::from_slice(&[9; 20]).unwrap();
        assert_eq!(Address::try_from(Vec::from(address).as_slice()).unwrap(), address);
        let err = Address::from_slice(&[1, 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "address \"0x0102\" has 2 bytes, expected 20 (0x and 40 hex digits)"
        );
        assert!(Address::from_slice(&[]).is_err());
    }

    #[test]
    fn serde_is_the_lowercase_string() {
        let address: Address = CHECKSUMMED.parse().unwrap();
        let json = serde_json::to_string(&address).unwrap();
        assert_eq!(json, format!("\"{}\"", CHECKSUMMED.to_lowercase()));
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), address);
        assert!(serde_json::from_str::<Address>("\"0x12\"").is_err());
    }
}
