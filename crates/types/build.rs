//! Compiles `proto/provernet/v1/*.proto` with protox (no `protoc` needed) into Rust with
//! prost + tonic (client and server), and writes the encoded file descriptor set for
//! tonic-reflection to `$OUT_DIR/provernet_descriptor.bin`; and compiles the Succinct-API subset
//! in `proto/succinct/` (packages `types`, `network`, `artifact`, as the public API names them).

use std::{env, fs, io, path::PathBuf};

/// The proto files of package `provernet.v1`, relative to `proto/`.
const PROTOS: &[&str] = &[
    "provernet/v1/envelope.proto",
    "provernet/v1/account.proto",
    "provernet/v1/program.proto",
    "provernet/v1/artifact.proto",
    "provernet/v1/request.proto",
    "provernet/v1/events.proto",
    "provernet/v1/network.proto",
];

/// The Succinct-API protos, relative to `proto/succinct/`.
const SUCCINCT_PROTOS: &[&str] =
    &["types/types.proto", "network/network.proto", "artifact/artifact.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_source_info(true).include_imports(true).open_files(PROTOS)?;
    fs::write(out_dir.join("provernet_descriptor.bin"), compiler.encode_file_descriptor_set())?;

    let mut config = tonic_prost_build::Config::new();
    // `prost::Name` lets tests check each body's signing kind against its full proto name.
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds_with_config(compiler.file_descriptor_set(), config)
        .map_err(|e| io::Error::other(format!("generating Rust from the protos: {e}")))?;

    let mut succinct = protox::Compiler::new(["proto/succinct"])?;
    succinct.include_imports(true).open_files(SUCCINCT_PROTOS)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(succinct.file_descriptor_set())
        .map_err(|e| io::Error::other(format!("generating Rust from the Succinct protos: {e}")))?;
    Ok(())
}
