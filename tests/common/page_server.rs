//! A loopback web server for browser tests: serves a fixed set of files on its own origin
//! and, when it has an upstream, pipes every other connection byte-for-byte to that upstream.
//!
//! The decision is made once per connection, from its first request line: a `GET`/`HEAD` of
//! one of the files is answered here with `connection: close` (so a browser cannot reuse that
//! connection for a request meant for the upstream), anything else is relayed to the upstream
//! untouched, in both directions, until either side closes. With the upstream an S3 server,
//! the page is then same-origin with the bucket, and the S3 server sees the requests exactly
//! as the browser (or the gateway) sent them, `Host` header included.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One file the server answers itself.
#[derive(Clone)]
pub struct Asset {
    /// The request path (no query), e.g. `/uppy.html`.
    pub path: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Asset {
    pub fn new(path: &str, content_type: &str, body: Vec<u8>) -> Asset {
        Asset { path: path.to_owned(), content_type: content_type.to_owned(), body }
    }
}

/// A running page server (its threads live until the test process ends).
pub struct PageServer {
    pub addr: SocketAddr,
    served: Arc<AtomicUsize>,
    piped: Arc<AtomicUsize>,
}

impl PageServer {
    /// Serve `assets`; any other path is a 404.
    pub fn start(assets: Vec<Asset>) -> PageServer {
        PageServer::spawn(assets, None)
    }

    /// Serve `assets`; pipe every other connection to `upstream`.
    pub fn with_upstream(assets: Vec<Asset>, upstream: SocketAddr) -> PageServer {
        PageServer::spawn(assets, Some(upstream))
    }

    fn spawn(assets: Vec<Asset>, upstream: Option<SocketAddr>) -> PageServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind page server");
        let addr = listener.local_addr().expect("page server addr");
        let served = Arc::new(AtomicUsize::new(0));
        let piped = Arc::new(AtomicUsize::new(0));
        let assets = Arc::new(assets);
        let (s, p) = (Arc::clone(&served), Arc::clone(&piped));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (assets, s, p) = (Arc::clone(&assets), Arc::clone(&s), Arc::clone(&p));
                std::thread::spawn(move || handle(stream, &assets, upstream, &s, &p));
            }
        });
        PageServer { addr, served, piped }
    }

    /// `http://127.0.0.1:<port>`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// Requests answered with one of the files.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// Connections relayed to the upstream.
    pub fn piped(&self) -> usize {
        self.piped.load(Ordering::SeqCst)
    }
}

/// The end of the first line in `buf` (the index of its `\r\n`).
fn line_end(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn handle(
    mut client: TcpStream,
    assets: &[Asset],
    upstream: Option<SocketAddr>,
    served: &AtomicUsize,
    piped: &AtomicUsize,
) {
    let _ = client.set_nodelay(true);
    // Read up to the end of the first request line, keeping every byte for the upstream.
    let mut head = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let end = loop {
        if let Some(end) = line_end(&head) {
            break end;
        }
        if head.len() > 64 * 1024 {
            return;
        }
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    };
    let line = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut words = line.split(' ');
    let method = words.next().unwrap_or("");
    let path = words.next().unwrap_or("").split('?').next().unwrap_or("");
    let asset =
        if method == "GET" || method == "HEAD" { assets.iter().find(|a| a.path == path) } else { None };
    match (asset, upstream) {
        (Some(asset), _) => {
            served.fetch_add(1, Ordering::SeqCst);
            answer(client, head, method == "HEAD", "200 OK", &asset.content_type, &asset.body);
        }
        (None, Some(upstream)) => {
            piped.fetch_add(1, Ordering::SeqCst);
            pipe(client, &head, upstream);
        }
        (None, None) => answer(client, head, method == "HEAD", "404 Not Found", "text/plain", b"not found"),
    }
}

/// Read the rest of the request head (these requests carry no body), answer, close.
fn answer(mut client: TcpStream, mut head: Vec<u8>, head_only: bool, status: &str, ctype: &str, body: &[u8]) {
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            return;
        }
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let reply = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = client.write_all(reply.as_bytes());
    if !head_only {
        let _ = client.write_all(body);
    }
    let _ = client.flush();
    let _ = client.shutdown(Shutdown::Write);
    // Let the peer read the answer before the socket goes: drain until it closes.
    while matches!(client.read(&mut buf), Ok(n) if n > 0) {}
}

/// Relay the connection to `upstream`: `head` (already read) first, then both directions
/// until each side has closed its half.
fn pipe(client: TcpStream, head: &[u8], upstream: SocketAddr) {
    let Ok(mut server) = TcpStream::connect(upstream) else {
        let _ = (&client)
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        return;
    };
    let _ = server.set_nodelay(true);
    if server.write_all(head).is_err() {
        return;
    }
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else { return };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut server_w);
        let _ = server_w.shutdown(Shutdown::Write);
    });
    let (mut server_r, mut client_w) = (server, client);
    let _ = std::io::copy(&mut server_r, &mut client_w);
    let _ = client_w.shutdown(Shutdown::Write);
    let _ = up.join();
}
