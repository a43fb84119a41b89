//! Storage `s3` against a real s3s-fs: minted URLs go straight to the store, and the store
//! itself accepts them (and refuses another type or a tampered signature).

mod common;

use common::*;
use presign_gateway::sigv4::{Credentials, PresignRequest, Signer};
use serde_json::json;

fn s3_gateway(s3: &S3sFs) -> Gateway {
    Gateway::start(GatewayOpts { storage_yaml: Some(s3.storage_yaml()), env: s3.env(), ..Default::default() })
}

fn signed_get(s3: &S3sFs, key: &str) -> String {
    let signer = Signer::new(Credentials::new(S3_ACCESS_KEY, S3_SECRET_KEY, None), "us-east-1", "s3");
    let host = format!("127.0.0.1:{}", s3.port);
    signer.presign_url(
        &PresignRequest {
            method: "GET",
            scheme: "http",
            host: &host,
            path: &format!("/media/{key}"),
            expires_in: 300,
            headers: &[],
        },
        time::OffsetDateTime::now_utc(),
    )
}

#[tokio::test]
async fn minted_url_uploads_to_s3s_fs_and_reads_back() {
    let s3 = S3sFs::start();
    let gw = s3_gateway(&s3);
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    let (status, v) = post_json(
        &gw.url("/api/v1/files/upload-url"),
        Some("Bearer demo-key"),
        &json!({"filename":"clip.mp4","content_type":"video/mp4","file_size":bytes.len()}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let url = v["data"]["upload_url"].as_str().unwrap();
    let key = v["data"]["key"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/media/{key}?", s3.endpoint())),
        "points straight at the store: {url}"
    );
    assert_eq!(v["data"]["public_url"], format!("{}/media/{key}", s3.endpoint()));

    let c = client();
    // A different Content-Type is refused by the store itself.
    let r = c.put(url).header("content-type", "image/png").body(bytes.clone()).send().await.unwrap();
    assert_eq!(r.status(), 403, "{}", r.text().await.unwrap());
    // A tampered signature is refused by the store itself.
    let i = url.find("X-Amz-Signature=").unwrap() + 16;
    let mut tampered = url.to_string();
    let flip = if &url[i..i + 1] == "a" { "b" } else { "a" };
    tampered.replace_range(i..i + 1, flip);
    let r = c.put(&tampered).header("content-type", "video/mp4").body(bytes.clone()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(!s3.object_path(key).exists(), "nothing stored by refused uploads");

    // The minted URL uploads.
    let r = c.put(url).header("content-type", "video/mp4").body(bytes.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // The bytes read back equal the bytes sent: through S3 GET and on s3s-fs's disk.
    let got = c.get(signed_get(&s3, key)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "video/mp4");
    assert_eq!(got.bytes().await.unwrap().as_ref(), &bytes[..]);
    assert_eq!(std::fs::read(s3.object_path(key)).unwrap(), bytes);
}

#[tokio::test]
async fn gateway_does_not_store_in_s3_mode() {
    let s3 = S3sFs::start();
    let gw = s3_gateway(&s3);
    // No local object routes: a PUT to the gateway's relay path is refused.
    let r = client().put(gw.url("/_gateway/upload/uploads/user/12/x.png")).body("x").send().await.unwrap();
    assert!(r.status() == 403 || r.status() == 405, "{}", r.status());
}
