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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_set_names_the_package_and_service() {
        let text = String::from_utf8_lossy(FILE_DESCRIPTOR_SET);
        for name in ["provernet/v1/network.proto", "provernet.v1", "ProverNetwork", "SignedMessage"]
        {
            assert!(text.contains(name), "descriptor set lacks {name}");
        }
    }

    #[test]
    fn client_and_server_are_generated() {
        // Compile-time checks: the transport client and the server wrapper exist.
        let _connect = prover_network_client::ProverNetworkClient::<tonic::transport::Channel>::new;
        let name =
            <prover_network_server::ProverNetworkServer<()> as tonic::server::NamedService>::NAME;
        assert_eq!(name, "provernet.v1.ProverNetwork");
        assert_eq!(RequestStatus::Assigned.as_str_name(), "REQUEST_STATUS_ASSIGNED");
    }
}
