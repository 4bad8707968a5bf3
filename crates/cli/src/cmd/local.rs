//! What the local commands (`execute`, `prove`, `verify`) share: locating a program and its
//! inputs, and picking a backend.

use std::{path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use provernet_zkvm::{ZkVm, ZkVmRegistry, miden};

/// A program and its inputs on disk, and the backend that runs them.
#[derive(Debug, clap::Args)]
pub struct ProgramArgs {
    /// The program: a Miden assembly file, or a folder holding `program.masm` (and usually
    /// `inputs.json`), such as `programs/fib`; or an SP1 guest, `*.elf` (builds with the `sp1`
    /// feature), such as `programs/sp1/fib.elf`.
    pub program: PathBuf,
    /// The inputs file (JSON: `{"stack": [...], "advice": [...]}`; SP1: `{"hints": [...]}`).
    /// Defaults to `inputs.json` beside the program (SP1: `<name>.inputs.json`).
    #[arg(long)]
    pub inputs: Option<PathBuf>,
    /// The zkVM version to use.
    #[arg(long, default_value = miden::VERSION)]
    pub zkvm: String,
    /// Upper bound on the work, in PGUs (padded trace rows for Miden).
    #[arg(long, default_value_t = miden::MAX_PGUS)]
    pub gas_limit: u64,
}

/// A loaded program, its inputs and its backend.
pub struct LoadedProgram {
    /// The backend of the requested version.
    pub backend: Arc<dyn ZkVm>,
    /// Program bytes.
    pub program: Vec<u8>,
    /// Inputs bytes.
    pub inputs: Vec<u8>,
}

impl ProgramArgs {
    /// Reads the program and inputs files and picks the backend.
    pub fn load(&self) -> anyhow::Result<LoadedProgram> {
        let registry = ZkVmRegistry::with_default_backends();
        let is_elf = self.program.extension().is_some_and(|ext| ext == "elf");
        // An ELF is an SP1 guest: the default (Miden) version cannot mean it.
        let version = if is_elf && self.zkvm == miden::VERSION {
            registry.versions().into_iter().find(|v| v.starts_with("sp1-")).with_context(|| {
                format!(
                    "{} is an SP1 guest, and this provernet was built without SP1: \
                     rebuild with `--features sp1`",
                    self.program.display()
                )
            })?
        } else {
            self.zkvm.clone()
        };
        let backend = registry.get(&version)?;
        let (program_path, default_inputs) = if self.program.is_dir() {
            (self.program.join("program.masm"), Some(self.program.join("inputs.json")))
        } else if is_elf {
            (self.program.clone(), Some(self.program.with_extension("inputs.json")))
        } else {
            (self.program.clone(), self.program.parent().map(|p| p.join("inputs.json")))
        };
        let program = std::fs::read(&program_path).with_context(|| {
            format!("cannot read program {}: check the path", program_path.display())
        })?;
        let inputs = match (&self.inputs, default_inputs) {
            (Some(path), _) => std::fs::read(path).with_context(|| {
                format!("cannot read inputs {}: check the path", path.display())
            })?,
            (None, Some(path)) if path.is_file() => std::fs::read(&path)
                .with_context(|| format!("cannot read inputs {}", path.display()))?,
            (None, _) => {
                if self.program.is_dir() {
                    bail!(
                        "{} has no inputs.json: pass --inputs FILE (JSON: {{\"stack\": [...]}})",
                        self.program.display()
                    );
                }
                b"{}".to_vec()
            }
        };
        Ok(LoadedProgram { backend, program, inputs })
    }
}
