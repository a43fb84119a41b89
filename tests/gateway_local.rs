//! The embedded default end to end against the real gateway process: mint → PUT → GET (HEAD,
//! Range, ETag), URLs that follow the host the client reached, pass-through to the origin
//! (untouched, 502 when it is down), keep-alive after an early answer, `Expect:
//! 100-continue`, and the configured log level. What must be refused is in
//! `gateway_local_refusals.rs` (uploads) and `gateway_local_bad_input.rs` (mint requests).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn png_bytes(n: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend((0..n.saturating_sub(8)).map(|i| (i * 31 % 251) as u8));
    b
}

#[tokio::test]
async fn mint_put_get_round_trip() {
    let gw = Gateway::local();
    let bytes = png_bytes(524_288);
    let v = mint(
        &gw,
        json!({"filename":"cover.png","content_type":"image/png","file_size":bytes.len(),"expires_in":900}),
    )
    .await;
    assert_eq!(v["success"], true);
    let rid = v["request_id"].as_str().unwrap();
    assert!(rid.starts_with("req_") && rid.len() == 30, "{rid}");
    let d = &v["data"];
    assert_eq!(d["expires_in"], 900);
    assert_eq!(d["max_file_size"], 104857600);
    assert_eq!(d["content_type"], "image/png");
    let key = d["key"].as_str().unwrap();
    assert!(key.starts_with("uploads/user/12/") && key.ends_with("-cover.png"), "{key}");
    let upload_url = d["upload_url"].as_str().unwrap();
    let public_url = d["public_url"].as_str().unwrap();
    assert!(upload_url.starts_with(&gw.url("/files/uploads/user/12/")), "{upload_url}");
    for p in [
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost",
        "X-Amz-Signature=",
    ] {
        assert!(upload_url.contains(p), "{upload_url} lacks {p}");
    }
    assert_eq!(public_url, gw.url(&format!("/files/{key}")));

    let put = client()
        .put(upload_url)
        .header("content-type", "image/png")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let etag = put.headers()["etag"].to_str().unwrap().to_string();

    let get = client().get(public_url).send().await.unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["content-type"], "image/png");
    assert_eq!(get.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(get.headers()["content-length"], bytes.len().to_string().as_str());
    assert_eq!(get.bytes().await.unwrap().as_ref(), &bytes[..]);

    let head = client().head(public_url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], bytes.len().to_string().as_str());

    let range = client().get(public_url).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.headers()["content-range"], format!("bytes 10-19/{}", bytes.len()).as_str());
    assert_eq!(range.bytes().await.unwrap().as_ref(), &bytes[10..20]);

    let bad_range = client().get(public_url).header("range", "bytes=999999999-").send().await.unwrap();
    assert_eq!(bad_range.status(), 416);

    let cached = client().get(public_url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    assert!(cached.headers().get("content-length").is_none(), "a 304 carries no Content-Length of its own");
    let weak_list = format!("\"other\", W/{etag}");
    let cached = client().get(public_url).header("if-none-match", weak_list).send().await.unwrap();
    assert_eq!(cached.status(), 304);

    // Nothing left in tmp.
    assert!(!gw.stored_files().iter().any(|p| p.starts_with(gw.data_dir().join("tmp"))));
}

