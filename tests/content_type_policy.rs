//! One content-type policy for every way in, tested with one hostile list
//! (`tests/fixtures/hostile-content-types.json`): the four mints, from-url's override and its
//! source's header, the Companion form POST, memories' multipart and the local PUT. None of
//! them stores a hostile type, and every object served has a valid `Content-Type`, with
//! anything that is not inert media sent as a sandboxed attachment.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};

use common::form::{fields_of, form_body, form_content_type};
use common::*;
use serde_json::{json, Value};

const SECRET: &str = "content-type-policy-test-secret-0123456789";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn hostile() -> Vec<String> {
    let v: Value =
        serde_json::from_str(include_str!("fixtures/hostile-content-types.json")).expect("fixture JSON");
    v["hostile"].as_array().expect("list").iter().map(|s| s.as_str().expect("string").to_owned()).collect()
}

/// The hostile types an HTTP header can carry at all (no CR, LF, NUL or other controls).
fn sendable_in_a_header() -> Vec<String> {
    hostile().into_iter().filter(|t| http::HeaderValue::from_str(t).is_ok() && !t.is_empty()).collect()
}

fn gateway(extra_yaml: &str) -> Gateway {
    Gateway::start(GatewayOpts {
        env: vec![("PRESIGN_GATEWAY_SECRET".into(), SECRET.into())],
        extra_yaml: extra_yaml.into(),
        ..Default::default()
    })
}

fn objects(gw: &Gateway) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    walk(&gw.data_dir().join("objects"), &mut out);
    out
}

/// A valid type by the one grammar: `token/token` with token parameters, nothing else.
fn assert_valid_served_type(ct: &str, what: &str) {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let token = |s: &str| !s.is_empty() && s.bytes().all(tchar);
    let mut parts = ct.split(';');
    let essence = parts.next().unwrap_or("");
    let ok = essence.split_once('/').is_some_and(|(a, b)| token(a) && token(b))
        && parts
            .all(|p| p.trim_start_matches(' ').split_once('=').is_some_and(|(n, v)| token(n) && token(v)));
    assert!(ok, "{what}: served Content-Type {ct:?}");
    let lower = ct.to_ascii_lowercase();
    assert!(!["html", "xml", "script", "xsl"].iter().any(|w| lower.contains(w)), "{what}: {ct:?}");
}

/// GET `url`: the status, the body, and the serving headers checked against the policy.
async fn fetch_served(url: &str, what: &str) -> (String, Vec<u8>) {
    let r = client().get(url).send().await.expect("GET");
    assert_eq!(r.status(), 200, "{what}");
    let h = r.headers().clone();
    let ct = h.get("content-type").and_then(|v| v.to_str().ok()).expect("a Content-Type").to_owned();
    assert_valid_served_type(&ct, what);
    assert_eq!(h.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{what}");
    let media = ["image/", "video/", "audio/"].iter().any(|p| ct.to_ascii_lowercase().starts_with(p));
    let attachment = h.get("content-disposition").is_some_and(|v| v.as_bytes().starts_with(b"attachment"));
    let sandbox = h.get("content-security-policy").is_some_and(|v| v.as_bytes() == b"sandbox");
    assert_eq!((attachment, sandbox), (!media, !media), "{what}: {ct} served inline only if media");
    (ct, r.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn every_mint_refuses_every_hostile_type() {
    let gw = gateway("");
    for ct in hostile() {
        let cases = [
            ("/api/v1/files/upload-url", json!({"filename": "a.png", "content_type": ct, "file_size": 5})),
            ("/api/upload/presign", json!({"file_name": "a.png", "content_type": ct})),
            ("/v1/upload/s3", json!({"filename": "a.png", "contentType": ct, "size": 5})),
        ];
        for (path, body) in cases {
            let (status, v) = post_json(&gw.url(path), Some("Bearer demo-key"), &body.to_string()).await;
            assert_eq!(status, 400, "{path} {ct:?}: {v}");
        }
    }
    // memories takes its type from the file name's extension only.
    let (status, v) = post_json(
        &gw.url("/serve/api/v2/upload/signed-url"),
        Some("demo-key"),
        r#"{"original_filename":"a.html"}"#,
    )
    .await;
    assert_eq!(status, 400, "{v}");
}

/// A source on 127.0.0.2 that answers `/ct/<index>` with a PNG under the sendable hostile
/// type of that index, and anything else as a plain `image/png`.
fn source(types: Vec<String>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.2:0").expect("127.0.0.2 must be bindable (Linux loopback)");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let ct = path
                .strip_prefix("/ct/")
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| types.get(i).cloned())
                .unwrap_or_else(|| "image/png".into());
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                PNG.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(PNG);
        }
    });
    addr
}

