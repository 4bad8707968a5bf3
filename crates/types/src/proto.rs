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

impl RequestStatus {
    /// Every status a request can be in, in the order a request moves through them.
    pub const ALL: [RequestStatus; 5] = [
        RequestStatus::Requested,
        RequestStatus::Assigned,
        RequestStatus::Fulfilled,
        RequestStatus::Unfulfillable,
        RequestStatus::Cancelled,
    ];

    /// The status's lowercase name (`requested`, `assigned`, …), as metrics label it, the CLI
    /// prints it and the ledger counts closed requests by it.
    pub const fn name(self) -> &'static str {
        match self {
            RequestStatus::Unspecified => "unknown",
            RequestStatus::Requested => "requested",
            RequestStatus::Assigned => "assigned",
            RequestStatus::Fulfilled => "fulfilled",
            RequestStatus::Unfulfillable => "unfulfillable",
            RequestStatus::Cancelled => "cancelled",
        }
    }

    /// Whether a request in this status is closed for good.
    pub const fn is_closed(self) -> bool {
        matches!(
            self,
            RequestStatus::Fulfilled | RequestStatus::Unfulfillable | RequestStatus::Cancelled
        )
    }
}

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

    #[test]
    fn status_names_are_the_protocol_names_in_lower_case() {
        for status in RequestStatus::ALL {
            let protocol = status.as_str_name().strip_prefix("REQUEST_STATUS_").unwrap_or_default();
            assert_eq!(status.name(), protocol.to_lowercase());
        }
        let closed: Vec<_> = RequestStatus::ALL.into_iter().filter(|s| s.is_closed()).collect();
        assert_eq!(
            closed,
            [RequestStatus::Fulfilled, RequestStatus::Unfulfillable, RequestStatus::Cancelled]
        );
    }
}
