//! The application behind the gateway, as far as delegated auth goes: it answers the
//! gateway's auth calls from its own user table, and can be told to revoke a user or to hold
//! every answer back (a slow endpoint) until released.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// What one auth call carried.
#[derive(Debug, Clone)]
pub struct AuthCall {
    pub key: Option<String>,
    pub dialect: Option<String>,
    pub gateway_token: Option<String>,
    pub authorization: Option<String>,
    pub path: String,
}

#[derive(Default)]
struct State {
    /// Credential → the identity JSON answered for it.
    users: Mutex<HashMap<String, serde_json::Value>>,
    calls: Mutex<Vec<AuthCall>>,
    count: AtomicUsize,
    held: Mutex<bool>,
    released: Condvar,
}

pub struct AuthApp {
    pub addr: SocketAddr,
    state: Arc<State>,
}

pub const AUTH_PATH: &str = "/internal/presign-auth";

impl AuthApp {
    pub fn start() -> AuthApp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind auth app");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        AuthApp { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}{AUTH_PATH}", self.addr)
    }

    /// Grant `key` to `user_id`, with any extra identity fields (`key_id`, limits).
    pub fn add_user(&self, key: &str, user_id: u64, extra: serde_json::Value) {
        let mut who = serde_json::json!({ "user_id": user_id });
        if let (Some(o), Some(e)) = (who.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        self.state.users.lock().unwrap().insert(key.to_string(), who);
    }

    pub fn revoke(&self, key: &str) {
        self.state.users.lock().unwrap().remove(key);
    }

    /// While held, every auth call waits, unanswered, until [`Self::release`].
    pub fn hold(&self) {
        *self.state.held.lock().unwrap() = true;
    }

    pub fn release(&self) {
        *self.state.held.lock().unwrap() = false;
        self.state.released.notify_all();
    }

    /// How many auth calls arrived (counted as they arrive, before any answer).
    pub fn count(&self) -> usize {
        self.state.count.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> Vec<AuthCall> {
        self.state.calls.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, state: &State) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut stream = stream;
    loop {
        let Some((path, headers)) = super::http_client::read_request_head(&mut reader) else { return };
        let call = AuthCall {
            key: headers.get("x-presign-api-key").cloned(),
            dialect: headers.get("x-presign-dialect").cloned(),
            gateway_token: headers.get("x-presign-gateway-token").cloned(),
            authorization: headers.get("authorization").cloned(),
            path,
        };
        state.count.fetch_add(1, Ordering::SeqCst);
        state.calls.lock().unwrap().push(call.clone());
        let mut held = state.held.lock().unwrap();
        while *held {
            held = state.released.wait(held).unwrap();
        }
        drop(held);
        let who = call.key.as_ref().and_then(|k| state.users.lock().unwrap().get(k).cloned());
        let (status, body) = match who {
            Some(v) => ("200 OK", v.to_string()),
            None => ("401 Unauthorized", r#"{"error":"unknown key"}"#.to_string()),
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
