//! HTTP/2 abuse is bounded (issue 13): the real gateway's TLS listener (HTTP/2 by ALPN, the
//! embedded local store) against a raw HTTP/2 client (`common::h2_raw`) sending what no
//! honest client sends:
//! - rapid reset (CVE-2023-44487), and its server-provoked twin (CVE-2025-8671: a
//!   WINDOW_UPDATE overflowing each stream's window makes the server reset it);
//! - a header block over `max_header_frames` frames, and a CONTINUATION flood (RSS);
//! - an HPACK bomb (one 4 KB dynamic-table entry referenced thousands of times; RSS);
//! - more streams than `max_concurrent_streams`;
//! - a flow-control window kept at zero (or nearly) under a download and a mint's answer;
//! - PING, SETTINGS and PRIORITY floods, and a zero WINDOW_UPDATE;
//!
//! and, while floods run, an honest HTTP/2 client (the `h2` crate) minting with a p99 under
//! 1 s. Each attack ends as its limit says (a frame, EOF, a metric: waited on, never slept
//! for). Two were bugs, each a regression test here: a download stalled past
//! `send_stall_timeout_secs` ended with END_STREAM (a short body passed off as whole), and an
//! answer stalled mid-body was followed by an error answer that stalled again (twice the
//! timeout) and, had the window opened, was spliced onto it. Run with `--nocapture` to see
//! the figures.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::edge_clients::{open_fds, ATTACKER, HONEST};
use common::gateway::TlsOpts;
use common::h2_raw::*;
use common::metrics::metric;
use common::pki::TestPki;
use common::*;
use serde_json::json;

/// A gateway with a TLS listener; its CA; the origin it passes through to, if any.
struct Edge {
    gw: Gateway,
    pki: TestPki,
    origin: Option<Origin>,
}

/// `http2`: lines under `tls.http2:` (each indented four spaces).
fn start(http2: &str, origin: Option<Origin>) -> Edge {
    let pki = TestPki::new("h2 abuse CA");
    let mut tls = TlsOpts::new(&pki);
    if !http2.is_empty() {
        tls.extra_yaml = format!("  http2:\n{http2}");
    }
    let gw = Gateway::start(GatewayOpts {
        origin: origin.as_ref().map(|o| o.addr),
        tls: Some(tls),
        metrics: true,
        ..Default::default()
    });
    Edge { gw, pki, origin }
}

const H2_ABUSE: &str = "presign_connections_refused_total{reason=\"h2_abuse\"}";
const OPEN: &str = "presign_connections_open";
/// How long an end that should come at once may take (a loaded CI machine, a debug build).
const SOON: Duration = Duration::from_secs(10);

impl Edge {
    async fn connect(&self, settings: &[(u16, u32)]) -> H2Client {
        H2Client::connect(self.gw.tls_addr.unwrap(), ATTACKER, &self.pki.ca_file, settings).await
    }

    fn authority(&self) -> String {
        format!("localhost:{}", self.gw.tls_addr.unwrap().port())
    }

    fn get(&self, path: &str) -> Vec<u8> {
        Block::request("GET", path, &self.authority()).0
    }

    fn pid(&self) -> u32 {
        self.gw.child.id()
    }

