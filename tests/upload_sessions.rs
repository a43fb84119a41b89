//! Browser upload sessions against the real gateway: `POST /v1/upload-sessions` (its
//! contract and caps), the session token on the Companion routes (edited, expired), and the
//! form upload `GET /s3/params` hands out: accepted as signed, refused with S3's code and
//! nothing stored for every violation, on the local store. boto3's own presigned POST is
//! accepted by the local store too.

mod common;

use common::form::{fields_of, post_form};
use common::*;
use presign_gateway::sigv4::{Credentials, PostPolicyRequest, Signer};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The gateway's secret in these tests, so the test can sign as the gateway does.
const SECRET: &str = "upload-sessions-test-secret-0123456789";

fn gateway() -> Gateway {
    Gateway::start(GatewayOpts {
        env: vec![("PRESIGN_GATEWAY_SECRET".into(), SECRET.into())],
        extra_yaml: "upload_sessions:\n  max_file_size: 1000000\n  max_files: 50\n".into(),
        ..Default::default()
    })
}

async fn open_session(gw: &Gateway, auth: Option<&str>, body: &Value) -> (u16, Value) {
    post_json(&gw.url("/v1/upload-sessions"), auth, &body.to_string()).await
}

/// A session's companion endpoint; asserts the 201.
async fn endpoint(gw: &Gateway, body: Value) -> String {
    let (status, v) = open_session(gw, Some("Bearer demo-key"), &body).await;
    assert_eq!(status, 201, "{v}");
    v["companion_endpoint"].as_str().expect("companion_endpoint").to_owned()
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = client().get(url).send().await.expect("GET");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

async fn params(endpoint: &str, filename: &str, content_type: &str) -> (u16, Value) {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("filename", filename)
        .append_pair("type", content_type)
        .append_pair("metadata[name]", filename)
        .finish();
    get_json(&format!("{endpoint}/s3/params?{q}")).await
}

fn objects(gw: &Gateway) -> usize {
    let mut out = Vec::new();
    walk(&gw.data_dir().join("objects"), &mut out);
    out.len()
}

#[tokio::test]
async fn a_session_answers_the_fixed_contract() {
    let gw = gateway();
    let before = OffsetDateTime::now_utc();
    let (status, v) = open_session(&gw, Some("Bearer demo-key"), &json!({})).await;
    assert_eq!(status, 201, "{v}");
    let token = v["token"].as_str().expect("token");
    assert_eq!(v["companion_endpoint"], format!("http://{}/uppy/{token}", gw.addr));
    let expires_at = v["expires_at"].as_str().expect("expires_at");
    let expires_at = OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("expires_at {expires_at:?} is not RFC 3339: {e}"));
    let secs = (expires_at - before).whole_seconds();
    assert!((3599..=3601).contains(&secs), "default expiry is the 3600 s cap, got {secs}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(3), "{v}");

    let (status, v) = open_session(
        &gw,
        Some("Bearer demo-key"),
        &json!({"max_file_size": 10, "allowed_types": ["image/*", "video/mp4"], "max_files": 2, "expires_in": 60}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let secs = (OffsetDateTime::parse(
        v["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
        - before)
        .whole_seconds();
    assert!((59..=61).contains(&secs), "{secs}");
}

#[tokio::test]
async fn session_values_over_their_caps_name_the_field() {
    let gw = gateway();
    for (body, field) in [
        (json!({"max_file_size": 1_000_001}), "max_file_size"),
        (json!({"max_file_size": 0}), "max_file_size"),
        (json!({"max_file_size": "10"}), "max_file_size"),
        (json!({"max_files": 51}), "max_files"),
        (json!({"max_files": -1}), "max_files"),
        (json!({"expires_in": 3601}), "expires_in"),
        (json!({"expires_in": 1.5}), "expires_in"),
        (json!({"allowed_types": "image/*"}), "allowed_types"),
        (json!({"allowed_types": ["text/html"]}), "allowed_types"),
        (json!({"allowed_types": ["image/*;x=1"]}), "allowed_types"),
        (json!({"allowed_types": ["*/*"]}), "allowed_types"),
        (json!({"allowed_types": [7]}), "allowed_types"),
    ] {
        let (status, v) = open_session(&gw, Some("Bearer demo-key"), &body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["field"], field, "{body}: {v}");
        assert!(v["error"].as_str().is_some_and(|e| e.contains(field)), "{body}: {v}");
    }
}

#[tokio::test]
async fn sessions_need_the_api_key_and_a_json_object() {
    let gw = gateway();
    for auth in [None, Some("Bearer wrong-key"), Some("demo-key")] {
        let (status, v) = open_session(&gw, auth, &json!({})).await;
        assert_eq!(status, 401, "{auth:?}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let (status, v) = post_json(&gw.url("/v1/upload-sessions"), Some("Bearer demo-key"), "{not json").await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = post_json(&gw.url("/v1/upload-sessions"), Some("Bearer demo-key"), "[1,2]").await;
    assert_eq!(status, 400, "{v}");
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000));
    let (status, v) = post_json(&gw.url("/v1/upload-sessions"), Some("Bearer demo-key"), &huge).await;
    assert_eq!(status, 413, "{v}");
    let r = client()
        .get(gw.url("/v1/upload-sessions"))
        .header("authorization", "Bearer demo-key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn edited_and_expired_tokens_get_401_in_companions_shape() {
    let gw = gateway();
    let ep = endpoint(&gw, json!({})).await;
    let (status, _) = params(&ep, "a.png", "image/png").await;
    assert_eq!(status, 200);
    // One character of the grant changed: the tag no longer matches.
    let (prefix, token) = ep.rsplit_once('/').unwrap();
    let mut bytes = token.as_bytes().to_vec();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let edited = format!("{prefix}/{}", String::from_utf8(bytes).unwrap());
    for url in [edited.clone(), format!("{prefix}/garbage"), format!("{prefix}/")] {
        let (status, v) = params(&url, "a.png", "image/png").await;
        assert_eq!(status, 401, "{url}: {v}");
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "{{error}} only: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    // A token signed with another secret is not ours either.
    let other = presign_gateway::session_token::SessionTokens::new("some-other-secret-of-32-characters!!");
    let grant = presign_gateway::session_token::SessionGrant {
        session_id: "0".repeat(24),
        user_id: 12,
        key_id: "demo".into(),
        max_file_size: 10,
        allowed_types: vec![],
        max_files: 1,
        expires_at: i64::MAX,
    };
    let (status, _) = params(&format!("{prefix}/{}", other.issue(&grant)), "a.png", "image/png").await;
    assert_eq!(status, 401);
    // Ours, but expired.
    let ours = presign_gateway::session_token::SessionTokens::new(SECRET);
    let expired = presign_gateway::session_token::SessionGrant {
        expires_at: OffsetDateTime::now_utc().unix_timestamp() - 1,
        ..grant
    };
    let (status, v) = params(&format!("{prefix}/{}", ours.issue(&expired)), "a.png", "image/png").await;
    assert_eq!(status, 401, "{v}");
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
}

#[tokio::test]
async fn session_limits_hold_on_params() {
    let gw = gateway();
    let ep = endpoint(&gw, json!({"allowed_types": ["image/*"], "max_files": 2})).await;
    let (status, v) = params(&ep, "a.mp4", "video/mp4").await;
    assert_eq!(status, 403, "type outside the session: {v}");
    for bad in ["../a.png", "a/b.png", "", "a%2f.png", "x\u{1}.png"] {
        let (status, v) = params(&ep, bad, "image/png").await;
        assert_eq!(status, 400, "{bad:?}: {v}");
    }
    let (status, v) = params(&ep, "a.png", "text/html").await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(params(&ep, "a.png", "image/png").await.0, 200);
    assert_eq!(params(&ep, "b.png", "image/png").await.0, 200);
    let (status, v) = params(&ep, "c.png", "image/png").await;
    assert_eq!(status, 403, "a third file in a 2-file session: {v}");
    assert_eq!(objects(&gw), 0);
}

#[tokio::test]
async fn a_form_upload_lands_as_s3_answers_it() {
    let gw = gateway();
    let ep = endpoint(&gw, json!({"max_file_size": 1000})).await;
    let (status, p) = params(&ep, "cover photo.png", "image/png").await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["method"], "POST");
    let url = p["url"].as_str().unwrap();
    assert_eq!(url, format!("http://{}/files/", gw.addr), "the bucket URL, with its trailing slash");
    assert!(p["expires"].as_u64().is_some_and(|e| e > 0 && e <= 3600), "{p}");
    let key = p["fields"]["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("uploads/user/12/uppy/") && key.ends_with("-cover-photo.png"), "{key}");

    let file: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (status, headers, body) = post_form(url, &fields_of(&p), &file).await;
    assert_eq!(status, 201, "{body}");
    let location = format!("{url}{key}");
    assert!(body.contains(&format!("<Location>{location}</Location>")), "{body}");
    assert!(body.contains("<Bucket>files</Bucket>") && body.contains(&format!("<Key>{key}</Key>")), "{body}");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(body.contains(&format!("<ETag>{}</ETag>", etag.replace('"', "&quot;"))), "{body}");

    let r = client().get(&location).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &file[..]);

    // success_action_status is one of the signed fields (the 204 answer without it is
    // checked with boto3's form below).
    let (_, p2) = params(&ep, "b.png", "image/png").await;
    let fields: Vec<(String, String)> =
        fields_of(&p2).into_iter().filter(|(n, _)| n != "success_action_status").collect();
    let (status, _, body) = post_form(url, &fields, b"abc").await;
    assert_eq!(status, 403, "success_action_status is signed, so dropping it breaks the policy: {body}");
    assert_eq!(objects(&gw), 1);
}

/// Sign a form as the gateway would, at another time or for other values.
fn own_form(
    key: &str,
    content_type: &str,
    max: u64,
    expires_in: u32,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let signer = Signer::new(Credentials::new("presign-gateway", SECRET, None), "us-east-1", "s3");
    signer
        .presign_post(
            &PostPolicyRequest {
                bucket: "files",
                key,
                content_type,
                content_length_range: (1, max),
                expires_in,
                fields: &[],
            },
            now,
        )
        .fields
}

fn with(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut f = fields.to_vec();
    match f.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        Some(slot) => slot.1 = value.to_owned(),
        None => f.push((name.to_owned(), value.to_owned())),
    }
    f
}

/// What a case changes, its form fields, its file, and the status and S3 code it must get.
type Case<'a> = (&'a str, Vec<(String, String)>, Vec<u8>, u16, &'a str);

#[tokio::test]
async fn every_policy_violation_is_refused_and_stores_nothing() {
    let gw = gateway();
    let ep = endpoint(&gw, json!({"max_file_size": 100})).await;
    let (_, p) = params(&ep, "a.png", "image/png").await;
    let url = p["url"].as_str().unwrap().to_owned();
    let good = fields_of(&p);
    let key = p["fields"]["key"].as_str().unwrap().to_owned();
    let sig = good.iter().find(|(n, _)| n == "x-amz-signature").unwrap().1.clone();
    let flipped = format!("{}{}", if sig.starts_with('0') { '1' } else { '0' }, &sig[1..]);
    let policy = good.iter().find(|(n, _)| n == "policy").unwrap().1.clone();
    let mut doc: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &policy).unwrap(),
    )
    .unwrap();
    doc["expiration"] = json!("2099-01-01T00:00:00.000Z");
    let edited_policy = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, doc.to_string());
    let past = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let cases: Vec<Case> = vec![
        ("file over content-length-range", good.clone(), vec![1; 101], 400, "EntityTooLarge"),
        ("another key", with(&good, "key", "uploads/user/12/other.png"), vec![1; 10], 403, "AccessDenied"),
        ("another user's key", with(&good, "key", "uploads/user/13/a.png"), vec![1; 10], 403, "AccessDenied"),
        ("another type", with(&good, "Content-Type", "image/gif"), vec![1; 10], 403, "AccessDenied"),
        (
            "tampered signature",
            with(&good, "x-amz-signature", &flipped),
            vec![1; 10],
            403,
            "SignatureDoesNotMatch",
        ),
        ("edited policy", with(&good, "policy", &edited_policy), vec![1; 10], 403, "SignatureDoesNotMatch"),
        ("an unsigned field", with(&good, "acl", "public-read"), vec![1; 10], 403, "AccessDenied"),
        (
            "no policy",
            good.iter().filter(|(n, _)| n != "policy").cloned().collect(),
            vec![1; 10],
            400,
            "InvalidArgument",
        ),
        ("expired policy", own_form(&key, "image/png", 100, 60, past), vec![1; 10], 403, "AccessDenied"),
        (
            "path traversal",
            own_form("uploads/../../etc/x", "image/png", 100, 60, OffsetDateTime::now_utc()),
            vec![1; 10],
            400,
            "InvalidArgument",
        ),
        (
            "active content type",
            own_form(&key, "text/html", 100, 60, OffsetDateTime::now_utc()),
            vec![1; 10],
            400,
            "InvalidArgument",
        ),
        (
            "empty file under the range's minimum",
            own_form(&key, "image/png", 100, 60, OffsetDateTime::now_utc()),
            vec![],
            400,
            "EntityTooSmall",
        ),
    ];
    for (what, fields, file, status, code) in cases {
        let (got, _, body) = post_form(&url, &fields, &file).await;
        assert_eq!(got, status, "{what}: {body}");
        assert!(body.contains(&format!("<Code>{code}</Code>")), "{what}: {body}");
    }
    // The signed fields, but no file.
    let mut no_file = String::new();
    for (n, v) in &good {
        no_file.push_str(&format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n",
            b = common::form::BOUNDARY
        ));
    }
    no_file.push_str(&format!("--{}--\r\n", common::form::BOUNDARY));
    let r = client()
        .post(&url)
        .header("content-type", common::form::form_content_type())
        .body(no_file)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("<Code>InvalidArgument</Code>"));
    // Not multipart, and a cut-off form.
    let r = client().post(&url).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body = common::form::form_body(&good, "a.png", "image/png", &[1; 10]);
    let r = client()
        .post(&url)
        .header("content-type", common::form::form_content_type())
        .body(body[..body.len() - 30].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a form cut off before its end");
    assert!(gw.stored_files().is_empty(), "nothing stored, no temp file left: {:?}", gw.stored_files());

    // And the good form still works once.
    let (status, _, body) = post_form(&url, &good, &[7; 100]).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(objects(&gw), 1);
}

#[tokio::test]
async fn boto3_presigned_post_is_accepted_by_the_local_store() {
    let gw = gateway();
    let key = "uploads/user/12/boto3/cat.png";
    let endpoint = format!("http://{}", gw.addr);
    let out = common::boto3::boto3_reference(
        &["post", &endpoint, "files", key, "image/png", "64"],
        "presign-gateway",
        SECRET,
    );
    let post: Value = serde_json::from_str(&out).expect("boto3 JSON");
    let url = post["url"].as_str().unwrap();
    assert_eq!(url, format!("http://{}/files", gw.addr), "boto3's path-style bucket URL");
    let fields = fields_of(&post);
    let (status, _, body) = post_form(url, &fields, &[3; 64]).await;
    assert_eq!(status, 204, "{body}");
    let r = client().get(gw.url(&format!("/files/{key}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[3u8; 64][..]);
    // boto3's own size condition is enforced.
    let (status, _, body) = post_form(url, &fields, &[3; 65]).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_refused_companion_call_says_why_in_its_body_and_the_log() {
    // The config's own log level (info), as an operator runs it.
    let gw = Gateway::start(GatewayOpts {
        env: vec![("PRESIGN_GATEWAY_SECRET".into(), SECRET.into())],
        no_rust_log: true,
        ..Default::default()
    });
    let ep = endpoint(&gw, json!({"allowed_types": ["image/*"]})).await;
    let r = client().get(format!("{ep}/s3/params?filename=a.mp4&type=video%2Fmp4")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    let reason = body["error"].as_str().unwrap().to_owned();
    assert!(reason.contains("not allowed in this upload session"), "{reason}");
    // Uppy shows only the status text, so the operator finds the reason by request id.
    wait_until("the refusal in the log", std::time::Duration::from_secs(5), || {
        gw.log().lines().any(|l| l.contains(&rid) && l.contains(&reason))
    });
}
