//! The sample programs of `programs/`, built into the binary so that tests, benchmarks and the
//! devnet run from any directory.

use crate::miden::MidenInputs;

/// A sample Miden program with sample inputs.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Short name: the folder under `programs/`.
    pub name: &'static str,
    /// Miden assembly source.
    pub source: &'static str,
    /// Sample inputs (JSON, see [`crate::miden::inputs`]).
    pub inputs: &'static str,
    /// Expected outputs for the sample inputs (JSON: `{"outputs": [...]}`, top of stack first).
    pub expected: &'static str,
}

macro_rules! sample {
    ($name:literal) => {
        Sample {
            name: $name,
            source: include_str!(concat!("../../../programs/", $name, "/program.masm")),
            inputs: include_str!(concat!("../../../programs/", $name, "/inputs.json")),
            expected: include_str!(concat!("../../../programs/", $name, "/expected.json")),
        }
    };
}

/// Fibonacci: F(n) mod p for the stack input n; ~14 cycles per step.
pub const FIB: Sample = sample!("fib");
/// Hash chain: n rounds of `hmerge` over a starting word; work scales with n.
pub const HASHCHAIN: Sample = sample!("hashchain");
/// Commitment to private advice data: folds n private words into one hash.
pub const ADVICE_FOLD: Sample = sample!("advice_fold");
/// Fails unless its input is 42: unexecutable on its sample inputs.
pub const ASSERT42: Sample = sample!("assert42");

/// Every sample that executes successfully on its sample inputs.
pub const EXECUTABLE: [Sample; 3] = [FIB, HASHCHAIN, ADVICE_FOLD];

impl Sample {
    /// The expected output stack prefix, from `expected.json` (empty if the file has none).
    pub fn expected_outputs(&self) -> Vec<u64> {
        #[derive(serde::Deserialize)]
        struct Expected {
            #[serde(default)]
            outputs: Vec<u64>,
        }
        serde_json::from_str::<Expected>(self.expected).map(|e| e.outputs).unwrap_or_default()
    }

    /// Inputs for the sample with its size parameter (the first stack input) set to `n`.
    ///
    /// For `advice_fold`, the advice data is extended (deterministically) to `n` words.
    pub fn inputs_with_size(&self, n: u64) -> Vec<u8> {
        let mut inputs = MidenInputs::from_json(self.inputs.as_bytes()).unwrap_or_default();
        match inputs.stack.first_mut() {
            Some(first) => *first = n,
            None => inputs.stack.push(n),
        }
        if !inputs.advice.is_empty() {
            inputs.advice = (1..=4 * n).collect();
        }
        inputs.to_json()
    }
}
