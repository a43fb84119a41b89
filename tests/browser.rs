//! A real browser against the real gateway: headless Chromium (driven by playwright-core)
//! loads a page from another loopback origin, which mints, uploads and fetches back a file
//! for each of the four dialects through cross-origin `fetch`. Plus the CORS answers the
//! browser depends on, checked directly.
//!
//! Needs node, `npm ci` in tests/browser and /usr/bin/chromium; without them the browser test
//! fails and says what to install.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;

use common::browser::{browser_dir, check_screenshot, chromium_bin, require_browser_tools};
use common::*;

const DIALECTS: [&str; 4] = ["apimall", "octopusx", "ctxfy", "memories"];
/// What page.html uploads per dialect.
const FILE_SIZE: u64 = 64 * 1024;

/// Serves tests/browser/page.html on its own loopback origin.
struct PageServer {
    addr: SocketAddr,
}

impl PageServer {
    fn start() -> PageServer {
        let page = std::fs::read(browser_dir().join("page.html")).expect("read page.html");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind page server");
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let page = page.clone();
                std::thread::spawn(move || serve_page(stream, &page));
            }
        });
        PageServer { addr }
    }
}

fn serve_page(stream: TcpStream, page: &[u8]) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut stream = stream;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
            break;
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body): (&str, &str, &[u8]) = if path == "/" || path == "/page.html" {
        ("200 OK", "text/html; charset=utf-8", page)
    } else {
        ("404 Not Found", "text/plain", b"not found")
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn cors_yaml(page_origin: &str) -> String {
    format!("cors:\n  allowed_origins: [\"{page_origin}\"]\n")
}

#[test]
fn chromium_uploads_through_all_four_dialects() {
    require_browser_tools("tests/browser.rs", &["playwright-core"]);
    let page = PageServer::start();
    let page_origin = format!("http://127.0.0.1:{}", page.addr.port());
    let gw = Gateway::start(GatewayOpts { extra_yaml: cors_yaml(&page_origin), ..Default::default() });
    assert_ne!(page.addr.port(), gw.addr.port(), "page must be cross-origin");
    let gw_base = format!("http://127.0.0.1:{}", gw.addr.port());
    uploads_in_chromium(&page, &gw, &gw_base, "", "browser-uploads.png");
}

/// The same page against the TLS listener: Chromium negotiates HTTP/2, and every URL the
/// gateway hands out is https.
#[test]
fn chromium_uploads_over_https_and_http2() {
    require_browser_tools("tests/browser.rs", &["playwright-core"]);
    let page = PageServer::start();
    let page_origin = format!("http://127.0.0.1:{}", page.addr.port());
    let pki = common::pki::TestPki::new("browser CA");
    let gw = Gateway::start(GatewayOpts {
        extra_yaml: cors_yaml(&page_origin),
        tls: Some(common::gateway::TlsOpts::new(&pki)),
        metrics: true,
        ..Default::default()
    });
    let gw_base = gw.https_url("");
    let trust = format!("--ignore-certificate-errors-spki-list={}", pki.leaf_spki_sha256());
    uploads_in_chromium(&page, &gw, &gw_base, &trust, "browser-uploads-https.png");
    // Every request the page made to the gateway came over HTTP/2 (mint, PUT or POST, GET).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (h2, h1) = rt.block_on(async {
        (
            common::metrics::metric(&gw, "presign_downstream_requests_total{protocol=\"h2\"}").await,
            common::metrics::metric(&gw, "presign_downstream_requests_total{protocol=\"https1\"}").await,
        )
    });
    assert!(h2 >= 12.0 && h1 == 0.0, "h2 {h2}, HTTP/1.1 over TLS {h1}");
}

