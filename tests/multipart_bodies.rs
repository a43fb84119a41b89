//! memories' multipart upload under hostile bodies: the form's bounds (preamble, part
//! headers, part count) refuse early, a body past the cap is 413 like every upload path,
//! and eight concurrent 100 MB hostile bodies keep the gateway's peak RSS under 100 MB.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;

const BOUNDARY: &str = "----hostileBoundary0123456789abcdef";
const MB: usize = 1_000_000;

/// A fresh memories upload URL for `name`.
async fn signed_url(gw: &Gateway, name: &str) -> String {
    let body = serde_json::json!({ "original_filename": name }).to_string();
    let (status, v) = post_json(&gw.url("/serve/api/v2/upload/signed-url"), Some("demo-key"), &body).await;
    assert_eq!(status, 200, "{v}");
    v["data"]["signed_url"].as_str().expect("signed_url").to_owned()
}

fn file_head() -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.mp4\"\r\nContent-Type: video/mp4\r\n\r\n")
}

fn closing() -> String {
    format!("\r\n--{BOUNDARY}--\r\n")
}

/// A body streamed in `chunk`-byte pieces: `head`, then `fill` repeated to `total` bytes,
/// then `tail`. Never held whole, so the test's own memory stays small.
fn streamed(head: String, fill: Vec<u8>, total: usize, tail: String, chunk: usize) -> reqwest::Body {
    let mut sent = 0usize;
    let mut pending: Vec<u8> = head.into_bytes();
    let mut tail = Some(tail.into_bytes());
    let stream = futures_util::stream::poll_fn(move |_| {
        while pending.len() < chunk && sent < total {
            let n = fill.len().min(total - sent);
            pending.extend_from_slice(&fill[..n]);
            sent += n;
        }
        if pending.len() < chunk {
            if let Some(t) = tail.take() {
                pending.extend_from_slice(&t);
            }
        }
        if pending.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let n = chunk.min(pending.len());
        let out: Vec<u8> = pending.drain(..n).collect();
        std::task::Poll::Ready(Some(Ok::<_, std::io::Error>(Bytes::from(out))))
    });
    reqwest::Body::wrap_stream(stream)
}

async fn post(url: &str, body: reqwest::Body) -> Result<(u16, String), reqwest::Error> {
    let r = client()
        .post(url)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await.unwrap_or_default()))
}

/// Peak resident set of a process, in bytes (Linux `VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb * 1024
}

#[tokio::test]
async fn an_over_cap_form_is_413() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage =
        format!("  local:\n    root: {}\n    max_upload_bytes: 1000\n", dir.path().join("d").display());
    let gw = Gateway::start(GatewayOpts { storage_yaml: Some(storage), ..Default::default() });
    // Declared, chunked (no length), and a file over the cap inside a body under it.
    let url = signed_url(&gw, "v.mp4").await;
    let body = [file_head().into_bytes(), vec![b'x'; 200_000], closing().into_bytes()].concat();
    let (status, text) = post(&url, body.into()).await.expect("declared");
    assert_eq!((status, text.contains("EntityTooLarge")), (413, true), "{text}");
    let (status, text) =
        post(&url, streamed(file_head(), vec![b'x'; 4096], 200_000, closing(), 8192)).await.expect("chunked");
    assert_eq!((status, text.contains("EntityTooLarge")), (413, true), "{text}");
    let body = [file_head().into_bytes(), vec![b'x'; 1001], closing().into_bytes()].concat();
    let (status, text) = post(&url, body.into()).await.expect("file over");
    assert_eq!((status, text.contains("EntityTooLarge")), (413, true), "{text}");
    let body = [file_head().into_bytes(), vec![b'x'; 1000], closing().into_bytes()].concat();
    let (status, text) = post(&url, body.into()).await.expect("at the cap");
    assert_eq!(status, 204, "{text}");
    let mut tmp = Vec::new();
    walk(&dir.path().join("d/tmp"), &mut tmp);
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[tokio::test]
async fn the_form_bounds_refuse_early() {
    let gw = Gateway::local();
    let url = signed_url(&gw, "v.mp4").await;
    let preamble =
        [vec![b'p'; 4097], file_head().into_bytes(), b"x".to_vec(), closing().into_bytes()].concat();
    let headers = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"\r\nX-Pad: {}\r\n\r\nx{}",
        "h".repeat(8192),
        closing()
    );
    let mut parts = String::new();
    for i in 0..65 {
        parts
            .push_str(&format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n"));
    }
    parts.push_str(&format!("--{BOUNDARY}--\r\n"));
    for (what, body, needle) in [
        ("preamble", preamble, "before the first boundary"),
        ("part headers", headers.into_bytes(), "headers exceed"),
        ("parts", parts.into_bytes(), "more than 64 parts"),
    ] {
        let (status, text) = post(&url, body.into()).await.expect(what);
        assert_eq!(status, 400, "{what}: {text}");
        assert!(text.contains("MalformedPOSTRequest") && text.contains(needle), "{what}: {text}");
    }
    // Just inside every bound: stored.
    let mut ok = vec![b'p'; 4096];
    ok.extend_from_slice(b"\r\n");
    ok.extend_from_slice(file_head().as_bytes());
    ok.extend_from_slice(b"fine");
    ok.extend_from_slice(closing().as_bytes());
    let (status, text) = post(&url, ok.into()).await.expect("inside");
    assert_eq!(status, 204, "{text}");
}

