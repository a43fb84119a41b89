//! A TLS origin for the origin-TLS tests, and the certificates it serves: a [`TestCa`] made
//! with rcgen in the test (no key is ever stored), and server certificates it issues.
//!
//! [`TlsOrigin`] answers HTTP/1.1 over TLS on `127.0.0.1:0`: a request with a body gets the
//! body back, byte for byte; one without gets `origin saw {method} {path}`. It records every
//! completed handshake (the SNI the client sent, the ALPN protocol agreed), every handshake the
//! client broke off (with the SNI and the error, e.g. the client's `UnknownCA` alert), and every
//! request it answered.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A certificate authority of the test's own.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A server certificate (leaf only) and its key.
pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { cert, key }
    }

    /// The CA certificate as a PEM file at `path` (the certificate only, never the key).
    pub fn write_pem(&self, path: &Path) {
        std::fs::write(path, self.cert.pem()).expect("write CA file");
    }

    /// A server certificate for `names` (DNS names, or IP addresses as IP SANs).
    pub fn issue(&self, names: &[&str]) -> ServerCert {
        let key = KeyPair::generate().expect("server key");
        let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("server params");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("server certificate");
        ServerCert {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }
}

/// A completed handshake.
#[derive(Clone, Debug)]
pub struct Handshake {
    pub sni: Option<String>,
    pub alpn: Option<String>,
}

/// A handshake the client broke off.
#[derive(Clone, Debug)]
pub struct Refused {
    pub sni: Option<String>,
    pub error: String,
}

/// A request the origin answered, on a connection that sent this SNI.
#[derive(Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub sni: Option<String>,
}

/// The body's length, not its bytes, in a failed test's message.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({} body bytes, SNI {:?})", self.method, self.path, self.body.len(), self.sni)
    }
}

#[derive(Default)]
struct State {
    handshakes: Mutex<Vec<Handshake>>,
    refused: Mutex<Vec<Refused>>,
    requests: Mutex<Vec<Request>>,
}

pub struct TlsOrigin {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl TlsOrigin {
    /// Serve with `cert` on a fresh loopback port. It offers `h2` before `http/1.1` by ALPN, so
    /// the protocol agreed says what the client offered.
    pub fn start(cert: ServerCert) -> TlsOrigin {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(cert.chain, cert.key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, config) = (s.clone(), config.clone());
                std::thread::spawn(move || serve(stream, config, &s));
            }
        });
        TlsOrigin { addr, state }
    }

    pub fn handshakes(&self) -> Vec<Handshake> {
        self.state.handshakes.lock().unwrap().clone()
    }

    pub fn refused(&self) -> Vec<Refused> {
        self.state.refused.lock().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }
}

fn serve(tcp: TcpStream, config: Arc<ServerConfig>, state: &State) {
    let Ok(conn) = ServerConnection::new(config) else { return };
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            let sni = tls.conn.server_name().map(str::to_string);
            state.refused.lock().unwrap().push(Refused { sni, error: e.to_string() });
            return;
        }
    }
    let sni = tls.conn.server_name().map(str::to_string);
    let alpn = tls.conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
    state.handshakes.lock().unwrap().push(Handshake { sni: sni.clone(), alpn });
    let mut reader = BufReader::new(tls);
    while let Some((method, path, headers)) = super::http_client::read_request(&mut reader) {
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer =
            if body.is_empty() { format!("origin saw {method} {path}").into_bytes() } else { body.clone() };
        state.requests.lock().unwrap().push(Request { method, path, body, sni: sni.clone() });
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", answer.len());
        let out = reader.get_mut();
        if out
            .write_all(head.as_bytes())
            .and_then(|()| out.write_all(&answer))
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}
