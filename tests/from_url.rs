//! API Mall from-url through the real gateway, on loopback only.
//!
//! Sources live on 127.0.0.2 (exempted with `allow_networks`) and a canary listener on
//! 127.0.0.1 counts connections: every refusal must happen before any packet reaches it.
//! The success and the 404 answers are compared with the page's examples
//! (`tests/fixtures/seeds/apimall-from-url.json`).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Connections seen on `/slow-hold` (used by one test only).
static HOLD_CONNS: AtomicUsize = AtomicUsize::new(0);

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// A listener that only counts connections.
struct Canary {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

fn canary(ip: &str) -> Canary {
    let l = TcpListener::bind(format!("{ip}:0")).unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            h.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    Canary { addr, hits }
}

/// The source server on 127.0.0.2, with a route per behaviour.
fn source(redirect_target: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.2:0").expect("127.0.0.2 must be bindable (Linux loopback)");
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || serve_source(s, addr, redirect_target));
        }
    });
    addr
}

fn serve_source(mut s: TcpStream, me: SocketAddr, canary: SocketAddr) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    let path = line.split(' ').nth(1).unwrap_or("/").to_string();
    let head = |status: &str, extra: &str, len: usize| {
        format!("HTTP/1.1 {status}\r\n{extra}content-length: {len}\r\nconnection: close\r\n\r\n")
    };
    let _ = match path.as_str() {
        "/img.png" => {
            s.write_all(&[head("200 OK", "content-type: image/png\r\n", PNG.len()).as_bytes(), PNG].concat())
        }
        "/sniff" => s.write_all(
            &[head("200 OK", "content-type: application/octet-stream\r\n", PNG.len()).as_bytes(), PNG]
                .concat(),
        ),
        "/text" => s
            .write_all(head("200 OK", "content-type: text/plain\r\n", 5).as_bytes())
            .and_then(|_| s.write_all(b"hello")),
        "/missing" => s.write_all(head("404 Not Found", "", 0).as_bytes()),
        "/to-local" => s.write_all(
            head("302 Found", &format!("location: http://127.0.0.1:{}/x\r\n", canary.port()), 0).as_bytes(),
        ),
        "/to-decimal" => s.write_all(
            head("302 Found", &format!("location: http://2130706433:{}/x\r\n", canary.port()), 0).as_bytes(),
        ),
        "/big-declared" => s.write_all(head("200 OK", "content-type: image/png\r\n", 104_857_601).as_bytes()),
        "/big-undeclared" => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\nconnection: close\r\n\r\n");
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..101 {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
            Ok(())
        }
        "/slow" | "/slow-hold" => {
            if path == "/slow-hold" {
                HOLD_CONNS.fetch_add(1, Ordering::SeqCst);
            }
            let _ = s.write_all(head("200 OK", "content-type: image/png\r\n", 1000).as_bytes());
            // A deliberately slow source: one byte every 100 ms paces the transfer past the
            // gateway's deadline. Pacing, not synchronisation: nothing waits on it.
            for _ in 0..1000 {
                if s.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        }
        p if p.starts_with("/hop/") => {
            let n: u32 = p[5..].parse().unwrap_or(0);
            if n == 0 {
                s.write_all(
                    &[head("200 OK", "content-type: image/png\r\n", PNG.len()).as_bytes(), PNG].concat(),
                )
            } else {
                s.write_all(
                    head("302 Found", &format!("location: http://{me}/hop/{}\r\n", n - 1), 0).as_bytes(),
                )
            }
        }
        _ => s.write_all(head("404 Not Found", "", 0).as_bytes()),
    };
}

async fn from_url(gw: &Gateway, body: Value) -> (u16, Value) {
    post_json(&gw.url("/api/v1/files/from-url"), Some("Bearer demo-key"), &body.to_string()).await
}

fn allow_127_0_0_2(timeout: u64) -> String {
    format!("from_url:\n  allow_networks: [127.0.0.2/32]\n  timeout_secs: {timeout}\n  max_concurrent_per_key: 1\n")
}

#[tokio::test]
async fn loopback_spellings_are_refused_before_connecting() {
    let c = canary("127.0.0.1");
    let gw = Gateway::local();
    let p = c.addr.port();
    for url in [
        format!("http://127.0.0.1:{p}/a.png"),
        format!("http://localhost:{p}/a.png"),
        format!("http://127.1:{p}/a.png"),
        format!("http://2130706433:{p}/a.png"),
        format!("http://0x7f000001:{p}/a.png"),
        format!("http://0177.0.0.1:{p}/a.png"),
        format!("http://[::1]:{p}/a.png"),
        format!("http://[::ffff:127.0.0.1]:{p}/a.png"),
        format!("http://0.0.0.0:{p}/a.png"),
    ] {
        let (s, v) = from_url(&gw, json!({ "url": url })).await;
        assert_eq!(s, 400, "{url} -> {v}");
        assert_eq!(v["error"]["code"], "invalid_request");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("Failed to fetch source url"), "{msg}");
        assert!(
            !msg.contains("127.0.0.1") && !v.to_string().contains("::1"),
            "never reveals the address: {v}"
        );
    }
    for bad in
        ["ftp://example.com/a.png", "http://user:pw@127.0.0.2/a.png", "not a url", "file:///etc/passwd"]
    {
        let (s, v) = from_url(&gw, json!({ "url": bad })).await;
        assert_eq!(s, 400, "{bad} -> {v}");
    }
    assert_eq!(c.hits.load(Ordering::SeqCst), 0, "the canary saw a connection");
    assert!(gw.stored_files().is_empty());
}

