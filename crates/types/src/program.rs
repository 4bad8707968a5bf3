//! [`ProgramName`]: the name a program is registered under, with the protocol's rule for it.

use std::fmt;

use crate::field::FieldError;

/// Longest program name, in characters.
pub const MAX_PROGRAM_NAME_LEN: usize = 64;

/// A program name: 1 to 64 characters of `a-z`, `0-9`, `-`, `_` and `.` (the protocol's rule,
/// checked by the network at registration and by clients before they upload anything).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProgramName(String);

impl ProgramName {
    /// Checks `name` against the rule.
    ///
    /// # Errors
    /// [`FieldError::Invalid`] for field `name`, quoting at most 80 characters of it.
    pub fn parse(name: &str) -> Result<Self, FieldError> {
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
        if name.is_empty() || name.len() > MAX_PROGRAM_NAME_LEN || !name.chars().all(allowed) {
            return Err(FieldError::Invalid {
                field: "name",
                reason: format!(
                    "{:?} must be 1 to {MAX_PROGRAM_NAME_LEN} characters of a-z, 0-9, '-', '_' and '.'",
                    name.chars().take(80).collect::<String>()
                ),
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// A valid name made from any text (a file name): lower case, other characters replaced by
    /// `-`, cut to the longest name; `program` when nothing is left.
    pub fn from_text(text: &str) -> Self {
        let name: String = text
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' })
            .take(MAX_PROGRAM_NAME_LEN)
            .collect();
        if name.is_empty() { Self("program".to_owned()) } else { Self(name) }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProgramName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for good in ["fib", "fib-2.0_b", &"a".repeat(64)] {
            assert_eq!(ProgramName::parse(good).map(|n| n.to_string()), Ok(good.to_owned()));
        }
        for bad in ["", "Fib", "fib program", "fib/2", &"a".repeat(65), "é"] {
            let err = ProgramName::parse(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("characters of a-z"), "{bad:?}: {err}");
        }
        let long = "x".repeat(1 << 20);
        let err = ProgramName::parse(&long).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.len() < 300, "the message quotes at most 80 characters");
    }

    #[test]
    fn any_text_makes_a_valid_name() {
        for text in ["My Program.masm", "", "ÉÉ", &"A".repeat(100)] {
            let name = ProgramName::from_text(text);
            assert!(ProgramName::parse(name.as_str()).is_ok(), "{text:?} → {name}");
        }
        assert_eq!(ProgramName::from_text("My Program").as_str(), "my-program");
    }
}
