//! `upload.completed` events from real processes: the gateway binary, and a small
//! application on loopback that receives the events and verifies every signature. Delivery is
//! at least once through the application being down, the gateway being SIGKILLed and
//! restarted, and a receiver that fails forever (dead letters, counted and listed).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::app::{events_env, events_yaml, metric, metrics_text, wait_app, wait_metrics, App};
use common::*;
use futures_util::StreamExt;
use serde_json::json;

/// Fast retries, so the tests wait on the outbox, not on a minute-long backoff.
const FAST: &str =
    "  backoff_initial_ms: 50\n  backoff_max_ms: 400\n  timeout_ms: 2000\n  max_attempts: 100\n";
const WITHIN: Duration = Duration::from_secs(60);

fn events_gateway(app: &App, outbox: &std::path::Path, extra: &str, storage_yaml: Option<String>) -> Gateway {
    Gateway::start(GatewayOpts {
        extra_yaml: events_yaml(app, outbox, extra),
        env: events_env(),
        metrics: true,
        storage_yaml,
        ..Default::default()
    })
}

/// Mint through API Mall and PUT five bytes; the key once the PUT was acknowledged.
async fn upload(base: String, i: usize) -> Result<String, String> {
    let c = client();
    let body = json!({"filename": format!("file{i}.png"), "content_type": "image/png", "file_size": 5});
    let r = c
        .post(format!("{base}{MINT}"))
        .header("authorization", "Bearer demo-key")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
    let url = v["data"]["upload_url"].as_str().ok_or(format!("no upload_url: {v}"))?.to_owned();
    let key = v["data"]["key"].as_str().ok_or("no key")?.to_owned();
    let r = c
        .put(&url)
        .header("content-type", "image/png")
        .body("hello")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 200 {
        return Err(format!("PUT answered {}: {}", r.status(), r.text().await.unwrap_or_default()));
    }
    Ok(key)
}

/// Upload `range` (8 at a time); every upload must be acknowledged.
async fn upload_all(gw: &Gateway, range: std::ops::Range<usize>) -> Vec<String> {
    let base = gw.url("");
    let results: Vec<Result<String, String>> = futures_util::stream::iter(range)
        .map(|i| upload(base.clone(), i))
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().map(|r| r.expect("upload acknowledged")).collect()
}

/// Every key arrived, each under one event id however often, and each event says what the
/// upload was.
fn assert_all_arrived(app: &App, keys: &HashSet<String>) {
    assert_eq!(app.bad_signatures(), 0, "every request carried a valid signature");
    let ids = app.ids_by_key();
    for k in keys {
        let set = ids.get(k).unwrap_or_else(|| panic!("no event for {k}"));
        assert_eq!(set.len(), 1, "one event id per key, however often it arrived: {k} {set:?}");
    }
    let mut all_ids = HashSet::new();
    for r in app.received() {
        let (e, d) = (&r.event, &r.event.data);
        assert_eq!(r.header_id, e.id);
        assert!(e.id.starts_with("evt_") && e.id.len() == 30, "{}", e.id);
        assert_eq!(e.kind, "upload.completed");
        assert!(e.time.ends_with('Z') && e.time.len() == 20, "{}", e.time);
        assert_eq!(
            (d.size, d.content_type.as_str(), d.dialect.as_deref()),
            (5, "image/png", Some("apimall"))
        );
        assert_eq!(
            (d.source.as_str(), d.user_id, d.namespace.as_deref()),
            ("put", Some(12), Some("uploads/user/12"))
        );
        assert!(d.key.starts_with("uploads/user/12/") && d.etag.starts_with('"'), "{d:?}");
        assert!(d.request_id.starts_with("req_"), "{d:?}");
        all_ids.insert(e.id.clone());
    }
    assert_eq!(all_ids.len(), keys.len(), "one id per upload");
}

