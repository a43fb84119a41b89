//! The pass-through origin pool against real loopback origins that die, go unhealthy while
//! still accepting, or cut a request off: retries move on to another origin, passive and
//! HTTP health take the bad node out, and a request partly sent is never replayed.

mod common;

use std::time::Duration;

use common::metrics::metric;
use common::pool_origin::PoolOrigin;
use common::{Gateway, GatewayOpts};

fn gateway(a: &PoolOrigin, b: &PoolOrigin, pool_yaml: &str) -> Gateway {
    Gateway::start(GatewayOpts {
        origin: Some(a.addr),
        more_origins: vec![b.addr.to_string()],
        metrics: true,
        extra_yaml: format!("origin_pool:\n{pool_yaml}"),
        ..Default::default()
    })
}

fn series(name: &str, o: &PoolOrigin) -> String {
    format!("{name}{{origin=\"{}\"}}", o.addr)
}

async fn get(gw: &Gateway, path: &str) -> (u16, String) {
    let r = common::client().get(gw.url(path)).send().await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// A health check that never runs again after the first, so only retries and passive
/// health can react to a node killed during the test.
const NO_RECHECK: &str = "  health_check: {interval_ms: 3600000}\n";

#[tokio::test]
async fn a_killed_origin_costs_no_failed_request_retries_move_on() {
    let (a, b) = (PoolOrigin::start("a"), PoolOrigin::start("b"));
    let gw = gateway(&a, &b, &format!("{NO_RECHECK}  passive: {{max_failures: 0}}\n"));
    for _ in 0..4 {
        assert_eq!(get(&gw, "/page").await.0, 200);
    }
    assert!(a.requests() > 0 && b.requests() > 0, "both serve while up");
    b.kill();
    for i in 0..20 {
        let (status, body) = get(&gw, &format!("/page/{i}")).await;
        assert_eq!((status, body.as_str()), (200, "a"), "request {i}");
    }
    // Without passive ejection every other request tries b first, fails to connect, and
    // moves on.
    assert!(metric(&gw, &series("presign_origin_connect_failures_total", &b)).await >= 10.0);
    assert!(metric(&gw, &series("presign_origin_retries_total", &b)).await >= 10.0);
    assert_eq!(
        metric(&gw, &series("presign_origin_up", &b)).await,
        1.0,
        "no check ran: up as far as it knows"
    );
}

#[tokio::test]
async fn passive_health_ejects_a_dead_origin_at_once() {
    let (a, b) = (PoolOrigin::start("a"), PoolOrigin::start("b"));
    let gw = gateway(&a, &b, &format!("{NO_RECHECK}  passive: {{max_failures: 1, eject_ms: 60000}}\n"));
    assert_eq!(get(&gw, "/warm").await.0, 200);
    b.kill();
    for i in 0..20 {
        assert_eq!(get(&gw, &format!("/page/{i}")).await, (200, "a".to_string()), "request {i}");
    }
    // One failure (a refused connect, or the pooled connection found reset), then out.
    let failures = metric(&gw, &series("presign_origin_connect_failures_total", &b)).await
        + metric(&gw, &series("presign_origin_proxy_failures_total", &b)).await;
    assert_eq!(failures, 1.0, "one failure, then out");
    assert_eq!(metric(&gw, &series("presign_origin_ejections_total", &b)).await, 1.0);
    assert!(gw.log().contains("ejected"), "{}", gw.log());
}

#[tokio::test]
async fn the_http_health_check_takes_out_a_node_that_accepts_but_answers_503() {
    let (a, b) = (PoolOrigin::start("a"), PoolOrigin::start("b"));
    let gw = gateway(
        &a,
        &b,
        "  health_check: {kind: http, path: /health, healthy_statuses: [200], interval_ms: 100, fall: 2, rise: 2}\n  passive: {max_failures: 0}\n",
    );
    let up_b = series("presign_origin_up", &b);
    b.set_health(503);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(&gw, &up_b).await != 0.0 {
        assert!(std::time::Instant::now() < deadline, "b never left the pool");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = b.requests();
    for i in 0..10 {
        assert_eq!(get(&gw, &format!("/p/{i}")).await, (200, "a".to_string()));
    }
    assert_eq!(b.requests(), before, "no traffic to a node out of the pool");
    b.set_health(200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(&gw, &up_b).await != 1.0 {
        assert!(std::time::Instant::now() < deadline, "b never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen_b = false;
    for i in 0..10 {
        seen_b |= get(&gw, &format!("/q/{i}")).await.1 == "b";
    }
    assert!(seen_b, "b serves again after it rose");
    assert!(gw.log().contains("is down (health check)") && gw.log().contains("is up (health check)"));
}

#[tokio::test]
async fn a_request_whose_body_was_partly_sent_is_never_replayed() {
    let (a, b) = (PoolOrigin::start("a"), PoolOrigin::start("b"));
    a.cut_after_body_bytes(1000);
    let gw =
        gateway(&a, &b, &format!("{NO_RECHECK}  selection: round_robin\n  passive: {{max_failures: 0}}\n"));
    // Round robin starts at the first origin: this PUT goes to a, which reads part of the
    // body and drops the connection.
    let body = vec![b'x'; 256 * 1024];
    let r = common::client().put(gw.url("/upload/x")).body(body).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 502);
    assert_eq!(a.requests(), 1);
    assert_eq!(b.requests(), 0, "the request was not replayed on b");
    assert_eq!(metric(&gw, &series("presign_origin_retries_total", &a)).await, 0.0);
    assert_eq!(metric(&gw, &series("presign_origin_proxy_failures_total", &a)).await, 1.0);
}

#[tokio::test]
async fn key_hash_sends_a_key_to_the_same_origin_every_time() {
    let (a, b) = (PoolOrigin::start("a"), PoolOrigin::start("b"));
    let gw = gateway(&a, &b, "  selection: key_hash\n");
    let mut owners = std::collections::HashMap::new();
    for round in 0..3 {
        for k in 0..20 {
            let path = format!("/media/uploads/user/1/{k}.png");
            let (status, who) = get(&gw, &path).await;
            assert_eq!(status, 200);
            let first = owners.entry(path.clone()).or_insert_with(|| who.clone());
            assert_eq!(*first, who, "{path} moved in round {round}");
        }
    }
    let on_a = owners.values().filter(|w| *w == "a").count();
    assert!((3..=17).contains(&on_a), "keys spread over both: {on_a} of 20 on a");
}

#[test]
fn bad_pool_settings_name_their_field() {
    let dir = tempfile::tempdir().unwrap();
    for (yaml, field) in [
        ("origin_pool: {max_tries: 0}", "origin_pool.max_tries"),
        ("origin_pool: {selection: random}", "selection"),
        ("origin_pool: {health_check: {kind: http, method: POST}}", "origin_pool.health_check.method"),
        (
            "origin_pool: {health_check: {healthy_statuses: [700]}}",
            "origin_pool.health_check.healthy_statuses",
        ),
        ("origin_pool: {health_check: {fall: 0}}", "origin_pool.health_check.fall"),
    ] {
        let conf = dir.path().join("gw.yaml");
        std::fs::write(
            &conf,
            format!("listen: 127.0.0.1:1\n{yaml}\nstorage:\n  local:\n    root: {}\n", dir.path().display()),
        )
        .unwrap();
        let out = std::process::Command::new(common::bin()).arg("-t").arg("-c").arg(&conf).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(field), "{yaml}: {err}");
    }
}
