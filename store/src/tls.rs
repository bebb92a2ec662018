//! TLS client settings for every outbound connection: the InfluxDB client here, the alert
//! webhooks and SMTP in the collector.
//!
//! One place decides how Mizumori trusts a server: rustls on the **ring** crypto provider
//! (not aws-lc-rs, which needs cmake and a long C build), the system's trust roots through
//! `rustls-platform-verifier` (on Debian `/etc/ssl/certs`, kept by the `ca-certificates`
//! package and by the city's IT), and optionally a PEM file of extra roots for a city's
//! private CA ([`ExtraRoots`]). It lives in `store` because both the InfluxDB client and the
//! collector need it and the collector already depends on `store`; `model` does no IO.
//!
//! reqwest is built with `rustls-no-provider`, so a bare `reqwest::Client::new()` panics for
//! want of a process-wide provider; build clients with [`http_client`] instead. No process-wide
//! default is installed: it would make whether a client works depend on what ran first.
//!
//! It does not: accept invalid certificates or host names (there is no switch for that), or
//! present client certificates.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Trust anchors from a PEM file, trusted beside the system's roots (a city's private CA).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExtraRoots {
    file: Option<PathBuf>,
    certs: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "ExtraRoots({}: {} certificates)", file.display(), self.certs.len()),
            None => f.write_str("ExtraRoots(none)"),
        }
    }
}

/// A `ca_file` that cannot serve as trust roots. The message names the file; the caller adds
/// the setting (`rules.toml:12: webhook "crew", field `ca_file`: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct CaFileError {
    pub path: PathBuf,
    pub reason: String,
}

impl ExtraRoots {
    /// The system's roots only.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads every `CERTIFICATE` block of a PEM file and checks that each can be a trust anchor.
    /// A file without certificates (empty, a private key, DER) is an error rather than a silent
    /// "trust nothing extra".
    pub fn from_pem_file(path: &Path) -> Result<Self, CaFileError> {
        let bad = |reason: String| CaFileError { path: path.to_owned(), reason };
        let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {}", e.kind())))?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not a PEM file of certificates: {e}")))?;
        if certs.is_empty() {
            return Err(bad("no -----BEGIN CERTIFICATE----- block in it (give the CA certificate in PEM)".to_owned()));
        }
        // The same parse rustls does when it builds the verifier, done here so that a bad
        // certificate is a configuration error naming the file, not a failure at the first send.
        for (i, cert) in certs.iter().enumerate() {
            let mut store = rustls::RootCertStore::empty();
            store.add(cert.clone()).map_err(|e| bad(format!("certificate {} cannot be a trust root: {e}", i + 1)))?;
        }
        Ok(ExtraRoots { file: Some(path.to_owned()), certs })
    }

    /// Reads `path` when one is given.
    pub fn from_optional_file(path: Option<&Path>) -> Result<Self, CaFileError> {
        path.map_or_else(|| Ok(Self::none()), Self::from_pem_file)
    }

    /// The certificates, in file order.
    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// The file they came from, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }
}

/// The crypto provider of every TLS connection Mizumori makes.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client configuration: ring, TLS 1.2 and 1.3, the system's roots plus `extra`.
/// Fails when the verifier cannot be built, e.g. a machine without any CA certificates
/// (install `ca-certificates`) and no `ca_file`.
pub fn client_config(extra: &ExtraRoots) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = provider();
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra.certs.iter().cloned(), provider.clone())?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        // "dangerous" is rustls's name for any verifier of our choosing; this one verifies
        // the chain and the host name against the roots above.
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// A reqwest client builder whose https connections use [`client_config`]. Plain `http://`
/// URLs keep working with it.
pub fn http_client(extra: &ExtraRoots) -> Result<reqwest::ClientBuilder, rustls::Error> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(client_config(extra)?))
}

/// A reqwest client builder for `http://` URLs only: it trusts no root, so every https
/// server is refused (also one an http URL redirects to). It needs no CA certificates on the machine, so a plain-HTTP InfluxDB or
/// webhook keeps working where `ca-certificates` is not installed.
pub fn plain_http_client() -> reqwest::ClientBuilder {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder().tls_backend_preconfigured(config)
}

/// [`http_client`] for an `https://` `url`, [`plain_http_client`] otherwise.
pub fn http_client_for(url: &str, extra: &ExtraRoots) -> Result<reqwest::ClientBuilder, rustls::Error> {
    if url.starts_with("https://") { http_client(extra) } else { Ok(plain_http_client()) }
}

/// The TLS reason inside an error chain (reqwest, hyper, io, lettre), e.g. "invalid peer
/// certificate: UnknownIssuer", for logs that must not show the error's URL.
pub fn tls_reason(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // `io::Error::source` skips the error it wraps (hyper wraps tokio-rustls's io::Error
        // in another), so step into it by hand.
        next = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_ca_file_loads_every_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["a.city.example".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b.city.example".into()]).unwrap();
        let path = write(dir.path(), "ca.pem", &format!("{}\n{}", a.cert.pem(), b.cert.pem()));
        let roots = ExtraRoots::from_pem_file(&path).unwrap();
        assert_eq!(roots.certs(), [a.cert.der().clone(), b.cert.der().clone()]);
        assert_eq!(format!("{roots:?}"), format!("ExtraRoots({}: 2 certificates)", path.display()));
        client_config(&roots).expect("a configuration with the extra roots");
    }

    #[test]
    fn a_bad_or_missing_ca_file_names_the_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap().signing_key.serialize_pem();
        let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
        for (name, text, reason) in [
            ("empty.pem", "", "no -----BEGIN CERTIFICATE----- block"),
            ("key.pem", key.as_str(), "no -----BEGIN CERTIFICATE----- block"),
            ("garbage.pem", garbage, "certificate 1 cannot be a trust root"),
            ("broken.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n", "not a PEM file of certificates"),
        ] {
            let path = write(dir.path(), name, text);
            let e = ExtraRoots::from_pem_file(&path).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{}: {reason}", path.display())), "{name}: {e}");
        }
        let missing = dir.path().join("missing.pem");
        let e = ExtraRoots::from_optional_file(Some(&missing)).unwrap_err().to_string();
        assert_eq!(e, format!("{}: cannot read: entity not found", missing.display()));
        assert_eq!(ExtraRoots::from_optional_file(None).unwrap(), ExtraRoots::none());
    }

    #[test]
    fn tls_reasons_are_found_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // As hyper hands it over: an io::Error around tokio-rustls's io::Error around rustls's.
        let io = std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, tls));
        assert_eq!(tls_reason(&io).as_deref(), Some("invalid peer certificate: UnknownIssuer"));
        assert_eq!(tls_reason(&std::io::Error::other("refused")), None);
    }
}