#[tokio::test]
async fn two_hundred_uploads_with_the_app_down_for_the_first_half_all_arrive_verified() {
    let app = App::down();
    let work = tempfile::tempdir().unwrap();
    let gw = events_gateway(&app, &work.path().join("outbox.redb"), FAST, None);

    let first = upload_all(&gw, 0..100).await;
    wait_metrics(&gw, "failed attempts while the app is down", WITHIN, |m| {
        metric(m, "presign_events_attempt_failures_total") >= 1.0
    })
    .await;
    let m = metrics_text(&gw).await;
    assert_eq!(metric(&m, "presign_events_recorded_total"), 100.0, "{m}");
    assert_eq!(metric(&m, "presign_events_pending"), 100.0, "every event waits in the outbox: {m}");
    assert_eq!(metric(&m, "presign_events_delivered_total"), 0.0, "{m}");

    app.start();
    let second = upload_all(&gw, 100..200).await;
    let keys: HashSet<String> = first.into_iter().chain(second).collect();
    assert_eq!(keys.len(), 200);
    wait_app("all 200 events at the app", WITHIN, || keys.is_subset(&app.keys())).await;
    let m =
        wait_metrics(&gw, "an empty outbox", WITHIN, |m| metric(m, "presign_events_pending") == 0.0).await;
    assert_eq!(metric(&m, "presign_events_delivered_total"), 200.0, "{m}");
    assert_eq!(metric(&m, "presign_events_dead"), 0.0, "{m}");
    assert_all_arrived(&app, &keys);
}

#[tokio::test]
async fn sigkill_and_restart_in_the_middle_every_event_still_arrives() {
    let app = App::down();
    // Slow answers: when the gateway dies some events are delivered, some in flight (the app
    // has them, the gateway never hears so), and some still waiting in the outbox.
    app.delay(60);
    let work = tempfile::tempdir().unwrap();
    let outbox = work.path().join("outbox.redb");
    let mut gw1 = events_gateway(&app, &outbox, FAST, None);
    let first = upload_all(&gw1, 0..100).await;
    app.start();
    wait_app("the first deliveries", WITHIN, || app.received().len() >= 20).await;
    gw1.child.kill().expect("SIGKILL");
    gw1.child.wait().expect("reaped");
    let at_kill = app.keys().len();
    assert!(at_kill < 100, "the kill came before the outbox drained ({at_kill} delivered)");

    // Same data directory, same outbox: the new process resumes what the old one left.
    let storage = format!("  local:\n    root: {}\n    public_path: /files\n", gw1.data_dir().display());
    let gw2 = events_gateway(&app, &outbox, FAST, Some(storage));
    let second = upload_all(&gw2, 100..200).await;
    let keys: HashSet<String> = first.into_iter().chain(second).collect();
    assert_eq!(keys.len(), 200);
    wait_app("all 200 events at the app", WITHIN, || keys.is_subset(&app.keys())).await;
    wait_metrics(&gw2, "an empty outbox", WITHIN, |m| metric(m, "presign_events_pending") == 0.0).await;
    assert!(app.received().len() >= 200);
    assert_all_arrived(&app, &keys);
}