#[tokio::test]
async fn urls_follow_the_host_the_client_reached() {
    let gw = Gateway::local();
    let v = mint(&gw, json!({"filename":"a.png","content_type":"image/png","file_size":3})).await;
    let url = v["data"]["upload_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://127.0.0.1:{}/files/", gw.addr.port())), "{url}");
    assert_eq!(v["data"]["expires_in"], 900, "default expiry");
    let (status, v) = post_json(
        &gw.url(MINT),
        Some("Bearer demo-key"),
        &json!({"filename":"a.png","content_type":"image/png","file_size":3}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let key = v["data"]["key"].as_str().unwrap().to_string();
    // Same host reached via "localhost": the URL follows it.
    let resp = client()
        .post(format!("http://localhost:{}{MINT}", gw.addr.port()))
        .header("authorization", "Bearer demo-key")
        .body(json!({"filename":"a.png","content_type":"image/png","file_size":3}).to_string())
        .send()
        .await
        .unwrap();
    let v2: serde_json::Value = resp.json().await.unwrap();
    assert!(v2["data"]["public_url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("http://localhost:{}/files/", gw.addr.port())));
    assert_ne!(v2["data"]["key"].as_str().unwrap(), key, "keys never collide");
}

#[tokio::test]
async fn passthrough_reaches_origin_untouched() {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts { origin: Some(origin.addr), ..Default::default() });
    let r = client()
        .post(gw.url("/v2/things?a=1&b=%20x"))
        .header("x-custom", "kept")
        .header("authorization", "Bearer whatever")
        .body("hello origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 203, "origin's own status comes back");
    assert_eq!(r.headers()["x-origin"], "echo");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["target"], "/v2/things?a=1&b=%20x");
    assert_eq!(v["headers"]["x-custom"], "kept");
    assert_eq!(v["headers"]["authorization"], "Bearer whatever");
    assert_eq!(v["body"], "hello origin");
    // Keep-alive: several requests on one client.
    for _ in 0..5 {
        assert_eq!(client().get(gw.url("/x")).send().await.unwrap().status(), 203);
    }
    assert_eq!(origin.count(), 6);
}

#[tokio::test]
async fn origin_down_is_502_json() {
    let gw = Gateway::local(); // origin points at a closed port
    let r = client().get(gw.url("/anything")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "bad_gateway");
}

#[tokio::test]
async fn early_answer_does_not_desync_keepalive() {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts { origin: Some(origin.addr), ..Default::default() });
    // An unauthenticated mint with an unread body, then a second request on the same connection.
    let body = "x".repeat(1000);
    let req = format!(
        "POST {MINT} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}GET /after HTTP/1.1\r\nhost: {}\r\n\r\n",
        gw.addr,
        body.len(),
        gw.addr
    );
    let out = raw_exchange(gw.addr, req.as_bytes(), Duration::from_secs(5));
    assert!(out.starts_with("HTTP/1.1 401"), "{out}");
    // Either the second request was answered properly by the origin, or the connection was
    // closed after the 401; never is the unread body parsed as a request.
    let second = out.matches("HTTP/1.1 ").count();
    if second > 1 {
        assert!(out.contains("HTTP/1.1 203"), "{out}");
        assert_eq!(origin.count(), 1);
    } else {
        assert_eq!(origin.count(), 0);
    }
    assert!(!out.contains("HTTP/1.1 400"), "the body was parsed as a request: {out}");
}

#[tokio::test]
async fn expect_100_continue_gets_continue_then_stores() {
    let gw = Gateway::local();
    let v = mint(&gw, json!({"filename":"e.png","content_type":"image/png","file_size":5})).await;
    let url = url::Url::parse(v["data"]["upload_url"].as_str().unwrap()).unwrap();
    let target = format!("{}?{}", url.path(), url.query().unwrap());
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "PUT {target} HTTP/1.1\r\nhost: {}\r\ncontent-type: image/png\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n",
        gw.addr
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(first.starts_with("HTTP/1.1 100"), "expected 100 Continue before the body, got {first:?}");
    s.write_all(b"hello").unwrap();
    let mut rest = String::new();
    while !rest.contains("\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        rest.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let all = format!("{first}{rest}");
    assert!(all.contains("HTTP/1.1 200"), "{all}");
    let got = client().get(v["data"]["public_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"hello");

    // A refused upload answers at once, without 100 Continue.
    let bad = format!(
        "PUT {target}0 HTTP/1.1\r\nhost: {}\r\ncontent-type: image/png\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n",
        gw.addr
    );
    let out = raw_exchange(gw.addr, bad.as_bytes(), Duration::from_secs(5));
    assert!(out.starts_with("HTTP/1.1 403") || out.starts_with("HTTP/1.1 400"), "{out}");
}

#[tokio::test]
async fn logging_level_from_config_applies_without_rust_log() {
    let debug = Gateway::start(GatewayOpts {
        no_rust_log: true,
        extra_yaml: "logging:\n  level: debug\n".into(),
        ..Default::default()
    });
    mint(&debug, json!({"filename":"a.png","content_type":"image/png","file_size":3})).await;
    let quiet = Gateway::start(GatewayOpts {
        no_rust_log: true,
        extra_yaml: "logging:\n  level: error\n".into(),
        ..Default::default()
    });
    mint(&quiet, json!({"filename":"a.png","content_type":"image/png","file_size":3})).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !debug.log().contains(" minted ") {
        assert!(std::time::Instant::now() < deadline, "no debug line: {}", debug.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!quiet.log().contains(" minted "), "{}", quiet.log());
    assert!(!quiet.log().contains("INFO"), "{}", quiet.log());
}
