//! [`ProofBundle`]: a proof with what it proves, as one self-describing byte string.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! "PNPROOF1" | u16 version length | zkvm version (UTF-8) | program id (32 bytes)
//!            | u32 outputs length | public outputs | proof bytes (the rest)
//! ```
//!
//! Every byte matters: a change in the header makes decoding fail or names another program or
//! other outputs, and a change in the proof makes verification fail.

use crate::{ProgramId, Proof, PublicOutputs, Result, ZkVmError};

const MAGIC: &[u8; 8] = b"PNPROOF1";

/// A proof together with the zkvm version, program id and public outputs it proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofBundle {
    /// The backend version that produced the proof, e.g. `miden-0.23`.
    pub zkvm: String,
    /// The program the proof is for.
    pub program_id: ProgramId,
    /// The public outputs the proof commits to.
    pub outputs: PublicOutputs,
    /// The proof bytes in the backend's format.
    pub proof: Vec<u8>,
}

impl ProofBundle {
    /// Bundles `proof` as produced by the backend of version `zkvm`.
    pub fn new(zkvm: &str, proof: Proof) -> Self {
        Self {
            zkvm: zkvm.to_owned(),
            program_id: proof.program_id,
            outputs: proof.outputs,
            proof: proof.bytes,
        }
    }

    /// Encodes the bundle in the documented layout.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(64 + self.zkvm.len() + self.outputs.0.len() + self.proof.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.zkvm.len() as u16).to_le_bytes());
        out.extend_from_slice(self.zkvm.as_bytes());
        out.extend_from_slice(self.program_id.as_bytes());
        out.extend_from_slice(&(self.outputs.0.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.outputs.0);
        out.extend_from_slice(&self.proof);
        out
    }

    /// Checks that the bundle claims to prove what a request asks: its zkvm version, program and
    /// public outputs. (Whether the proof holds is the backend's [`verify`](crate::ZkVm::verify).)
    ///
    /// # Errors
    /// [`ZkVmError::ProofRejected`] naming the first claim that differs.
    pub fn check_claims(&self, zkvm: &str, program_id: &ProgramId, outputs: &[u8]) -> Result<()> {
        let differs = if self.zkvm != zkvm {
            format!("the bundle is for {}, the request for {zkvm}", self.zkvm)
        } else if self.program_id != *program_id {
            format!("the bundle is for program {}, the request for {program_id}", self.program_id)
        } else if self.outputs.0 != outputs {
            "the bundle's public outputs differ from the request's execution".to_owned()
        } else {
            return Ok(());
        };
        Err(ZkVmError::ProofRejected { reason: differs })
    }

    /// Decodes a bundle, naming what is wrong with a malformed one.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader(bytes);
        if reader.take(MAGIC.len(), "magic")? != MAGIC {
            return Err(malformed("not a provernet proof bundle (bad magic)".into()));
        }
        let version_len = u16::from_le_bytes(reader.array("zkvm version length")?) as usize;
        let zkvm = std::str::from_utf8(reader.take(version_len, "zkvm version")?)
            .map_err(|_| malformed("zkvm version is not UTF-8".into()))?
            .to_owned();
        let program_id = ProgramId::from_bytes(reader.array("program id")?);
        let outputs_len = u32::from_le_bytes(reader.array("outputs length")?) as usize;
        let outputs = PublicOutputs(reader.take(outputs_len, "public outputs")?.to_vec());
        if reader.0.is_empty() {
            return Err(malformed("the bundle holds no proof bytes".into()));
        }
        Ok(Self { zkvm, program_id, outputs, proof: reader.0.to_vec() })
    }
}

fn malformed(reason: String) -> ZkVmError {
    ZkVmError::MalformedProof { reason }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(malformed(format!("bundle ends inside its {what}")));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let bytes = self.take(N, what)?;
        bytes.try_into().map_err(|_| malformed(format!("bundle ends inside its {what}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_truncation() {
        let bundle = ProofBundle {
            zkvm: "miden-0.23".into(),
            program_id: ProgramId::from_bytes([7; 32]),
            outputs: PublicOutputs(vec![1, 2, 3]),
            proof: vec![9; 40],
        };
        let bytes = bundle.encode();
        assert_eq!(ProofBundle::decode(&bytes).ok(), Some(bundle));
        let e = ProofBundle::decode(&bytes[..20]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("ends inside its program id"), "{e}");
        let e = ProofBundle::decode(b"garbage!!").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("bad magic"), "{e}");
    }

    #[test]
    fn claims_are_checked_one_by_one() {
        let id = ProgramId::from_bytes([7; 32]);
        let bundle = ProofBundle {
            zkvm: "miden-0.23".into(),
            program_id: id,
            outputs: PublicOutputs(vec![1, 2, 3]),
            proof: vec![9; 40],
        };
        assert!(bundle.check_claims("miden-0.23", &id, &[1, 2, 3]).is_ok());
        let says = |r: Result<()>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(says(bundle.check_claims("sp1-v6", &id, &[1, 2, 3])).contains("for sp1-v6"));
        let other = ProgramId::from_bytes([8; 32]);
        assert!(says(bundle.check_claims("miden-0.23", &other, &[1, 2, 3])).contains("program"));
        assert!(says(bundle.check_claims("miden-0.23", &id, &[1, 2])).contains("public outputs"));
    }
}
