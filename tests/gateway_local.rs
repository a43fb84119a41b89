//! The embedded default end to end: mint → PUT → GET against the real gateway process,
//! plus everything that must be refused without leaving a file behind.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const MINT: &str = "/api/v1/files/upload-url";

async fn mint(gw: &Gateway, body: serde_json::Value) -> serde_json::Value {
    let (status, v) = post_json(&gw.url(MINT), Some("Bearer demo-key"), &body.to_string()).await;
    assert_eq!(status, 200, "{v}");
    v
}

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
async fn wrong_type_size_or_signature_is_refused_and_nothing_is_written() {
    let gw = Gateway::local();
    let v = mint(&gw, json!({"filename":"x.png","content_type":"image/png","file_size":10})).await;
    let url = v["data"]["upload_url"].as_str().unwrap().to_string();
    let public = v["data"]["public_url"].as_str().unwrap().to_string();
    let c = client();

    let r = c.put(&url).header("content-type", "image/jpeg").body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(body.contains("<Code>SignatureDoesNotMatch</Code>"), "{body}");

    let r = c.put(&url).header("content-type", "image/png").body(vec![1u8; 11]).send().await.unwrap();
    assert_eq!(r.status(), 403, "another size is refused by the signature");

    let tampered = {
        let i = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
        let mut t = url.clone();
        let c0 = if &url[i..i + 1] == "0" { "1" } else { "0" };
        t.replace_range(i..i + 1, c0);
        t
    };
    let r = c.put(&tampered).header("content-type", "image/png").body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(r.status(), 403);

    let unsigned = url.split('?').next().unwrap().to_string();
    let r = c.put(&unsigned).header("content-type", "image/png").body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("AccessDenied"));

    // A signed URL for another key cannot be replayed on a different path.
    let other = url.replacen("/files/uploads/user/12/", "/files/uploads/user/13/", 1);
    let r = c.put(&other).header("content-type", "image/png").body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(r.status(), 403);

    assert_eq!(c.get(&public).send().await.unwrap().status(), 404);
    assert!(gw.stored_files().is_empty(), "{:?}", gw.stored_files());
}

