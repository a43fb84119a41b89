//! The embedded default refuses uploads without leaving a file behind: another type, size,
//! signature or path than the URL signed, an expired URL, a client that vanishes mid-body, and
//! a disk that fills up mid-upload (no object, no temp file).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn wrong_type_size_or_signature_is_refused_and_nothing_is_written() {
    let gw = Gateway::local();
    let v = mint(&gw, json!({"filename":"x.png","content_type":"image/png","file_size":10})).await;
    let url = v["data"]["upload_url"].as_str().unwrap().to_string();
    let public = v["data"]["public_url"].as_str().unwrap().to_string();
    let c = client();

    let r = c.put(&url).header("content-type", "image/jpeg").body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(body.contains("<Code>SignatureDoesNotMatch</Code>"), "{body}");

    let r = c.put(&url).header("content-type", "image/png").body(vec![1u8; 11]).send().await.unwrap();
    assert_eq!(r.status(), 403, "another size is refused by the signature");

    let tampered = {
        let i = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
        let mut t = url.clone();
        let c0 = if &url[i..i + 1] == "0" { "1" } else { "0" };
        t.replace_range(i..i + 1, c0);
        t
    };
    let r = c.put(&tampered).header("content-type", "image/png").body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(r.status(), 403);

    let unsigned = url.split('?').next().unwrap().to_string();
    let r = c.put(&unsigned).header("content-type", "image/png").body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("AccessDenied"));

    // A signed URL for another key cannot be replayed on a different path.
    let other = url.replacen("/files/uploads/user/12/", "/files/uploads/user/13/", 1);
    let r = c.put(&other).header("content-type", "image/png").body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(r.status(), 403);

    assert_eq!(c.get(&public).send().await.unwrap().status(), 404);
    assert!(gw.stored_files().is_empty(), "{:?}", gw.stored_files());
}

#[tokio::test]
async fn expired_url_is_refused() {
    use presign_gateway::sigv4::{Credentials, PresignRequest, Signer};
    let gw = Gateway::local();
    // Sign with the gateway's own key, an hour in the past.
    let secret = std::fs::read_to_string(gw.data_dir().join(".gateway/signing.key")).unwrap();
    let signer = Signer::new(Credentials::new("presign-gateway", secret.trim(), None), "us-east-1", "s3");
    let host = gw.addr.to_string();
    let when = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let url = signer.presign_url(
        &PresignRequest {
            method: "PUT",
            scheme: "http",
            host: &host,
            path: "/files/uploads/user/12/old.png",
            expires_in: 60,
            headers: &[],
        },
        when,
    );
    let r = client().put(&url).body(vec![1u8; 4]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(body.contains("<Code>AccessDenied</Code>") && body.contains("Request has expired"), "{body}");
    // The same signer, now, is accepted: the refusal above was the expiry.
    let fresh = signer.presign_url(
        &PresignRequest {
            method: "PUT",
            scheme: "http",
            host: &host,
            path: "/files/uploads/user/12/new.png",
            expires_in: 60,
            headers: &[],
        },
        time::OffsetDateTime::now_utc(),
    );
    assert_eq!(client().put(&fresh).body(vec![1u8; 4]).send().await.unwrap().status(), 200);
    assert!(gw.stored_files().iter().all(|p| !p.ends_with("old.png")));
}

#[tokio::test]
async fn client_disconnect_mid_body_leaves_nothing() {
    let gw = Gateway::local();
    // Larger than a spool's 1 MiB write buffer, so the first bytes reach the temp file.
    let v = mint(&gw, json!({"filename":"big.png","content_type":"image/png","file_size":3_000_000})).await;
    let url = url::Url::parse(v["data"]["upload_url"].as_str().unwrap()).unwrap();
    let target = format!("{}?{}", url.path(), url.query().unwrap());
    let head = format!(
        "PUT {target} HTTP/1.1\r\nhost: {}\r\ncontent-type: image/png\r\ncontent-length: 3000000\r\n\r\n",
        gw.addr
    );
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&vec![7u8; 1_500_000]).unwrap();
        s.flush().unwrap();
        // Vanish once the gateway is spooling the first part (its temp file has bytes).
        wait_until("the gateway to spool the first part", Duration::from_secs(10), || gw.spooling());
    }
    // Poll until the gateway has noticed and cleaned up (bounded).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let files = gw.stored_files();
        if files.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "left behind: {files:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(client().get(v["data"]["public_url"].as_str().unwrap()).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn full_disk_mid_upload_leaves_nothing() {
    // 1 MiB file-size limit: the spool write fails with EFBIG part way, as on a full disk.
    let gw = Gateway::start(GatewayOpts { file_size_limit_kb: Some(1024), ..Default::default() });
    let size = 3 * 1024 * 1024;
    let v = mint(&gw, json!({"filename":"big.mp4","content_type":"video/mp4","file_size":size})).await;
    let r = client()
        .put(v["data"]["upload_url"].as_str().unwrap())
        .header("content-type", "video/mp4")
        .body(vec![5u8; size])
        .send()
        .await;
    // The gateway answers 500 InternalError (or closes if the client is still sending).
    if let Ok(r) = r {
        assert_eq!(r.status(), 500);
        assert!(r.text().await.unwrap().contains("InternalError"));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !gw.stored_files().is_empty() {
        assert!(std::time::Instant::now() < deadline, "left behind: {:?}", gw.stored_files());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(client().get(v["data"]["public_url"].as_str().unwrap()).send().await.unwrap().status(), 404);
    // A small upload still works: the process survived the failed write.
    let v = mint(&gw, json!({"filename":"small.png","content_type":"image/png","file_size":4})).await;
    let r = client()
        .put(v["data"]["upload_url"].as_str().unwrap())
        .header("content-type", "image/png")
        .body("tiny")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
