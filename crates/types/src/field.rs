//! Reading proto fields into typed values: [`address`], [`amount`], [`artifact_id`],
//! [`request_id`], with a [`FieldError`] that names the field.
//!
//! Bytes fields that are required reject an empty value as [`FieldError::Missing`]; use the
//! `optional_` variants where empty means "not set".

use crate::{
    address::{Address, AddressError},
    amount::{Amount, AmountError},
    hex32::Hex32Error,
    ids::{ArtifactId, RequestId},
};

/// A proto field that does not hold what it must.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    /// A required field is empty.
    #[error("field `{field}` is required but empty")]
    Missing {
        /// The field's proto name.
        field: &'static str,
    },
    /// An address field is not a 20-byte address.
    #[error("field `{field}`: {source}")]
    Address {
        /// The field's proto name.
        field: &'static str,
        /// What is wrong with it.
        source: AddressError,
    },
    /// An amount field is not a decimal amount.
    #[error("field `{field}`: {source}")]
    Amount {
        /// The field's proto name.
        field: &'static str,
        /// What is wrong with it.
        source: AmountError,
    },
    /// An id field is not a 32-byte id.
    #[error("field `{field}`: {source}")]
    Id {
        /// The field's proto name.
        field: &'static str,
        /// What is wrong with it.
        source: Hex32Error,
    },
    /// Any other rule the field breaks.
    #[error("field `{field}`: {reason}")]
    Invalid {
        /// The field's proto name.
        field: &'static str,
        /// The rule broken, phrased for the sender.
        reason: String,
    },
}

impl FieldError {
    /// The proto name of the offending field.
    pub const fn field(&self) -> &'static str {
        match self {
            Self::Missing { field }
            | Self::Address { field, .. }
            | Self::Amount { field, .. }
            | Self::Id { field, .. }
            | Self::Invalid { field, .. } => field,
        }
    }
}

impl From<FieldError> for tonic::Status {
    fn from(err: FieldError) -> Self {
        Self::invalid_argument(err.to_string())
    }
}

/// Reads a required 20-byte address field.
pub fn address(field: &'static str, bytes: &[u8]) -> Result<Address, FieldError> {
    if bytes.is_empty() {
        return Err(FieldError::Missing { field });
    }
    Address::from_slice(bytes).map_err(|source| FieldError::Address { field, source })
}

/// Reads an address field where empty means "not set".
pub fn optional_address(field: &'static str, bytes: &[u8]) -> Result<Option<Address>, FieldError> {
    if bytes.is_empty() { Ok(None) } else { address(field, bytes).map(Some) }
}

/// Reads a required decimal amount field (an empty string is rejected as not an amount).
pub fn amount(field: &'static str, text: &str) -> Result<Amount, FieldError> {
    text.parse().map_err(|source| FieldError::Amount { field, source })
}

/// Reads an amount field where empty means "not set".
pub fn optional_amount(field: &'static str, text: &str) -> Result<Option<Amount>, FieldError> {
    if text.is_empty() { Ok(None) } else { amount(field, text).map(Some) }
}

/// Reads a required 32-byte artifact id field.
pub fn artifact_id(field: &'static str, bytes: &[u8]) -> Result<ArtifactId, FieldError> {
    if bytes.is_empty() {
        return Err(FieldError::Missing { field });
    }
    ArtifactId::from_slice(bytes).map_err(|source| FieldError::Id { field, source })
}

/// Reads an artifact id field where empty means "not set".
pub fn optional_artifact_id(
    field: &'static str,
    bytes: &[u8],
) -> Result<Option<ArtifactId>, FieldError> {
    if bytes.is_empty() { Ok(None) } else { artifact_id(field, bytes).map(Some) }
}

/// Reads a required 32-byte request id field.
pub fn request_id(field: &'static str, bytes: &[u8]) -> Result<RequestId, FieldError> {
    if bytes.is_empty() {
        return Err(FieldError::Missing { field });
    }
    RequestId::from_slice(bytes).map_err(|source| FieldError::Id { field, source })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field_and_the_value() {
        let err = amount("max_price_per_pgu", "1.5").unwrap_err();
        assert_eq!(err.field(), "max_price_per_pgu");
        assert!(
            err.to_string().starts_with("field `max_price_per_pgu`: amount \"1.5\" is not"),
            "{err}"
        );
        let err = address("prover", &[1, 2, 3]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `prover`: address \"0x010203\" has 3 bytes, expected 20 (0x and 40 hex digits)"
        );
        assert_eq!(address("prover", &[]).unwrap_err(), FieldError::Missing { field: "prover" });
        assert_eq!(
            request_id("request_id", &[0; 5]).unwrap_err().to_string(),
            "field `request_id`: request id has 5 bytes, expected 32"
        );
        let status = tonic::Status::from(amount("base_fee", "").unwrap_err());
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("base_fee"), "{status:?}");
    }

    #[test]
    fn optional_fields_read_empty_as_none() {
        assert_eq!(optional_address("operator", &[]), Ok(None));
        assert_eq!(optional_address("operator", &[4; 20]), Ok(Some(Address::from_bytes([4; 20]))));
        assert_eq!(optional_amount("paid", ""), Ok(None));
        assert_eq!(optional_amount("paid", "7"), Ok(Some(Amount::new(7))));
        assert_eq!(optional_artifact_id("proof_artifact_id", &[]), Ok(None));
        assert!(optional_artifact_id("proof_artifact_id", &[1]).is_err());
        assert_eq!(artifact_id("a", &[6; 32]), Ok(ArtifactId::from_bytes([6; 32])));
    }
}
