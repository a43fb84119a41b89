//! A tiny, fast HTTP/1.1 keep-alive origin for the load harness (`benches/load.sh`): every
//! request gets the same 200 with a fixed 1 KiB body. One thread, no parsing beyond finding
//! the end of each request head (and skipping a Content-Length body), so the origin costs
//! the same whether nginx or the gateway sits in front of it.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BODY_LEN: usize = 1024;

fn response() -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: origin\r\nContent-Type: text/plain\r\nContent-Length: {BODY_LEN}\r\n\r\n"
    )
    .into_bytes();
    r.extend((0..BODY_LEN).map(|i| b'a' + (i % 26) as u8));
    r
}

/// Length of the first complete request (head + Content-Length body) in `buf`, if any.
fn request_len(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut body = 0usize;
    for line in buf[..head].split(|&b| b == b'\n') {
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
            let v = std::str::from_utf8(&line[15..]).ok()?.trim();
            body = v.parse().ok()?;
        }
    }
    (buf.len() >= head + body).then_some(head + body)
}

async fn serve(mut s: TcpStream, resp: &'static [u8]) {
    let _ = s.set_nodelay(true);
    let mut buf = Vec::with_capacity(8192);
    let mut out = Vec::with_capacity(resp.len() * 4);
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(len) = request_len(&buf) {
            buf.drain(..len);
            out.extend_from_slice(resp);
        }
        if !out.is_empty() {
            if s.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if buf.len() > 1 << 20 {
            return;
        }
    }
}

fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".into())
        .parse()
        .expect("usage: origin [ip:port]");
    let resp: &'static [u8] = Box::leak(response().into_boxed_slice());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let l = TcpListener::bind(addr).await.expect("bind");
        eprintln!("origin listening on {addr}");
        loop {
            if let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve(s, resp));
            }
        }
    });
}

// Run: cargo run --release --example origin -- 127.0.0.1:8081
//      curl -si http://127.0.0.1:8081/anything | head -5
