//! Requests a core proof of `programs/sp1/fib.elf` (n = 20) from the network at
//! `NETWORK_RPC_URL`, signed with `NETWORK_PRIVATE_KEY`, exactly as an SP1 script does with
//! `SP1_PROVER=network`, and verifies the proof the network returns.

use std::time::Instant;

use anyhow::Context;
use sp1_sdk::{Elf, ProveRequest, Prover, ProverClient, ProvingKey, SP1Stdin};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "../../programs/sp1/fib.elf".into());
    let elf = std::fs::read(&path).with_context(|| format!("cannot read the ELF {path}"))?;
    let client = ProverClient::builder().network().build().await;
    let pk = client.setup(Elf::from(elf)).await?;
    let mut stdin = SP1Stdin::new();
    stdin.write(&20u32);
    let started = Instant::now();
    let proof = client.prove(&pk, stdin).core().await?;
    println!("proof received in {:.1} s", started.elapsed().as_secs_f64());
    client.verify(&proof, pk.verifying_key(), None)?;
    let values = proof.public_values.as_slice();
    println!("verified here: {} bytes of public values: 0x{}", values.len(), hex(values));
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
