//! The guests of `programs/sp1/`, built into the binary so that `provernet devnet --sp1` and
//! the tests need no files beside it. Rebuild them with `programs/sp1/build.sh`.

use super::Sp1Inputs;
use crate::PublicOutputs;

/// Fibonacci: reads `n` (u32 LE), commits `n`, fib(n) and fib(n+1) (u64 LE each).
pub const FIB_ELF: &[u8] = include_bytes!("../../../../programs/sp1/fib.elf");
/// SHA-256 of one hint of any length; commits its length, byte sum, digest and digest of digest.
pub const SHA256_ELF: &[u8] = include_bytes!("../../../../programs/sp1/sha256.elf");
/// Halts with exit code 3: a guest that cannot be proven.
pub const EXIT3_ELF: &[u8] = include_bytes!("../../../../programs/sp1/exit3.elf");

/// Inputs of [`FIB_ELF`] for `n`.
pub fn fib_inputs(n: u32) -> Vec<u8> {
    Sp1Inputs::from_hints([n.to_le_bytes()]).to_json()
}

/// What [`FIB_ELF`] commits for `n`: n (u32), fib(n) and fib(n+1) (u64, wrapping), LE.
pub fn fib_outputs(n: u32) -> PublicOutputs {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    PublicOutputs([&n.to_le_bytes()[..], &a.to_le_bytes(), &b.to_le_bytes()].concat())
}

/// Inputs of [`SHA256_ELF`] hashing `data`.
pub fn sha256_inputs(data: &[u8]) -> Vec<u8> {
    Sp1Inputs::from_hints([data]).to_json()
}
