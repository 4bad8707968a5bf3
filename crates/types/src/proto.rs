//! The generated protocol: messages, the `ProverNetwork` client and server, and the
//! encoded file descriptor set for gRPC reflection.
//!
//! The sources are `crates/types/proto/provernet/v1/*.proto` (package `provernet.v1`).

#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("provernet.v1");

/// The encoded `FileDescriptorSet` of package `provernet.v1` (with imports and comments), for
/// `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/provernet_descriptor.bin"));
