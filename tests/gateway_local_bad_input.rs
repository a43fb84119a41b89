//! Bad input on the API Mall mint route gets API Mall's error envelope and never reaches the
//! origin or the disk, one theme per test: auth, malformed JSON, missing fields, wrong types,
//! out-of-range values, unsupported content types (with the page's own error example from
//! `tests/fixtures/seeds/`), unsafe filenames, bad UTF-8, huge bodies, and the wrong method.

mod common;

use common::*;
use serde_json::json;

/// A gateway in front of an echo origin, so that any request that leaks through is counted.
fn gateway_with_origin() -> (Gateway, Origin) {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts { origin: Some(origin.addr), ..Default::default() });
    (gw, origin)
}

/// Each body is refused with `status` and API Mall's error envelope carrying `code`.
async fn assert_refused(gw: &Gateway, auth: Option<&str>, bodies: &[String], status: u16, code: &str) {
    for body in bodies {
        let (s, v) = post_json(&gw.url(MINT), auth, body).await;
        assert_eq!(s, status, "{body} -> {v}");
        assert_eq!(v["success"], false, "{v}");
        assert_eq!(v["error"]["code"], code, "{body} -> {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(v["error"]["details"].is_object());
        assert!(v["request_id"].as_str().unwrap().starts_with("req_"));
    }
}

/// Bad JSON bodies with the demo key: 400 `invalid_request`.
async fn assert_invalid(gw: &Gateway, bodies: &[String]) {
    assert_refused(gw, Some("Bearer demo-key"), bodies, 400, "invalid_request").await;
}

/// Nothing reached the origin and nothing was written.
fn assert_untouched(gw: &Gateway, origin: &Origin) {
    assert_eq!(origin.count(), 0, "no upload-route request reached the origin");
    assert!(gw.stored_files().is_empty(), "{:?}", gw.stored_files());
}

fn ok_body() -> String {
    json!({"filename":"a.png","content_type":"image/png","file_size":10}).to_string()
}

#[tokio::test]
async fn missing_or_wrong_key_is_401() {
    let (gw, origin) = gateway_with_origin();
    for auth in [None, Some("Bearer wrong"), Some("demo-key")] {
        assert_refused(&gw, auth, &[ok_body()], 401, "unauthorized").await;
    }
    assert_untouched(&gw, &origin);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let (gw, origin) = gateway_with_origin();
    assert_invalid(&gw, &["{not json".into(), "[1,2]".into(), "".into()]).await;
    assert_untouched(&gw, &origin);
}

#[tokio::test]
async fn missing_fields_are_400() {
    let (gw, origin) = gateway_with_origin();
    assert_invalid(&gw, &[json!({"content_type":"image/png","file_size":10}).to_string()]).await;
    assert_untouched(&gw, &origin);
}

#[tokio::test]
async fn wrong_types_are_400() {
    let (gw, origin) = gateway_with_origin();
    assert_invalid(
        &gw,
        &[
            json!({"filename":5,"content_type":"image/png","file_size":10}).to_string(),
            json!({"filename":"a.png","content_type":"image/png","file_size":"10"}).to_string(),
            json!({"filename":"a.png","content_type":"image/png","file_size":1.5}).to_string(),
        ],
    )
    .await;
    assert_untouched(&gw, &origin);
}

#[tokio::test]
async fn sizes_and_expiries_out_of_range_are_400() {
    let (gw, origin) = gateway_with_origin();
    assert_invalid(
        &gw,
        &[
            json!({"filename":"a.png","content_type":"image/png","file_size":0}).to_string(),
            json!({"filename":"a.png","content_type":"image/png","file_size":-5}).to_string(),
            json!({"filename":"a.png","content_type":"image/png","file_size":104857601}).to_string(),
            json!({"filename":"a.png","content_type":"image/png","file_size":10,"expires_in":59}).to_string(),
            json!({"filename":"a.png","content_type":"image/png","file_size":10,"expires_in":3601})
                .to_string(),
        ],
    )
    .await;
    assert_untouched(&gw, &origin);
}

#[tokio::test]
async fn unsupported_content_type_is_400_as_the_page_shows() {
    let (gw, origin) = gateway_with_origin();
    assert_invalid(
        &gw,
        &[json!({"filename":"a.pdf","content_type":"application/pdf","file_size":10}).to_string()],
    )
    .await;
    // The page's own error example, byte for byte in shape.
    let (_, v) = post_json(
        &gw.url(MINT),
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
    assert_untouched(&gw, &origin);
}

#[tokio::test]
async fn unsafe_filenames_are_400() {
    let (gw, origin) = gateway_with_origin();
    let long_name = format!("{}.png", "a".repeat(300));
    assert_invalid(
        &gw,
        &[
            // Path traversal.
            json!({"filename":"../../etc/passwd","content_type":"image/png","file_size":10}).to_string(),
            // A NUL byte.
            json!({"filename":"a\u{0}b.png","content_type":"image/png","file_size":10}).to_string(),
            // Longer than a key segment may be.
            json!({"filename":long_name,"content_type":"image/png","file_size":10}).to_string(),
        ],
    )
    .await;
    assert_untouched(&gw, &origin);
}

#[tokio::test]
async fn bad_utf8_is_400() {
    let (gw, origin) = gateway_with_origin();
    // A lone surrogate escape (`\udc00`) in the filename: no UTF-8 string can hold it.
    assert_invalid(&gw, &["{\"filename\":\"a\u{ff}.png\"".replace('\u{ff}', "\\udc00")]).await;
    // Bad UTF-8 bytes in the body.
    let r = client()
        .post(gw.url(MINT))
        .header("authorization", "Bearer demo-key")
        .body(b"{\"filename\":\"\xff\xfe.png\",\"content_type\":\"image/png\",\"file_size\":1}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_untouched(&gw, &origin);
}

#[tokio::test]
async fn huge_bodies_are_413() {
    let (gw, origin) = gateway_with_origin();
    // Declared.
    let big = vec![b' '; 200 * 1024];
    let r = client()
        .post(gw.url(MINT))
        .header("authorization", "Bearer demo-key")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Chunked without a length.
    let stream = futures_util::stream::iter(
        (0..50).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 8192]))),
    );
    let r = client()
        .post(gw.url(MINT))
        .header("authorization", "Bearer demo-key")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");
    assert_untouched(&gw, &origin);
}

#[tokio::test]
async fn wrong_method_is_405_and_not_proxied() {
    let (gw, origin) = gateway_with_origin();
    // Answered here, not proxied.
    let r = client().get(gw.url(MINT)).header("authorization", "Bearer demo-key").send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_untouched(&gw, &origin);
}