#[tokio::test]
async fn from_url_refuses_hostile_overrides_and_keeps_only_a_media_essence() {
    let sendable = sendable_in_a_header();
    let src = source(sendable.clone());
    let gw = gateway("from_url:\n  allow_networks: [127.0.0.2/32]\n");
    let from_url = gw.url("/api/v1/files/from-url");
    for ct in hostile() {
        let body = json!({"url": format!("http://{src}/plain.png"), "content_type": ct}).to_string();
        let (status, v) = post_json(&from_url, Some("Bearer demo-key"), &body).await;
        assert_eq!(status, 400, "override {ct:?}: {v}");
    }
    assert!(objects(&gw).is_empty(), "a refused override stores nothing");
    // The source's own header: only its essence counts, and it must be media.
    for (i, ct) in sendable.iter().enumerate() {
        let body = json!({"url": format!("http://{src}/ct/{i}")}).to_string();
        let (status, v) = post_json(&from_url, Some("Bearer demo-key"), &body).await;
        match status {
            200 => {
                let stored = v["data"]["content_type"].as_str().expect("content_type");
                assert_valid_served_type(stored, ct);
                let (served, bytes) = fetch_served(v["data"]["url"].as_str().expect("url"), ct).await;
                assert_eq!((served.as_str(), bytes.as_slice()), (stored, PNG), "source type {ct:?}");
            }
            400 => {}
            other => panic!("source type {ct:?}: {other} {v}"),
        }
    }
}

#[tokio::test]
async fn the_form_post_never_stores_a_hostile_type() {
    let gw = gateway("");
    let (status, v) = post_json(&gw.url("/v1/upload-sessions"), Some("Bearer demo-key"), "{}").await;
    assert_eq!(status, 201, "{v}");
    let endpoint = v["companion_endpoint"].as_str().expect("endpoint").to_owned();
    let params = |ct: &str| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("filename", "a.png")
            .append_pair("type", ct)
            .finish();
        format!("{endpoint}/s3/params?{q}")
    };
    for ct in hostile() {
        let r = client().get(params(&ct)).send().await.expect("params");
        assert!(r.status().is_client_error(), "params {ct:?}: {}", r.status());
    }
    // A good policy with its Content-Type field swapped for a hostile one.
    let r = client().get(params("image/png")).send().await.expect("params");
    let good: Value = r.json().await.expect("params JSON");
    let url = good["url"].as_str().expect("url").to_owned();
    for ct in hostile().into_iter().filter(|t| !t.contains(['\r', '\n'])) {
        let fields: Vec<(String, String)> = fields_of(&good)
            .into_iter()
            .map(|(n, v)| if n.eq_ignore_ascii_case("content-type") { (n, ct.clone()) } else { (n, v) })
            .collect();
        let r = client()
            .post(&url)
            .header("content-type", form_content_type())
            .body(form_body(&fields, "a.png", "image/png", PNG))
            .send()
            .await
            .expect("POST");
        assert!(r.status().is_client_error(), "form Content-Type {ct:?}: {}", r.status());
    }
    assert!(objects(&gw).is_empty());
}