    /// Wait until `series` reaches `at_least`; its value then.
    async fn metric_at_least(&self, series: &str, at_least: f64) -> f64 {
        let deadline = Instant::now() + SOON;
        loop {
            let v = metric(&self.gw, series).await;
            if v >= at_least {
                return v;
            }
            assert!(Instant::now() < deadline, "{series} stayed at {v}, below {at_least}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until `series` is at most `at_most`.
    async fn metric_at_most(&self, series: &str, at_most: f64) {
        let deadline = Instant::now() + SOON;
        loop {
            let v = metric(&self.gw, series).await;
            if v <= at_most {
                return;
            }
            assert!(Instant::now() < deadline, "{series} stayed at {v}, above {at_most}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The gateway answers a request on a fresh connection (from the honest address).
    async fn still_serves(&self) {
        let mut c = H2Client::connect(self.gw.tls_addr.unwrap(), HONEST, &self.pki.ca_file, &[]).await;
        c.send(&headers(1, &self.get("/files/none"), true)).await.expect("send");
        assert_eq!(c.outcomes(&[1], SOON).await, [(1, Outcome::Status(404))], "the gateway still serves");
    }
}

/// What a flood did on one connection before the server ended it.
#[derive(Debug)]
struct Flood {
    /// Units (streams, frames) written before the end was seen or a write failed.
    sent: u32,
    /// The GOAWAY, if one came.
    goaway: Option<(u32, u32, String)>,
    /// Frames the server sent before its end.
    frames: Vec<Frame>,
}

/// Write `unit(i)` for i in 0..`max` in batches of `batch` until the server ends the
/// connection (seen by the reader, or a write fails); then wait for that end. Panics if all
/// `max` were written and the connection is still open after [`SOON`].
async fn flood(c: &mut H2Client, max: u32, batch: u32, unit: impl Fn(u32) -> Vec<u8>) -> Flood {
    let mut sent = 0;
    let mut frames = Vec::new();
    let mut goaway = None;
    let mut closed = false;
    'writing: while sent < max {
        while let Some(e) = c.try_next() {
            match e {
                Event::Closed(_) => {
                    closed = true;
                    break 'writing;
                }
                Event::Frame(f) if f.kind == GOAWAY => {
                    goaway = f.goaway();
                    break 'writing;
                }
                Event::Frame(f) => frames.push(f),
            }
        }
        let n = batch.min(max - sent);
        let bytes: Vec<u8> = (sent..sent + n).flat_map(&unit).collect();
        if c.send(&bytes).await.is_err() {
            break;
        }
        sent += n;
    }
    if !closed {
        let end = c.ended(SOON).await.unwrap_or_else(|| panic!("still open after {sent} of {max} sent"));
        goaway = goaway.or(end.goaway);
        frames.extend(end.frames_before);
    }
    Flood { sent, goaway, frames }
}

fn calm(goaway: &Option<(u32, u32, String)>) -> bool {
    goaway.as_ref().is_some_and(|g| g.1 == ENHANCE_YOUR_CALM)
}

// ----- 1. Rapid reset -----

const RESET_STREAMS: u32 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_ends_the_connection_and_the_origin_sees_few_requests() {
    let edge = start("", Some(Origin::start()));
    let cpu0 = common::edge_clients::cpu_ticks(edge.pid());
    let mut c = edge.connect(&[]).await;
    let paths: Vec<Vec<u8>> = (0..10).map(|i| edge.get(&format!("/pass/{i}"))).collect();
    let f = flood(&mut c, RESET_STREAMS, 100, |i| {
        let id = 2 * i + 1;
        [headers(id, &paths[i as usize % 10], true), rst_stream(id, CANCEL)].concat()
    })
    .await;
    // Whichever comes first: h2's own limit on streams reset before they were accepted (20,
    // GOAWAY ENHANCE_YOUR_CALM), or the guard's max_resets_per_sec (a burst of 100, EOF).
    let refused = if calm(&f.goaway) {
        0.0
    } else {
        assert!(f.sent > 100, "the guard ended it after {} streams, within its burst", f.sent);
        edge.metric_at_least(H2_ABUSE, 1.0).await
    };
    // The connection is gone (its slot given back): its streams cannot be served any more.
    edge.metric_at_most(OPEN, 0.0).await;
    let reached = edge.origin.as_ref().unwrap().count();
    println!(
        "rapid reset: {} streams opened and reset before the end ({:?}); origin saw {reached}; h2_abuse {refused}; gateway CPU {} ticks",
        f.sent,
        f.goaway,
        common::edge_clients::cpu_ticks(edge.pid()) - cpu0
    );
    assert!(f.sent < RESET_STREAMS, "the connection outlived all {} streams", f.sent);
    // At most the burst, plus what a second of refill would add.
    assert!(reached <= 200, "the origin saw {reached} requests of {} streams", f.sent);
    // The path does reach the origin for a request that waits for its answer.
    edge.still_serves().await;
    let mut c = H2Client::connect(edge.gw.tls_addr.unwrap(), HONEST, &edge.pki.ca_file, &[]).await;
    c.send(&headers(1, &edge.get("/pass/honest"), true)).await.expect("send");
    assert_eq!(c.outcomes(&[1], SOON).await, [(1, Outcome::Status(203))], "the echo origin answers");
    assert_eq!(edge.origin.as_ref().unwrap().count(), reached + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_past_the_burst_of_max_resets_per_sec_end_the_connection() {
    // Under h2's own limit (21 streams reset before they were accepted), so the guard decides.
    let edge = start("    max_resets_per_sec: 10\n", None);
    let mut c = edge.connect(&[]).await;
    let get = edge.get("/files/none");
    let reset = |id: u32| [headers(id, &get, true), rst_stream(id, CANCEL)].concat();
    // The burst passes: the connection still answers a PING after it.
    c.send(&(0..10).flat_map(|i| reset(2 * i + 1)).collect::<Vec<u8>>()).await.expect("send");
    c.sync(1).await;
    assert_eq!(metric(&edge.gw, H2_ABUSE).await, 0.0);
    // Twenty more at once: more than a second's refill can cover.
    c.send(&(10..30).flat_map(|i| reset(2 * i + 1)).collect::<Vec<u8>>()).await.expect("send");
    let end = c.ended(SOON).await.expect("the connection ends");
    assert!(end.closed.is_some() && end.goaway.is_none(), "ended by the guard (EOF): {end:?}");
    assert_eq!(edge.metric_at_least(H2_ABUSE, 1.0).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_provoked_resets_end_the_connection_too() {
    // A WINDOW_UPDATE that overflows a stream's window is a stream error: the server resets
    // the stream itself, so no RST_STREAM of the client's counts (CVE-2025-8671).
    let edge = start("", Some(Origin::start()));
    let mut c = edge.connect(&[]).await;
    let paths: Vec<Vec<u8>> = (0..10).map(|i| edge.get(&format!("/pass/{i}"))).collect();
    let f = flood(&mut c, RESET_STREAMS, 100, |i| {
        let id = 2 * i + 1;
        [headers(id, &paths[i as usize % 10], true), window_update(id, 0x7fff_ffff)].concat()
    })
    .await;
    let resets = f.frames.iter().filter(|f| f.rst_code() == Some(FLOW_CONTROL_ERROR)).count();
    let refused = metric(&edge.gw, H2_ABUSE).await;
    edge.metric_at_most(OPEN, 0.0).await;
    let reached = edge.origin.as_ref().unwrap().count();
    println!(
        "server-provoked resets: {} streams sent, {resets} resets read, GOAWAY {:?}, h2_abuse {refused}, origin saw {reached}",
        f.sent, f.goaway
    );
    assert!(f.sent < RESET_STREAMS, "the connection outlived all {} streams", f.sent);
    // The codec's own limit on the streams it resets ends it (the guard sees only the
    // client's frames): GOAWAY ENHANCE_YOUR_CALM, last stream well under the streams sent.
    let (last, code, _) = f.goaway.clone().expect("a GOAWAY");
    assert!(code == ENHANCE_YOUR_CALM && last < 2 * 1024, "{:?}", f.goaway);
    assert!(reached <= 1024, "the origin saw {reached} requests");
    edge.still_serves().await;
}

// ----- 2. CONTINUATION -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_block_over_max_header_frames_ends_the_connection() {
    // Under h2's own CONTINUATION limit (5 at the default sizes), so the guard decides.
    let edge = start("    max_header_frames: 4\n", None);
    let mut c = edge.connect(&[]).await;
    let block = edge.get("/files/none");
    let split = |id: u32, frames: usize| {
        let mut wire = frame(HEADERS, END_STREAM, id, &block);
        for n in 2..=frames {
            wire.extend(frame(CONTINUATION, if n == frames { END_HEADERS } else { 0 }, id, &[]));
        }
        wire
    };
    c.send(&split(1, 4)).await.expect("send");
    let served = c.outcomes(&[1], SOON).await;
    assert_eq!(served, [(1, Outcome::Status(404))], "a block of max_header_frames frames is served");
    c.send(&split(3, 5)).await.expect("send");
    let end = c.ended(SOON).await.expect("the connection ends");
    assert!(end.closed.is_some() && end.goaway.is_none(), "ended by the guard: {end:?}");
    assert!(end.frames_before.iter().all(|f| f.stream != 3), "stream 3 got nothing: {end:?}");
    edge.metric_at_least(H2_ABUSE, 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_flood_ends_each_connection_and_memory_stays_bounded() {
    const TOTAL: u64 = 50 << 20;
    const AT_ONCE: usize = 4;
    let edge = Arc::new(start("", None));
    edge.still_serves().await;
    let rss0 = rss_kib(edge.pid());
    // A literal whose value (1 MiB, declared) never ends: the decoder keeps waiting for more.
    let mut open = Block::request("GET", "/files/none", &edge.authority()).0;
    open.push(0x00);
    string(&mut open, b"x-flood");
    int(&mut open, 7, 0x00, 1 << 20);
    let open = Arc::new(open);
    let written = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..AT_ONCE)
        .map(|_| {
            let (edge, open, written) = (edge.clone(), open.clone(), written.clone());
            tokio::spawn(async move {
                let mut ends = Vec::new();
                while written.load(Ordering::Relaxed) < TOTAL {
                    let mut c = edge.connect(&[]).await;
                    let start = c.written;
                    c.send(&frame(HEADERS, END_STREAM, 1, &open)).await.expect("HEADERS");
                    let filler = frame(CONTINUATION, 0, 1, &[b'a'; MAX_FRAME_PAYLOAD]);
                    let f = flood(&mut c, 100_000, 1, |_| filler.clone()).await;
                    written.fetch_add(c.written - start, Ordering::Relaxed);
                    ends.push(f);
                }
                ends
            })
        })
        .collect();
    let mut ends = Vec::new();
    for t in tasks {
        ends.extend(t.await.expect("flooder"));
    }
    edge.metric_at_most(OPEN, 0.0).await;
    let rss1 = rss_kib(edge.pid());
    let mut sent: Vec<u32> = ends.iter().map(|f| f.sent).collect();
    sent.sort_unstable();
    let calm_ends = ends.iter().filter(|f| calm(&f.goaway)).count();
    let guard_ends = metric(&edge.gw, H2_ABUSE).await;
    println!(
        "CONTINUATION flood: {} MiB in {} connections; 16 KiB CONTINUATION frames written before each end was seen: median {}, max {}; {calm_ends} ended by h2's GOAWAY ENHANCE_YOUR_CALM (5 CONTINUATION at these sizes, under max_header_frames' 16), {guard_ends} by the guard; RSS {} -> {} MiB",
        written.load(Ordering::Relaxed) >> 20,
        ends.len(),
        sent[sent.len() / 2],
        sent[sent.len() - 1],
        rss0 >> 10,
        rss1 >> 10
    );
    // Each ended by one of the two limits, never by anything else (a timeout, an error).
    let others: Vec<_> = ends.iter().filter(|f| !calm(&f.goaway) && f.goaway.is_some()).collect();
    assert!(others.is_empty(), "ended otherwise: {others:?}");
    assert_eq!(calm_ends as f64 + guard_ends, ends.len() as f64, "every connection ended by a limit");
    assert!(
        rss1.saturating_sub(rss0) < 24 << 10,
        "RSS grew by {} MiB for {} MiB of CONTINUATION",
        rss1.saturating_sub(rss0) >> 10,
        TOTAL >> 20
    );
    edge.still_serves().await;
}

// ----- 3. HPACK bomb -----

/// A 4,000-byte value: with its name and the 32 bytes of overhead, it fits the default
/// 4,096-byte dynamic table alone.
fn seed(edge: &Edge, id: u32) -> Vec<u8> {
    let block =
        Block::request("GET", "/files/none", &edge.authority()).incremental("x-bomb", &"a".repeat(4000));
    headers(id, &block.0, true)
}

/// A request that references the seeded entry (index 62, the newest) `n` times.
fn bomb(edge: &Edge, id: u32, n: usize) -> Vec<u8> {
    let mut block = Block::request("GET", "/files/none", &edge.authority());
    for _ in 0..n {
        block = block.indexed(62);
    }
    headers(id, &block.0, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpack_bomb_is_refused_without_memory_and_the_gateway_keeps_serving() {
    let edge = start("", None);
    edge.still_serves().await;
    let rss0 = rss_kib(edge.pid());

    // 20 references decode to 80 KB, over the 64 KiB header list: that request is refused
    // (431 and/or a reset stream), the connection and the next request go on.
    let mut c = edge.connect(&[]).await;
    c.send(&seed(&edge, 1)).await.expect("seed");
    c.send(&bomb(&edge, 3, 20)).await.expect("bomb");
    c.send(&headers(5, &edge.get("/files/none"), true)).await.expect("next");
    let got = c.outcomes(&[1, 3, 5], SOON).await;
    assert!(matches!(got[1].1, Outcome::Status(431) | Outcome::Reset(_)), "stream 3 refused: {got:?}");
    assert_eq!((got[0], got[2]), ((1, Outcome::Status(404)), (5, Outcome::Status(404))), "{got:?}");
    println!("HPACK bomb (80 KB decoded): answers {got:?}");

    // 16,000 references in one frame decode to 65 MB: far past h2's abuse limit (4x the
    // list), the connection ends. Twenty of them, each on its own connection.
    let mut ended = Vec::new();
    for _ in 0..20 {
        let mut c = edge.connect(&[]).await;
        c.send(&seed(&edge, 1)).await.expect("seed");
        c.send(&bomb(&edge, 3, 16_000)).await.expect("bomb");
        let end = c.ended(SOON).await.expect("a 65 MB header list ends the connection");
        assert!(end
            .frames_before
            .iter()
            .all(|f| f.stream != 3 || f.rst_code().is_some() || f.status() == Some(431)));
        ended.push(end.goaway);
    }
    let rss1 = rss_kib(edge.pid());
    println!(
        "HPACK bomb (65 MB decoded) x20: ends {:?}; RSS {} -> {} MiB",
        ended.first(),
        rss0 >> 10,
        rss1 >> 10
    );
    assert!(ended.iter().all(calm), "each ended by GOAWAY ENHANCE_YOUR_CALM: {ended:?}");
    assert!(rss1.saturating_sub(rss0) < 24 << 10, "RSS grew by {} MiB", rss1.saturating_sub(rss0) >> 10);
    edge.still_serves().await;
}

// ----- 4. Concurrent streams -----

fn mint_body() -> String {
    json!({"filename": "a.png", "content_type": "image/png", "file_size": 10}).to_string()
}

fn mint_block(edge: &Edge, body_len: usize) -> Vec<u8> {
    Block::request("POST", MINT, &edge.authority())
        .literal_indexed_name(23, "Bearer demo-key") // authorization
        .literal_indexed_name(31, "application/json") // content-type
        .literal_indexed_name(28, &body_len.to_string()) // content-length
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_max_concurrent_streams_are_refused() {
    let edge = start("    max_concurrent_streams: 8\n", None);
    let mut c = edge.connect(&[]).await;
    assert_eq!(
        c.server_setting(SETTINGS_MAX_CONCURRENT_STREAMS),
        Some(8),
        "announced: {:?}",
        c.server_settings
    );
    let body = mint_body();
    let block = mint_block(&edge, body.len());
    // Twelve mints whose bodies never come: eight are held open, four refused.
    let opened: Vec<u8> = (0..12u32).flat_map(|i| headers(2 * i + 1, &block, false)).collect();
    c.send(&opened).await.expect("send");
    let seen = c.sync(1).await;
    let mut resets = seen.resets();
    resets.sort_unstable();
    assert!(
        resets.iter().map(|(s, _)| *s).eq([17, 19, 21, 23])
            && resets.iter().all(|(_, code)| *code == REFUSED_STREAM || *code == PROTOCOL_ERROR),
        "streams 9-12 refused, 1-8 held: {seen:?}"
    );
    // The limit is on streams at once: one finished, the next is taken.
    c.send(&data(1, body.as_bytes(), true)).await.expect("body");
    assert_eq!(c.outcomes(&[1], SOON).await, [(1, Outcome::Status(200))], "the finished mint is answered");
    c.send(&headers(25, &block, false)).await.expect("send");
    let seen = c.sync(2).await;
    assert!(seen.resets().is_empty(), "a ninth stream once one ended is taken: {seen:?}");
    println!("max_concurrent_streams 8: 12 opened, refused {resets:?}");
}

// ----- 5. A window kept at zero -----

fn png(n: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.resize(n, 7);
    b
}

const STALL: Duration = Duration::from_secs(2);
const STALL_MARGIN: Duration = Duration::from_millis(1500);

/// Wait for the end of `stream` (END_STREAM, RST_STREAM, or the connection's): how it ended
/// ("END_STREAM", "RST_STREAM <code>", "closed: ..."), and the DATA bytes received before.
async fn stream_end(c: &mut H2Client, stream: u32) -> (String, usize) {
    let mut bytes = 0;
    let end = c
        .until(STALL + SOON, |e| match e {
            Event::Frame(f) if f.stream == stream && f.kind == DATA => {
                bytes += f.payload.len();
                (f.flags & END_STREAM != 0).then(|| "END_STREAM".to_string())
            }
            Event::Frame(f) if f.stream == stream => f.rst_code().map(|code| format!("RST_STREAM {code}")),
            Event::Closed(why) => Some(format!("closed: {why}")),
            _ => None,
        })
        .await
        .unwrap_or_else(|| panic!("stream {stream} still open after {:?}", STALL + SOON));
    (end, bytes)
}

fn assert_stalled_for(took: Duration) {
    assert!(
        took >= STALL - Duration::from_millis(200) && took < STALL + STALL_MARGIN,
        "ended after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_to_a_window_kept_at_zero_is_reset_after_send_stall_timeout() {
    let edge = start("    send_stall_timeout_secs: 2\n", None);
    // An object uploaded the ordinary way, over plain HTTP.
    let bytes = png(256 * 1024);
    let v =
        mint(&edge.gw, json!({"filename": "big.png", "content_type": "image/png", "file_size": bytes.len()}))
            .await;
    let put = client()
        .put(v["data"]["upload_url"].as_str().unwrap())
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let public = v["data"]["public_url"].as_str().unwrap();
    let path = &public[public.find("/files/").unwrap()..];
    edge.metric_at_most(OPEN, 0.0).await;
    let fds0 = open_fds(edge.pid());

    let mut c = edge.connect(&[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]).await;
    let asked = Instant::now();
    c.send(&headers(1, &edge.get(path), true)).await.expect("GET");
    assert_eq!(c.outcomes(&[1], SOON).await, [(1, Outcome::Status(200))]);
    let data_dir = edge.gw.data_dir();
    let files_open = || files_open_under(edge.pid(), &data_dir);
    // The object's file is open while the response waits for a window.
    wait_until_async("the object's file open", SOON, || files_open() == 1).await;
    let (end, body_bytes) = stream_end(&mut c, 1).await;
    let took = asked.elapsed();
    println!("window kept at zero, download: {end} after {took:?} ({body_bytes} body bytes sent)");
    assert_eq!(body_bytes, 0, "nothing fits a window of zero");
    assert_stalled_for(took);
    // A reset, never an END_STREAM: that would pass 0 of 262,144 bytes off as the whole body.
    assert!(end.starts_with("RST_STREAM"), "the short response is reset: {end}");
    wait_until_async("the object's file closed", SOON, || files_open() == 0).await;
    // The connection itself is the client's to end; then everything is given back.
    drop(c);
    edge.metric_at_most(OPEN, 0.0).await;
    wait_until_async("descriptors back", SOON, || open_fds(edge.pid()) <= fds0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_stalled_mid_body_is_reset_once_not_followed_by_an_error_answer() {
    // A window of 100 bytes: a mint's JSON answer starts, then waits for more window. After
    // the stall, the answer must end there: not followed by `{"error":"bad_request"}` (which
    // waited for the window once more, and would have been spliced onto the 100 bytes).
    let edge = start("    send_stall_timeout_secs: 2\n", None);
    let mut c = edge.connect(&[(SETTINGS_INITIAL_WINDOW_SIZE, 100)]).await;
    let body = mint_body();
    let asked = Instant::now();
    c.send(&[headers(1, &mint_block(&edge, body.len()), false), data(1, body.as_bytes(), true)].concat())
        .await
        .expect("mint");
    assert_eq!(c.outcomes(&[1], SOON).await, [(1, Outcome::Status(200))]);
    let (end, body_bytes) = stream_end(&mut c, 1).await;
    let took = asked.elapsed();
    println!("window of 100 bytes, mint: {end} after {took:?} ({body_bytes} body bytes sent)");
    assert_eq!(body_bytes, 100, "the window's worth, then nothing");
    assert!(end.starts_with("RST_STREAM"), "the short answer is reset: {end}");
    assert_stalled_for(took);
    let origin_errors = common::metrics::metric_sum(&edge.gw, "presign_origin_errors_total").await;
    assert_eq!(origin_errors, 0.0, "a client's stalled window is no origin error");
    edge.still_serves().await;
}

/// How many of process `pid`'s descriptors are files under `dir`.
fn files_open_under(pid: u32, dir: &std::path::Path) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    fds.flatten()
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.starts_with(dir)))
        .count()
}

// ----- 6. Control-frame floods -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_settings_and_priority_floods_end_the_connection() {
    const FRAMES: u32 = 100_000;
    let edge = start("", None);
    for (n, (code, kind)) in
        [(PING, "PING"), (SETTINGS, "SETTINGS"), (PRIORITY, "PRIORITY")].into_iter().enumerate()
    {
        let mut c = edge.connect(&[]).await;
        let f = flood(&mut c, FRAMES, 100, |i| match code {
            PING => ping(u64::from(i)),
            SETTINGS => settings(&[]),
            _ => priority(2 * i + 1, 0),
        })
        .await;
        // PING and SETTINGS are answered (an ACK each; one SETTINGS ACK is for our own).
        let acks = f.frames.iter().filter(|f| f.kind == code && f.flags & ACK != 0).count();
        let answered = if code == SETTINGS { acks.saturating_sub(1) } else { acks };
        let refused = edge.metric_at_least(H2_ABUSE, n as f64 + 1.0).await;
        println!(
            "{kind} flood: {} frames written before the end, {answered} answered, GOAWAY {:?}, h2_abuse {refused}",
            f.sent, f.goaway
        );
        assert!(f.sent < FRAMES, "the connection outlived all {FRAMES} {kind} frames");
        // max_control_frames_per_sec's burst (200), plus refill.
        assert!(answered <= 400, "{answered} {kind} frames answered");
    }
    // A WINDOW_UPDATE of zero needs no rate: the codec ends the connection at the first.
    let mut c = edge.connect(&[]).await;
    c.send(&[headers(1, &edge.get("/files/none"), true), window_update(1, 0)].concat()).await.expect("send");
    let end = c.ended(SOON).await.expect("the connection ends");
    assert_eq!(end.goaway.map(|g| g.1), Some(PROTOCOL_ERROR), "{:?}", end.frames_before);
    edge.still_serves().await;
}

// ----- 7. Honest traffic during floods -----

/// Mint over one HTTP/2 connection (the `h2` crate's client) until `stop`: each mint's
/// latency, and the failures.
async fn honest_minting(edge: Arc<Edge>, stop: Arc<AtomicBool>) -> (Vec<Duration>, Vec<String>) {
    let tls = connect_tls(edge.gw.tls_addr.unwrap(), HONEST, &edge.pki.ca_file).await.expect("TLS");
    let (mut send, conn) = h2::client::handshake(tls).await.expect("h2 handshake");
    tokio::spawn(conn);
    let (mut lat, mut failures) = (Vec::new(), Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let body = mint_body();
        let t = Instant::now();
        let r = tokio::time::timeout(SOON, async {
            let req = http::Request::post(format!("https://{}{MINT}", edge.authority()))
                .header("authorization", "Bearer demo-key")
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .body(())
                .unwrap();
            send = send.clone().ready().await.map_err(|e| e.to_string())?;
            let (resp, mut tx) = send.send_request(req, false).map_err(|e| e.to_string())?;
            tx.send_data(body.into(), true).map_err(|e| e.to_string())?;
            let resp = resp.await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let mut rx = resp.into_body();
            let mut got = Vec::new();
            while let Some(chunk) = rx.data().await {
                let chunk = chunk.map_err(|e| e.to_string())?;
                let _ = rx.flow_control().release_capacity(chunk.len());
                got.extend_from_slice(&chunk);
            }
            let v: serde_json::Value = serde_json::from_slice(&got).map_err(|e| e.to_string())?;
            if status != 200 || v["data"]["upload_url"].as_str().is_none() {
                return Err(format!("{status}: {v}"));
            }
            Ok(())
        })
        .await;
        lat.push(t.elapsed());
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("timed out".into()),
        }
    }
    (lat, failures)
}

/// Attack connections, one after another, until `count` have ended: (connections, streams
/// or frames sent).
async fn attack(edge: Arc<Edge>, continuation: bool, count: u32) -> (u32, u32) {
    let get = edge.get("/pass/x");
    let filler = frame(CONTINUATION, 0, 1, &[b'a'; MAX_FRAME_PAYLOAD]);
    let mut open = get.clone();
    open.push(0x00);
    string(&mut open, b"x-flood");
    int(&mut open, 7, 0x00, 1 << 20);
    let mut units = 0;
    for _ in 0..count {
        let mut c = edge.connect(&[]).await;
        let f = if continuation {
            c.send(&frame(HEADERS, END_STREAM, 1, &open)).await.expect("HEADERS");
            flood(&mut c, 100_000, 16, |_| filler.clone()).await
        } else {
            flood(&mut c, RESET_STREAMS, 100, |i| {
                [headers(2 * i + 1, &get, true), rst_stream(2 * i + 1, CANCEL)].concat()
            })
            .await
        };
        units += f.sent;
    }
    (count, units)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_minting_keeps_its_latency_during_rapid_reset_and_continuation_floods() {
    const ATTACKS: u32 = 30;
    let edge = Arc::new(start("", Some(Origin::start())));
    let stop = Arc::new(AtomicBool::new(false));
    let honest = tokio::spawn(honest_minting(edge.clone(), stop.clone()));
    let started = Instant::now();
    // Two attackers of each kind at once, one connection after another each.
    let attackers: Vec<_> = [false, true, false, true]
        .into_iter()
        .map(|kind| (kind, tokio::spawn(attack(edge.clone(), kind, ATTACKS))))
        .collect();
    let (mut resets, mut streams, mut floods, mut frames) = (0, 0, 0, 0);
    for (continuation, a) in attackers {
        let (connections, units) = a.await.unwrap();
        if continuation {
            (floods, frames) = (floods + connections, frames + units);
        } else {
            (resets, streams) = (resets + connections, streams + units);
        }
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut lat, failures) = honest.await.unwrap();
    lat.sort_unstable();
    let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)];
    println!(
        "during {took:?} of floods: {} honest mints, p50 {:?}, p99 {p99:?}, max {:?}, {} failed; rapid reset: {resets} connections, {streams} streams; CONTINUATION: {floods} connections, {frames} frames",
        lat.len(),
        lat[lat.len() / 2],
        lat[lat.len() - 1],
        failures.len()
    );
    assert!(failures.is_empty(), "honest mints failed: {:?}", &failures[..failures.len().min(5)]);
    assert!(lat.len() >= 20, "only {} honest mints in {took:?}", lat.len());
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?}");
}

// ----- The raw client's own decoding -----

#[test]
fn the_raw_client_reads_integers_and_statuses_as_rfc_7541_writes_them() {
    let mut v = Vec::new();
    int(&mut v, 5, 0, 1337);
    assert_eq!(v, [31, 154, 10], "RFC 7541 C.1.2");
    assert_eq!(read_int(&v, 5), Some((1337, 3)));
    let f = |payload: Vec<u8>| Frame { kind: HEADERS, flags: END_HEADERS, stream: 1, payload };
    assert_eq!(f(vec![0x88]).status(), Some(200));
    assert_eq!(f(vec![0x20, 0x8d]).status(), Some(404));
    assert_eq!(f(vec![0x48, 0x03, b'4', b'3', b'1']).status(), Some(431));
    // ":status: 302", Huffman-coded (RFC 7541 C.6.1: 4882 6402).
    assert_eq!(f(vec![0x48, 0x82, 0x64, 0x02]).status(), Some(302));
    assert_eq!(f(vec![0xbe]).status(), None, "the dynamic table is not read");
}
