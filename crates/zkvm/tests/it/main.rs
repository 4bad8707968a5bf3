//! Integration tests of the proving backends: real programs, real proofs.

mod miden;
