//! [`Amount`]: a ledger quantity, a whole number of the smallest unit (u128).
//!
//! On the wire and in text an amount is a plain decimal integer: ASCII digits only, at least one,
//! no sign, no spaces, no separators, no fraction, no exponent, no hex, and **no leading zeros**
//! (`"0"` itself is fine). Each value therefore has exactly one spelling, so parse and print
//! round-trip exactly and two amounts compare equal as text iff they are equal.
//!
//! Arithmetic is checked and overflow is an error ([`AmountArithmeticError`]); there is no
//! saturating or wrapping operation, because a ledger that silently clamps loses money.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A non-negative ledger quantity in the smallest unit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Amount(u128);

/// Why a text is not an amount. Every message names the rejected text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The text is empty.
    #[error("amount \"\" is empty: expected a decimal integer such as \"1000\"")]
    Empty,
    /// The text holds something other than ASCII digits.
    #[error("amount {input:?} is not a plain decimal integer: {found:?} at byte {index}: {why}")]
    InvalidCharacter {
        /// The rejected text (truncated to 80 characters).
        input: String,
        /// The first offending character.
        found: char,
        /// Its byte offset in the text.
        index: usize,
        /// Why it is not allowed.
        why: &'static str,
    },
    /// The text has a leading zero.
    #[error("amount {input:?} has a leading zero: write it without (\"{canonical}\")")]
    LeadingZero {
        /// The rejected text (truncated to 80 characters).
        input: String,
        /// The same value written without leading zeros.
        canonical: String,
    },
    /// The value does not fit in 128 bits.
    #[error("amount {input} exceeds the maximum {}", u128::MAX)]
    Overflow {
        /// The rejected text (truncated to 80 characters, with `…` when cut).
        input: String,
    },
}

/// An arithmetic result that does not fit in an [`Amount`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountArithmeticError {
    /// A sum or product above the maximum.
    #[error("amount overflow: {lhs} {op} {rhs} exceeds the maximum {}", u128::MAX)]
    Overflow {
        /// The left operand.
        lhs: u128,
        /// The operation, `+` or `×`.
        op: char,
        /// The right operand.
        rhs: u128,
    },
    /// A difference below zero.
    #[error("amount underflow: {lhs} - {rhs} is negative")]
    Underflow {
        /// The left operand.
        lhs: u128,
        /// The right operand.
        rhs: u128,
    },
}

impl Amount {
    /// Zero.
    pub const ZERO: Self = Self(0);
    /// The largest amount, 2^128 - 1.
    pub const MAX: Self = Self(u128::MAX);

    /// Wraps a raw quantity.
    pub const fn new(value: u128) -> Self {
        Self(value)
    }

