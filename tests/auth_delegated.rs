//! Delegated auth against a real application process on loopback: the application's user
//! table decides who may mint; the gateway caches its answers, follows a revocation within
//! the TTL, and fails closed when the endpoint is down or slow.

mod common;

use std::time::{Duration, Instant};

use common::auth_app::AuthApp;
use common::metrics::metric;
use common::{post_json, DeadPort, Gateway, GatewayOpts};
use serde_json::json;

const APIMALL: &str = "/api/v1/files/upload-url";
const MEMORIES: &str = "/serve/api/v2/upload/signed-url";
const CTXFY: &str = "/v1/upload/s3";
const OCTOPUSX: &str = "/api/upload/presign";

fn apimall_body() -> String {
    json!({"filename":"a.png","content_type":"image/png","file_size":5}).to_string()
}

fn delegated(url: &str, ttl: u64, negative: u64, timeout_ms: u64) -> Gateway {
    Gateway::start(GatewayOpts {
        no_api_keys: true,
        metrics: true,
        extra_yaml: format!(
            "auth:\n  delegated:\n    url: {url}\n    timeout_ms: {timeout_ms}\n    cache_ttl_secs: {ttl}\n    negative_cache_ttl_secs: {negative}\n    token_env: APP_GATEWAY_TOKEN\n"
        ),
        env: vec![("APP_GATEWAY_TOKEN".into(), "gw-token-1".into())],
        ..Default::default()
    })
}

async fn mint_apimall(gw: &Gateway, key: &str) -> (u16, serde_json::Value) {
    post_json(&gw.url(APIMALL), Some(&format!("Bearer {key}")), &apimall_body()).await
}

#[tokio::test]
async fn known_unknown_and_revoked_users() {
    let app = AuthApp::start();
    app.add_user("alice-key", 42, json!({"key_id": "alice-laptop"}));
    let gw = delegated(&app.url(), 1, 1, 2000);

    let (status, v) = mint_apimall(&gw, "alice-key").await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["data"]["key"].as_str().unwrap().starts_with("uploads/user/42/"),
        "the app's user id scopes the key: {v}"
    );
    assert!(!gw.log().contains("alice-key"), "the raw key is never logged");

    // memories sends the raw key, Ctxfy and OctopusX a Bearer key: each reaches the app as
    // the same credential, with its dialect named.
    let (status, v) =
        post_json(&gw.url(MEMORIES), Some("alice-key"), r#"{"original_filename":"v.mp4"}"#).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = post_json(
        &gw.url(CTXFY),
        Some("Bearer alice-key"),
        r#"{"filename":"a.png","contentType":"image/png","size":5}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = post_json(
        &gw.url(OCTOPUSX),
        Some("Bearer alice-key"),
        r#"{"file_name":"a.png","content_type":"image/png"}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let calls = app.calls();
    let mut dialects: Vec<_> = calls.iter().filter_map(|c| c.dialect.clone()).collect();
    dialects.sort();
    assert_eq!(dialects, ["apimall", "ctxfy", "memories", "octopusx"], "one call per dialect: {calls:?}");
    for c in &calls {
        assert_eq!(c.key.as_deref(), Some("alice-key"), "the credential goes in a header");
        assert_eq!(c.path, common::auth_app::AUTH_PATH, "and never in the URL");
        assert_eq!(c.gateway_token.as_deref(), Some("gw-token-1"), "the gateway says who it is");
        assert_eq!(c.authorization, None, "the caller's Authorization is not forwarded as such");
    }

    // Unknown: 401 in each dialect's envelope.
    let (status, v) = mint_apimall(&gw, "mallory-key").await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["error"]["code"], "unauthorized", "{v}");
    let (status, v) =
        post_json(&gw.url(MEMORIES), Some("mallory-key"), r#"{"original_filename":"v.mp4"}"#).await;
    assert_eq!((status, v["code"].as_u64()), (401, Some(401)), "{v}");

    // Revoked: the app changes its answer; the gateway follows within the TTL (1 s).
    let asked = app.count();
    app.revoke("alice-key");
    let revoked_at = Instant::now();
    loop {
        let (status, _) = mint_apimall(&gw, "alice-key").await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(4),
            "still admitted {:?} after revocation",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // polling a condition, not syncing
    }
    assert_eq!(app.count(), asked + 1, "the grant expired and the gateway asked once more");
}

