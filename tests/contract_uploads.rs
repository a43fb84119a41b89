//! Drop-in contracts, uploads: the URL each dialect mints uploads as its page says (PUT, or
//! memories' multipart POST of a `file` field), on the local store and on a real s3s-fs, and
//! the bytes read back are the bytes sent.

mod common;

use common::*;
use serde_json::Value;

/// Upload through each dialect's URL and read the bytes back.
async fn upload_each_dialect(gw: &Gateway, read_back: impl Fn(&str, &str) -> Vec<u8>) {
    let c = client();
    let bytes: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let n = bytes.len();
    // PUT dialects.
    for (path, body, url_field, key_field) in common::form::put_dialect_mints(n) {
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
