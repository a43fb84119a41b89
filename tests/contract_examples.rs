//! Drop-in contracts, page examples: each dialect answers its page's own request example with
//! the page's response shape (same field names, types and envelope; equal values except IDs
//! and URLs), on both stores, and OctopusX keys, expiries and prefixes follow its page. The
//! examples are the fixtures in `tests/fixtures/seeds/` (see the README there), loaded by
//! `common::seeds`.

mod common;

use common::*;
use serde_json::json;

/// A dialect's route, how its page authenticates, its page, and the response fields whose
/// values differ by nature (IDs and URLs).
struct Case {
    path: &'static str,
    auth: &'static str,
    page: &'static str,
    volatile: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        path: "/api/v1/files/upload-url",
        auth: "Bearer demo-key",
        page: "apimall-upload-url",
        volatile: &["upload_url", "key", "public_url", "request_id"],
    },
    Case {
        path: "/api/upload/presign",
        auth: "Bearer demo-key",
        page: "octopusx-presign",
        volatile: &["upload_url", "object_key", "public_url"],
    },
    Case {
        path: "/serve/api/v2/upload/signed-url",
        auth: "demo-key",
        page: "memories-signed-url",
        volatile: &["asset_id", "signed_url"],
    },
    Case {
        path: "/v1/upload/s3",
        auth: "Bearer demo-key",
        page: "ctxfy-upload-s3",
        volatile: &["uploadUrl", "publicUrl", "fileKey"],
    },
];

async fn page_examples_match(gw: &Gateway) {
    for c in CASES {
        let seed = Seed::load(c.page);
        let (status, v) = post_json(&gw.url(c.path), Some(c.auth), &seed.request.to_string()).await;
        assert_eq!(status, 200, "{} -> {v}", c.path);
        assert_same_shape(&v, &seed.response, c.volatile, c.path);
    }
}

#[tokio::test]
async fn page_examples_local() {
    page_examples_match(&Gateway::local()).await;
}

#[tokio::test]
async fn page_examples_s3s_fs() {
    let s3 = S3sFs::start();
    let gw = Gateway::start(GatewayOpts {
        storage_yaml: Some(s3.storage_yaml()),
        env: s3.env(),
        ..Default::default()
    });
    page_examples_match(&gw).await;
}

#[tokio::test]
async fn octopusx_keys_follow_the_page() {
    let gw = Gateway::local();
    let (_, v) = post_json(
        &gw.url("/api/upload/presign"),
        Some("Bearer demo-key"),
        r#"{"file_name":"input.png","content_type":"image/png"}"#,
    )
    .await;
    let key = v["data"]["object_key"].as_str().unwrap();
    // uploads/user/{id}/{yyyymmdd}-{random}.{ext}
    let rest = key.strip_prefix("uploads/user/12/").unwrap_or_else(|| panic!("{key}"));
    let (date, tail) = rest.split_once('-').unwrap();
    assert!(date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()), "{key}");
    assert!(tail.ends_with(".png") && !tail.contains('/'), "{key}");
    assert_eq!(v["data"]["expires_in"], 900, "default");
    for (asked, got) in [(10, 60), (99999, 3600), (-5, 60), (1200, 1200)] {
        let body = json!({"file_name":"a.png","content_type":"image/png","expires_in":asked}).to_string();
        let (_, v) = post_json(&gw.url("/api/upload/presign"), Some("Bearer demo-key"), &body).await;
        assert_eq!(v["data"]["expires_in"], got, "clamped {asked}");
    }
    // A prefix inside the namespace is honoured; outside it, refused.
    let body = json!({"file_name":"a.png","content_type":"image/png","prefix":"uploads/user/12/avatars"})
        .to_string();
    let (s, v) = post_json(&gw.url("/api/upload/presign"), Some("Bearer demo-key"), &body).await;
    assert_eq!(s, 200);
    assert!(v["data"]["object_key"].as_str().unwrap().starts_with("uploads/user/12/avatars/"));
    for bad in [
        "uploads/user/13",
        "uploads/user/12/../13",
        "/etc",
        "uploads/user/12/%2e%2e",
        "uploads/user/123",
        "..",
        "uploads\\user\\12",
    ] {
        let body = json!({"file_name":"a.png","content_type":"image/png","prefix":bad}).to_string();
        let (s, v) = post_json(&gw.url("/api/upload/presign"), Some("Bearer demo-key"), &body).await;
        assert_eq!(s, 400, "{bad}");
        assert_eq!(v, json!({"success":false,"message":v["message"],"data":null}));
        assert!(v["message"].as_str().unwrap().contains("prefix"));
    }
    // The other key has its own namespace.
    let (_, v) = post_json(
        &gw.url("/api/upload/presign"),
        Some("Bearer other-key"),
        r#"{"content_type":"video/mp4"}"#,
    )
    .await;
    assert!(v["data"]["object_key"].as_str().unwrap().starts_with("uploads/user/13/"), "{v}");
    assert!(v["data"]["object_key"].as_str().unwrap().ends_with(".mp4"), "{v}");
}
