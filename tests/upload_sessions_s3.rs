//! Upload sessions in S3 mode against a real s3s-fs: the form upload `GET /s3/params` hands
//! out is our own POST policy, and the store itself enforces it (the key, the type, the
//! size range) without a byte passing through the gateway.

mod common;

use common::form::{fields_of, post_form};
use common::*;
use serde_json::json;

async fn s3_params(s3: &S3sFs, gw: &Gateway, max_file_size: u64) -> serde_json::Value {
    let (status, v) = post_json(
        &gw.url("/v1/upload-sessions"),
        Some("Bearer demo-key"),
        &json!({ "max_file_size": max_file_size }).to_string(),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let ep = v["companion_endpoint"].as_str().unwrap();
    let r = client().get(format!("{ep}/s3/params?filename=clip.mp4&type=video%2Fmp4")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["url"], format!("{}/media/", s3.endpoint()), "the bucket's URL, straight to the store");
    p
}

#[tokio::test]
async fn s3s_fs_accepts_our_post_policy_and_enforces_it() {
    let s3 = S3sFs::start();
    let gw = Gateway::start(GatewayOpts {
        storage_yaml: Some(s3.storage_yaml()),
        env: s3.env(),
        ..Default::default()
    });
    let p = s3_params(&s3, &gw, 1000).await;
    let url = p["url"].as_str().unwrap();
    let key = p["fields"]["key"].as_str().unwrap();
    let fields = fields_of(&p);

    // Over the signed content-length-range: the store refuses, nothing stored.
    let (status, _, body) = post_form(url, &fields, &[1; 1001]).await;
    assert!((400..500).contains(&status), "{status}: {body}");
    assert!(!s3.object_path(key).exists());
    // Another key: the store refuses.
    let mut other = fields.clone();
    other.iter_mut().filter(|(n, _)| n == "key").for_each(|(_, v)| *v = "uploads/user/13/x.mp4".into());
    let (status, _, body) = post_form(url, &other, &[1; 10]).await;
    // AWS answers 403 AccessDenied; s3s-fs 0.14 answers 400 InvalidPolicyDocument.
    assert!((400..500).contains(&status) && body.contains("failed"), "{status}: {body}");
    assert!(!s3.object_path("uploads/user/13/x.mp4").exists());

    // As signed: 201 with S3's PostResponse, and the bytes in the bucket.
    let file: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let (status, _, body) = post_form(url, &fields, &file).await;
    assert_eq!(status, 201, "{body}");
    assert!(body.contains(&format!("<Key>{key}</Key>")), "{body}");
    assert_eq!(std::fs::read(s3.object_path(key)).unwrap(), file);
}
