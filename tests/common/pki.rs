//! A certificate authority made in the test, and certificates it issues for the gateway's
//! TLS listener. Nothing is committed: every key is generated per run (rcgen).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};

/// A CA, its PEM file, and the leaf certificate files the gateway is pointed at.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    ca: Certificate,
    ca_key: KeyPair,
    /// The CA certificate (PEM), for clients to trust.
    pub ca_file: PathBuf,
    /// The gateway's chain and key (PEM), replaced by [`TestPki::issue_to_files`].
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The SubjectPublicKeyInfo (DER) of the leaf last written to the files.
    leaf_spki: std::sync::Mutex<Vec<u8>>,
}

impl TestPki {
    /// A CA named `name`, and a first leaf for `localhost` and 127.0.0.1.
    pub fn new(name: &str) -> TestPki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&ca_key).expect("CA certificate");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("write CA");
        let cert_file = dir.path().join("cert.pem");
        let key_file = dir.path().join("key.pem");
        let pki = TestPki { dir, ca, ca_key, ca_file, cert_file, key_file, leaf_spki: Default::default() };
        pki.issue_to_files("first");
        pki
    }

    /// A leaf for `localhost` and 127.0.0.1 with common name `cn`: (chain PEM, key PEM).
    pub fn issue(&self, cn: &str) -> (String, String) {
        let (cert, key) = self.issue_keyed(cn);
        (cert, key.serialize_pem())
    }

    fn issue_keyed(&self, cn: &str) -> (String, KeyPair) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let leaf = params.signed_by(&key, &self.ca, &self.ca_key).expect("leaf certificate");
        (leaf.pem(), key)
    }

    /// base64(SHA-256(SPKI)) of the leaf in the files: what Chromium's
    /// `--ignore-certificate-errors-spki-list` trusts (headless Chromium has no flag to add a
    /// CA, and its NSS store would need tools this machine may lack).
    pub fn leaf_spki_sha256(&self) -> String {
        use base64::Engine;
        use sha2::Digest;
        let spki = self.leaf_spki.lock().unwrap();
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&*spki))
    }

    /// Issue a leaf and write it where the gateway reads its certificate (each file by a
    /// rename, as certificate tools do, so no reader sees half a file).
    pub fn issue_to_files(&self, cn: &str) {
        let (cert, key) = self.issue_keyed(cn);
        *self.leaf_spki.lock().unwrap() = key.public_key_der();
        write_atomically(&self.key_file, &key.serialize_pem());
        write_atomically(&self.cert_file, &cert);
    }
}

pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, path).expect("rename into place");
}

/// A TLS client trusting only the CA in `ca_file`, offering `alpn`.
pub fn tls_connector(ca_file: &Path, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca_file).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("add the CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}