/// The page's request example (`tests/fixtures/seeds/apimall-from-url.json`), its source URL
/// replaced by `url`.
fn page_request(url: String) -> Value {
    let mut request = Seed::load("apimall-from-url").request;
    request["url"] = Value::String(url);
    request
}

async fn success_path(gw: &Gateway, src: SocketAddr, read_back: impl Fn(&str) -> Vec<u8>) {
    let (s, v) = from_url(gw, page_request(format!("http://{src}/img.png"))).await;
    assert_eq!(s, 200, "{v}");
    // The page's response example in shape: same envelope, keys and types.
    let page = Seed::load("apimall-from-url");
    assert_same_shape(&v, &page.response, &["url", "key", "file_size", "request_id"], "from-url");
    assert_eq!(v["success"], true);
    let d = &v["data"];
    assert_eq!(d["content_type"], "image/png");
    assert_eq!(d["file_size"], PNG.len());
    let key = d["key"].as_str().unwrap();
    assert!(key.starts_with("uploads/user/12/") && key.ends_with("-reference-image.png"), "{key}");
    assert!(v["request_id"].as_str().unwrap().starts_with("req_"));
    assert_eq!(read_back(key), PNG);

    // No content type from the source: magic bytes decide.
    let (s, v) = from_url(gw, json!({"url": format!("http://{src}/sniff")})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["content_type"], "image/png");
}

#[tokio::test]
async fn fetch_stores_on_local_store() {
    let c = canary("127.0.0.1");
    let src = source(c.addr);
    let gw = Gateway::start(GatewayOpts { extra_yaml: allow_127_0_0_2(10), ..Default::default() });
    let objects = gw.data_dir().join("objects");
    success_path(&gw, src, |k| std::fs::read(objects.join(k)).unwrap()).await;
    // Over the cap without a declared length: counted while streaming, refused, nothing kept.
    let before = gw.stored_files().len();
    let (s, v) = from_url(&gw, json!({"url": format!("http://{src}/big-undeclared")})).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["details"]["max_file_size"], 104857600, "{v}");
    assert_eq!(gw.stored_files().len(), before);
    // data.url serves it.
    let (_, v) = from_url(&gw, json!({"url": format!("http://{src}/img.png")})).await;
    let got = client().get(v["data"]["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().as_ref(), PNG);
}

#[tokio::test]
async fn fetch_stores_on_s3s_fs() {
    let c = canary("127.0.0.1");
    let src = source(c.addr);
    let s3 = S3sFs::start();
    let gw = Gateway::start(GatewayOpts {
        extra_yaml: allow_127_0_0_2(10),
        storage_yaml: Some(s3.storage_yaml()),
        env: s3.env(),
        ..Default::default()
    });
    success_path(&gw, src, |k| std::fs::read(s3.object_path(k)).unwrap()).await;
}

#[tokio::test]
async fn failures_leave_nothing_and_say_why() {
    let c = canary("127.0.0.1");
    let src = source(c.addr);
    let gw = Gateway::start(GatewayOpts { extra_yaml: allow_127_0_0_2(2), ..Default::default() });

    let (s, v) = from_url(&gw, json!({"url": format!("http://{src}/missing")})).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["message"], "Failed to fetch source url");
    assert_eq!(v["error"]["details"], json!({"status": 404}));
    // The page's own error example, in shape and in its error object.
    let page = Seed::load("apimall-from-url");
    assert_eq!(v["error"], page.error(400)["error"]);
    assert_same_shape(&v, page.error(400), &["request_id"], "from-url 400");

    for path in ["/to-local", "/to-decimal"] {
        let (s, v) = from_url(&gw, json!({"url": format!("http://{src}{path}")})).await;
        assert_eq!(s, 400, "{v}");
    }
    assert_eq!(c.hits.load(Ordering::SeqCst), 0, "redirect reached the blocked target");

    let (s, _) = from_url(&gw, json!({"url": format!("http://{src}/hop/5")})).await;
    assert_eq!(s, 200, "5 redirects are followed");
    let (s, v) = from_url(&gw, json!({"url": format!("http://{src}/hop/6")})).await;
    assert_eq!(s, 400, "{v}");

    let (s, v) = from_url(&gw, json!({"url": format!("http://{src}/text")})).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["message"], "Unsupported content_type");
    let (s, _) =
        from_url(&gw, json!({"url": format!("http://{src}/img.png"), "content_type": "text/html"})).await;
    assert_eq!(s, 400);

    let (s, v) = from_url(&gw, json!({"url": format!("http://{src}/big-declared")})).await;
    assert_eq!(s, 400, "{v}");

    let (s, v) = from_url(&gw, json!({"url": format!("http://{src}/slow")})).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["message"], "Failed to fetch source url");

    // Only the one successful hop chain stored an object; nothing in tmp.
    let files = gw.stored_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with(gw.data_dir().join("objects")));
}

#[tokio::test]
async fn concurrent_fetches_per_key_are_capped() {
    let c = canary("127.0.0.1");
    let src = source(c.addr);
    let gw = Gateway::start(GatewayOpts { extra_yaml: allow_127_0_0_2(3), ..Default::default() });
    let slow = from_url(&gw, json!({"url": format!("http://{src}/slow-hold")}));
    let second = async {
        // Once the first fetch is in flight (the source saw its connection), try again.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while HOLD_CONNS.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline, "first fetch never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        from_url(&gw, json!({"url": format!("http://{src}/img.png")})).await
    };
    let ((_, _), (s, v)) = tokio::join!(slow, second);
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limited");
    // The slot is released afterwards.
    let (s, _) = from_url(&gw, json!({"url": format!("http://{src}/img.png")})).await;
    assert_eq!(s, 200);
}