#[tokio::test]
async fn a_receiver_failing_forever_ends_dead_lettered_counted_and_listed() {
    let app = App::up();
    app.fail_with(500);
    let work = tempfile::tempdir().unwrap();
    let gw = events_gateway(
        &app,
        &work.path().join("outbox.redb"),
        "  max_attempts: 3\n  backoff_initial_ms: 20\n  backoff_max_ms: 100\n",
        None,
    );
    let keys: HashSet<String> = upload_all(&gw, 0..3).await.into_iter().collect();
    let m = wait_metrics(&gw, "three dead events", WITHIN, |m| metric(m, "presign_events_dead") == 3.0).await;
    assert_eq!(metric(&m, "presign_events_dead_lettered_total"), 3.0, "{m}");
    assert_eq!(metric(&m, "presign_events_attempt_failures_total"), 9.0, "{m}");
    assert_eq!(metric(&m, "presign_events_pending"), 0.0, "{m}");
    assert_eq!(metric(&m, "presign_events_delivered_total"), 0.0, "{m}");
    assert_eq!((app.attempts(), app.bad_signatures()), (9, 0), "three signed attempts each");

    let c = client();
    let listing: serde_json::Value =
        c.get(gw.metrics_url("/admin/events/dead")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listing["count"], 3, "{listing}");
    let dead = listing["dead"].as_array().unwrap();
    let listed: HashSet<String> =
        dead.iter().map(|d| d["event"]["data"]["key"].as_str().unwrap().to_owned()).collect();
    assert_eq!(listed, keys);
    for d in dead {
        assert_eq!((d["attempts"].as_u64(), d["last_error"].as_str()), (Some(3), Some("HTTP 500")), "{d}");
        assert_eq!(d["id"], d["event"]["id"]);
    }

    // Requeued by the operator once the receiver is fixed: it arrives, the rest stay parked.
    app.fail_with(0);
    let id = dead[0]["id"].as_str().unwrap();
    let r = c.post(gw.metrics_url(&format!("/admin/events/dead/{id}/retry"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    wait_app("the requeued event", WITHIN, || app.received().iter().any(|r| r.event.id == id)).await;
    let m =
        wait_metrics(&gw, "one delivered", WITHIN, |m| metric(m, "presign_events_delivered_total") == 1.0)
            .await;
    assert_eq!(metric(&m, "presign_events_dead"), 2.0, "{m}");
    let r = c.post(gw.metrics_url("/admin/events/dead/evt_nosuch/retry")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn the_gateway_refuses_to_start_without_the_signing_secret() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("g.yaml");
    let yaml = format!(
        "listen: 127.0.0.1:1\nstorage:\n  local:\n    root: {}\nevents:\n  url: http://127.0.0.1:2/hooks\n  outbox: {}\n",
        dir.path().join("data").display(),
        dir.path().join("outbox.redb").display()
    );
    std::fs::write(&conf, yaml).unwrap();
    for args in [vec!["-c", conf.to_str().unwrap(), "-t"], vec!["-c", conf.to_str().unwrap()]] {
        let out = std::process::Command::new(bin())
            .args(&args)
            .env_remove("PRESIGN_GATEWAY_EVENTS_SECRET")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("events.secret_env") && err.contains("PRESIGN_GATEWAY_EVENTS_SECRET"), "{err}");
    }
    let bad = std::fs::read_to_string(&conf).unwrap().replace("http://127.0.0.1:2/hooks", "ftp://x");
    std::fs::write(&conf, bad).unwrap();
    let out = std::process::Command::new(bin()).args(["-c", conf.to_str().unwrap(), "-t"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("events.url"), "a bad value names its field");
}

#[tokio::test]
async fn an_upload_whose_event_cannot_be_written_is_not_acknowledged() {
    // An outbox made beforehand, then a gateway whose files may not grow much past it: the
    // outbox soon cannot grow, and a record fails as on a full disk.
    let app = App::up();
    let work = tempfile::tempdir().unwrap();
    let outbox = work.path().join("outbox.redb");
    drop(presign_gateway::events::outbox::Outbox::open(&outbox).expect("outbox"));
    let size_kb = std::fs::metadata(&outbox).unwrap().len() / 1024;
    let gw = Gateway::start(GatewayOpts {
        extra_yaml: events_yaml(&app, &outbox, FAST),
        env: events_env(),
        metrics: true,
        file_size_limit_kb: Some(size_kb + 16),
        ..Default::default()
    });
    let base = gw.url("");
    let mut acked = HashSet::new();
    let mut refused = 0;
    for round in 0..40 {
        let results: Vec<Result<String, String>> = futures_util::stream::iter(round * 50..(round + 1) * 50)
            .map(|i| upload(base.clone(), i))
            .buffer_unordered(8)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(k) => {
                    acked.insert(k);
                }
                Err(e) => {
                    assert!(e.contains("500") && e.contains("InternalError"), "{e}");
                    refused += 1;
                }
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "the outbox never filled ({} uploads)", acked.len());
    wait_app("every acknowledged upload's event", WITHIN, || acked.is_subset(&app.keys())).await;
    assert!(gw.log().contains("not recorded"), "the refusal is logged: {}", gw.log());
}
