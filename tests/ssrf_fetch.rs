//! End-to-end tests of the SSRF-safe fetcher against hand-written HTTP
//! servers. Loopback only: servers bind 127.0.0.1:0, 127.0.0.2:0 or [::1]:0,
//! and every URL fetched names a loopback address or `localhost`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use presign_gateway::ssrf::{sniff_content_type, BlockReason, FetchError, FetchPolicy, Fetcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// What the test server does with a request.
enum Reply {
    /// Write these bytes, then close.
    Close(Vec<u8>),
    /// Write these bytes, then keep the connection open and silent.
    Hang(Vec<u8>),
}

type Handler = Arc<dyn Fn(&str, SocketAddr) -> Reply + Send + Sync>;

struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Minimal HTTP/1.1 server: reads one request head, answers via `handler`.
async fn serve(bind: &str, handler: Handler) -> Server {
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

fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn with_length(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    response(
        status,
        &[("Content-Type", content_type.to_owned()), ("Content-Length", body.len().to_string())],
        body,
    )
}

fn redirect(code: &str, location: &str) -> Vec<u8> {
    response(code, &[("Location", location.to_owned()), ("Content-Length", "0".to_owned())], b"")
}

/// Policy exempting 127.0.0.2 only (the test servers' address).
fn allow_test_host() -> FetchPolicy {
    FetchPolicy { allow_networks: vec!["127.0.0.2/32".parse().unwrap()], ..FetchPolicy::default() }
}

/// A listener that must never be connected to. `assert_untouched` proves it
/// without sleeping: it connects once itself and checks that its own
/// connection is the first one the listener ever accepted (accept order is
/// FIFO, so any earlier connection attempt would come out first).
struct Tripwire {
    addr: SocketAddr,
    accepted: mpsc::UnboundedReceiver<SocketAddr>,
}

impl Tripwire {
    async fn bind(bind: &str) -> Option<Tripwire> {
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

    async fn assert_untouched(mut self) {
        let probe = TcpStream::connect(self.addr).await.unwrap();
        let me = probe.local_addr().unwrap();
        let first = self.accepted.recv().await.unwrap();
        assert_eq!(first, me, "listener {} was connected to by the fetcher", self.addr);
    }
}

async fn expect_err(fetcher: &Fetcher, url: &str) -> FetchError {
    match fetcher.fetch(url).await {
        Ok(resp) => panic!("{url}: expected an error, got {}", resp.final_url),
        Err(e) => e,
    }
}

#[test]
fn fetcher_is_shareable() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Fetcher>();
}

#[tokio::test]
async fn blocked_destinations_are_refused_before_connecting() {
    let v4 = Tripwire::bind("127.0.0.1:0").await.unwrap();
    let p = v4.addr.port();
    let v6 = Tripwire::bind("[::1]:0").await;
    // If ::1 is unavailable the [::1] URL still has to be refused; it reuses
    // the IPv4 port, and the IPv4 tripwire cannot see it, which is fine
    // because the refusal must not depend on who listens.
    let p6 = v6.as_ref().map_or(p, |t| t.addr.port());

    let fetcher = Fetcher::new(FetchPolicy::default()).unwrap();
    let urls = [
        (format!("http://127.0.0.1:{p}/x"), BlockReason::Loopback),
        (format!("http://localhost:{p}/x"), BlockReason::Loopback),
        (format!("http://LOCALHOST:{p}/x"), BlockReason::Loopback),
        (format!("http://127.1:{p}/x"), BlockReason::Loopback),
        (format!("http://2130706433:{p}/x"), BlockReason::Loopback),
        (format!("http://0x7f000001:{p}/x"), BlockReason::Loopback),
        (format!("http://0177.0.0.1:{p}/x"), BlockReason::Loopback),
        (format!("https://127.0.0.1:{p}/x"), BlockReason::Loopback),
        (format!("http://[::1]:{p6}/x"), BlockReason::Loopback),
        (format!("http://[::ffff:127.0.0.1]:{p}/x"), BlockReason::Ipv4Embedded),
        (format!("http://0.0.0.0:{p}/x"), BlockReason::Unspecified),
        (format!("http://0:{p}/x"), BlockReason::Unspecified),
    ];
    for (url, reason) in &urls {
        let err = expect_err(&fetcher, url).await;
        assert_eq!(err, FetchError::Blocked(*reason), "{url}");
        assert_eq!(err.reason(), "blocked");
        let msg = err.to_string();
        assert!(!msg.contains("127.") && !msg.contains("::1"), "address leaked: {msg}");
    }

    v4.assert_untouched().await;
    if let Some(v6) = v6 {
        v6.assert_untouched().await;
    }
}

#[tokio::test]
async fn localhost_stays_blocked_with_an_unrelated_exemption() {
    // localhost goes through the resolver (not the literal check): the
    // 127.0.0.2 exemption must not let its 127.0.0.1 answer through.
    let wire = Tripwire::bind("127.0.0.1:0").await.unwrap();
    let fetcher = Fetcher::new(allow_test_host()).unwrap();
    let url = format!("http://localhost:{}/x", wire.addr.port());
    assert_eq!(expect_err(&fetcher, &url).await, FetchError::Blocked(BlockReason::Loopback));
    wire.assert_untouched().await;
}

#[tokio::test]
async fn resolve_checked_refuses_loopback_answers_unless_exempt() {
    use presign_gateway::ssrf::resolve_checked;
    assert_eq!(resolve_checked("localhost", 80, &[]).await, Err(FetchError::Blocked(BlockReason::Loopback)));
    let all_loopback = ["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    let addrs = resolve_checked("localhost", 80, &all_loopback).await.unwrap();
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
}

#[tokio::test]
async fn allowed_host_serves_png() {
    let server = serve(
        "127.0.0.2:0",
        Arc::new(|path, _| match path {
            "/img.png" => Reply::Close(with_length("200 OK", "image/png", PNG)),
            _ => Reply::Close(with_length("404 Not Found", "text/plain", b"nope")),
        }),
    )
    .await;
    let fetcher = Fetcher::new(allow_test_host()).unwrap();
    let url = server.url("/img.png");
    let resp = fetcher.fetch(&url).await.unwrap();
    assert_eq!(resp.final_url.as_str(), url);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.content_type.as_deref(), Some("image/png"));
    assert_eq!(resp.declared_length, Some(PNG.len() as u64));
    assert_eq!(resp.redirects, 0);
    let body = resp.bytes().await.unwrap();
    assert_eq!(&body[..], PNG);
    assert_eq!(sniff_content_type(&body), Some("image/png"));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn redirect_to_blocked_destination_is_refused() {
    let wire = Tripwire::bind("127.0.0.1:0").await.unwrap();
    let target = wire.addr.port();
    let server = serve(
        "127.0.0.2:0",
        Arc::new(move |path, _| match path {
            "/to-literal" => Reply::Close(redirect("302 Found", &format!("http://127.0.0.1:{target}/x"))),
            "/to-decimal" => {
                Reply::Close(redirect("301 Moved Permanently", &format!("http://2130706433:{target}/x")))
            }
            "/to-localhost" => {
                Reply::Close(redirect("307 Temporary Redirect", &format!("http://localhost:{target}/x")))
            }
            "/to-mapped" => Reply::Close(redirect(
                "308 Permanent Redirect",
                &format!("http://[::ffff:7f00:1]:{target}/x"),
            )),
            "/to-ftp" => Reply::Close(redirect("302 Found", "ftp://127.0.0.2/x")),
            "/to-userinfo" => Reply::Close(redirect("303 See Other", "http://u:p@127.0.0.2/x")),
            _ => Reply::Close(with_length("404 Not Found", "text/plain", b"")),
        }),
    )
    .await;
    let fetcher = Fetcher::new(allow_test_host()).unwrap();
    for (path, want) in [
        ("/to-literal", FetchError::Blocked(BlockReason::Loopback)),
        ("/to-decimal", FetchError::Blocked(BlockReason::Loopback)),
        ("/to-localhost", FetchError::Blocked(BlockReason::Loopback)),
        ("/to-mapped", FetchError::Blocked(BlockReason::Ipv4Embedded)),
        ("/to-ftp", FetchError::SchemeNotAllowed),
        ("/to-userinfo", FetchError::UserInfoNotAllowed),
    ] {
        assert_eq!(expect_err(&fetcher, &server.url(path)).await, want, "{path}");
    }
    assert_eq!(server.hits(), 6);
    wire.assert_untouched().await;
}

#[tokio::test]
async fn relative_redirects_resolve_against_current_url() {
    let server = serve(
        "127.0.0.2:0",
        Arc::new(|path, addr| match path {
            "/dir/a" => Reply::Close(redirect("302 Found", "b?q=1")),
            "/dir/b?q=1" => Reply::Close(redirect("301 Moved Permanently", "/abs")),
            "/abs" => Reply::Close(redirect("307 Temporary Redirect", &format!("//{addr}/final"))),
            "/final" => Reply::Close(with_length("200 OK", "image/png", PNG)),
            _ => Reply::Close(with_length("404 Not Found", "text/plain", b"")),
        }),
    )
    .await;
    let fetcher = Fetcher::new(allow_test_host()).unwrap();
    let resp = fetcher.fetch(&server.url("/dir/a")).await.unwrap();
    assert_eq!(resp.final_url.as_str(), server.url("/final"));
    assert_eq!(resp.redirects, 3);
    assert_eq!(&resp.bytes().await.unwrap()[..], PNG);
}

#[tokio::test]
async fn redirect_limit_is_enforced() {
    // /hop/N redirects to /hop/N-1; /hop/0 answers.
    let server = serve(
        "127.0.0.2:0",
        Arc::new(|path, _| {
            let n: u32 = path.trim_start_matches("/hop/").parse().unwrap_or(0);
            if n == 0 {
                Reply::Close(with_length("200 OK", "text/plain", b"done"))
            } else {
                Reply::Close(redirect("302 Found", &format!("/hop/{}", n - 1)))
            }
        }),
    )
    .await;
    let fetcher = Fetcher::new(allow_test_host()).unwrap();

    let resp = fetcher.fetch(&server.url("/hop/5")).await.unwrap();
    assert_eq!(resp.redirects, 5);
    assert_eq!(&resp.bytes().await.unwrap()[..], b"done");

    let before = server.hits();
    assert_eq!(expect_err(&fetcher, &server.url("/hop/6")).await, FetchError::TooManyRedirects);
    // Six answers were read and the seventh request was never sent.
    assert_eq!(server.hits() - before, 6);

    let strict = Fetcher::new(FetchPolicy { max_redirects: 0, ..allow_test_host() }).unwrap();
    assert_eq!(expect_err(&strict, &server.url("/hop/1")).await, FetchError::TooManyRedirects);
}

#[tokio::test]
async fn non_2xx_is_reported_with_status() {
    let server = serve(
        "127.0.0.2:0",
        Arc::new(|path, _| match path {
            "/500" => Reply::Close(with_length("500 Internal Server Error", "text/plain", b"x")),
            "/304" => Reply::Close(response("304 Not Modified", &[], b"")),
            "/302-no-location" => Reply::Close(response("302 Found", &[("Content-Length", "0".into())], b"")),
            _ => Reply::Close(with_length("404 Not Found", "text/plain", b"missing")),
        }),
    )
    .await;
    let fetcher = Fetcher::new(allow_test_host()).unwrap();
    let err = expect_err(&fetcher, &server.url("/missing")).await;
    assert_eq!(err, FetchError::Status(404));
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.reason(), "status");
    assert_eq!(expect_err(&fetcher, &server.url("/500")).await, FetchError::Status(500));
    assert_eq!(expect_err(&fetcher, &server.url("/304")).await, FetchError::Status(304));
    assert_eq!(expect_err(&fetcher, &server.url("/302-no-location")).await, FetchError::Status(302));
}

fn capped(max_bytes: u64) -> Fetcher {
    Fetcher::new(FetchPolicy { max_bytes, ..allow_test_host() }).unwrap()
}

#[tokio::test]
async fn declared_oversize_is_refused_before_the_body() {
    let server = serve(
        "127.0.0.2:0",
        Arc::new(|_, _| {
            // Headers claim 2000 bytes; the server never sends them, so only
            // an early refusal can finish without a timeout.
            Reply::Hang(response("200 OK", &[("Content-Length", "2000".into())], b""))
        }),
    )
    .await;
    let err = expect_err(&capped(1000), &server.url("/big")).await;
    assert_eq!(err, FetchError::TooLarge);
    assert_eq!(err.reason(), "too_large");
}

async fn drain(fetcher: &Fetcher, url: &str) -> (Result<u64, FetchError>, u64) {
    let mut resp = fetcher.fetch(url).await.unwrap();
    assert_eq!(resp.declared_length, None);
    let mut total = 0u64;
    let result = loop {
        match resp.next_chunk().await {
            Ok(Some(chunk)) => total += chunk.len() as u64,
            Ok(None) => break Ok(total),
            Err(e) => {
                // The error sticks: a caller retrying does not get Ok(None).
                assert_eq!(resp.next_chunk().await, Err(e.clone()));
                break Err(e);
            }
        }
    };
    assert_eq!(resp.received(), total);
    (result, total)
}

#[tokio::test]
async fn undeclared_oversize_is_cut_while_streaming() {
    let server = serve(
        "127.0.0.2:0",
        Arc::new(|path, _| {
            let body = vec![b'a'; 64 * 1024];
            match path {
                // No Content-Length: body runs until close.
                "/eof" => Reply::Close(response("200 OK", &[], &body)),
                "/chunked" => {
                    let mut chunked = Vec::new();
                    for piece in body.chunks(4096) {
                        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                        chunked.extend_from_slice(piece);
                        chunked.extend_from_slice(b"\r\n");
                    }
                    chunked.extend_from_slice(b"0\r\n\r\n");
                    Reply::Close(response("200 OK", &[("Transfer-Encoding", "chunked".into())], &chunked))
                }
                _ => Reply::Close(with_length("404 Not Found", "text/plain", b"")),
            }
        }),
    )
    .await;
    for path in ["/eof", "/chunked"] {
        let (result, total) = drain(&capped(10_000), &server.url(path)).await;
        assert_eq!(result, Err(FetchError::TooLarge), "{path}");
        assert!(total <= 10_000, "{path}: handed out {total} bytes past the cap");
        // Under the cap the same bodies are read completely.
        let (result, _) = drain(&capped(64 * 1024), &server.url(path)).await;
        assert_eq!(result, Ok(64 * 1024), "{path} at exactly the cap");
    }
}

fn timed(total: Duration) -> Fetcher {
    Fetcher::new(FetchPolicy { total_timeout: total, ..allow_test_host() }).unwrap()
}

#[tokio::test]
async fn slow_sources_hit_the_overall_deadline() {
    let server = serve(
        "127.0.0.2:0",
        Arc::new(|path, _| match path {
            // Ten of a hundred declared bytes, then silence.
            "/slow-body" => Reply::Hang(response("200 OK", &[("Content-Length", "100".into())], &[b'z'; 10])),
            // Never answers at all.
            _ => Reply::Hang(Vec::new()),
        }),
    )
    .await;
    let fetcher = timed(Duration::from_secs(1));

    let started = std::time::Instant::now();
    let resp = fetcher.fetch(&server.url("/slow-body")).await.unwrap();
    assert_eq!(resp.bytes().await, Err(FetchError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(5));

    let started = std::time::Instant::now();
    let err = expect_err(&fetcher, &server.url("/silent")).await;
    assert_eq!(err, FetchError::Timeout);
    assert_eq!(err.reason(), "timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn userinfo_scheme_and_garbage_are_refused_without_contact() {
    let server =
        serve("127.0.0.2:0", Arc::new(|_, _| Reply::Close(with_length("200 OK", "image/png", PNG)))).await;
    let fetcher = Fetcher::new(allow_test_host()).unwrap();
    let port = server.addr.port();
    for (url, want) in [
        (format!("http://user:pass@127.0.0.2:{port}/"), FetchError::UserInfoNotAllowed),
        (format!("http://user@127.0.0.2:{port}/"), FetchError::UserInfoNotAllowed),
        (format!("ftp://127.0.0.2:{port}/"), FetchError::SchemeNotAllowed),
        ("file:///etc/passwd".to_owned(), FetchError::SchemeNotAllowed),
        (format!("gopher://127.0.0.2:{port}/"), FetchError::SchemeNotAllowed),
        ("not a url".to_owned(), FetchError::InvalidUrl),
        (format!("/relative/{port}"), FetchError::InvalidUrl),
    ] {
        assert_eq!(expect_err(&fetcher, &url).await, want, "{url}");
    }
    assert_eq!(server.hits(), 0);
    // The same server is reachable with a clean URL, so the zero above means
    // the refusals happened before contact.
    assert!(fetcher.fetch(&server.url("/")).await.is_ok());
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let fetcher = Fetcher::new(allow_test_host()).unwrap();
    let err = expect_err(&fetcher, &format!("http://{addr}/x")).await;
    assert_eq!(err, FetchError::Connect);
    assert!(!err.to_string().contains("127.0.0.2"));
}
