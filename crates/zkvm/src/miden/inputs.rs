//! The Miden inputs format and the encoding of Miden public outputs.
//!
//! Inputs are a JSON object, UTF-8:
//!
//! ```json
//! { "stack": [10], "advice": [1, 2, 3] }
//! ```
//!
//! - `stack` (public, default `[]`): the initial operand stack, first element on top; at most
//!   16 field elements. A verifier needs these.
//! - `advice` (private, default `[]`): the advice stack, first element on top (popped first by
//!   `adv_push`); at most 2^17 field elements. A verifier does not need these, so an inputs
//!   artifact with advice data is stored as private.
//!
//! Field elements are integers below the Goldilocks modulus 2^64 − 2^32 + 1. Unknown keys are
//! rejected, so a typo never silently means "no inputs".
//!
//! Public outputs are the 16 elements of the output stack, top first, each 8 bytes little-endian.

use miden_core::Felt;
use miden_vm::{StackInputs, StackOutputs, advice::AdviceInputs};
use serde::{Deserialize, Serialize};

use crate::{PublicOutputs, Result, ZkVmError};

/// Largest number of public stack inputs Miden accepts.
pub const MAX_STACK_INPUTS: usize = 16;
/// Largest advice stack Miden accepts (a hard cap of the VM).
pub const MAX_ADVICE_INPUTS: usize = 1 << 17;
/// Number of elements in Miden's output stack, hence in [`PublicOutputs`].
pub const OUTPUT_ELEMENTS: usize = 16;

/// Inputs to a Miden program: public stack values and private advice values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MidenInputs {
    /// Public inputs: the initial operand stack, first element on top.
    #[serde(default)]
    pub stack: Vec<u64>,
    /// Private inputs: the advice stack, first element on top.
    #[serde(default)]
    pub advice: Vec<u64>,
}

impl MidenInputs {
    /// Parses and validates inputs bytes (JSON as documented in this module).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let inputs: Self = serde_json::from_slice(bytes).map_err(|e| {
            ZkVmError::MalformedInputs { reason: format!("not valid inputs JSON: {e}") }
        })?;
        inputs.validate()?;
        Ok(inputs)
    }

    /// Encodes the inputs as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of integer vectors cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether these inputs carry private data (a non-empty advice stack).
    pub fn has_private_data(&self) -> bool {
        !self.advice.is_empty()
    }

    fn validate(&self) -> Result<()> {
        if self.stack.len() > MAX_STACK_INPUTS {
            return Err(ZkVmError::MalformedInputs {
                reason: format!(
                    "\"stack\" has {} elements; Miden takes at most {MAX_STACK_INPUTS}",
                    self.stack.len()
                ),
            });
        }
        if self.advice.len() > MAX_ADVICE_INPUTS {
            return Err(ZkVmError::MalformedInputs {
                reason: format!(
                    "\"advice\" has {} elements; Miden takes at most {MAX_ADVICE_INPUTS}",
                    self.advice.len()
                ),
            });
        }
        for (name, values) in [("stack", &self.stack), ("advice", &self.advice)] {
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| **v >= Felt::ORDER) {
                return Err(ZkVmError::MalformedInputs {
                    reason: format!(
                        "\"{name}\"[{i}] = {v} is not a field element (must be below {})",
                        Felt::ORDER
                    ),
                });
            }
        }
        Ok(())
    }

    /// The public stack inputs in the VM's form.
    pub(crate) fn stack_inputs(&self) -> Result<StackInputs> {
        StackInputs::new(&felts(&self.stack))
            .map_err(|e| ZkVmError::MalformedInputs { reason: e.to_string() })
    }

    /// The private advice inputs in the VM's form.
    pub(crate) fn advice_inputs(&self) -> Result<AdviceInputs> {
        AdviceInputs::default()
            .with_stack_values(self.advice.iter().copied())
            .map_err(|e| ZkVmError::MalformedInputs { reason: e.to_string() })
    }
}

