//! HTTP client helpers: a client without pooling or proxies, JSON POSTs, raw exchanges.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().expect("client")
}

/// POST JSON with an Authorization header; returns (status, JSON body).
pub async fn post_json(url: &str, auth: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let mut req = client().post(url).header("content-type", "application/json").body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, v)
}

/// A raw HTTP/1.1 exchange over one connection: send bytes, read until the peer closes or `timeout`.
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One HTTP/1.1 request head off a test server's connection: the path and the headers
/// (names lowercased). `None` when the client closed.
pub fn read_request_head(
    reader: &mut impl std::io::BufRead,
) -> Option<(String, std::collections::HashMap<String, String>)> {
    read_request(reader).map(|(_, path, headers)| (path, headers))
}

/// [`read_request_head`] with the method: (method, path, headers).
pub fn read_request(
    reader: &mut impl std::io::BufRead,
) -> Option<(String, String, std::collections::HashMap<String, String>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("").to_string();
    let mut headers = std::collections::HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            return Some((method, path, headers));
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.insert(n.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
}

/// The small body the load tests mint with (API Mall's route, 5 bytes of PNG).
pub const MINT_BODY: &str = r#"{"filename":"a.png","content_type":"image/png","file_size":5}"#;

/// One mint with the demo key on `url` (a mint route) through `c`; returns the status.
pub async fn send_mint(c: &reqwest::Client, url: &str) -> reqwest::Result<u16> {
    c.post(url)
        .header("authorization", "Bearer demo-key")
        .header("content-type", "application/json")
        .body(MINT_BODY)
        .send()
        .await
        .map(|r| r.status().as_u16())
}
