//! Metrics, health, access log and the origin pool, against the real gateway process.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const ACCESS_LOG_YAML: &str = "logging:\n  access_log: true\n";

#[tokio::test]
async fn metrics_healthz_and_access_log() {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts {
        origin: Some(origin.addr),
        metrics: true,
        extra_yaml: ACCESS_LOG_YAML.into(),
        env: vec![("RUST_LOG".into(), "warn,access=info".into())],
        ..Default::default()
    });
    let c = client();
    let (s, v) = post_json(
        &gw.url("/api/v1/files/upload-url"),
        Some("Bearer demo-key"),
        &json!({"filename":"a.png","content_type":"image/png","file_size":3}).to_string(),
    )
    .await;
    assert_eq!(s, 200);
    let put = c
        .put(v["data"]["upload_url"].as_str().unwrap())
        .header("content-type", "image/png")
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let (s, _) = post_json(&gw.url("/api/upload/presign"), Some("Bearer nope"), "{}").await;
    assert_eq!(s, 401);
    assert_eq!(c.get(gw.url("/through")).send().await.unwrap().status(), 203);
    // A from-url refusal is counted by reason.
    let (s, _) = post_json(
        &gw.url("/api/v1/files/from-url"),
        Some("Bearer demo-key"),
        r#"{"url":"http://127.0.0.1:1/a.png"}"#,
    )
    .await;
    assert_eq!(s, 400);

    let health = c.get(gw.metrics_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Requests are counted in the logging phase, just after their answer: poll briefly.
    let needles = [
        r#"presign_requests_total{dialect="apimall",route="mint",status="200"} 1"#,
        r#"presign_requests_total{dialect="octopusx",route="mint",status="401"} 1"#,
        r#"presign_requests_total{dialect="-",route="object",status="200"} 1"#,
        r#"presign_requests_total{dialect="-",route="proxy",status="203"} 1"#,
        r#"presign_minted_urls_total{dialect="apimall"} 1"#,
        r#"presign_stored_bytes_total{route="put"} 3"#,
        r#"presign_from_url_total{result="blocked"} 1"#,
        "presign_request_duration_seconds_bucket",
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    let m = loop {
        let m = c.get(gw.metrics_url("/metrics")).send().await.unwrap().text().await.unwrap();
        if needles.iter().all(|n| m.contains(n)) || Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for needle in needles {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }

    // One structured line per request; the key id, never the key.
    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = gw.log();
        if log.matches("route=").count() >= 5 || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mint_line =
        log.lines().find(|l| l.contains("route=mint dialect=apimall")).unwrap_or_else(|| panic!("{log}"));
    assert!(mint_line.contains("key_id=demo") && mint_line.contains("status=200"), "{mint_line}");
    assert!(mint_line.contains("request_id=req_"), "{mint_line}");
    assert!(!log.contains("demo-key"), "the key itself is never logged");
    assert!(log.contains("route=proxy") && log.contains("status=203"), "{log}");
}

#[tokio::test]
async fn slow_origin_is_504_and_dead_origin_502() {
    // An origin that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let gw = Gateway::start(GatewayOpts {
        origin: Some(silent_addr),
        metrics: true,
        extra_yaml: format!("origin_timeouts:\n  connect_ms: 500\n  read_ms: 500\n{ACCESS_LOG_YAML}"),
        ..Default::default()
    });
    let r = client().get(gw.url("/slow")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "gateway_timeout");
    let m = client().get(gw.metrics_url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains(r#"presign_origin_errors_total{kind="timeout"} 1"#), "{m}");
}

#[tokio::test]
async fn origins_round_robin_and_skip_an_unhealthy_one() {
    let a = Origin::start();
    let b = Origin::start();
    // A port where nothing listens, reserved for the whole test.
    let dead = DeadPort::loopback();
    let gw = Gateway::start(GatewayOpts {
        origin: Some(a.addr),
        more_origins: vec![b.addr.to_string(), dead.addr.to_string()],
        ..Default::default()
    });
    let addr = gw.addr;
    let url = format!("http://{addr}/rr");
    // Wait for the health check to mark the dead origin down (it runs every second).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut streak = 0;
    while streak < 12 {
        assert!(Instant::now() < deadline, "dead origin never skipped");
        let s = client().get(&url).send().await.unwrap().status();
        streak = if s == 203 { streak + 1 } else { 0 };
    }
    let (a0, b0) = (a.count(), b.count());
    for _ in 0..20 {
        assert_eq!(client().get(&url).send().await.unwrap().status(), 203);
    }
    let (da, db) = (a.count() - a0, b.count() - b0);
    assert_eq!(da + db, 20);
    assert!(da >= 8 && db >= 8, "round robin across the healthy origins: {da} / {db}");
    let log = gw.log();
    assert!(log.contains(&format!("origin {} is down", dead.addr)), "{log}");
    assert!(!log.contains("PeerOptions"), "no peer dump in the log: {log}");
}
