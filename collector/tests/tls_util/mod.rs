//! TLS for the notification tests: a certificate authority made in the test (rcgen), server
//! certificates for 127.0.0.1 signed by it, and a TLS listener for axum whose certificate can
//! be swapped while it runs.

#![allow(dead_code)] // Each test file uses its own part.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::server::TlsStream;

/// A CA of the test's own; its certificate is written to `ca_file` (PEM).
pub struct TestCa {
    pub ca_file: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(dir: &Path, name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("Mizumori test CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let ca_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, cert.pem()).unwrap();
        TestCa { ca_file, issuer: Issuer::new(params, key) }
    }

    /// A server configuration with a certificate for 127.0.0.1 signed by this CA.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        Arc::new(config)
    }
}

/// Handshakes a [`TlsListener`] completed and refused.
#[derive(Debug, Default)]
pub struct Handshakes {
    pub ok: AtomicUsize,
    pub failed: AtomicUsize,
}

impl Handshakes {
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

/// A TLS listener on 127.0.0.1 for `axum::serve`, presenting whatever certificate
/// `config` holds at each handshake.
pub struct TlsListener {
    tcp: TcpListener,
    pub config: Arc<RwLock<Arc<ServerConfig>>>,
    pub handshakes: Arc<Handshakes>,
}

impl TlsListener {
    pub async fn bind(config: Arc<ServerConfig>) -> Self {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        TlsListener { tcp, config: Arc::new(RwLock::new(config)), handshakes: Arc::default() }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else { continue };
            let acceptor = TlsAcceptor::from(self.config.read().unwrap().clone());
            // A client that does not trust the certificate aborts the handshake: count it and
            // wait for the next connection, as a real server would.
            match tokio::time::timeout(Duration::from_secs(5), acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    self.handshakes.ok.fetch_add(1, Ordering::SeqCst);
                    return (tls, addr);
                }
                _ => {
                    self.handshakes.failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
