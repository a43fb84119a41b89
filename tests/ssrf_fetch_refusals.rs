//! End-to-end tests of the SSRF-safe fetcher against hand-written HTTP servers: what it
//! refuses, and that it refuses before connecting (blocked destinations in any spelling, also
//! behind a redirect; userinfo, schemes and garbage; a refused connection). Loopback only:
//! servers bind 127.0.0.1:0, 127.0.0.2:0 or [::1]:0, and every URL fetched names a loopback
//! address or `localhost`. The servers are in `common::fetch_server`.

mod common;

use std::sync::Arc;

use common::fetch_server::*;
use common::DeadPort;
use presign_gateway::ssrf::{BlockReason, FetchError, FetchPolicy, Fetcher};

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
    // A port on 127.0.0.2 that is bound but never listens (and stays reserved): refused.
    let dead = DeadPort::on([127, 0, 0, 2].into());
    let addr = dead.addr;
    let fetcher = Fetcher::new(allow_test_host()).unwrap();
    let err = expect_err(&fetcher, &format!("http://{addr}/x")).await;
    assert_eq!(err, FetchError::Connect);
    assert!(!err.to_string().contains("127.0.0.2"));
}
