//! Every way an object is committed on the local store records its `upload.completed`:
//! memories' relay POST, a browser session's form POST, a multipart upload's complete, and
//! from-url (the PUT is covered by `events_delivery.rs`). Each event names its dialect and
//! source and matches what was stored.

mod common;

use std::time::Duration;

use common::app::{events_env, events_yaml, App, Received};
use common::fetch_server::{self, Reply, PNG};
use common::form::{fields_of, post_form};
use common::*;
use serde_json::{json, Value};

const WITHIN: Duration = Duration::from_secs(30);

async fn get_json(url: &str) -> (u16, Value) {
    let r = client().get(url).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.json().await.expect("JSON"))
}

/// The event for `key`, once it arrived.
async fn event_for(app: &App, key: &str) -> Received {
    common::app::wait_app(&format!("the event for {key}"), WITHIN, || app.keys().contains(key)).await;
    app.received().into_iter().find(|r| r.event.data.key == key).unwrap()
}

fn assert_event(r: &Received, size: u64, content_type: &str, dialect: &str, source: &str) {
    let d = &r.event.data;
    assert_eq!((d.size, d.content_type.as_str()), (size, content_type), "{d:?}");
    assert_eq!((d.dialect.as_deref(), d.source.as_str()), (Some(dialect), source), "{d:?}");
    assert_eq!((d.user_id, d.namespace.as_deref()), (Some(12), Some("uploads/user/12")), "{d:?}");
    assert!(d.etag.starts_with('"') && d.request_id.starts_with("req_"), "{d:?}");
}

#[tokio::test]
async fn relay_form_post_multipart_and_from_url_each_record_their_event() {
    let app = App::up();
    let work = tempfile::tempdir().unwrap();
    let gw = Gateway::start(GatewayOpts {
        extra_yaml: format!(
            "{}from_url:\n  allow_networks: [127.0.0.2/32]\n",
            events_yaml(&app, &work.path().join("outbox.redb"), "")
        ),
        env: events_env(),
        ..Default::default()
    });
    let c = client();

    // memories: a multipart POST of `file` to its signed URL.
    let (s, v) = post_json(
        &gw.url("/serve/api/v2/upload/signed-url"),
        Some("demo-key"),
        r#"{"original_filename":"v.mp4"}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let url = v["data"]["signed_url"].as_str().unwrap();
    let key = format!("uploads/user/12/assets/{}.mp4", v["data"]["asset_id"].as_str().unwrap());
    let r = c
        .post(url)
        .header("content-type", common::form::form_content_type())
        .body(common::form::form_body(&[], "v.mp4", "video/mp4", b"0123456789"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert_event(&event_for(&app, &key).await, 10, "video/mp4", "memories", "relay");

    // A browser session: its form POST, then a multipart upload.
    let (s, v) = post_json(&gw.url("/v1/upload-sessions"), Some("Bearer demo-key"), "{}").await;
    assert_eq!(s, 201, "{v}");
    let endpoint = v["companion_endpoint"].as_str().unwrap().to_owned();
    let (s, params) = get_json(&format!("{endpoint}/s3/params?filename=a.png&type=image%2Fpng")).await;
    assert_eq!(s, 200, "{params}");
    let fields = fields_of(&params);
    let key = fields.iter().find(|(k, _)| k == "key").unwrap().1.clone();
    let (s, _, body) = post_form(params["url"].as_str().unwrap(), &fields, PNG).await;
    assert_eq!(s, 201, "{body}");
    assert_event(&event_for(&app, &key).await, PNG.len() as u64, "image/png", "upload_session", "form_post");

    let (s, v) =
        post_json(&format!("{endpoint}/s3/multipart"), None, r#"{"filename":"b.png","type":"image/png"}"#)
            .await;
    assert_eq!(s, 200, "{v}");
    let (key, id) = (v["key"].as_str().unwrap().to_owned(), v["uploadId"].as_str().unwrap().to_owned());
    let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("key", &key).finish();
    let (s, part) = get_json(&format!("{endpoint}/s3/multipart/{id}/1?{q}")).await;
    assert_eq!(s, 200, "{part}");
    let r = c.put(part["url"].as_str().unwrap()).body(PNG.to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let done = json!({"parts": [{"PartNumber": 1, "ETag": etag}]});
    let (s, v) =
        post_json(&format!("{endpoint}/s3/multipart/{id}/complete?{q}"), None, &done.to_string()).await;
    assert_eq!(s, 200, "{v}");
    let e = event_for(&app, &key).await;
    assert_event(&e, PNG.len() as u64, "image/png", "upload_session", "multipart");
    assert!(e.event.data.etag.ends_with("-1\""), "S3's multipart ETag: {:?}", e.event.data.etag);

    // from-url, from a source on 127.0.0.2 (exempted above).
    let src = fetch_server::serve(
        "127.0.0.2:0",
        std::sync::Arc::new(|_: &str, _| Reply::Close(fetch_server::with_length("200 OK", "image/png", PNG))),
    )
    .await;
    let (s, v) = post_json(
        &gw.url("/api/v1/files/from-url"),
        Some("Bearer demo-key"),
        &json!({"url": src.url("/img.png")}).to_string(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let key = v["data"]["key"].as_str().unwrap();
    assert_event(&event_for(&app, key).await, PNG.len() as u64, "image/png", "apimall", "from_url");
    assert_eq!(app.bad_signatures(), 0);
    assert_eq!(app.received().len(), 4, "one event per commit");
}

#[tokio::test]
async fn the_memories_relay_to_s3s_fs_records_its_event() {
    let s3 = S3sFs::start();
    let app = App::up();
    let work = tempfile::tempdir().unwrap();
    let mut env = s3.env();
    env.extend(events_env());
    let gw = Gateway::start(GatewayOpts {
        storage_yaml: Some(s3.storage_yaml()),
        extra_yaml: events_yaml(&app, &work.path().join("outbox.redb"), ""),
        env,
        ..Default::default()
    });
    let (s, v) = post_json(
        &gw.url("/serve/api/v2/upload/signed-url"),
        Some("demo-key"),
        r#"{"original_filename":"a.mp3"}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let key = format!("uploads/user/12/assets/{}.mp3", v["data"]["asset_id"].as_str().unwrap());
    let r = client()
        .post(v["data"]["signed_url"].as_str().unwrap())
        .header("content-type", common::form::form_content_type())
        .body(common::form::form_body(&[], "a.mp3", "audio/mpeg", b"ID3-bytes"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert!(s3.object_path(&key).exists(), "relayed to the bucket");
    let e = event_for(&app, &key).await;
    assert_event(&e, 9, "audio/mpeg", "memories", "relay");
}