fn uploads_in_chromium(page: &PageServer, gw: &Gateway, gw_base: &str, chromium_args: &str, shot: &str) {
    let page_url = format!("http://127.0.0.1:{}/page.html?gw={gw_base}", page.addr.port());
    let shots = tempfile::tempdir().expect("tempdir");
    let screenshot = shots.path().join(shot);
    let out = Command::new("node")
        .arg(browser_dir().join("upload.mjs"))
        .arg(&page_url)
        .arg(&screenshot)
        .env("CHROMIUM_BIN", chromium_bin())
        .env("CHROMIUM_EXTRA_ARGS", chromium_args)
        .output()
        .expect("run node tests/browser/upload.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "upload.mjs failed ({}):\nstdout: {stdout}\nstderr: {stderr}", out.status);
    let result: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("upload.mjs stdout is not JSON ({e}): {stdout}"));
    println!("browser result: {result}");

    for d in DIALECTS {
        let r = &result[d];
        assert_eq!(r["ok"], true, "{d}: {r}\nstderr: {stderr}");
        assert_eq!(r["status"], 200, "{d}: {r}");
        assert_eq!(r["bytes"], FILE_SIZE, "{d}: {r}");
        // The object the browser uploaded is on disk, byte-for-byte the size it sent.
        let public = r["public_url"].as_str().expect("public_url");
        let prefix = format!("{gw_base}/files/");
        let key = public
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{d}: {public} does not start with {prefix}"));
        let path = gw.data_dir().join("objects").join(key);
        let meta =
            std::fs::metadata(&path).unwrap_or_else(|e| panic!("{d}: {} not stored ({e})", path.display()));
        assert_eq!(meta.len(), FILE_SIZE, "{d}: {}", path.display());
    }
    let mut objects = Vec::new();
    walk(&gw.data_dir().join("objects"), &mut objects);
    assert_eq!(objects.len(), DIALECTS.len(), "{objects:?}");

    check_screenshot(&screenshot, shot);
}

#[tokio::test]
async fn cors_allows_only_the_configured_origin() {
    let allowed = "http://127.0.0.1:45123";
    let other = "http://127.0.0.1:45124";
    let gw = Gateway::start(GatewayOpts { extra_yaml: cors_yaml(allowed), ..Default::default() });
    let c = client();

    // Preflight for a mint call and for a presigned PUT.
    for (path, method) in [("/api/v1/files/upload-url", "POST"), ("/files/uploads/user/12/x.png", "PUT")] {
        let r = c
            .request(reqwest::Method::OPTIONS, gw.url(path))
            .header("origin", allowed)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization,content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{path}");
        let h = r.headers();
        assert_eq!(h["access-control-allow-origin"], allowed, "{path}");
        let methods = h["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains("PUT"), "{path}: {methods}");
        assert!(methods.contains("POST"), "{path}: {methods}");
        let headers = h["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        assert!(headers.contains("authorization") && headers.contains("content-type"), "{path}: {headers}");

        let r = c
            .request(reqwest::Method::OPTIONS, gw.url(path))
            .header("origin", other)
            .header("access-control-request-method", method)
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("access-control-allow-origin").is_none(), "{path}: {:?}", r.headers());
        assert!(r.headers().get("access-control-allow-methods").is_none(), "{path}: {:?}", r.headers());
    }

    // An actual mint response.
    let mint = |origin: &'static str| {
        c.post(gw.url("/api/v1/files/upload-url"))
            .header("origin", origin)
            .header("authorization", "Bearer demo-key")
            .header("content-type", "application/json")
            .body(r#"{"filename":"a.png","content_type":"image/png","file_size":3}"#)
            .send()
    };
    let r = mint("http://127.0.0.1:45123").await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], allowed);
    let expose = h["access-control-expose-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(expose.contains("etag"), "{expose}");
    let vary = h.get_all("vary").iter().map(|v| v.to_str().unwrap().to_ascii_lowercase()).collect::<Vec<_>>();
    assert!(vary.iter().any(|v| v.contains("origin")), "{vary:?}");

    let r = mint("http://127.0.0.1:45124").await.unwrap();
    assert_eq!(r.status(), 200, "CORS is the browser's business; the mint works");
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
