//! How the edge reads requests: which paths are upload routes (the raw path, byte for byte;
//! everything else is pass-through, the same way every time), and HTTP/1.1 pipelining (a
//! request sent right behind another is answered in order, or the connection closes after
//! the first answer; it is never read and dropped).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

const MINT_PATHS: [&str; 4] =
    ["/api/v1/files/upload-url", "/api/upload/presign", "/serve/api/v2/upload/signed-url", "/v1/upload/s3"];

/// Spellings of `path` that are not `path`: each must be pass-through.
fn variants(path: &str) -> Vec<String> {
    let (head, last) = path.rsplit_once('/').expect("a path");
    let first_seg_end = path[1..].find('/').map_or(path.len(), |i| i + 1);
    vec![
        format!("/{path}"),
        format!("{path}/"),
        format!("{head}//{last}"),
        format!("{head}/./{last}"),
        format!("{head}/x/../{last}"),
        format!("{head}%2F{last}"),
        format!("{head}/{}", last.replacen('-', "%2D", 1).replacen('s', "%73", 1)),
        path.to_ascii_uppercase(),
        format!("{}{}", path[..first_seg_end].to_ascii_uppercase(), &path[first_seg_end..]),
        format!("{path}%20"),
        format!("{path};x"),
    ]
    .into_iter()
    .filter(|v| v != path)
    .collect()
}

/// One raw request; the response head and body as text.
fn exchange(addr: SocketAddr, request: &str) -> String {
    raw_exchange(addr, request.as_bytes(), Duration::from_secs(5))
}

fn post_raw(path: &str, auth: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn mint_body(path: &str) -> &'static str {
    match path {
        "/api/v1/files/upload-url" => r#"{"filename":"a.png","content_type":"image/png","file_size":5}"#,
        "/api/upload/presign" => r#"{"file_name":"a.png","content_type":"image/png"}"#,
        "/serve/api/v2/upload/signed-url" => r#"{"original_filename":"a.png"}"#,
        _ => r#"{"filename":"a.png","contentType":"image/png","size":5}"#,
    }
}

fn auth(path: &str) -> &'static str {
    if path.starts_with("/serve") {
        "demo-key"
    } else {
        "Bearer demo-key"
    }
}

#[test]
fn only_the_exact_raw_path_is_an_upload_route() {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts { origin: Some(origin.addr), ..Default::default() });
    for path in MINT_PATHS {
        let answer = exchange(gw.addr, &post_raw(path, auth(path), mint_body(path)));
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        assert!(!answer.contains("\"origin\":true"), "{path}: {answer}");
        for v in variants(path) {
            // Twice: the decision is the same every time.
            for _ in 0..2 {
                let answer = exchange(gw.addr, &post_raw(&v, auth(path), mint_body(path)));
                let target = format!("\"target\":{}", serde_json::Value::String(v.clone()));
                // Pass-through, sent on as received; or refused by the HTTP parser itself
                // (400, and then by no one's route).
                let passed = answer.starts_with("HTTP/1.1 203") && answer.contains(&target);
                let unparsable = answer.starts_with("HTTP/1.1 400") && !answer.contains("\"origin\"");
                assert!(passed || unparsable, "{v}: {answer}");
            }
        }
    }
    // The object prefix is the gateway's: a non-canonical key under it is refused there,
    // never passed on; a look-alike of the prefix is pass-through.
    let before = origin.count();
    let get =
        |p: &str| exchange(gw.addr, &format!("GET {p} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"));
    for p in ["/files//a.png", "/files/a/../b.png", "/files/%2e%2e/b.png", "/files/a/", "/files/./a.png"] {
        let answer = get(p);
        assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("InvalidArgument"), "{p}: {answer}");
    }
    // The key is the decoded path, as on S3: `%2F` is a `/` there.
    assert!(get("/files/a%2Fb.png").starts_with("HTTP/1.1 404"));
    assert!(get("/files/a/b.png").starts_with("HTTP/1.1 404"));
    assert_eq!(origin.count(), before, "nothing under the object prefix reaches the origin");
    for p in ["/FILES/a.png", "//files/a.png", "/files%2Fa.png", "/filesa.png"] {
        let answer = get(p);
        assert!(answer.starts_with("HTTP/1.1 203"), "{p}: {answer}");
    }
}

/// Responses read off one connection until it closes (or `within` passes): each response's
/// status, and whether the peer closed.
fn read_responses(s: &mut TcpStream, within: Duration) -> (Vec<(u16, Vec<u8>)>, bool) {
    let deadline = Instant::now() + within;
    let mut buf = Vec::new();
    let mut closed = false;
    let mut chunk = [0u8; 16384];
    while Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        match s.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                // Two complete answers: nothing more can come.
                if split_responses(&buf).0.len() >= 2 {
                    break;
                }
            }
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let (responses, rest) = split_responses(&buf);
    assert!(rest.is_empty(), "a partial response: {:?}", String::from_utf8_lossy(rest));
    (responses, closed)
}

/// Complete responses with a Content-Length body (what the gateway and the origin send),
/// and what is left over.
fn split_responses(mut buf: &[u8]) -> (Vec<(u16, Vec<u8>)>, &[u8]) {
    let mut out = Vec::new();
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return (out, buf) };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).expect("status line");
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() < end + 4 + len {
            return (out, buf);
        }
        out.push((status, buf[end + 4..end + 4 + len].to_vec()));
        buf = &buf[end + 4 + len..];
    }
}

#[test]
fn a_pipelined_request_is_answered_in_order_or_the_connection_closes() {
    let origin = Origin::start();
    let gw = Gateway::start(GatewayOpts { origin: Some(origin.addr), ..Default::default() });
    let mint = |auth: &str| {
        let body = mint_body(MINT_PATHS[0]);
        format!(
            "POST {} HTTP/1.1\r\nHost: gw\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            MINT_PATHS[0],
            body.len()
        )
    };
    let passthrough = "GET /second HTTP/1.1\r\nHost: gw\r\n\r\n".to_string();
    let firsts = [
        ("a mint", mint("Bearer demo-key"), 200),
        ("a refused mint (its body unread)", mint("Bearer wrong-key"), 401),
        ("a pass-through GET", "GET /first HTTP/1.1\r\nHost: gw\r\n\r\n".to_string(), 203),
        (
            "an object GET",
            "GET /files/uploads/user/12/none.png HTTP/1.1\r\nHost: gw\r\n\r\n".to_string(),
            404,
        ),
        (
            "an unsigned PUT with a body",
            "PUT /files/uploads/user/12/a.png HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello"
                .to_string(),
            403,
        ),
    ];
    for (what, first, status) in firsts {
        for second in [passthrough.clone(), mint("Bearer demo-key")] {
            let mut s = TcpStream::connect(gw.addr).expect("connect");
            s.write_all(format!("{first}{second}").as_bytes()).expect("write");
            let (responses, closed) = read_responses(&mut s, Duration::from_secs(10));
            assert_eq!(responses.first().map(|r| r.0), Some(status), "{what}");
            match responses.len() {
                // In order: the second answer is the second request's.
                2 => {
                    let body = String::from_utf8_lossy(&responses[1].1);
                    let expected =
                        if second.starts_with("GET") { "\"target\":\"/second\"" } else { "upload_url" };
                    assert!(body.contains(expected), "{what}: second answer {body}");
                }
                // Refused: the connection closed right after the first answer.
                1 => assert!(closed, "{what}: the second request was read and never answered"),
                n => panic!("{what}: {n} answers"),
            }
        }
    }
}
