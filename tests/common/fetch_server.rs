//! Hand-written HTTP servers for the SSRF-safe fetcher's end-to-end tests
//! (`ssrf_fetch_refusals.rs`, `ssrf_fetch_transfer.rs`), and a tripwire listener that proves
//! nothing connected to it. Loopback only: servers bind 127.0.0.1:0, 127.0.0.2:0 or [::1]:0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use presign_gateway::ssrf::{FetchError, FetchPolicy, Fetcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// What the test server does with a request.
pub enum Reply {
    /// Write these bytes, then close.
    Close(Vec<u8>),
    /// Write these bytes, then keep the connection open and silent.
    Hang(Vec<u8>),
}

pub type Handler = Arc<dyn Fn(&str, SocketAddr) -> Reply + Send + Sync>;

pub struct Server {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Minimal HTTP/1.1 server: reads one request head, answers via `handler`.
pub async fn serve(bind: &str, handler: Handler) -> Server {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                match handler(&path, addr) {
                    Reply::Close(bytes) => {
                        // The client may hang up early (size cap); that is fine.
                        let _ = sock.write_all(&bytes).await;
                        let _ = sock.shutdown().await;
                    }
                    Reply::Hang(bytes) => {
                        let _ = sock.write_all(&bytes).await;
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
    });
    Server { addr, hits }
}

pub fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

pub fn with_length(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    response(
        status,
        &[("Content-Type", content_type.to_owned()), ("Content-Length", body.len().to_string())],
        body,
    )
}

pub fn redirect(code: &str, location: &str) -> Vec<u8> {
    response(code, &[("Location", location.to_owned()), ("Content-Length", "0".to_owned())], b"")
}

/// Policy exempting 127.0.0.2 only (the test servers' address).
pub fn allow_test_host() -> FetchPolicy {
    FetchPolicy { allow_networks: vec!["127.0.0.2/32".parse().unwrap()], ..FetchPolicy::default() }
}

/// A listener that must never be connected to. `assert_untouched` proves it
/// without sleeping: it connects once itself and checks that its own
/// connection is the first one the listener ever accepted (accept order is
/// FIFO, so any earlier connection attempt would come out first).
pub struct Tripwire {
    pub addr: SocketAddr,
    accepted: mpsc::UnboundedReceiver<SocketAddr>,
}

impl Tripwire {
    pub async fn bind(bind: &str) -> Option<Tripwire> {
        let listener = TcpListener::bind(bind).await.ok()?;
        let addr = listener.local_addr().ok()?;
        let (tx, accepted) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((_sock, peer)) = listener.accept().await {
                if tx.send(peer).is_err() {
                    return;
                }
            }
        });
        Some(Tripwire { addr, accepted })
    }

    pub async fn assert_untouched(mut self) {
        let probe = TcpStream::connect(self.addr).await.unwrap();
        let me = probe.local_addr().unwrap();
        let first = self.accepted.recv().await.unwrap();
        assert_eq!(first, me, "listener {} was connected to by the fetcher", self.addr);
    }
}

pub async fn expect_err(fetcher: &Fetcher, url: &str) -> FetchError {
    match fetcher.fetch(url).await {
        Ok(resp) => panic!("{url}: expected an error, got {}", resp.final_url),
        Err(e) => e,
    }
}
