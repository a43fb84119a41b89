//! Connections an attacker holds open (issue 13): the header deadline (a trickle does not
//! reset it; 408), the keep-alive idle timeout, the per-IP cap at accept, slow upload bodies
//! (stalled or below the minimum rate; the temp file goes), descriptor exhaustion survived
//! without a busy loop, and refusals counted by reason and logged at most once a second.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::edge_clients::*;
use common::metrics::metric;
use common::*;
use serde_json::json;

fn refused(reason: &str) -> String {
    format!("presign_connections_refused_total{{reason=\"{reason}\"}}")
}

fn gateway(extra_yaml: &str) -> Gateway {
    Gateway::start(GatewayOpts { metrics: true, extra_yaml: extra_yaml.into(), ..Default::default() })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickle_does_not_reset_the_header_deadline_and_gets_408() {
    let gw = gateway("limits:\n  header_timeout_secs: 2\n");
    let addr = gw.addr;
    let trickle = std::thread::spawn(move || {
        let mut s = connect_from(ATTACKER, addr).expect("connect");
        let start = Instant::now();
        // One byte every 200 ms: each read is well inside any per-read timeout.
        for b in b"GET /files/x HTTP/1.1\r\nHost: gw\r\nX-Slow: ".iter().cycle() {
            if s.write_all(&[*b]).is_err() || start.elapsed() > Duration::from_secs(6) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let (text, closed) = read_until_closed(&mut s, Duration::from_secs(2));
        (text, closed.map(|c| c - start), start.elapsed())
    });
    let silent = std::thread::spawn(move || {
        let mut s = connect_from(ATTACKER, addr).expect("connect");
        let start = Instant::now();
        let (text, closed) = read_until_closed(&mut s, Duration::from_secs(6));
        (text, closed.map(|c| c - start))
    });
    let (text, _, took) = trickle.join().unwrap();
    assert!(text.starts_with("HTTP/1.1 408 "), "the trickler is told: {text:?}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(4500), "closed after {took:?}");
    let (text, closed) = silent.join().unwrap();
    let closed = closed.expect("a silent connection is closed too");
    assert!(closed >= Duration::from_secs(2) && closed < Duration::from_millis(3500), "{closed:?}");
    assert!(text.starts_with("HTTP/1.1 408 "), "{text:?}");
    assert!(metric(&gw, &refused("header_timeout")).await >= 2.0);
    // An honest request on its own connection is untouched by either.
    let mut s = connect_from(HONEST, addr).unwrap();
    let r = request_on(&mut s, "GET /files/none HTTP/1.1\r\nHost: gw\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}

#[test]
fn an_idle_keepalive_connection_closes_after_its_own_timeout_not_the_header_deadline() {
    let gw = gateway("limits:\n  header_timeout_secs: 1\n  keepalive_timeout_secs: 3\n");
    let mut s = connect_from(HONEST, gw.addr).unwrap();
    let get = "GET /files/none HTTP/1.1\r\nHost: gw\r\n\r\n";
    assert!(request_on(&mut s, get).starts_with("HTTP/1.1 404"));
    // Idle past the header deadline: the connection is still good for the next request.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(request_on(&mut s, get).starts_with("HTTP/1.1 404"), "reused after 1.5 s idle");
    let idle_from = Instant::now();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(8));
    let idle = closed.expect("closed when idle") - idle_from;
    assert!(text.is_empty(), "an idle close sends nothing: {text:?}");
    assert!(idle >= Duration::from_millis(2900) && idle < Duration::from_millis(4500), "{idle:?}");
}

#[test]
fn the_per_ip_cap_refuses_at_accept_and_gives_back_on_close() {
    let gw = gateway("limits:\n  max_connections_per_ip: 5\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let held: Vec<_> = (0..5).map(|_| connect_from(ATTACKER, gw.addr).unwrap()).collect();
    let url = gw.metrics_url("/metrics");
    let open = || {
        rt.block_on(async { reqwest::get(&url).await.unwrap().text().await.unwrap() })
            .lines()
            .find_map(|l| {
                l.strip_prefix("presign_connections_open ").map(|v| v.trim().parse::<f64>().unwrap_or(0.0))
            })
            .unwrap_or(0.0)
    };
    // The metrics listener's own connection is not counted: it is another listener.
    wait_until("5 connections open", Duration::from_secs(10), || open() >= 5.0);
    let mut sixth = connect_from(ATTACKER, gw.addr).unwrap();
    let start = Instant::now();
    let (text, closed) = read_until_closed(&mut sixth, Duration::from_secs(5));
    assert!(
        text.is_empty() && closed.is_some_and(|c| c - start < Duration::from_secs(1)),
        "refused: {text:?}"
    );
    assert!(rt.block_on(metric(&gw, &refused("per_ip_cap"))) >= 1.0);
    // Another address is not affected.
    let mut honest = connect_from(HONEST, gw.addr).unwrap();
    assert!(
        request_on(&mut honest, "GET /files/none HTTP/1.1\r\nHost: gw\r\n\r\n").starts_with("HTTP/1.1 404")
    );
    drop(held);
    wait_until("the slots given back", Duration::from_secs(10), || open() <= 1.0);
    let mut again = connect_from(ATTACKER, gw.addr).unwrap();
    assert!(
        request_on(&mut again, "GET /files/none HTTP/1.1\r\nHost: gw\r\n\r\n").starts_with("HTTP/1.1 404")
    );
}

/// A presigned PUT URL for `size` bytes of image/png.
async fn upload_url(gw: &Gateway, size: usize) -> String {
    let v = mint(gw, json!({"filename": "a.png", "content_type": "image/png", "file_size": size})).await;
    v["data"]["upload_url"].as_str().expect("upload_url").to_string()
}

/// Send a PUT's head and `first` body bytes, then `then` on the open socket; the response.
fn slow_put(
    gw: &Gateway,
    url: &str,
    size: usize,
    then: impl FnOnce(&mut std::net::TcpStream),
) -> (String, Duration) {
    let path = url.strip_prefix(&gw.url("")).expect("a gateway URL");
    let mut s = connect_from(HONEST, gw.addr).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: image/png\r\nContent-Length: {size}\r\n\r\n",
        gw.addr
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&[b'x'; 100]).unwrap();
    let start = Instant::now();
    then(&mut s);
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(15));
    (text, closed.map_or(Duration::MAX, |c| c - start))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_upload_is_aborted_and_its_temp_file_removed() {
    let gw = gateway("upload_body:\n  stall_timeout_secs: 2\n  min_bytes_per_sec: 0\n");
    let url = upload_url(&gw, 1000).await;
    let g = &gw;
    let (text, took) = tokio::task::block_in_place(|| {
        slow_put(g, &url, 1000, |_| {
            wait_until("the upload is spooling", Duration::from_secs(10), || {
                g.spooling() || !g.stored_files().is_empty()
            });
        })
    });
    assert!(text.contains("<Code>RequestTimeout</Code>"), "{text}");
    // Aborted 2 s after the last byte; the answer follows a drain of at most 2 s.
    assert!(took >= Duration::from_millis(1800) && took < Duration::from_secs(6), "{took:?}");
    wait_until_async("no temp file", Duration::from_secs(5), || gw.stored_files().is_empty()).await;
    assert_eq!(metric(&gw, &refused("body_stalled")).await, 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_below_the_minimum_rate_is_aborted_after_its_grace() {
    let gw = gateway(
        "upload_body:\n  stall_timeout_secs: 30\n  min_bytes_per_sec: 1000\n  min_rate_grace_secs: 2\n",
    );
    let url = upload_url(&gw, 100_000).await;
    let g = &gw;
    let (text, took) = tokio::task::block_in_place(|| {
        slow_put(g, &url, 100_000, |s| {
            // 100 bytes every 300 ms: never a stall, 333 B/s on average; then nothing more,
            // so that the answer is not lost to a reset from bytes left unread.
            for _ in 0..8 {
                if s.write_all(&[b'y'; 100]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    });
    assert!(text.contains("<Code>RequestTimeout</Code>"), "{text}");
    // Aborted at the 2 s grace; the answer follows a drain of at most 2 s.
    assert!(took >= Duration::from_millis(1800) && took < Duration::from_secs(6), "{took:?}");
    assert_eq!(metric(&gw, &refused("body_too_slow")).await, 1.0);
    wait_until_async("no temp file", Duration::from_secs(5), || gw.stored_files().is_empty()).await;
    // An upload at a normal pace is untouched.
    let url = upload_url(&gw, 5).await;
    let put = client().put(&url).header("content-type", "image/png").body("hello").send().await.unwrap();
    assert_eq!(put.status(), 200);
}

#[test]
fn running_out_of_descriptors_is_survived_without_a_busy_loop() {
    let gw = Gateway::start(GatewayOpts {
        metrics: true,
        fd_limit: Some(256),
        extra_yaml: "limits:\n  max_connections: 0\n  max_connections_per_ip: 0\n  header_timeout_secs: 3\n"
            .into(),
        ..Default::default()
    });
    let pid = gw.child.id();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let baseline = open_fds(pid);
    // More than the process may hold: the accept loop meets EMFILE.
    let parked: Vec<_> = (0..400).filter_map(|_| connect_from(ATTACKER, gw.addr).ok()).collect();
    wait_until("descriptors exhausted", Duration::from_secs(10), || {
        rt.block_on(metric(&gw, &refused("fd_exhausted"))) >= 1.0
    });
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(pid) - before;
    // 100 ticks a second is one core busy; a spinning accept loop would be there.
    assert!(spent < 30, "the gateway spent {spent} ticks in one second while out of descriptors");
    // The parked connections reach their header deadline, and the gateway serves again.
    let mut ok = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok && Instant::now() < deadline {
        if let Ok(mut s) = connect_from(HONEST, gw.addr) {
            let _ = s.write_all(b"GET /files/none HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
            let (text, _) = read_until_closed(&mut s, Duration::from_secs(2));
            ok = text.starts_with("HTTP/1.1 404");
        }
    }
    assert!(ok, "no answer after the descriptors came back");
    drop(parked);
    wait_until("descriptors back to their baseline", Duration::from_secs(10), || {
        open_fds(pid) <= baseline + 2
    });
    let log = gw.log();
    let lines = log.lines().filter(|l| l.contains("fd_exhausted")).count();
    assert!((1..=20).contains(&lines), "{lines} fd_exhausted lines:\n{log}");
}

#[test]
fn refusals_are_logged_at_most_once_per_reason_per_second() {
    let gw = gateway("limits:\n  max_connections_per_ip: 1\n");
    let _held = connect_from(ATTACKER, gw.addr).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    wait_until("one connection open", Duration::from_secs(10), || {
        rt.block_on(metric(&gw, "presign_connections_open")) >= 1.0
    });
    let start = Instant::now();
    for _ in 0..300 {
        let mut s = connect_from(ATTACKER, gw.addr).unwrap();
        let _ = read_until_closed(&mut s, Duration::from_secs(2));
    }
    let secs = start.elapsed().as_secs() + 2;
    wait_until("all counted", Duration::from_secs(5), || {
        rt.block_on(metric(&gw, &refused("per_ip_cap"))) >= 300.0
    });
    // The flush reports the rest within a second or two.
    wait_until("the suppressed count logged", Duration::from_secs(5), || {
        gw.log().lines().filter(|l| l.contains("per_ip_cap")).map(suppressed_in).sum::<u64>()
            + gw.log().lines().filter(|l| l.contains("per_ip_cap")).count() as u64
            >= 300
    });
    let lines = gw.log().lines().filter(|l| l.contains("per_ip_cap")).count() as u64;
    assert!(lines <= secs + 2, "{lines} lines in about {secs} s:\n{}", gw.log());
}

/// The `N` of "(N more not logged ...)" or "N more not logged".
fn suppressed_in(line: &str) -> u64 {
    let Some(i) = line.find(" more not logged") else { return 0 };
    line[..i].rsplit(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or(0)
}
