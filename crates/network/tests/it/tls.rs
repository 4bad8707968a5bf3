//! TLS on both ports (issue 16): the network started with a certificate the test makes serves
//! gRPC and the ArtifactStore over https; our clients reach it when they trust the
//! certificate's authority, and fail to connect when they do not; plain h2c is refused.

use std::time::Duration;

use provernet_artifacts::{ArtifactClient, ArtifactClientConfig, TlsIdentity, public_url};
use provernet_network::{NetworkConfig, launch};
use provernet_types::{
    ArtifactId, Domain, Signer,
    client::{ClientError, connect_channel_trusting},
    proto::{self, prover_network_client::ProverNetworkClient},
    seal,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::harness::{NETWORK_ID, bounded};

#[tokio::test]
async fn both_ports_serve_tls_to_clients_that_trust_the_certificate() {
    bounded(async {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let identity = TlsIdentity {
            cert_pem: made.cert.pem().into_bytes(),
            key_pem: made.key_pair.serialize_pem().into_bytes(),
        };
        let ca = identity.cert_pem.clone();
        let dir = tempfile::tempdir().expect("temp dir");
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let artifacts = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (grpc_port, artifacts_port) =
            (grpc.local_addr().expect("addr").port(), artifacts.local_addr().expect("addr").port());
        let artifacts_url = format!("https://localhost:{artifacts_port}");
        let mut config = NetworkConfig::local(
            dir.path(),
            NETWORK_ID,
            &artifacts_url,
            "tls-test-secret-0123456789",
        );
        config.tls = Some(identity);
        let cancel = CancellationToken::new();
        let handle = launch(config, grpc, artifacts, cancel.clone()).await.expect("launch");

        let url = format!("https://localhost:{grpc_port}");
        let wait = Duration::from_secs(10);
        let channel = connect_channel_trusting(&url, wait, Some(&ca)).await.expect("TLS channel");
        let mut rpc = ProverNetworkClient::new(channel);
        let info = rpc
            .get_network_info(proto::GetNetworkInfoRequest {})
            .await
            .expect("GetNetworkInfo over TLS")
            .into_inner();
        assert_eq!(info.network_id, NETWORK_ID);

        // An upload through a presigned https URL, and its metadata read back, by our client.
        let signer = Signer::random();
        let bytes = b"inputs over TLS".to_vec();
        let id = ArtifactId::of(&bytes);
        let body = proto::PresignArtifactUploadBody {
            nonce: 0,
            artifact_id: id.as_bytes().to_vec(),
            kind: proto::ArtifactKind::Inputs as i32,
            size: bytes.len() as u64,
        };
        let upload = rpc
            .presign_artifact_upload(seal(&signer, &Domain::new(NETWORK_ID), &body))
            .await
            .expect("PresignArtifactUpload")
            .into_inner()
            .url;
        assert!(upload.starts_with("https://localhost:"), "{upload}");
        let client = ArtifactClient::with_config(ArtifactClientConfig {
            extra_ca: Some(ca.clone()),
            ..ArtifactClientConfig::default()
        })
        .expect("client");
        let receipt = client.upload_bytes(&upload, bytes.clone().into()).await.expect("upload");
        assert_eq!(receipt.id, id);
        let stored = client.head(&public_url(&artifacts_url, &id)).await.expect("HEAD over TLS");
        assert_eq!(stored.size, bytes.len() as u64);

        // Without the authority, no connection; in plain text, no answer.
        let untrusted = connect_channel_trusting(&url, wait, None).await;
        assert!(matches!(untrusted, Err(ClientError::Unreachable { .. })), "{untrusted:?}");
        let plain = ArtifactClient::with_config(ArtifactClientConfig {
            extra_ca: None,
            ..ArtifactClientConfig::default()
        })
        .expect("client");
        assert!(plain.head(&public_url(&artifacts_url, &id)).await.is_err());
        let plain_url = format!("http://localhost:{grpc_port}");
        let answered = match connect_channel_trusting(&plain_url, wait, None).await {
            Ok(channel) => ProverNetworkClient::new(channel)
                .get_network_info(proto::GetNetworkInfoRequest {})
                .await
                .is_ok(),
            Err(_) => false,
        };
        assert!(!answered, "the TLS port answered plain h2c");

        cancel.cancel();
        handle.join.await.expect("network stopped");
    })
    .await;
}

#[tokio::test]
async fn a_key_that_does_not_parse_is_refused_at_launch() {
    bounded(async {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let dir = tempfile::tempdir().expect("temp dir");
        let grpc = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let artifacts = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut config = NetworkConfig::local(
            dir.path(),
            NETWORK_ID,
            "https://localhost",
            "tls-test-secret-0123456789",
        );
        config.tls = Some(TlsIdentity {
            cert_pem: made.cert.pem().into_bytes(),
            key_pem: b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
                .to_vec(),
        });
        let refused = launch(config, grpc, artifacts, CancellationToken::new()).await;
        let message = refused.err().expect("refused").to_string();
        assert!(message.contains("private key"), "{message}");
    })
    .await;
}