/// Eight hostile 100 MB bodies at once: two each of a huge preamble, a huge part header,
/// thousands of parts, and a file made of near-boundaries sent in chunks that split them.
#[tokio::test]
async fn eight_concurrent_hostile_bodies_stay_under_100_mb() {
    let gw = Gateway::local();
    let pid = gw.child.id();
    let before = peak_rss(pid);
    let near = format!("\r\n--{}", &BOUNDARY[..BOUNDARY.len() - 1]).into_bytes();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let url = signed_url(&gw, "v.mp4").await;
        let body = match i % 4 {
            0 => streamed(String::new(), vec![b'p'; 65536], 100 * MB, String::new(), 65536),
            1 => streamed(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"\r\nX-Pad: "),
                vec![b'h'; 65536],
                100 * MB,
                String::new(),
                65536,
            ),
            2 => {
                let part = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n");
                streamed(String::new(), part.into_bytes(), 100 * MB, String::new(), 65536)
            }
            // Chunks of a size that is no multiple of the near-boundary's, so chunk edges
            // fall inside them all along.
            _ => streamed(file_head(), near.clone(), 100 * MB, closing(), near.len() * 997 + 7),
        };
        tasks.push(tokio::spawn(async move { (i, post(&url, body).await) }));
    }
    for t in tasks {
        let (i, result) = t.await.expect("task");
        match (i % 4, result) {
            // The near-boundaries are the file's own bytes: stored whole.
            (3, Ok((status, text))) => assert_eq!(status, 204, "body {i}: {text}"),
            (3, Err(e)) => panic!("body {i}: {e}"),
            // Refused early: a 400, or the connection closed under a client still sending.
            (_, Ok((status, text))) => assert_eq!(status, 400, "body {i}: {text}"),
            (_, Err(e)) => assert!(!e.is_timeout(), "body {i}: {e}"),
        }
    }
    let peak = peak_rss(pid);
    eprintln!("gateway peak RSS: {} MiB before, {} MiB after", before >> 20, peak >> 20);
    assert!(peak < 100 * 1024 * 1024, "peak RSS {} MiB (was {} MiB before)", peak >> 20, before >> 20);
    // The two stored files are whole.
    let mut files = Vec::new();
    walk(&gw.data_dir().join("objects"), &mut files);
    let sizes: Vec<u64> = files.iter().map(|f| std::fs::metadata(f).expect("meta").len()).collect();
    assert_eq!(sizes, vec![100 * MB as u64; 2], "{files:?}");
    wait_until("temp files gone", Duration::from_secs(10), || {
        let mut tmp = Vec::new();
        walk(&gw.data_dir().join("tmp"), &mut tmp);
        tmp.is_empty()
    });
}
