//! The proof of issue 13's connection limits: a gateway held to 2048 file descriptors, one
//! loopback address (127.0.0.2) opening 4,000 connections that trickle half a request line
//! and 4,000 keep-alive connections left idle after one request, while 127.0.0.1 mints and
//! uploads. Every honest request succeeds with a p99 under 1 s; every attacker connection
//! is closed within its deadline plus 5 s (at accept, past the per-IP cap); the descriptor
//! count returns to its baseline.
//!
//! The caps are the defaults (512 per address, half the descriptors globally), and so is
//! the header deadline (10 s); the keep-alive idle timeout is lowered from 60 s to 10 s only
//! to keep the run short. Run with `--nocapture` to see the figures.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::edge_clients::*;
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const TRICKLERS: usize = 4000;
const IDLERS: usize = 4000;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
const SLACK: Duration = Duration::from_secs(5);

/// How one attacker connection ended.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Closed before the gateway read anything: refused at accept.
    RefusedAtAccept(Duration),
    /// Closed by the header deadline (trickle) or the idle timeout (keep-alive), after this
    /// long from the start of its deadline.
    ClosedAfter(Duration),
    /// Never connected (the kernel's backlog was full), so nothing to close.
    NoConnection,
}

/// A connection from the attacker's address; `gate` bounds the connects in flight (not the
/// connections held).
async fn connect(to: SocketAddr, gate: &tokio::sync::Semaphore) -> Option<TcpStream> {
    let _permit = gate.acquire().await.ok()?;
    let s = TcpSocket::new_v4().ok()?;
    s.bind(SocketAddr::new(ATTACKER, 0)).ok()?;
    tokio::time::timeout(Duration::from_secs(20), s.connect(to)).await.ok()?.ok()
}

/// Wait for the server to close; `None` if it did not within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Instant> {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Half a request line, a byte a second (slower than the deadline lets it finish).
async fn trickler(to: SocketAddr, gate: Arc<tokio::sync::Semaphore>) -> Fate {
    let Some(mut s) = connect(to, &gate).await else { return Fate::NoConnection };
    let start = Instant::now();
    let (mut rd, mut wr) = s.split();
    let write = async {
        for b in b"GET /api/v1/fil" {
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        std::future::pending::<()>().await
    };
    let read = async {
        let mut buf = [0u8; 1024];
        let mut got = 0;
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return (Instant::now(), got),
                Ok(n) => got += n,
            }
        }
    };
    let limit = HEADER_TIMEOUT + SLACK + Duration::from_secs(10);
    let ended = tokio::time::timeout(limit, async {
        tokio::select! {
            r = read => r,
            _ = write => unreachable!(),
        }
    })
    .await;
    match ended {
        // A 408 was written: the gateway had accepted and waited for the headers.
        Ok((at, got)) if got > 0 => Fate::ClosedAfter(at - start),
        Ok((at, _)) => Fate::RefusedAtAccept(at - start),
        Err(_) => Fate::ClosedAfter(limit),
    }
}

/// One request, its answer, then nothing.
async fn idler(to: SocketAddr, gate: Arc<tokio::sync::Semaphore>) -> Fate {
    let Some(mut s) = connect(to, &gate).await else { return Fate::NoConnection };
    let start = Instant::now();
    if s.write_all(b"GET /files/none HTTP/1.1\r\nHost: gw\r\n\r\n").await.is_err() {
        return Fate::RefusedAtAccept(start.elapsed());
    }
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Fate::RefusedAtAccept(start.elapsed()),
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if response_complete(&got) {
                    break;
                }
            }
            Err(_) => return Fate::ClosedAfter(Duration::from_secs(30)),
        }
    }
    let idle_from = Instant::now();
    match closed_within(&mut s, KEEPALIVE_TIMEOUT + SLACK + Duration::from_secs(10)).await {
        Some(at) => Fate::ClosedAfter(at - idle_from),
        None => Fate::ClosedAfter(idle_from.elapsed()),
    }
}

/// A whole response head and its `Content-Length` body.
fn response_complete(got: &[u8]) -> bool {
    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    got.len() >= end + 4 + len
}

