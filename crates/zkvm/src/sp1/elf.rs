//! Checks an SP1 guest's ELF header before SP1 sees it, so that a wrong build fails with a message
//! that says what to fix (SP1's own loader accepts 32-bit ELFs and decodes compressed code as
//! garbage).

use crate::{Result, ZkVmError};

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ET_EXEC: u16 = 2;
const EM_RISCV: u16 = 243;
/// `e_flags` bit: the code uses the compressed (C) extension.
const EF_RISCV_RVC: u32 = 0x1;
/// `e_flags` bits: the floating-point ABI (0 = soft float, as LP64 requires).
const EF_RISCV_FLOAT_ABI: u32 = 0x6;
/// `e_flags` bit: the RV64E (16-register) base.
const EF_RISCV_RVE: u32 = 0x8;
/// Program header type of a loadable segment.
const PT_LOAD: u32 = 1;
/// Size of an ELF64 file header.
const EHDR64_SIZE: usize = 64;

/// Checks that `elf` is an RV64IM executable as SP1 runs it: ELF64, little-endian, `ET_EXEC`,
/// `EM_RISCV`, no C extension, the soft-float LP64 ABI, and program headers and loadable
/// segments inside the file.
///
/// # Errors
/// [`ZkVmError::InvalidProgram`] naming the first check that failed.
pub fn check_elf(elf: &[u8]) -> Result<()> {
    let invalid = |what: String| ZkVmError::InvalidProgram {
        diagnostic: format!(
            "not an SP1 guest: {what}; SP1 runs RV64IM ELF64 executables \
             (build with programs/sp1/build.sh)"
        ),
    };
    if elf.len() < 4 || &elf[..4] != ELF_MAGIC {
        return Err(invalid("no ELF magic (is this an ELF file?)".to_owned()));
    }
    if elf.len() < EHDR64_SIZE {
        return Err(invalid(format!(
            "truncated ELF: {} bytes, shorter than its header",
            elf.len()
        )));
    }
    if elf[4] != ELFCLASS64 {
        return Err(invalid(format!("ELF class {} is not ELF64 (a 32-bit build?)", elf[4])));
    }
    if elf[5] != ELFDATA2LSB {
        return Err(invalid("big-endian ELF".to_owned()));
    }
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes([elf[at], elf[at + 1], elf[at + 2], elf[at + 3]]);
    let u64_at = |at: usize| u64::from(u32_at(at)) | u64::from(u32_at(at + 4)) << 32;
    let e_type = u16_at(16);
    if e_type != ET_EXEC {
        return Err(invalid(format!(
            "ELF type {e_type} is not ET_EXEC (link a static executable)"
        )));
    }
    let e_machine = u16_at(18);
    if e_machine != EM_RISCV {
        return Err(invalid(format!("machine {e_machine} is not RISC-V ({EM_RISCV})")));
    }
    let e_flags = u32_at(48);
    if e_flags & EF_RISCV_RVC != 0 {
        return Err(invalid(
            "it uses the compressed (C) extension (build with -march=rv64im)".into(),
        ));
    }
    if e_flags & EF_RISCV_FLOAT_ABI != 0 {
        return Err(invalid(
            "it uses a hardware floating-point ABI (build with -mabi=lp64)".into(),
        ));
    }
    if e_flags & EF_RISCV_RVE != 0 {
        return Err(invalid("it targets RV64E (build with -march=rv64im)".into()));
    }
    let (phoff, phentsize, phnum) = (u64_at(32), u64::from(u16_at(54)), u64::from(u16_at(56)));
    let headers_end = phentsize.checked_mul(phnum).and_then(|size| size.checked_add(phoff));
    if phnum == 0 || headers_end.is_none_or(|end| end > elf.len() as u64) {
        return Err(invalid(format!(
            "truncated ELF: {phnum} program headers at offset {phoff} do not fit in {} bytes",
            elf.len()
        )));
    }
    for i in 0..phnum {
        let at = (phoff + i * phentsize) as usize;
        if phentsize < 56 || u32_at(at) != PT_LOAD {
            continue;
        }
        let (offset, filesz) = (u64_at(at + 8), u64_at(at + 32));
        if offset.checked_add(filesz).is_none_or(|end| end > elf.len() as u64) {
            return Err(invalid(format!(
                "truncated ELF: segment {i} needs bytes {offset}..{} of a {}-byte file",
                offset.saturating_add(filesz),
                elf.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid header: ELF64 LE, ET_EXEC, EM_RISCV, one program header right after it.
    fn header() -> Vec<u8> {
        let mut elf = vec![0u8; EHDR64_SIZE + 56];
        elf[..4].copy_from_slice(ELF_MAGIC);
        elf[4] = ELFCLASS64;
        elf[5] = ELFDATA2LSB;
        elf[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        elf[18..20].copy_from_slice(&EM_RISCV.to_le_bytes());
        elf[32..40].copy_from_slice(&(EHDR64_SIZE as u64).to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&1u16.to_le_bytes());
        elf
    }

    fn message(elf: &[u8]) -> String {
        check_elf(elf).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn accepts_rv64im_and_names_each_wrong_field() {
        assert!(check_elf(&header()).is_ok());
        assert!(message(b"#!/bin/sh").contains("no ELF magic"));
        assert!(message(&header()[..40]).contains("truncated"));
        assert!(message(&header()[..EHDR64_SIZE + 10]).contains("truncated"));
        let mut elf = header();
        elf[4] = 1;
        assert!(message(&elf).contains("not ELF64"));
        let mut elf = header();
        elf[18] = 62; // x86-64
        assert!(message(&elf).contains("not RISC-V"));
        let mut elf = header();
        elf[48] = 0x5; // RVC + single-float ABI
        assert!(message(&elf).contains("compressed"));
        let mut elf = header();
        elf[16] = 3; // ET_DYN
        assert!(message(&elf).contains("ET_EXEC"));
        let mut elf = header();
        elf[EHDR64_SIZE..EHDR64_SIZE + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        elf[EHDR64_SIZE + 32..EHDR64_SIZE + 40].copy_from_slice(&4096u64.to_le_bytes());
        assert!(message(&elf).contains("segment 0 needs bytes 0..4096"));
    }
}