#[tokio::test]
async fn endpoint_down_fails_closed_with_503_and_stores_nothing() {
    let dead = DeadPort::loopback();
    let gw = delegated(&format!("http://{}/auth", dead.addr), 60, 5, 1000);
    let (status, v) = mint_apimall(&gw, "any-key").await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["success"], false, "API Mall's envelope: {v}");
    let (status, v) = post_json(
        &gw.url(CTXFY),
        Some("Bearer any-key"),
        r#"{"filename":"a.png","contentType":"image/png","size":5}"#,
    )
    .await;
    assert_eq!((status, v["error"].as_str()), (503, Some("Service Unavailable")), "{v}");
    let (status, v) = post_json(&gw.url(MEMORIES), Some("any-key"), r#"{"original_filename":"v.mp4"}"#).await;
    assert_eq!((status, v["code"].as_u64()), (503, Some(503)), "{v}");
    // from-url would store a file: refused before any fetch, nothing written.
    let (status, v) = post_json(
        &gw.url("/api/v1/files/from-url"),
        Some("Bearer any-key"),
        r#"{"url":"http://127.0.0.1:9/x.png"}"#,
    )
    .await;
    assert_eq!(status, 503, "{v}");
    assert!(gw.stored_files().is_empty(), "nothing stored: {:?}", gw.stored_files());
    // A failure is not cached: each request asks again, and each is counted.
    assert!(metric(&gw, r#"presign_auth_cache_total{result="error"}"#).await >= 4.0);
    assert_eq!(metric(&gw, r#"presign_auth_cache_total{result="hit"}"#).await, 0.0);
    assert!(gw.log().contains("delegated auth"), "the cause is logged: {}", gw.log());
}

#[tokio::test]
async fn slow_endpoint_times_out_with_503() {
    let app = AuthApp::start();
    app.add_user("alice-key", 42, json!({}));
    app.hold();
    let gw = delegated(&app.url(), 60, 5, 300);
    let started = Instant::now();
    let (status, v) = mint_apimall(&gw, "alice-key").await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{v}");
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(app.count(), 1, "the call reached the app and was held");
    app.release();
    let (status, v) = mint_apimall(&gw, "alice-key").await;
    assert_eq!(status, 200, "the timeout was not cached: {v}");
}

#[tokio::test]
async fn a_warm_cache_answers_concurrent_load_with_one_call_per_credential() {
    let app = AuthApp::start();
    app.add_user("alice-key", 42, json!({}));
    // Held while the first wave arrives: every request misses at once, and single flight
    // must still make one call.
    app.hold();
    let gw = delegated(&app.url(), 60, 30, 5000);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let one = |key: &'static str| {
        let (client, url) = (client.clone(), gw.url(APIMALL));
        async move {
            let resp = client
                .post(url)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(apimall_body())
                .send()
                .await
                .expect("request");
            resp.status().as_u16()
        }
    };
    let first: Vec<_> = (0..32).map(|_| tokio::spawn(one("alice-key"))).collect();
    common::wait_until_async("the first call to reach the app", Duration::from_secs(10), || app.count() >= 1)
        .await;
    app.release();
    for t in first {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(app.count(), 1, "32 concurrent misses made one call");

    let mut statuses = Vec::new();
    for _ in 0..10 {
        let wave: Vec<_> = (0..40).map(|_| tokio::spawn(one("alice-key"))).collect();
        for t in wave {
            statuses.push(t.await.unwrap());
        }
    }
    assert!(statuses.iter().all(|s| *s == 200));
    assert_eq!(app.count(), 1, "400 more mints were all cache hits");
    let hits = metric(&gw, r#"presign_auth_cache_total{result="hit"}"#).await;
    let misses = metric(&gw, r#"presign_auth_cache_total{result="miss"}"#).await;
    assert_eq!(misses, 1.0);
    assert!(hits >= 431.0, "hit rate {hits}/{}", hits + misses);

    // Refusals are cached too (for their shorter TTL).
    for _ in 0..20 {
        assert_eq!(one("mallory-key").await, 401);
    }
    assert_eq!(app.count(), 2, "20 refused mints made one call");
}

#[tokio::test]
async fn the_applications_limits_apply_to_its_caller() {
    let app = AuthApp::start();
    app.add_user("small-key", 7, json!({"key_id": "small", "max_file_size": 1000, "rate_limit_per_sec": 3}));
    let gw = delegated(&app.url(), 60, 5, 2000);
    let big = json!({"filename":"a.png","content_type":"image/png","file_size":2000}).to_string();
    let (status, v) = post_json(&gw.url(APIMALL), Some("Bearer small-key"), &big).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["details"]["max_file_size"], 1000, "{v}");
    let mut ok = 1; // the refused mint above was admitted by the rate limit
    let mut limited = 0;
    for _ in 0..10 {
        match mint_apimall(&gw, "small-key").await.0 {
            200 => ok += 1,
            429 => limited += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert!(limited > 0 && ok <= 6, "{ok} admitted, {limited} limited at 3/s");
}

#[test]
fn keys_beside_delegated_auth_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("gw.yaml");
    std::fs::write(
        &conf,
        format!(
            "listen: 127.0.0.1:1\napi_keys:\n  - id: a\n    sha256: {}\n    user_id: 1\nauth:\n  delegated:\n    url: http://127.0.0.1:2/auth\nstorage:\n  local:\n    root: {}\n",
            presign_gateway::hash_key("k"),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::bin()).arg("-t").arg("-c").arg(&conf).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("auth.delegated"), "{err}");
}