/// Encodes the VM's output stack as [`PublicOutputs`].
pub(crate) fn encode_outputs(outputs: &StackOutputs) -> PublicOutputs {
    PublicOutputs(outputs.iter().flat_map(|v| v.as_canonical_u64().to_le_bytes()).collect())
}

/// Decodes [`PublicOutputs`] into field elements, checking length and range.
pub fn decode_outputs(outputs: &PublicOutputs) -> Result<Vec<u64>> {
    let bytes = &outputs.0;
    if bytes.len() != OUTPUT_ELEMENTS * 8 {
        return Err(ZkVmError::MalformedOutputs {
            reason: format!(
                "expected {} bytes ({OUTPUT_ELEMENTS} elements of 8 bytes), got {}",
                OUTPUT_ELEMENTS * 8,
                bytes.len()
            ),
        });
    }
    let values: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| **v >= Felt::ORDER) {
        return Err(ZkVmError::MalformedOutputs {
            reason: format!("element {i} = {v} is not a field element"),
        });
    }
    Ok(values)
}

/// Encodes output stack values (top first, padded with zeros to 16) as [`PublicOutputs`].
pub fn outputs_from_values(values: &[u64]) -> Result<PublicOutputs> {
    if let Some(v) = values.iter().find(|v| **v >= Felt::ORDER) {
        return Err(ZkVmError::MalformedOutputs { reason: format!("{v} is not a field element") });
    }
    let outputs = StackOutputs::new(&felts(values))
        .map_err(|e| ZkVmError::MalformedOutputs { reason: e.to_string() })?;
    Ok(encode_outputs(&outputs))
}

pub(crate) fn stack_outputs(outputs: &PublicOutputs) -> Result<StackOutputs> {
    StackOutputs::new(&felts(&decode_outputs(outputs)?))
        .map_err(|e| ZkVmError::MalformedOutputs { reason: e.to_string() })
}

/// Field elements of values already checked to be below the modulus.
fn felts(values: &[u64]) -> Vec<Felt> {
    values.iter().map(|v| Felt::new_unchecked(*v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(bytes: &[u8]) -> String {
        MidenInputs::from_json(bytes).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn parses_both_parts_and_defaults() {
        let inputs = MidenInputs::from_json(br#"{"stack":[1,2],"advice":[3]}"#).ok();
        assert_eq!(inputs, Some(MidenInputs { stack: vec![1, 2], advice: vec![3] }));
        assert_eq!(MidenInputs::from_json(b"{}").ok(), Some(MidenInputs::default()));
    }

    #[test]
    fn rejects_malformed_inputs_naming_the_fault() {
        assert!(reason(b"not json").contains("not valid inputs JSON"));
        assert!(reason(br#"{"stak":[1]}"#).contains("unknown field `stak`"));
        assert!(reason(br#"{"stack":[-1]}"#).contains("not valid inputs JSON"));
        assert!(reason(br#"{"stack":[1.5]}"#).contains("not valid inputs JSON"));
        let too_many = format!("{{\"stack\":{:?}}}", vec![0; 17]);
        assert!(reason(too_many.as_bytes()).contains("\"stack\" has 17 elements"));
        let big = format!("{{\"advice\":[0,{}]}}", u64::MAX);
        assert!(reason(big.as_bytes()).contains("\"advice\"[1] = 18446744073709551615"));
    }

    #[test]
    fn outputs_round_trip_and_reject_bad_lengths() {
        let outputs = outputs_from_values(&[7, 8]).ok().unwrap_or_default();
        assert_eq!(decode_outputs(&outputs).ok().map(|v| v[..3].to_vec()), Some(vec![7, 8, 0]));
        let short = PublicOutputs(vec![0; 12]);
        let err = decode_outputs(&short).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("expected 128 bytes"), "{err}");
    }
}
