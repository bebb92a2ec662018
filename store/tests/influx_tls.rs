//! The InfluxDB client over https: `influxs://` with the `ca_file` of a CA made in the test
//! reaches a TLS server on 127.0.0.1 that answers the v1 `/ping` and `/query` like InfluxDB;
//! without that CA, or with a `ca_file` that is missing, it is a clear error. (InfluxDB itself
//! with TLS needs certificate files and a second server start; the TLS path is the client's,
//! and this checks it against a real TLS server.)

use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use store::StoreError;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

/// A CA written to `dir/ca.pem` and a server configuration for 127.0.0.1 signed by it.
fn ca_and_server(dir: &std::path::Path) -> (std::path::PathBuf, Arc<ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "Mizumori test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = ServerConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    (ca_file, Arc::new(config))
}

struct TlsListener(TcpListener, TlsAcceptor);

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.0.accept().await else { continue };
            // A client that refuses the certificate ends the handshake; wait for the next one.
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), self.1.accept(stream)).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

#[tokio::test]
async fn influxs_urls_reach_a_tls_server_through_the_ca_file_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, config) = ca_and_server(dir.path());
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/ping", axum::routing::get(|| async { axum::http::StatusCode::NO_CONTENT }))
        .route("/query", axum::routing::post(|| async { axum::Json(serde_json::json!({ "results": [{}] })) }));
    let server = tokio::spawn(async move { axum::serve(TlsListener(tcp, TlsAcceptor::from(config)), app).await });

    let url = format!("influxs://{addr}/water?ca_file={}", ca_file.display());
    let store = store::open(&url).await.expect("https with the test's CA");
    store.health().await.unwrap();

    // The system's roots alone do not know the test's CA.
    let e = store::open(&format!("influxs://{addr}/water")).await.err().expect("an untrusted certificate");
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
    assert!(e.to_string().contains("TLS: invalid peer certificate: UnknownIssuer"), "{e}");

    // Plain http to a TLS port is not silently "secure": it fails.
    assert!(store::open(&format!("influx://{addr}/water")).await.is_err());

    let missing = dir.path().join("missing.pem");
    let e = store::open(&format!("influxs://{addr}/water?ca_file={}", missing.display())).await.err().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "bad store URL \"influxs://{addr}/water?ca_file={m}\": field `ca_file`: {m}: cannot read: entity not found",
            m = missing.display()
        )
    );
    server.abort();
}
