//! Drop-in contracts: each dialect answers its page's own request example with the page's
//! response shape (same field names, types and envelope; equal values except IDs and URLs),
//! covers every error shape its page shows, and the minted URL uploads on both stores.
//! The examples are the fixtures in `tests/fixtures/seeds/` (see the README there), loaded by
//! `common::seeds`.

mod common;

use common::*;
use serde_json::{json, Value};

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

/// Every dialect's error envelope for a bad request and for missing auth, as its page shows.
#[tokio::test]
async fn error_envelopes_per_dialect() {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts { origin: Some(origin.addr), ..Default::default() });

    // API Mall
    let (s, v) = post_json(&gw.url("/api/v1/files/upload-url"), None, "{}").await;
    assert_eq!(s, 401);
    assert_eq!(v["success"], false);
    assert_eq!(v["error"]["code"], "unauthorized");

    // OctopusX
    let (s, v) =
        post_json(&gw.url("/api/upload/presign"), Some("Bearer demo-key"), r#"{"content_type":"text/html"}"#)
            .await;
    assert_eq!(s, 400);
    assert_eq!(v["success"], false);
    assert_eq!(v["data"], Value::Null);
    assert!(v["message"].is_string());
    let (s, v) =
        post_json(&gw.url("/api/upload/presign"), Some("demo-key"), r#"{"content_type":"image/png"}"#).await;
    assert_eq!((s, v["success"].clone(), v["data"].clone()), (401, json!(false), Value::Null));

    // memories: raw key only; Bearer is the wrong style.
    let (s, v) = post_json(
        &gw.url("/serve/api/v2/upload/signed-url"),
        Some("Bearer demo-key"),
        r#"{"original_filename":"v.mp4"}"#,
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(v, json!({"code":401,"msg":v["msg"],"data":null,"success":false,"failed":true}));
    let (s, v) = post_json(
        &gw.url("/serve/api/v2/upload/signed-url"),
        Some("demo-key"),
        r#"{"original_filename":"../v.mp4"}"#,
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        (v["code"].clone(), v["failed"].clone(), v["success"].clone()),
        (json!(400), json!(true), json!(false))
    );

    // Ctxfy: the page's 400 and 401 shapes.
    let (s, v) = post_json(
        &gw.url("/v1/upload/s3"),
        Some("Bearer demo-key"),
        r#"{"filename":"a","contentType":"image/png","size":0}"#,
    )
    .await;
    assert_eq!(s, 400);
    let ctxfy = Seed::load("ctxfy-upload-s3");
    assert_same_shape(&v, ctxfy.error(400), &["field", "message"], "ctxfy400");
    assert_eq!(v["details"][0]["field"], "size");
    let (s, v) = post_json(&gw.url("/v1/upload/s3"), None, "{}").await;
    assert_eq!(s, 401);
    assert_eq!(&v, ctxfy.error(401));

    assert_eq!(origin.count(), 0);
}

/// Bad input for each dialect: its own shape and status, nothing written, nothing proxied.
#[tokio::test]
async fn bad_input_per_dialect() {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts { origin: Some(origin.addr), ..Default::default() });
    let long = "a".repeat(300) + ".png";
    let cases: Vec<(&str, &str, String, u16)> = vec![
        // OctopusX
        ("/api/upload/presign", "Bearer demo-key", r#"{"file_name":"a.png","content_type":5}"#.into(), 400),
        ("/api/upload/presign", "Bearer demo-key", r#"{"file_name":"a.png"}"#.into(), 400),
        (
            "/api/upload/presign",
            "Bearer demo-key",
            r#"{"file_name":"a/../../b.png","content_type":"image/png"}"#.into(),
            400,
        ),
        (
            "/api/upload/presign",
            "Bearer demo-key",
            r#"{"file_name":"a\u0007.png","content_type":"image/png"}"#.into(),
            400,
        ),
        (
            "/api/upload/presign",
            "Bearer demo-key",
            r#"{"file_name":"a.png","content_type":"image/png","expires_in":"9"}"#.into(),
            400,
        ),
        ("/api/upload/presign", "Bearer demo-key", "nope".into(), 400),
        ("/api/upload/presign", "demo-key", r#"{"content_type":"image/png"}"#.into(), 401),
        // memories
        ("/serve/api/v2/upload/signed-url", "demo-key", r#"{}"#.into(), 400),
        ("/serve/api/v2/upload/signed-url", "demo-key", r#"{"original_filename":7}"#.into(), 400),
        ("/serve/api/v2/upload/signed-url", "demo-key", r#"{"original_filename":"evil.html"}"#.into(), 400),
        ("/serve/api/v2/upload/signed-url", "demo-key", format!(r#"{{"original_filename":"{long}"}}"#), 400),
        ("/serve/api/v2/upload/signed-url", "demo-key", r#"{"original_filename":"/abs.mp4"}"#.into(), 400),
        (
            "/serve/api/v2/upload/signed-url",
            "Bearer demo-key",
            r#"{"original_filename":"v.mp4"}"#.into(),
            401,
        ),
        // Ctxfy
        (
            "/v1/upload/s3",
            "Bearer demo-key",
            r#"{"filename":"a","contentType":"image/png","size":-1}"#.into(),
            400,
        ),
        (
            "/v1/upload/s3",
            "Bearer demo-key",
            r#"{"filename":"a","contentType":"image/png","size":104857601}"#.into(),
            400,
        ),
        (
            "/v1/upload/s3",
            "Bearer demo-key",
            r#"{"filename":"a","contentType":"text/html","size":5}"#.into(),
            400,
        ),
        (
            "/v1/upload/s3",
            "Bearer demo-key",
            r#"{"filename":"..","contentType":"image/png","size":5}"#.into(),
            400,
        ),
        ("/v1/upload/s3", "Bearer demo-key", r#"{"filename":"a","size":5}"#.into(), 400),
        (
            "/v1/upload/s3",
            "Bearer demo-key",
            r#"{"filename":"a","contentType":"image/png","size":"5"}"#.into(),
            400,
        ),
        ("/v1/upload/s3", "demo-key", r#"{"filename":"a","contentType":"image/png","size":5}"#.into(), 401),
    ];
    for (path, auth, body, status) in cases {
        let (s, v) = post_json(&gw.url(path), Some(auth), &body).await;
        assert_eq!(s, status, "{path} {body} -> {v}");
        match path {
            "/api/upload/presign" => {
                assert!(v["success"] == false && v["data"].is_null() && v["message"].is_string(), "{v}")
            }
            "/serve/api/v2/upload/signed-url" => {
                assert!(
                    v["failed"] == true
                        && v["success"] == false
                        && v["code"] == status
                        && v["msg"].is_string(),
                    "{v}"
                )
            }
            _ => assert!(v["code"] == status && v["error"].is_string() && v["message"].is_string(), "{v}"),
        }
    }
    // Oversize JSON for each route.
    for path in ["/api/upload/presign", "/serve/api/v2/upload/signed-url", "/v1/upload/s3"] {
        let auth = if path.starts_with("/serve") { "demo-key" } else { "Bearer demo-key" };
        let r = client()
            .post(gw.url(path))
            .header("authorization", auth)
            .body(vec![b' '; 100_000])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{path}");
    }
    // Unknown fields are ignored, as the real APIs do.
    let (s, _) = post_json(
        &gw.url("/v1/upload/s3"),
        Some("Bearer demo-key"),
        r#"{"filename":"a.png","contentType":"image/png","size":5,"extra":{"x":1}}"#,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(origin.count(), 0);
    assert!(gw.stored_files().is_empty());
}

/// Upload through each dialect's URL and read the bytes back.
async fn upload_each_dialect(gw: &Gateway, read_back: impl Fn(&str, &str) -> Vec<u8>) {
    let c = client();
    let bytes: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let n = bytes.len();
    // PUT dialects.
    for (path, body, url_field, key_field) in [
        (
            "/api/v1/files/upload-url",
            json!({"filename":"a.png","content_type":"image/png","file_size":n}),
            "/data/upload_url",
            "/data/key",
        ),
        (
            "/api/upload/presign",
            json!({"file_name":"a.png","content_type":"image/png"}),
            "/data/upload_url",
            "/data/object_key",
        ),
        (
            "/v1/upload/s3",
            json!({"filename":"a.png","contentType":"image/png","size":n}),
            "/uploadUrl",
            "/fileKey",
        ),
    ] {
        let (s, v) = post_json(&gw.url(path), Some("Bearer demo-key"), &body.to_string()).await;
        assert_eq!(s, 200, "{v}");
        let url = v.pointer(url_field).and_then(Value::as_str).unwrap();
        let key = v.pointer(key_field).and_then(Value::as_str).unwrap();
        let r = c.put(url).header("content-type", "image/png").body(bytes.clone()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}: {}", r.text().await.unwrap());
        assert_eq!(read_back(key, path), bytes, "{path}");
    }
    // memories: multipart POST of a `file` field to signed_url, exactly as its page does.
    let (s, v) = post_json(
        &gw.url("/serve/api/v2/upload/signed-url"),
        Some("demo-key"),
        r#"{"original_filename":"video.mp4"}"#,
    )
    .await;
    assert_eq!(s, 200);
    let url = v["data"]["signed_url"].as_str().unwrap();
    let asset = v["data"]["asset_id"].as_str().unwrap();
    let boundary = "----gatewaytestboundary";
    let mut form = Vec::new();
    form.extend_from_slice(
        format!("--{boundary}\r\ncontent-disposition: form-data; name=\"note\"\r\n\r\nignored\r\n")
            .as_bytes(),
    );
    form.extend_from_slice(format!("--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"video.mp4\"\r\ncontent-type: video/mp4\r\n\r\n").as_bytes());
    form.extend_from_slice(&bytes);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    // Missing signature: refused, nothing stored.
    let r = c
        .post(url.split('?').next().unwrap())
        .header("content-type", &ct)
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c.post(url).header("content-type", &ct).body(form).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let key = format!("uploads/user/12/assets/{asset}.mp4");
    assert_eq!(read_back(&key, "memories"), bytes);
}

#[tokio::test]
async fn every_dialect_uploads_to_the_local_store() {
    let gw = Gateway::local();
    let base = gw.url("/files/");
    let objects = gw.data_dir().join("objects");
    upload_each_dialect(&gw, |key, _| std::fs::read(objects.join(key)).unwrap()).await;
    // And the public URLs serve them.
    let mut files = Vec::new();
    walk(&objects, &mut files);
    assert_eq!(files.len(), 4);
    for f in files {
        let key = f.strip_prefix(&objects).unwrap().to_string_lossy().to_string();
        let r = client().get(format!("{base}{key}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap().len(), 40_000);
    }
}

#[tokio::test]
async fn every_dialect_uploads_to_s3s_fs() {
    let s3 = S3sFs::start();
    let gw = Gateway::start(GatewayOpts {
        storage_yaml: Some(s3.storage_yaml()),
        env: s3.env(),
        ..Default::default()
    });
    upload_each_dialect(&gw, |key, _| std::fs::read(s3.object_path(key)).unwrap_or_default()).await;
}
