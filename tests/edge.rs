//! Edge limits against the real gateway: gateway hosts, per-key rate limits, upload caps.

mod common;

use common::*;
use serde_json::json;

const MINT: &str = "/api/v1/files/upload-url";

fn body() -> String {
    json!({"filename":"a.png","content_type":"image/png","file_size":3}).to_string()
}

#[tokio::test]
async fn non_gateway_host_is_403_in_each_dialect() {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts {
        origin: Some(origin.addr),
        extra_yaml: "gateway_hosts: [uploads.example.test]\n".into(),
        ..Default::default()
    });
    let c = client();
    let r =
        c.post(gw.url(MINT)).header("authorization", "Bearer demo-key").body(body()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "forbidden");
    assert_eq!(v["error"]["message"], "Request made on a non-gateway host");
    let r = c
        .post(gw.url("/serve/api/v2/upload/signed-url"))
        .header("authorization", "demo-key")
        .body(r#"{"original_filename":"v.mp4"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!((v["code"].clone(), v["failed"].clone()), (json!(403), json!(true)));
    // The configured host is admitted (with or without a port).
    for host in ["uploads.example.test", &format!("uploads.example.test:{}", gw.addr.port())] {
        let r = c
            .post(gw.url(MINT))
            .header("host", host)
            .header("authorization", "Bearer demo-key")
            .body(body())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }
    // Pass-through is not subject to the host list.
    assert_eq!(c.get(gw.url("/x")).send().await.unwrap().status(), 203);
    assert_eq!(origin.count(), 1);
}

#[tokio::test]
async fn rate_limit_per_key_answers_429_with_retry_after() {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts {
        origin: Some(origin.addr),
        extra_yaml: "rate_limit:\n  default_per_sec: 3\n".into(),
        ..Default::default()
    });
    let c = client();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = c
            .post(gw.url(MINT))
            .header("authorization", "Bearer demo-key")
            .body(body())
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "1");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "rate_limited");
        }
    }
    // 3 per one-second window: a burst may straddle two windows, never more.
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!((3..=6).contains(&ok), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    // Another key has its own budget; pass-through is never limited.
    let r =
        c.post(gw.url(MINT)).header("authorization", "Bearer other-key").body(body()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    for _ in 0..10 {
        assert_eq!(c.get(gw.url("/free")).send().await.unwrap().status(), 203);
    }
}

#[tokio::test]
async fn unsigned_size_uploads_are_capped_with_413() {
    let dir = tempfile::tempdir().unwrap();
    let storage =
        format!("  local:\n    root: {}\n    max_upload_bytes: 1000\n", dir.path().join("d").display());
    let gw = Gateway::start(GatewayOpts { storage_yaml: Some(storage), ..Default::default() });
    let (s, v) = post_json(
        &gw.url("/api/upload/presign"),
        Some("Bearer demo-key"),
        r#"{"file_name":"a.png","content_type":"image/png"}"#,
    )
    .await;
    assert_eq!(s, 200);
    let url = v["data"]["upload_url"].as_str().unwrap();
    // A signed size the store would refuse is never minted.
    let (s, v2) = post_json(
        &gw.url("/api/v1/files/upload-url"),
        Some("Bearer demo-key"),
        r#"{"filename":"a.png","content_type":"image/png","file_size":5000}"#,
    )
    .await;
    assert_eq!(s, 400, "{v2}");
    assert_eq!(v2["error"]["details"]["max_file_size"], 1000);
    let r = client().put(url).header("content-type", "image/png").body(vec![0u8; 1001]).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().contains("EntityTooLarge"));
    let r = client().put(url).header("content-type", "image/png").body(vec![0u8; 1000]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut files = Vec::new();
    walk(&dir.path().join("d/tmp"), &mut files);
    assert!(files.is_empty());
}

#[tokio::test]
async fn active_content_types_are_refused_and_others_served_as_attachments() {
    let gw = Gateway::local();
    for ct in [
        "text/html,",
        "text/html",
        "application/foo+xml",
        "text/xsl",
        "text/plain,text/html",
        "text/plain; x=\"y\"",
    ] {
        let body = serde_json::json!({"filename":"a.txt","contentType":ct,"size":40}).to_string();
        let (s, _) = post_json(&gw.url("/v1/upload/s3"), Some("Bearer demo-key"), &body).await;
        assert_eq!(s, 400, "{ct}");
    }
    let (s, v) = post_json(
        &gw.url("/v1/upload/s3"),
        Some("Bearer demo-key"),
        r#"{"filename":"doc.pdf","contentType":"application/pdf","size":4}"#,
    )
    .await;
    assert_eq!(s, 200);
    let r = client()
        .put(v["uploadUrl"].as_str().unwrap())
        .header("content-type", "application/pdf")
        .body("%PDF")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = client().get(v["publicUrl"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(got.headers()["content-disposition"], "attachment");
    assert_eq!(got.headers()["content-security-policy"], "sandbox");
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn json_routes_answer_expect_100_continue() {
    use std::io::{Read, Write};
    let gw = Gateway::local();
    let body = r#"{"filename":"a.png","content_type":"image/png","file_size":3}"#;
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST {MINT} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer demo-key\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        gw.addr,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    s.write_all(body.as_bytes()).unwrap();
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("\"success\":true") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
}
