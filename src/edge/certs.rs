//! [`Certificates`]: the TLS listener's certificate, loaded from PEM files and swapped without
//! a restart.
//!
//! rustls asks [`Certificates`] for the certificate at each handshake (it is the listener's
//! `ResolvesServerCert`), so a reload is one pointer swap: handshakes after it get the new
//! certificate, connections already open keep theirs. A reload that fails (a half-written
//! file, a key that does not match) keeps the certificate in force and logs why; the same
//! failure at start is a startup error naming the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use prometheus::{IntCounterVec, Opts};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::metrics::Metrics;

/// A certificate that cannot be used, naming the file at fault.
#[derive(Debug)]
pub struct CertError {
    pub file: PathBuf,
    pub reason: String,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

impl std::error::Error for CertError {}

fn cert_error(file: &Path, reason: impl fmt::Display) -> CertError {
    CertError { file: file.to_path_buf(), reason: reason.to_string() }
}

/// Read a chain and its key, and check that the key is the leaf's.
pub fn load(cert_file: &Path, key_file: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, CertError> {
    let pem = std::fs::read(cert_file).map_err(|e| cert_error(cert_file, format!("cannot read: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(cert_file, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(cert_error(cert_file, "holds no CERTIFICATE block"));
    }
    let pem = std::fs::read(key_file).map_err(|e| cert_error(key_file, format!("cannot read: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| cert_error(key_file, format!("no PEM private key: {e}")))?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| cert_error(key_file, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|e| {
        cert_error(
            key_file,
            format!("is not the key of the first certificate in {}: {e}", cert_file.display()),
        )
    })?;
    Ok(certified)
}

/// What a file looked like at the last load: a change to either means a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Option<(SystemTime, u64)>, Option<(SystemTime, u64)>);

fn stamp(cert_file: &Path, key_file: &Path) -> Stamp {
    let of = |p: &Path| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
    Stamp(of(cert_file), of(key_file))
}

/// The listener's certificate, swappable.
pub struct Certificates {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    stamp: std::sync::Mutex<Stamp>,
    reloads: IntCounterVec,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates").field("cert_file", &self.cert_file).finish()
    }
}

impl Certificates {
    /// Load the files once; a failure here is a startup error.
    pub fn open(
        cert_file: &Path,
        key_file: &Path,
        provider: Arc<CryptoProvider>,
        metrics: &Metrics,
    ) -> Result<Arc<Self>, CertError> {
        let stamp_now = stamp(cert_file, key_file);
        let key = load(cert_file, key_file, &provider)?;
        let reloads = IntCounterVec::new(
            Opts::new("presign_tls_cert_reloads_total", "TLS certificate reloads, by result"),
            &["result"],
        )
        .expect("static metric definition");
        metrics.register(Box::new(reloads.clone()));
        Ok(Arc::new(Self {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            provider,
            current: ArcSwap::from_pointee(key),
            stamp: std::sync::Mutex::new(stamp_now),
            reloads,
        }))
    }

    /// Load the files again; on failure the certificate in force stays, and the error says why.
    pub fn reload(&self) -> Result<(), CertError> {
        let stamp_now = stamp(&self.cert_file, &self.key_file);
        match load(&self.cert_file, &self.key_file, &self.provider) {
            Ok(key) => {
                self.current.store(Arc::new(key));
                if let Ok(mut s) = self.stamp.lock() {
                    *s = stamp_now;
                }
                self.reloads.with_label_values(&["ok"]).inc();
                log::info!("TLS certificate reloaded from {}", self.cert_file.display());
                Ok(())
            }
            Err(e) => {
                // Not retried until the files change again: a broken file logs once.
                if let Ok(mut s) = self.stamp.lock() {
                    *s = stamp_now;
                }
                self.reloads.with_label_values(&["error"]).inc();
                log::error!("TLS certificate reload refused, the previous certificate stays: {e}");
                Err(e)
            }
        }
    }

    /// Reload if either file changed since the last load.
    pub fn reload_if_changed(&self) {
        let now = stamp(&self.cert_file, &self.key_file);
        let changed = self.stamp.lock().map(|s| *s != now).unwrap_or(false);
        if changed {
            let _ = self.reload();
        }
    }

    /// Check the files every `every` on a thread of its own (a stat of two files; no
    /// runtime needed, and none is blocked by a slow disk).
    pub fn watch(self: &Arc<Self>, every: Duration) -> std::io::Result<()> {
        let me = Arc::downgrade(self);
        std::thread::Builder::new().name("tls-cert-watch".into()).spawn(move || loop {
            std::thread::park_timeout(every);
            match me.upgrade() {
                Some(c) => c.reload_if_changed(),
                None => return,
            }
        })?;
        Ok(())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}