#[tokio::test]
async fn memories_multipart_types_come_from_the_key() {
    let gw = gateway("");
    for ct in hostile().into_iter().filter(|t| !t.contains(['\r', '\n'])) {
        let (status, v) = post_json(
            &gw.url("/serve/api/v2/upload/signed-url"),
            Some("demo-key"),
            r#"{"original_filename":"clip.mp4"}"#,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let signed = v["data"]["signed_url"].as_str().expect("signed_url").to_owned();
        let mut body = Vec::new();
        body.extend_from_slice(
            b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n",
        );
        body.extend_from_slice(format!("Content-Type: {ct}\r\n\r\n").as_bytes());
        body.extend_from_slice(b"mp4-bytes\r\n--B--\r\n");
        let r = client()
            .post(&signed)
            .header("content-type", "multipart/form-data; boundary=B")
            .body(body)
            .send()
            .await
            .expect("POST");
        match r.status().as_u16() {
            204 => {
                let public = signed.split('?').next().expect("path");
                let (served, bytes) = fetch_served(public, &ct).await;
                assert_eq!((served.as_str(), bytes.as_slice()), ("video/mp4", &b"mp4-bytes"[..]), "{ct:?}");
            }
            // A part header with a control character is not a form.
            400 => assert!(ct.chars().any(|c| c.is_control()), "{ct:?} refused"),
            other => panic!("{ct:?}: {other}"),
        }
    }
}

#[tokio::test]
async fn the_local_put_refuses_hostile_types_even_when_signed() {
    let gw = gateway("");
    // HTTP parsing trims a header value's own leading and trailing whitespace, so those
    // arrive as a plain type.
    for (i, ct) in sendable_in_a_header().into_iter().filter(|t| t.trim() == t).enumerate() {
        let key = format!("uploads/user/12/put-{i}.bin");
        let url = gw.local_put_url(SECRET, &key, &ct);
        let r = client().put(&url).header("content-type", &ct).body("data").send().await.expect("PUT");
        assert_eq!(r.status(), 400, "{ct:?}");
        assert!(r.text().await.expect("body").contains("InvalidArgument"), "{ct:?}");
    }
    assert!(objects(&gw).is_empty());
    // Ctxfy's lone-token example type is signed as sent and stored as octet-stream.
    let url = gw.local_put_url(SECRET, "uploads/user/12/lone.bin", "example_string");
    let r =
        client().put(&url).header("content-type", "example_string").body("data").send().await.expect("PUT");
    assert_eq!(r.status(), 200);
    let (served, _) = fetch_served(&gw.url("/files/uploads/user/12/lone.bin"), "lone token").await;
    assert_eq!(served, "application/octet-stream");
}

#[tokio::test]
async fn objects_are_served_by_the_policy() {
    let gw = gateway("");
    for (i, (ct, inline)) in [
        ("image/png", true),
        ("video/mp4; codecs=avc1", true),
        ("text/plain; charset=utf-8", false),
        ("application/pdf", false),
        ("application/octet-stream", false),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("uploads/user/12/served-{i}.bin");
        let r = client()
            .put(gw.local_put_url(SECRET, &key, ct))
            .header("content-type", ct)
            .body("data")
            .send()
            .await
            .expect("PUT");
        assert_eq!(r.status(), 200, "{ct}");
        let (served, _) = fetch_served(&gw.url(&format!("/files/{key}")), ct).await;
        assert_eq!(served, ct);
        let media = ["image/", "video/"].iter().any(|p| served.starts_with(p));
        assert_eq!(media, inline, "{ct}");
    }
    // A metadata file that no longer passes the policy (an older build's, or edited by hand)
    // is served as a sandboxed octet-stream, never verbatim.
    let key = "uploads/user/12/served-0.bin";
    let meta = gw.data_dir().join("meta").join(format!("{key}.json"));
    let mut m: Value = serde_json::from_slice(&std::fs::read(&meta).expect("meta")).expect("meta JSON");
    for bad in ["text/html", "image/png\r\nX-Evil: 1", "image/png;<script>", ""] {
        m["content_type"] = json!(bad);
        std::fs::write(&meta, m.to_string()).expect("write meta");
        let (served, bytes) = fetch_served(&gw.url(&format!("/files/{key}")), bad).await;
        assert_eq!(
            (served.as_str(), bytes.as_slice()),
            ("application/octet-stream", &b"data"[..]),
            "{bad:?}"
        );
    }
}
