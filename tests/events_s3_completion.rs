//! The completion route against a real s3s-fs: a presigned PUT goes straight to the bucket,
//! then `POST {mint path}/complete` makes the gateway HEAD the object and record its event.
//! A missing object, a wrong size or type, a key outside the caller's namespace each get
//! their own answer in the dialect's envelope, and no event.

mod common;

use std::time::Duration;

use common::app::{events_env, events_yaml, metric, metrics_text, wait_app, App};
use common::*;
use serde_json::json;

const CTXFY_COMPLETE: &str = "/v1/upload/s3/complete";
const APIMALL_COMPLETE: &str = "/api/v1/files/upload-url/complete";

fn s3_events_gateway(s3: &S3sFs, app: &App, outbox: &std::path::Path) -> Gateway {
    let mut env = s3.env();
    env.extend(events_env());
    Gateway::start(GatewayOpts {
        storage_yaml: Some(s3.storage_yaml()),
        extra_yaml: events_yaml(app, outbox, "  backoff_initial_ms: 50\n  backoff_max_ms: 400\n"),
        env,
        metrics: true,
        ..Default::default()
    })
}

/// Mint through Ctxfy (optionally with a checksum); the (upload URL, key).
async fn ctxfy_mint(gw: &Gateway, size: usize, checksum: Option<&str>) -> (String, String) {
    let mut body = json!({"filename": "report.pdf", "contentType": "application/pdf", "size": size});
    if let Some(sum) = checksum {
        body["checksumSha256"] = json!(sum);
    }
    let (status, v) = post_json(&gw.url("/v1/upload/s3"), Some("Bearer demo-key"), &body.to_string()).await;
    assert_eq!(status, 200, "{v}");
    (v["uploadUrl"].as_str().unwrap().to_owned(), v["fileKey"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn completion_checks_the_bucket_and_records_the_event_once() {
    let s3 = S3sFs::start();
    let app = App::up();
    let work = tempfile::tempdir().unwrap();
    let gw = s3_events_gateway(&s3, &app, &work.path().join("outbox.redb"));
    let bytes = b"%PDF-1.7 a small report".to_vec();
    let sum = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        <sha2::Sha256 as sha2::Digest>::digest(&bytes),
    );
    let (url, key) = ctxfy_mint(&gw, bytes.len(), Some(&sum)).await;
    assert!(url.starts_with(&s3.endpoint()), "straight to the bucket: {url}");
    assert!(!url.contains("x-gateway-dialect"), "a bucket's URL carries nothing of ours: {url}");
    let r = client()
        .put(&url)
        .header("content-type", "application/pdf")
        .header("x-amz-checksum-sha256", &sum)
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s3_etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(metric(&metrics_text(&gw).await, "presign_events_recorded_total"), 0.0, "the PUT bypassed us");

    let complete = json!({"fileKey": key, "size": bytes.len(), "contentType": "application/pdf"});
    let (status, v) =
        post_json(&gw.url(CTXFY_COMPLETE), Some("Bearer demo-key"), &complete.to_string()).await;
    assert_eq!(status, 200, "{v}");
    let event_id = v["eventId"].as_str().expect("an event id").to_owned();
    assert_eq!((v["fileKey"].as_str(), v["size"].as_u64()), (Some(key.as_str()), Some(bytes.len() as u64)));
    assert_eq!(
        (v["contentType"].as_str(), v["etag"].as_str()),
        (Some("application/pdf"), Some(s3_etag.as_str()))
    );

    wait_app("the completion's event", Duration::from_secs(30), || !app.received().is_empty()).await;
    let got = app.received();
    let e = &got[0].event;
    assert_eq!(e.id, event_id);
    assert_eq!(
        (e.data.key.as_str(), e.data.size, e.data.etag.as_str()),
        (key.as_str(), bytes.len() as u64, s3_etag.as_str())
    );
    assert_eq!((e.data.dialect.as_deref(), e.data.source.as_str()), (Some("ctxfy"), "completion"));
    assert_eq!((e.data.user_id, e.data.namespace.as_deref()), (Some(12), Some("uploads/user/12")));
    assert_eq!(e.data.checksum_sha256.as_deref(), Some(sum.as_str()), "the checksum the bucket keeps");

    // The same object completed again is the same event: a deduping receiver sees it once.
    let (status, again) =
        post_json(&gw.url(CTXFY_COMPLETE), Some("Bearer demo-key"), &complete.to_string()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["eventId"].as_str(), Some(event_id.as_str()));
    wait_app("the repeat", Duration::from_secs(30), || app.received().len() >= 2).await;
    assert_eq!(app.ids_by_key()[&key].len(), 1);
    assert_eq!(app.bad_signatures(), 0);
}

#[tokio::test]
async fn completion_refuses_a_missing_object_a_wrong_size_or_type_and_a_foreign_key() {
    let s3 = S3sFs::start();
    let app = App::up();
    let work = tempfile::tempdir().unwrap();
    let gw = s3_events_gateway(&s3, &app, &work.path().join("outbox.redb"));
    let bytes = b"twelve bytes".to_vec();
    let (url, key) = ctxfy_mint(&gw, bytes.len(), None).await;
    let r = client()
        .put(&url)
        .header("content-type", "application/pdf")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, never_uploaded) = ctxfy_mint(&gw, 5, None).await;

    let ctxfy = |body: serde_json::Value| {
        let gw = &gw;
        async move { post_json(&gw.url(CTXFY_COMPLETE), Some("Bearer demo-key"), &body.to_string()).await }
    };
    let (status, v) = ctxfy(json!({"fileKey": never_uploaded, "size": 5})).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!((v["error"].as_str(), v["code"].as_u64()), (Some("Not Found"), Some(404)), "{v}");

    let (status, v) = ctxfy(json!({"fileKey": key, "size": bytes.len() + 1})).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["details"][0]["field"], "size", "{v}");
    assert!(v["message"].as_str().unwrap().contains("12 bytes, not 13"), "{v}");

    let (status, v) = ctxfy(json!({"fileKey": key, "contentType": "image/png"})).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["details"][0]["field"], "contentType", "{v}");

    let wrong_sum = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    let (status, v) = ctxfy(json!({"fileKey": key, "checksumSha256": wrong_sum})).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["details"][0]["field"], "checksumSha256", "{v}");

    // Another API key's namespace: refused before the bucket is asked.
    let (status, v) =
        post_json(&gw.url(CTXFY_COMPLETE), Some("Bearer other-key"), &json!({"fileKey": key}).to_string())
            .await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["details"][0]["field"], "fileKey", "{v}");
    let (status, _) = post_json(&gw.url(CTXFY_COMPLETE), None, &json!({"fileKey": key}).to_string()).await;
    assert_eq!(status, 401);

    // API Mall's envelope and names for the same refusals.
    let (status, v) = post_json(
        &gw.url(APIMALL_COMPLETE),
        Some("Bearer demo-key"),
        &json!({"key": never_uploaded}).to_string(),
    )
    .await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(
        (v["success"].as_bool(), v["error"]["code"].as_str()),
        (Some(false), Some("not_found")),
        "{v}"
    );
    let (status, v) = post_json(
        &gw.url(APIMALL_COMPLETE),
        Some("Bearer demo-key"),
        &json!({"key": key, "file_size": 1}).to_string(),
    )
    .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["details"]["field"].as_str()),
        (Some("conflict"), Some("file_size"))
    );

    // No refusal recorded anything.
    let m = metrics_text(&gw).await;
    assert_eq!(metric(&m, "presign_events_recorded_total"), 0.0, "{m}");
    assert!(app.received().is_empty());
}

