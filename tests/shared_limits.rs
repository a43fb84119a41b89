//! Rate limits shared by a fleet, on a real redis-server: two gateways together admit what
//! one limit allows, not twice it; with the backend gone each falls back to its share, and
//! when it returns the fleet-wide count resumes.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::metrics::metric;
use common::redis::Redis;
use common::{Gateway, GatewayOpts};

const MINT: &str = "/api/v1/files/upload-url";
const LIMIT: usize = 20;

fn gateway(shared: Option<&Redis>) -> Gateway {
    let shared = shared
        .map(|r| {
            format!("  shared:\n    url: {}\n    expected_fleet_size: 2\n    timeout_ms: 200\n", r.url())
        })
        .unwrap_or_default();
    Gateway::start(GatewayOpts {
        metrics: true,
        extra_yaml: format!("rate_limit:\n  default_per_sec: {LIMIT}\n{shared}"),
        ..Default::default()
    })
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Mints as fast as 4 workers per gateway can for about `secs` seconds; returns (admitted,
/// limited, other statuses, the one-second windows the run touched).
async fn blast(gws: &[&Gateway], secs: u64) -> (usize, usize, usize, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let first_window = unix_secs();
    let mut workers = Vec::new();
    for gw in gws {
        for _ in 0..4 {
            let (stop, counts, client, url) = (stop.clone(), counts.clone(), client.clone(), gw.url(MINT));
            workers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let status = common::http_client::send_mint(&client, &url).await.unwrap_or(0);
                    let slot = match status {
                        200 => 0,
                        429 => 1,
                        _ => 2,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    // The run's length is a setting of the load, not a synchronisation: every assertion below
    // holds for any length, counted in the windows the run actually touched.
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let windows = unix_secs() - first_window + 1;
    let c = |i: usize| counts[i].load(Ordering::Relaxed);
    (c(0), c(1), c(2), windows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_limit_and_fall_back_to_their_share_without_the_backend() {
    let mut redis = Redis::start();
    let (a, b) = (gateway(Some(&redis)), gateway(Some(&redis)));

    let (ok, limited, other, windows) = blast(&[&a, &b], 3).await;
    assert_eq!(other, 0);
    assert!(limited > 0, "the load exceeds the limit");
    // Fixed one-second windows counted in one place: no window admits more than LIMIT in
    // all, and every window wholly inside the run is full.
    assert!(
        ok <= LIMIT * windows as usize,
        "{ok} admitted in {windows} windows: more than {LIMIT} per window"
    );
    assert!(ok >= LIMIT * (windows as usize - 2), "{ok} admitted in {windows} windows");
    assert_eq!(metric(&a, "presign_rate_limit_shared_up").await, 1.0);
    assert_eq!(metric(&a, "presign_rate_limit_fallback_total").await, 0.0);

    // Backend gone: never blocked, each gateway allows its share (LIMIT / 2 per window).
    redis.stop();
    let (ok, limited, other, windows) = blast(&[&a, &b], 3).await;
    assert_eq!(other, 0, "no request fails for lack of the backend");
    assert!(limited > 0);
    // pingora-limits' window slides, so allow one extra share at each end of the run.
    assert!(ok <= LIMIT * (windows as usize + 1), "{ok} admitted in {windows} windows");
    assert!(ok >= LIMIT / 2, "the fallback still admits: {ok}");
    for gw in [&a, &b] {
        assert_eq!(metric(gw, "presign_rate_limit_shared_up").await, 0.0);
        assert!(metric(gw, "presign_rate_limit_fallback_total").await > 0.0);
        assert_eq!(
            gw.log().matches("shared rate limiter unreachable").count(),
            1,
            "logged once: {}",
            gw.log()
        );
    }

    // Back: the next probe finds it, and the fleet-wide count resumes.
    redis.restart();
    let (ok, _, other, windows) = blast(&[&a, &b], 3).await;
    assert_eq!(other, 0);
    for gw in [&a, &b] {
        assert_eq!(metric(gw, "presign_rate_limit_shared_up").await, 1.0);
        assert!(gw.log().contains("shared rate limiter is back"), "{}", gw.log());
    }
    // The first second may still be decided locally, by each gateway, while its probe waits
    // for its turn: one more window's worth than while shared, still short of the 2 x LIMIT a
    // window that two per-process limits admit (the control below).
    assert!(ok <= LIMIT * (windows as usize + 2), "{ok} admitted in {windows} windows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_process_limits_let_a_fleet_of_two_admit_twice_the_limit() {
    // The control for the test above: what the shared backend prevents.
    let (a, b) = (gateway(None), gateway(None));
    let (ok, _, other, windows) = blast(&[&a, &b], 3).await;
    assert_eq!(other, 0);
    assert!(ok > LIMIT * windows as usize, "{ok} admitted in {windows} windows: per-process limits add up");
}
