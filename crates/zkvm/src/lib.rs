//! provernet's proving backends behind one [`ZkVm`] trait.
//!
//! A backend turns program bytes into a [`ProgramId`], executes a program on its inputs within a
//! gas limit (reporting the PGUs — prover gas units — that proving will cost), proves, and
//! verifies. Backends are looked up by version string in a [`ZkVmRegistry`], so the network and
//! the node can ask "is `miden-0.23` supported here?". This crate knows nothing of networks.
//!
//! Layout:
//! - [`backend`]: the [`ZkVm`] trait and the values it trades in.
//! - [`registry`]: backends by version string.
//! - [`bundle`]: a proof with what it proves, as one byte string (files, artifacts).
//! - [`samples`]: the sample programs of `programs/`, built in.
//! - [`miden`]: the Miden VM backend (the default), and its inputs format.
//! - `sp1` (feature `sp1`, off by default): the SP1 backend, and its inputs format.
//! - [`error`]: [`ZkVmError`], one variant per way a program, input or proof can be wrong.
//!
//! ```text
//! program bytes ──program_id──▶ ProgramId
//! program + inputs ──execute(gas_limit)──▶ Execution { pgus, outputs }
//! program + inputs ──prove(mode, cancel)──▶ Proof ──verify(program id, inputs, outputs)──▶ ok
//! ```

pub mod backend;
pub mod bundle;
pub mod error;
pub mod miden;
pub mod registry;
pub mod samples;
#[cfg(feature = "sp1")]
pub mod sp1;

pub use backend::{
    Execution, ProgramId, Proof, ProofMode, ProveJob, ProvePhase, PublicOutputs, Verified, ZkVm,
    prove_async,
};
pub use bundle::ProofBundle;
pub use error::{Result, ZkVmError};
pub use miden::{MidenBackend, MidenInputs};
pub use registry::ZkVmRegistry;
#[cfg(feature = "sp1")]
pub use sp1::{Sp1Backend, Sp1Inputs};