#[tokio::test]
async fn on_the_local_store_completion_reports_and_the_commit_already_sent_the_event() {
    let app = App::up();
    let work = tempfile::tempdir().unwrap();
    let gw = Gateway::start(GatewayOpts {
        extra_yaml: events_yaml(&app, &work.path().join("outbox.redb"), ""),
        env: events_env(),
        metrics: true,
        ..Default::default()
    });
    let bytes = b"%PDF tiny".to_vec();
    let sum = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        <sha2::Sha256 as sha2::Digest>::digest(&bytes),
    );
    let (url, key) = ctxfy_mint(&gw, bytes.len(), None).await;
    assert!(url.contains("x-gateway-dialect=ctxfy"), "the local URL names its dialect: {url}");
    let r = client()
        .put(&url)
        .header("content-type", "application/pdf")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    wait_app("the PUT's event", Duration::from_secs(30), || !app.received().is_empty()).await;
    let e = app.received()[0].event.clone();
    assert_eq!((e.data.dialect.as_deref(), e.data.source.as_str()), (Some("ctxfy"), "put"));

    let body = json!({"fileKey": key, "size": bytes.len(), "checksumSha256": sum});
    let (status, v) = post_json(&gw.url(CTXFY_COMPLETE), Some("Bearer demo-key"), &body.to_string()).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["eventId"].is_null(), "no second event: {v}");
    assert_eq!(v["etag"].as_str(), Some(e.data.etag.as_str()));
    assert_eq!(v["checksumSha256"].as_str(), Some(sum.as_str()));
    let wrong = json!({"fileKey": key, "checksumSha256": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="});
    let (status, v) = post_json(&gw.url(CTXFY_COMPLETE), Some("Bearer demo-key"), &wrong.to_string()).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(metric(&metrics_text(&gw).await, "presign_events_recorded_total"), 1.0);
}
