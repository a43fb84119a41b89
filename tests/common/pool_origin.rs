//! An origin for the origin-pool tests that can fail the ways nodes fail: killed (its port
//! closed, its connections reset), unhealthy while still accepting (its `/health` answers
//! 503), or cutting a request off after reading part of its body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    killed: AtomicBool,
    health_status: AtomicU16,
    /// Close the connection after reading this many body bytes (0: never).
    cut_after_body_bytes: AtomicUsize,
    requests: AtomicUsize,
    connections: Mutex<Vec<TcpStream>>,
}

pub struct PoolOrigin {
    pub addr: SocketAddr,
    pub name: String,
    state: Arc<State>,
}

impl PoolOrigin {
    /// Answers `/health` with 200 and everything else with 200 and its name as the body.
    pub fn start(name: &str) -> PoolOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        state.health_status.store(200, Ordering::SeqCst);
        let (s, n) = (state.clone(), name.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.killed.load(Ordering::SeqCst) {
                    return; // the listener drops: the port is closed
                }
                let Ok(stream) = stream else { continue };
                if let Ok(c) = stream.try_clone() {
                    s.connections.lock().unwrap().push(c);
                }
                let (s, n) = (s.clone(), n.clone());
                std::thread::spawn(move || serve(stream, &s, &n));
            }
        });
        PoolOrigin { addr, name: name.to_string(), state }
    }

    /// As SIGKILL would: the port stops accepting and every open connection is reset.
    pub fn kill(&self) {
        self.state.killed.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop, which then closes
        for c in self.state.connections.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    pub fn set_health(&self, status: u16) {
        self.state.health_status.store(status, Ordering::SeqCst);
    }

    pub fn cut_after_body_bytes(&self, n: usize) {
        self.state.cut_after_body_bytes.store(n, Ordering::SeqCst);
    }

    /// Requests other than `/health`.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

fn serve(stream: TcpStream, state: &State, name: &str) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut stream = stream;
    loop {
        let Some((path, headers)) = super::http_client::read_request_head(&mut reader) else { return };
        if state.killed.load(Ordering::SeqCst) {
            return;
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let (status, body) = if path == "/health" {
            (state.health_status.load(Ordering::SeqCst), "health".to_string())
        } else {
            state.requests.fetch_add(1, Ordering::SeqCst);
            let cut = state.cut_after_body_bytes.load(Ordering::SeqCst);
            let mut body = vec![0u8; len];
            if cut > 0 {
                let _ = reader.read_exact(&mut body[..cut.min(len)]);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            (200, name.to_string())
        };
        let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{body}", body.len());
        if stream.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
