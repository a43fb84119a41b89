//! A small application on loopback that plays the origin's event receiver: it takes
//! `upload.completed` POSTs, verifies each signature (with the crate's public `verify` and
//! with an HMAC of its own), records the events, and can be down (its port reserved but not
//! listening: connections are refused) or answer a fixed failure status.
//!
//! It runs on a runtime of its own, so a test may block (starting a gateway, waiting on a
//! condition) without stalling it.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use presign_gateway::events::signature::{verify, EVENT_ID_HEADER, SIGNATURE_HEADER, TOLERANCE_SECS};
use presign_gateway::events::UploadEvent;
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The secret the test gateways sign events with (the variable below holds it).
pub const EVENTS_SECRET: &str = "whsec_test_0123456789abcdef0123456789abcdef";
pub const EVENTS_SECRET_ENV: &str = "PRESIGN_GATEWAY_EVENTS_SECRET";

/// One verified event as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub header_id: String,
    pub event: UploadEvent,
}

#[derive(Default)]
struct State {
    /// 0: answer 200; else answer this status.
    fail_status: AtomicU16,
    /// Milliseconds each answer waits after the event was recorded (a slow application).
    delay_ms: std::sync::atomic::AtomicU64,
    /// Every request that reached the handler.
    attempts: AtomicUsize,
    bad_signatures: AtomicUsize,
    received: Mutex<Vec<Received>>,
}

pub struct App {
    pub addr: SocketAddr,
    rt: Option<tokio::runtime::Runtime>,
    /// Bound, not listening, while the app is down.
    socket: Mutex<Option<tokio::net::TcpSocket>>,
    state: Arc<State>,
}

impl App {
    /// An app whose port is reserved but refuses connections until [`App::start`].
    pub fn down() -> App {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("app runtime");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind app port");
        let addr = socket.local_addr().expect("app addr");
        App { addr, rt: Some(rt), socket: Mutex::new(Some(socket)), state: Arc::default() }
    }

    /// An app that listens from the start.
    pub fn up() -> App {
        let app = App::down();
        app.start();
        app
    }

    /// Start listening on the reserved port.
    pub fn start(&self) {
        let socket = self.socket.lock().unwrap().take().expect("started once");
        let state = self.state.clone();
        let rt = self.rt.as_ref().expect("runtime");
        // Listening before this returns; the listener registers with the app's own runtime.
        let listener = {
            let _in_app_runtime = rt.enter();
            socket.listen(1024).expect("listen")
        };
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, state.clone()));
            }
        });
    }

    /// Answer every event with `status` (0: 200 again).
    pub fn fail_with(&self, status: u16) {
        self.state.fail_status.store(status, Ordering::SeqCst);
    }

    /// Wait `ms` before each answer, after the event is recorded: a gateway killed meanwhile
    /// never hears the answer and sends the event again.
    pub fn delay(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// The receiver URL for the gateway's `events.url`.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/uploads", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn attempts(&self) -> usize {
        self.state.attempts.load(Ordering::SeqCst)
    }

    pub fn bad_signatures(&self) -> usize {
        self.state.bad_signatures.load(Ordering::SeqCst)
    }

    /// The keys of the events received so far.
    pub fn keys(&self) -> HashSet<String> {
        self.received().into_iter().map(|r| r.event.data.key).collect()
    }

    /// Event ids by key: every key must map to one id however often it arrived.
    pub fn ids_by_key(&self) -> HashMap<String, HashSet<String>> {
        let mut m: HashMap<String, HashSet<String>> = HashMap::new();
        for r in self.received() {
            m.entry(r.event.data.key).or_default().insert(r.event.id);
        }
        m
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// HTTP/1.1 with keep-alive, as much of it as the gateway's client uses.
async fn serve(stream: tokio::net::TcpStream, state: Arc<State>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut headers: HashMap<String, String> = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.insert(n.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let status = handle(&state, &line, &headers, &body);
        let delay = state.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        let reason = if status == 200 { "OK" } else { "Error" };
        let resp = format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 2\r\n\r\nok");
        if write.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn handle(state: &State, request_line: &str, headers: &HashMap<String, String>, body: &[u8]) -> u16 {
    state.attempts.fetch_add(1, Ordering::SeqCst);
    let ok_request = request_line.starts_with("POST /hooks/uploads ")
        && headers.get("content-type").map(String::as_str) == Some("application/json");
    let sig = headers.get(SIGNATURE_HEADER).cloned().unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified =
        verify(EVENTS_SECRET.as_bytes(), &sig, body, now, TOLERANCE_SECS).is_ok() && own_check(&sig, body);
    let event: Option<UploadEvent> = serde_json::from_slice(body).ok();
    let header_id = headers.get(EVENT_ID_HEADER).cloned().unwrap_or_default();
    let Some(event) = event.filter(|e| ok_request && verified && e.id == header_id) else {
        state.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return 400;
    };
    let fail = state.fail_status.load(Ordering::SeqCst);
    if fail != 0 {
        return fail;
    }
    state.received.lock().unwrap().push(Received { header_id, event });
    200
}

/// The check a receiver in another language makes: HMAC-SHA256 over `"{t}.{body}"`.
fn own_check(header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let mut mac = <Hmac<Sha256>>::new_from_slice(EVENTS_SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes()) == v1
}

/// The `events:` YAML for a gateway that sends to `app`, with an outbox at `outbox`.
pub fn events_yaml(app: &App, outbox: &std::path::Path, extra: &str) -> String {
    format!("events:\n  url: {}\n  outbox: {}\n{extra}", app.url(), outbox.display())
}

/// The environment a gateway with events needs.
pub fn events_env() -> Vec<(String, String)> {
    vec![(EVENTS_SECRET_ENV.into(), EVENTS_SECRET.into())]
}

/// A metric's value from a `/metrics` text, 0 when absent.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The gateway's `/metrics` text.
pub async fn metrics_text(gw: &super::Gateway) -> String {
    match super::client().get(gw.metrics_url("/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Wait until `cond` holds for the gateway's metrics; fails with the last text after `within`.
pub async fn wait_metrics(
    gw: &super::Gateway,
    what: &str,
    within: std::time::Duration,
    cond: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let text = metrics_text(gw).await;
        if cond(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Wait (polling, without blocking the runtime) until `cond` holds.
pub async fn wait_app(what: &str, within: std::time::Duration, cond: impl FnMut() -> bool) {
    super::wait_until_async(what, within, cond).await
}