    /// The raw quantity.
    pub const fn get(self) -> u128 {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self + rhs`, or an error naming both operands on overflow.
    pub fn checked_add(self, rhs: Self) -> Result<Self, AmountArithmeticError> {
        self.0.checked_add(rhs.0).map(Self).ok_or(AmountArithmeticError::Overflow {
            lhs: self.0,
            op: '+',
            rhs: rhs.0,
        })
    }

    /// `self - rhs`, or an error naming both operands if the result would be negative.
    pub fn checked_sub(self, rhs: Self) -> Result<Self, AmountArithmeticError> {
        self.0
            .checked_sub(rhs.0)
            .map(Self)
            .ok_or(AmountArithmeticError::Underflow { lhs: self.0, rhs: rhs.0 })
    }

    /// `self × rhs` (for example a price per PGU times a PGU count), or an error on overflow.
    pub fn checked_mul_u64(self, rhs: u64) -> Result<Self, AmountArithmeticError> {
        self.0.checked_mul(u128::from(rhs)).map(Self).ok_or(AmountArithmeticError::Overflow {
            lhs: self.0,
            op: '×',
            rhs: u128::from(rhs),
        })
    }
}

/// Keeps error messages bounded whatever the caller passed in.
fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Why `c` may not appear in an amount, phrased for the person who typed it.
fn why_not(c: char) -> &'static str {
    match c {
        '-' | '+' => "amounts are unsigned and carry no sign",
        '.' | ',' => "amounts are whole numbers of the smallest unit, with no fraction",
        'e' | 'E' => "exponents are not allowed",
        'x' | 'X' => "amounts are decimal, not hex",
        '_' | '\'' => "digit separators are not allowed",
        c if c.is_whitespace() => "spaces are not allowed",
        c if !c.is_ascii() => "only the ASCII digits 0-9 are allowed",
        _ => "only the digits 0-9 are allowed",
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(AmountError::Empty);
        }
        if let Some((index, found)) = s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(AmountError::InvalidCharacter {
                input: truncate(s),
                found,
                index,
                why: why_not(found),
            });
        }
        if s.len() > 1 && s.starts_with('0') {
            let trimmed = s.trim_start_matches('0');
            let canonical = if trimmed.is_empty() { "0" } else { trimmed };
            return Err(AmountError::LeadingZero {
                input: truncate(s),
                canonical: truncate(canonical),
            });
        }
        // Only digits remain, so the one failure left is overflow.
        s.parse::<u128>().map(Self).map_err(|_| {
            let mut input = truncate(s);
            if input.len() < s.len() {
                input.push('…');
            }
            AmountError::Overflow { input }
        })
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

impl From<u128> for Amount {
    fn from(value: u128) -> Self {
        Self(value)
    }
}

impl From<u64> for Amount {
    fn from(value: u64) -> Self {
        Self(value.into())
    }
}

impl From<Amount> for u128 {
    fn from(amount: Amount) -> Self {
        amount.0
    }
}

impl From<Amount> for String {
    fn from(amount: Amount) -> Self {
        amount.to_string()
    }
}

impl TryFrom<String> for Amount {
    type Error = AmountError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<&str> for Amount {
    type Error = AmountError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_plain_decimal() {
        assert_eq!("0".parse::<Amount>().unwrap(), Amount::ZERO);
        assert_eq!("1000".parse::<Amount>().unwrap(), Amount::new(1000));
        assert_eq!(u128::MAX.to_string().parse::<Amount>().unwrap(), Amount::MAX);
        assert_eq!(Amount::new(42).to_string(), "42");
        assert_eq!(format!("{:?}", Amount::new(42)), "Amount(42)");
    }

    #[test]
    fn malformed_amounts_are_rejected_with_a_message_naming_the_input() {
        let cases: &[(&str, &str)] = &[
            (
                "-1",
                "amount \"-1\" is not a plain decimal integer: '-' at byte 0: amounts are unsigned and carry no sign",
            ),
            (
                "+1",
                "amount \"+1\" is not a plain decimal integer: '+' at byte 0: amounts are unsigned and carry no sign",
            ),
            (
                "1.5",
                "amount \"1.5\" is not a plain decimal integer: '.' at byte 1: amounts are whole numbers of the smallest unit, with no fraction",
            ),
            (
                " 1",
                "amount \" 1\" is not a plain decimal integer: ' ' at byte 0: spaces are not allowed",
            ),
            (
                "1 ",
                "amount \"1 \" is not a plain decimal integer: ' ' at byte 1: spaces are not allowed",
            ),
            (
                "0x10",
                "amount \"0x10\" is not a plain decimal integer: 'x' at byte 1: amounts are decimal, not hex",
            ),
            (
                "1e18",
                "amount \"1e18\" is not a plain decimal integer: 'e' at byte 1: exponents are not allowed",
            ),
            (
                "1_000",
                "amount \"1_000\" is not a plain decimal integer: '_' at byte 1: digit separators are not allowed",
            ),
            (
                "١٢",
                "amount \"١٢\" is not a plain decimal integer: '١' at byte 0: only the ASCII digits 0-9 are allowed",
            ),
            (
                "12€",
                "amount \"12€\" is not a plain decimal integer: '€' at byte 2: only the ASCII digits 0-9 are allowed",
            ),
            (
                "abc",
                "amount \"abc\" is not a plain decimal integer: 'a' at byte 0: only the digits 0-9 are allowed",
            ),
            ("007", "amount \"007\" has a leading zero: write it without (\"7\")"),
            ("00", "amount \"00\" has a leading zero: write it without (\"0\")"),
            ("", "amount \"\" is empty: expected a decimal integer such as \"1000\""),
            (
                "340282366920938463463374607431768211456",
                "amount 340282366920938463463374607431768211456 exceeds the maximum 340282366920938463463374607431768211455",
            ),
        ];
        for (input, message) in cases {
            let err = input.parse::<Amount>().unwrap_err();
            assert_eq!(err.to_string(), *message, "input {input:?}");
        }
        let long = "9".repeat(200);
        let err = long.parse::<Amount>().unwrap_err();
        assert!(matches!(err, AmountError::Overflow { .. }));
        assert!(err.to_string().starts_with(&format!("amount {}…", "9".repeat(80))), "{err}");
    }

    #[test]
    fn arithmetic_errors_name_the_operands() {
        let err = Amount::MAX.checked_add(Amount::new(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("amount overflow: {} + 1 exceeds the maximum {}", u128::MAX, u128::MAX)
        );
        let err = Amount::new(3).checked_sub(Amount::new(5)).unwrap_err();
        assert_eq!(err.to_string(), "amount underflow: 3 - 5 is negative");
        assert!(Amount::MAX.checked_mul_u64(2).is_err());
        assert_eq!(Amount::new(7).checked_mul_u64(6), Ok(Amount::new(42)));
    }

    #[test]
    fn serde_is_the_decimal_string() {
        let amount = Amount::new(u128::MAX);
        let json = serde_json::to_string(&amount).unwrap();
        assert_eq!(json, format!("\"{}\"", u128::MAX));
        assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), amount);
        let err = serde_json::from_str::<Amount>("\"1.5\"").unwrap_err();
        assert!(err.to_string().contains("amount \"1.5\""), "{err}");
        assert!(serde_json::from_str::<Amount>("15").is_err(), "numbers are not amounts");
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(value: u128) {
            let amount = Amount::new(value);
            let text = amount.to_string();
            prop_assert_eq!(&text, &value.to_string());
            prop_assert_eq!(text.parse::<Amount>(), Ok(amount));
        }

        #[test]
        fn parse_accepts_exactly_canonical_u128_text(text in "[0-9]{1,41}|.{0,8}") {
            let canonical = text.parse::<u128>().ok().filter(|v| v.to_string() == text);
            prop_assert_eq!(text.parse::<Amount>().ok().map(Amount::get), canonical);
        }

        #[test]
        fn checked_ops_match_u128(a: u128, b: u128, c: u64) {
            let (x, y) = (Amount::new(a), Amount::new(b));
            prop_assert_eq!(x.checked_add(y).ok().map(Amount::get), a.checked_add(b));
            prop_assert_eq!(x.checked_sub(y).ok().map(Amount::get), a.checked_sub(b));
            prop_assert_eq!(
                x.checked_mul_u64(c).ok().map(Amount::get),
                a.checked_mul(u128::from(c))
            );
        }

        #[test]
        fn checked_ops_match_u128_near_the_edges(
            a in (u128::MAX - 1000)..=u128::MAX,
            b in 0u128..2000,
            c in 0u64..4,
        ) {
            let (x, y) = (Amount::new(a), Amount::new(b));
            prop_assert_eq!(x.checked_add(y).ok().map(Amount::get), a.checked_add(b));
            prop_assert_eq!(y.checked_sub(x).ok().map(Amount::get), b.checked_sub(a));
            prop_assert_eq!(
                x.checked_mul_u64(c).ok().map(Amount::get),
                a.checked_mul(u128::from(c))
            );
        }
    }
}