#[tokio::test]
async fn expired_url_is_refused() {
    use presign_gateway::sigv4::{Credentials, PresignRequest, Signer};
    let gw = Gateway::local();
    // Sign with the gateway's own key, an hour in the past.
    let secret = std::fs::read_to_string(gw.data_dir().join(".gateway/signing.key")).unwrap();
    let signer = Signer::new(Credentials::new("presign-gateway", secret.trim(), None), "us-east-1", "s3");
    let host = gw.addr.to_string();
    let when = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let url = signer.presign_url(
        &PresignRequest {
            method: "PUT",
            scheme: "http",
            host: &host,
            path: "/files/uploads/user/12/old.png",
            expires_in: 60,
            headers: &[],
        },
        when,
    );
    let r = client().put(&url).body(vec![1u8; 4]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(body.contains("<Code>AccessDenied</Code>") && body.contains("Request has expired"), "{body}");
    // The same signer, now, is accepted: the refusal above was the expiry.
    let fresh = signer.presign_url(
        &PresignRequest {
            method: "PUT",
            scheme: "http",
            host: &host,
            path: "/files/uploads/user/12/new.png",
            expires_in: 60,
            headers: &[],
        },
        time::OffsetDateTime::now_utc(),
    );
    assert_eq!(client().put(&fresh).body(vec![1u8; 4]).send().await.unwrap().status(), 200);
    assert!(gw.stored_files().iter().all(|p| !p.ends_with("old.png")));
}

#[tokio::test]
async fn client_disconnect_mid_body_leaves_nothing() {
    let gw = Gateway::local();
    let v = mint(&gw, json!({"filename":"big.png","content_type":"image/png","file_size":1_000_000})).await;
    let url = url::Url::parse(v["data"]["upload_url"].as_str().unwrap()).unwrap();
    let target = format!("{}?{}", url.path(), url.query().unwrap());
    let head = format!(
        "PUT {target} HTTP/1.1\r\nhost: {}\r\ncontent-type: image/png\r\ncontent-length: 1000000\r\n\r\n",
        gw.addr
    );
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&vec![7u8; 300_000]).unwrap();
        s.flush().unwrap();
        // Vanish once the gateway is spooling the first part (its temp file has bytes).
        wait_until("the gateway to spool the first part", Duration::from_secs(10), || gw.spooling());
    }
    // Poll until the gateway has noticed and cleaned up (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let files = gw.stored_files();
        if files.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "left behind: {files:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(client().get(v["data"]["public_url"].as_str().unwrap()).send().await.unwrap().status(), 404);
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
async fn bad_input_gets_apimall_errors_and_never_reaches_origin() {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts { origin: Some(origin.addr), ..Default::default() });
    let url = gw.url(MINT);
    let ok = json!({"filename":"a.png","content_type":"image/png","file_size":10});
    let long_name = format!("{}.png", "a".repeat(300));
    let cases: Vec<(Option<&str>, String, u16, &str)> = vec![
        (None, ok.to_string(), 401, "unauthorized"),
        (Some("Bearer wrong"), ok.to_string(), 401, "unauthorized"),
        (Some("demo-key"), ok.to_string(), 401, "unauthorized"),
        (Some("Bearer demo-key"), "{not json".into(), 400, "invalid_request"),
        (Some("Bearer demo-key"), "[1,2]".into(), 400, "invalid_request"),
        (Some("Bearer demo-key"), "".into(), 400, "invalid_request"),
        (
            Some("Bearer demo-key"),
            json!({"content_type":"image/png","file_size":10}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":5,"content_type":"image/png","file_size":10}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":"a.png","content_type":"image/png","file_size":"10"}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":"a.png","content_type":"image/png","file_size":0}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":"a.png","content_type":"image/png","file_size":-5}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":"a.png","content_type":"image/png","file_size":104857601}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":"a.png","content_type":"image/png","file_size":1.5}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":"a.pdf","content_type":"application/pdf","file_size":10}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":"a.png","content_type":"image/png","file_size":10,"expires_in":59}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":"a.png","content_type":"image/png","file_size":10,"expires_in":3601})
                .to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":"../../etc/passwd","content_type":"image/png","file_size":10}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":"a\u{0}b.png","content_type":"image/png","file_size":10}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            json!({"filename":long_name,"content_type":"image/png","file_size":10}).to_string(),
            400,
            "invalid_request",
        ),
        (
            Some("Bearer demo-key"),
            "{\"filename\":\"a\u{ff}.png\"".replace('\u{ff}', "\\udc00"),
            400,
            "invalid_request",
        ),
    ];
    for (auth, body, status, code) in cases {
        let (s, v) = post_json(&url, auth, &body).await;
        assert_eq!(s, status, "{body} -> {v}");
        assert_eq!(v["success"], false, "{v}");
        assert_eq!(v["error"]["code"], code, "{body} -> {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(v["error"]["details"].is_object());
        assert!(v["request_id"].as_str().unwrap().starts_with("req_"));
    }
    // The page's own error example, byte for byte in shape.
    let (_, v) = post_json(
        &url,
        Some("Bearer demo-key"),
        &json!({"filename":"a.txt","content_type":"text/plain","file_size":10}).to_string(),
    )
    .await;
    let page = Seed::load("apimall-upload-url");
    let example = page.error(400);
    assert_eq!(v["error"]["message"], "Unsupported content_type");
    assert_eq!(v["error"]["details"], json!({"max_file_size":104857600}));
    assert_eq!(v["error"], example["error"], "the page's error example");
    assert_same_shape(&v, example, &["request_id"], "apimall400");

    // Bad UTF-8 bytes in the body.
    let r = client()
        .post(&url)
        .header("authorization", "Bearer demo-key")
        .body(b"{\"filename\":\"\xff\xfe.png\",\"content_type\":\"image/png\",\"file_size\":1}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Huge bodies: declared, and chunked without a length.
    let big = vec![b' '; 200 * 1024];
    let r = client()
        .post(&url)
        .header("authorization", "Bearer demo-key")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let stream = futures_util::stream::iter(
        (0..50).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 8192]))),
    );
    let r = client()
        .post(&url)
        .header("authorization", "Bearer demo-key")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");

    // Wrong method on the route: answered here, not proxied.
    let r = client().get(&url).header("authorization", "Bearer demo-key").send().await.unwrap();
    assert_eq!(r.status(), 405);

    assert_eq!(origin.count(), 0, "no upload-route request reached the origin");
    assert!(gw.stored_files().is_empty());
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
async fn full_disk_mid_upload_leaves_nothing() {
    // 1 MiB file-size limit: the spool write fails with EFBIG part way, as on a full disk.
    let gw = Gateway::start(GatewayOpts { file_size_limit_kb: Some(1024), ..Default::default() });
    let size = 3 * 1024 * 1024;
    let v = mint(&gw, json!({"filename":"big.mp4","content_type":"video/mp4","file_size":size})).await;
    let r = client()
        .put(v["data"]["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .body(vec![5u8; size])
        .send()
        .await;
    // The gateway answers 500 InternalError (or closes if the client is still sending).
    if let Ok(r) = r {
        assert_eq!(r.status(), 500);
        assert!(r.text().await.unwrap().contains("InternalError"));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !gw.stored_files().is_empty() {
        assert!(std::time::Instant::now() < deadline, "left behind: {:?}", gw.stored_files());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(client().get(v["data"]["public_url"].as_str().unwrap()).send().await.unwrap().status(), 404);
    // A small upload still works: the process survived the failed write.
    let v = mint(&gw, json!({"filename":"small.png","content_type":"image/png","file_size":4})).await;
    let r = client()
        .put(v["data"]["upload_url"].as_str().unwrap())
        .header("content-type", "image/png")
        .body("tiny")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
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
