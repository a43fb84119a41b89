//! URLs the store holds to more: `create_only` signs `If-None-Match: *` (the URL creates its
//! object once and never replaces it), and a mint's `checksum_sha256` signs
//! `x-amz-checksum-sha256` (the store refuses any other bytes). On the local store and, for
//! what it enforces, s3s-fs.

mod common;

use base64::Engine;
use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};

fn b64_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

fn create_only_yaml() -> String {
    "create_only:\n  apimall: true\n".into()
}

async fn put(url: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = client().put(url).header("content-type", "image/png").body(body.to_vec());
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let r = req.send().await.expect("PUT");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap_or_default())
}

async fn mint_apimall(gw: &Gateway, body: serde_json::Value) -> (String, String) {
    let v = mint(gw, body).await;
    (
        v["data"]["upload_url"].as_str().unwrap().to_owned(),
        v["data"]["public_url"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_create_only_url_creates_its_object_once() {
    let gw = Gateway::start(GatewayOpts { extra_yaml: create_only_yaml(), ..Default::default() });
    let (url, public) =
        mint_apimall(&gw, json!({"filename":"a.png","content_type":"image/png","file_size":5})).await;
    assert!(url.contains("if-none-match"), "signed: {url}");
    let (status, _, body) = put(&url, b"first", &[]).await;
    assert_eq!(status, 403, "the header is signed, so it must be sent: {body}");
    let (status, _, body) = put(&url, b"first", &[("if-none-match", "*")]).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = put(&url, b"again", &[("if-none-match", "*")]).await;
    assert_eq!(status, 412, "{body}");
    assert!(body.contains("<Code>PreconditionFailed</Code>"), "{body}");
    assert_eq!(client().get(&public).send().await.unwrap().bytes().await.unwrap().as_ref(), b"first");
    let mut tmp = Vec::new();
    walk(&gw.data_dir().join("tmp"), &mut tmp);
    assert!(tmp.is_empty(), "{tmp:?}");

    // Without the flag (OctopusX here), a URL used twice replaces its object, as before.
    let (status, v) = post_json(
        &gw.url("/api/upload/presign"),
        Some("Bearer demo-key"),
        &json!({"file_name":"b.png","content_type":"image/png"}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let url = v["upload_url"].as_str().or(v["data"]["upload_url"].as_str()).unwrap().to_owned();
    assert!(!url.contains("if-none-match"), "{url}");
    assert_eq!(put(&url, b"one", &[]).await.0, 200);
    assert_eq!(put(&url, b"two", &[]).await.0, 200, "replaced");
    // Any If-None-Match but * on a PUT is not something S3 implements.
    assert_eq!(put(&url, b"two", &[("if-none-match", "\"abc\"")]).await.0, 501);
}

#[tokio::test]
async fn a_signed_checksum_refuses_other_bytes() {
    let gw = Gateway::local();
    let good = b"exact bytes!";
    let sum = b64_sha256(good);
    let (url, public) = mint_apimall(
        &gw,
        json!({"filename":"a.png","content_type":"image/png","file_size":good.len(),"checksum_sha256":sum}),
    )
    .await;
    assert!(url.contains("x-amz-checksum-sha256"), "signed: {url}");
    let (status, _, body) = put(&url, good, &[]).await;
    assert_eq!(status, 403, "the header is signed, so it must be sent: {body}");
    let other = b"other bytes!";
    let (status, _, body) = put(&url, other, &[("x-amz-checksum-sha256", &sum)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>BadDigest</Code>"), "{body}");
    assert_eq!(client().get(&public).send().await.unwrap().status(), 404, "nothing stored");
    let (status, headers, body) = put(&url, good, &[("x-amz-checksum-sha256", &sum)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-amz-checksum-sha256"], sum.as_str());
    assert_eq!(client().get(&public).send().await.unwrap().bytes().await.unwrap().as_ref(), good);
    let mut tmp = Vec::new();
    walk(&gw.data_dir().join("tmp"), &mut tmp);
    assert!(tmp.is_empty(), "{tmp:?}");

    // Each dialect names the field in its own style, and a bad value is a 400 naming it.
    for (path, body, field) in [
        (
            "/api/v1/files/upload-url",
            json!({"filename":"a.png","content_type":"image/png","file_size":3,"checksum_sha256":"nope"}),
            "checksum_sha256",
        ),
        (
            "/api/upload/presign",
            json!({"content_type":"image/png","checksum_sha256":"AAAA"}),
            "checksum_sha256",
        ),
        (
            "/v1/upload/s3",
            json!({"filename":"a","contentType":"image/png","size":3,"checksumSha256":7}),
            "checksumSha256",
        ),
    ] {
        let (status, v) = post_json(&gw.url(path), Some("Bearer demo-key"), &body.to_string()).await;
        assert_eq!(status, 400, "{path}: {v}");
        assert!(v.to_string().contains(field), "{path}: {v}");
    }
    let (status, v) = post_json(
        &gw.url("/v1/upload/s3"),
        Some("Bearer demo-key"),
        &json!({"filename":"a","contentType":"image/png","size":3,"checksumSha256":b64_sha256(b"abc")})
            .to_string(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

/// What s3s-fs 0.14.1 does with the two signed headers: each assertion pins its behaviour,
/// so a change in it shows here (the README says the same).
#[tokio::test]
async fn s3s_fs_on_if_none_match_and_checksums() {
    let s3 = S3sFs::start();
    let mut env = s3.env();
    env.push(("PRESIGN_GATEWAY_SECRET".into(), "create-only-test-secret-0123456789abc".into()));
    let gw = Gateway::start(GatewayOpts {
        storage_yaml: Some(s3.storage_yaml()),
        env,
        extra_yaml: create_only_yaml(),
        ..Default::default()
    });
    let good = b"exact bytes!";
    let sum = b64_sha256(good);
    let v = mint(
        &gw,
        json!({"filename":"a.png","content_type":"image/png","file_size":good.len(),"checksum_sha256":sum}),
    )
    .await;
    let url = v["data"]["upload_url"].as_str().unwrap().to_owned();
    let key = v["data"]["key"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&s3.endpoint()), "{url}");
    let headers = [("if-none-match", "*"), ("x-amz-checksum-sha256", sum.as_str())];
    // The bytes the checksum names: stored; the same create-only URL again: refused.
    let (status, _, body) = put(&url, good, &headers).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = put(&url, good, &headers).await;
    assert_eq!(status, 412, "s3s-fs enforces If-None-Match: *: {body}");
    assert_eq!(std::fs::read(s3.object_path(&key)).unwrap(), good);

    // Other bytes under a signed checksum: s3s-fs answers BadDigest, as S3 does, but
    // (0.14.1) keeps the bytes it refused; AWS S3 stores nothing. Pinned here, so a fixed
    // s3s-fs shows up as this assertion failing.
    let v = mint(
        &gw,
        json!({"filename":"b.png","content_type":"image/png","file_size":good.len(),"checksum_sha256":sum}),
    )
    .await;
    let url = v["data"]["upload_url"].as_str().unwrap().to_owned();
    let key = v["data"]["key"].as_str().unwrap().to_owned();
    let (status, _, body) = put(&url, b"other bytes!", &headers).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>BadDigest</Code>"), "{body}");
    assert_eq!(
        std::fs::read(s3.object_path(&key)).ok().as_deref(),
        Some(&b"other bytes!"[..]),
        "s3s-fs keeps refused bytes"
    );
}
