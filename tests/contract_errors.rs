//! Drop-in contracts, errors: every dialect's error envelope for a bad request and for missing
//! auth, as its page shows it (Ctxfy's 400 and 401 are compared with its page's examples in
//! `tests/fixtures/seeds/`), and bad input per dialect gets its own shape and status with
//! nothing written and nothing proxied.

mod common;

use common::*;
use serde_json::{json, Value};

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
