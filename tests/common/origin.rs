//! A small HTTP/1.1 origin the test process owns: it binds `127.0.0.1:0`, keeps the listener,
//! echoes every request back as JSON and counts what it answered.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A small echo origin: answers every request with a JSON summary of it.
pub struct Origin {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
}

impl Origin {
    pub fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = counter.clone();
                std::thread::spawn(move || serve_echo(stream, counter));
            }
        });
        Origin { addr, requests }
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve_echo(stream: TcpStream, counter: Arc<AtomicUsize>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let request_line = line.trim_end().to_string();
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end().to_string();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                if n.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
                headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        counter.fetch_add(1, Ordering::SeqCst);
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let hdrs: serde_json::Map<String, serde_json::Value> =
            headers.iter().map(|(n, v)| (n.clone(), serde_json::Value::String(v.clone()))).collect();
        let out = serde_json::json!({
            "origin": true,
            "method": method,
            "target": target,
            "headers": hdrs,
            "body": String::from_utf8_lossy(&body),
        })
        .to_string();
        let resp = format!(
            "HTTP/1.1 203 Non-Authoritative Information\r\ncontent-type: application/json\r\nx-origin: echo\r\ncontent-length: {}\r\n\r\n{}",
            out.len(),
            out
        );
        if stream.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
