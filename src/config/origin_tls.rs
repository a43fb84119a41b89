//! `origin_tls:`: pass-through origins reached over TLS, the name their certificate is
//! verified against, and the CAs trusted for it (the system's, or a file of a private CA).
//!
//! Verification cannot be turned off: an origin with a private or self-made certificate gets
//! its CA in `ca_file`. The CA file is read and checked here, so `-t` and startup refuse a
//! missing, unreadable or empty one, naming the file.

use std::path::PathBuf;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Deserialize;

use super::ConfigError;

/// `origin_tls:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OriginTlsConfig {
    /// Speak TLS to every origin of the pool, health checks included (default: off, plain
    /// HTTP).
    pub enabled: bool,
    /// The name every origin's certificate must carry, sent as SNI. Required when enabled:
    /// origins are `ip:port`, so there is no name to default to. An IP address is verified
    /// against the certificate's IP addresses and sends no SNI (TLS carries names only).
    pub sni: Option<String>,
    /// A PEM file of the CA certificates to trust instead of the system's roots (for a
    /// private origin). Read when the config is checked and when the pool is built, never per
    /// request.
    pub ca_file: Option<PathBuf>,
}

impl OriginTlsConfig {
    /// The name to verify, when TLS is on (after [`validate`](Self::validate), always set).
    pub fn server_name(&self) -> Option<&str> {
        self.sni.as_deref().filter(|_| self.enabled)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            if self.sni.is_some() || self.ca_file.is_some() {
                return Err(ConfigError::new(
                    "origin_tls.enabled",
                    "sni or ca_file is set but TLS is off: set enabled: true, or remove them",
                ));
            }
            return Ok(());
        }
        let Some(sni) = &self.sni else {
            return Err(ConfigError::new(
                "origin_tls.sni",
                "required with TLS on: origins are ip:port, so give the name their certificate carries \
                 (a DNS name, or the IP address the certificate lists)",
            ));
        };
        if ServerName::try_from(sni.as_str()).is_err() {
            return Err(ConfigError::new(
                "origin_tls.sni",
                format!("{sni:?} is neither a DNS name nor an IP address"),
            ));
        }
        self.load_ca().map(drop)
    }

    /// The certificates of `ca_file` (DER, in file order), or `None` for the system's roots.
    /// Each one is checked the two ways it will be read: as a rustls trust anchor, and by the
    /// X.509 parser Pingora keeps a per-peer CA in.
    pub fn load_ca(&self) -> Result<Option<Vec<CertificateDer<'static>>>, ConfigError> {
        let Some(path) = &self.ca_file else { return Ok(None) };
        let field = "origin_tls.ca_file";
        let shown = path.display();
        let pem =
            std::fs::read(path).map_err(|e| ConfigError::new(field, format!("cannot read {shown}: {e}")))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ConfigError::new(field, format!("{shown} is not a PEM file: {e}")))?;
        if certs.is_empty() {
            return Err(ConfigError::new(field, format!("{shown} holds no certificate (BEGIN CERTIFICATE)")));
        }
        for (i, cert) in certs.iter().enumerate() {
            let bad = |e: String| ConfigError::new(field, format!("{shown}: certificate {}: {e}", i + 1));
            x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| bad(e.to_string()))?;
            rustls::RootCertStore::empty()
                .add(cert.clone())
                .map_err(|e| bad(format!("not usable as a CA: {e}")))?;
        }
        Ok(Some(certs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(yaml: &str) -> Result<OriginTlsConfig, ConfigError> {
        let cfg: OriginTlsConfig =
            serde_yaml::from_str(yaml).map_err(|e| ConfigError::new("yaml", e.to_string()))?;
        cfg.validate().map(|()| cfg)
    }

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn off_by_default_and_off_means_no_other_key() {
        assert!(tls("{}").unwrap().server_name().is_none());
        assert_eq!(tls("{sni: api.internal}").unwrap_err().field, "origin_tls.enabled");
        assert_eq!(tls("{enabled: false, ca_file: /x.pem}").unwrap_err().field, "origin_tls.enabled");
    }

    #[test]
    fn sni_is_required_and_must_be_a_name_or_an_address() {
        assert_eq!(tls("{enabled: true}").unwrap_err().field, "origin_tls.sni");
        assert_eq!(tls("{enabled: true, sni: 'not a name'}").unwrap_err().field, "origin_tls.sni");
        assert_eq!(tls("{enabled: true, sni: api.internal}").unwrap().server_name(), Some("api.internal"));
        assert!(tls("{enabled: true, sni: 10.0.0.5}").is_ok());
        assert!(tls("{enabled: true, sni: '::1'}").is_ok());
    }

    #[test]
    fn there_is_no_switch_to_turn_verification_off() {
        let e = tls("{enabled: true, sni: a.b, verify: false}").unwrap_err();
        assert!(e.message.contains("unknown field `verify`"), "{e}");
    }

    #[test]
    fn a_ca_file_is_read_at_load_and_a_bad_one_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            format!("{{enabled: true, sni: a.b, ca_file: {}}}", p.display())
        };
        let good = tls(&at("ca.pem", &(ca_pem() + &ca_pem()))).unwrap();
        assert_eq!(good.load_ca().unwrap().map(|c| c.len()), Some(2), "every certificate of the file");

        let missing = dir.path().join("missing.pem");
        let e = tls(&format!("{{enabled: true, sni: a.b, ca_file: {}}}", missing.display())).unwrap_err();
        assert_eq!(e.field, "origin_tls.ca_file");
        assert!(e.message.contains("missing.pem") && e.message.contains("cannot read"), "{e}");

        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        for (name, body) in [("key.pem", key.as_str()), ("empty.pem", ""), ("text.pem", "hello\n")] {
            let e = tls(&at(name, body)).unwrap_err();
            assert_eq!(e.field, "origin_tls.ca_file", "{name}");
            assert!(e.message.contains(name) && e.message.contains("no certificate"), "{name}: {e}");
        }

        let junk = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        let e = tls(&at("junk.pem", junk)).unwrap_err();
        assert!(e.message.contains("junk.pem: certificate 1"), "{e}");
    }
}
