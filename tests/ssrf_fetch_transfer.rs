//! End-to-end tests of the SSRF-safe fetcher against hand-written HTTP servers: what it
//! fetches and within which limits (redirects followed and counted, non-2xx statuses, size
//! caps declared or streamed, the overall deadline). Loopback only: servers bind 127.0.0.2:0
//! and every URL fetched names a loopback address. The servers are in `common::fetch_server`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fetch_server::*;
use presign_gateway::ssrf::{sniff_content_type, FetchError, FetchPolicy, Fetcher};

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