/// Mint and upload in a loop until `stop`; every request's latency, and failures.
async fn honest(gw: Arc<Gateway>, stop: Arc<AtomicBool>, failures: Arc<AtomicUsize>) -> Vec<Duration> {
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let mut lat = Vec::new();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body = format!("honest upload {n}");
        let t = Instant::now();
        let mint = client
            .post(gw.url(MINT))
            .header("authorization", "Bearer demo-key")
            .header("content-type", "application/json")
            .body(
                json!({"filename": "a.png", "content_type": "image/png", "file_size": body.len()})
                    .to_string(),
            )
            .send()
            .await;
        let url = match mint {
            Ok(r) if r.status() == 200 => r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["data"]["upload_url"].as_str().map(str::to_string)),
            _ => None,
        };
        lat.push(t.elapsed());
        let Some(url) = url else {
            failures.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let t = Instant::now();
        let put = client.put(&url).header("content-type", "image/png").body(body).send().await;
        lat.push(t.elapsed());
        if !put.is_ok_and(|r| r.status() == 200) {
            failures.fetch_add(1, Ordering::Relaxed);
        }
    }
    lat
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_with_2048_descriptors() {
    let gw = Arc::new(Gateway::start(GatewayOpts {
        metrics: true,
        fd_limit: Some(2048),
        extra_yaml: format!("limits:\n  keepalive_timeout_secs: {}\n", KEEPALIVE_TIMEOUT.as_secs()),
        ..Default::default()
    }));
    let pid = gw.child.id();
    let baseline = open_fds(pid);
    let to = gw.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> =
        (0..4).map(|_| tokio::spawn(honest(gw.clone(), stop.clone(), failures.clone()))).collect();
    let peak = Arc::new(AtomicUsize::new(0));
    let monitor = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(open_fds(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // At most 256 connects in flight: the kernel's SYN backlog is the limit being tested
    // elsewhere, not here.
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let attack_start = Instant::now();
    let mut attackers = Vec::new();
    for i in 0..TRICKLERS + IDLERS {
        let gate = gate.clone();
        attackers.push(tokio::spawn(async move {
            let fate = if i % 2 == 0 { trickler(to, gate).await } else { idler(to, gate).await };
            (i % 2 == 0, fate)
        }));
    }
    let mut fates = Vec::new();
    for a in attackers {
        fates.push(a.await.unwrap());
    }
    let attack_took = attack_start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut lat: Vec<Duration> = Vec::new();
    for w in workers {
        lat.extend(w.await.unwrap());
    }
    monitor.await.unwrap();

    lat.sort();
    let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)];
    let max = *lat.last().unwrap();
    let (mut refused, mut parked, mut none) = (0, 0, 0);
    let (mut worst_trickle, mut worst_idle, mut worst_refusal) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for (trickle, fate) in &fates {
        match fate {
            Fate::RefusedAtAccept(d) => {
                refused += 1;
                worst_refusal = worst_refusal.max(*d);
            }
            Fate::ClosedAfter(d) => {
                parked += 1;
                if *trickle {
                    worst_trickle = worst_trickle.max(*d);
                } else {
                    worst_idle = worst_idle.max(*d);
                }
            }
            Fate::NoConnection => none += 1,
        }
    }
    let figures = format!(
        "honest requests: {} ({} failed), p99 {p99:?}, max {max:?}; attacker connections: {parked} parked then closed \
         (trickle: worst {worst_trickle:?} after connecting; idle keep-alive: worst {worst_idle:?} after the answer), \
         {refused} refused at accept (worst {worst_refusal:?}), {none} never connected; attack took {attack_took:?}; \
         descriptors: baseline {baseline}, peak {}, limit 2048",
        lat.len(),
        failures.load(Ordering::Relaxed),
        peak.load(Ordering::Relaxed),
    );
    eprintln!("{figures}");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "{figures}");
    assert!(lat.len() >= 100, "too few honest requests to judge: {figures}");
    assert!(p99 < Duration::from_secs(1), "{figures}");
    assert!(worst_trickle <= HEADER_TIMEOUT + SLACK, "{figures}");
    assert!(worst_idle <= KEEPALIVE_TIMEOUT + SLACK, "{figures}");
    assert!(worst_refusal <= SLACK, "{figures}");
    assert!(parked > 0 && refused > 0, "both the deadline and the per-IP cap were exercised: {figures}");
    assert!(none < (TRICKLERS + IDLERS) / 100, "{figures}");
    wait_until_async("descriptors back to the baseline", Duration::from_secs(20), || {
        open_fds(pid) <= baseline + 2
    })
    .await;
    eprintln!("descriptors after: {} (baseline {baseline})", open_fds(pid));
}
