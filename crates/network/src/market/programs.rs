//! Program registration: a new program version, and who may register versions of a name.

use provernet_types::{Address, ProgramName};

use super::{Market, MarketError, Outcome, Program, Result, Touched};

impl Market {
    /// Registers a program version (its id computed by the caller from the artifact's bytes).
    pub fn register_program(
        &mut self,
        signer: Address,
        nonce: u64,
        program: Program,
    ) -> Result<Outcome> {
        self.check_register_program(&signer, nonce, &program.name)?;
        if let Some(existing) = self.programs.get(&program.program_id) {
            return Err(MarketError::ProgramExists(format!(
                "0x{} (as {:?})",
                hex::encode(&existing.program_id),
                existing.name
            )));
        }
        // A name belongs to the account that registered its first version.
        if self.programs_named(&program.name).first().is_some_and(|p| p.registered_by != signer) {
            return Err(MarketError::Unauthorized {
                signer,
                action: "register a version of a program name another account registered first",
            });
        }
        let mut touched = Touched::default();
        self.use_nonce(&signer, &mut touched);
        touched.programs.push(program.program_id.clone());
        if let Some(hash) = &program.sdk_hash {
            self.sdk_hashes.insert(hash.clone(), program.program_id.clone());
        }
        self.programs.insert(program.program_id.clone(), program);
        Ok(self.finish(touched))
    }

    /// Checks, without changing anything, that `signer` may register a version of `name` with
    /// `nonce`: the caller runs this before reading or assembling the program, whose cost grows
    /// with its size.
    pub fn check_register_program(&self, signer: &Address, nonce: u64, name: &str) -> Result<()> {
        self.check_nonce(signer, nonce)?;
        ProgramName::parse(name)?;
        Ok(())
    }
}
