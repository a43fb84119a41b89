//! The PROXY protocol on the gateway's listeners (issue 13, "behind a load balancer"). The
//! load balancer is this test, connecting from 127.0.0.1; the clients its headers name
//! (203.0.113.7, 198.51.100.9, 2001:db8::7: documentation ranges) are only data in a header.
//! What shows that the gateway took them as the client: the access log's `client=`, and the
//! per-IP cap counting each named client apart.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::edge_clients::*;
use common::gateway::TlsOpts;
use common::metrics::metric;
use common::pki::TestPki;
use common::*;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GET: &str = "GET /files/none HTTP/1.1\r\nHost: gw\r\n\r\n";

fn refused(reason: &str) -> String {
    format!("presign_connections_refused_total{{reason=\"{reason}\"}}")
}

/// A gateway taking PROXY headers from 127.0.0.1 only, with its access log on; `limits` are
/// more lines of its `limits:` block (indented two spaces).
fn gateway_with(limits: &str, tls: Option<TlsOpts>) -> Gateway {
    Gateway::start(GatewayOpts {
        metrics: true,
        extra_yaml: format!(
            "logging:\n  access_log: true\nlimits:\n  proxy_protocol:\n    enabled: true\n    trusted: [127.0.0.1/32]\n{limits}"
        ),
        env: vec![("RUST_LOG".into(), "warn,access=info".into())],
        tls,
        ..Default::default()
    })
}

fn gateway(limits: &str) -> Gateway {
    gateway_with(limits, None)
}

/// A v1 header for an IPv4 client.
fn v1(client: &str, to: SocketAddr) -> String {
    let (ip, port) = client.split_once(':').expect("ip:port");
    format!("PROXY TCP4 {ip} {} {port} {}\r\n", to.ip(), to.port())
}

/// A v2 header: `command` (0 LOCAL, 1 PROXY), `family`, then `block`.
fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x20 | command, family]);
    h.extend((block.len() as u16).to_be_bytes());
    h.extend(block);
    h
}

/// A v2 PROXY header for a TCP client, with a TLV (a NOOP of 3 bytes) after the addresses.
fn v2_proxy(client: SocketAddr, to: SocketAddr) -> Vec<u8> {
    let mut block = Vec::new();
    let family = match (client.ip(), to.ip()) {
        (std::net::IpAddr::V4(c), std::net::IpAddr::V4(t)) => {
            block.extend(c.octets());
            block.extend(t.octets());
            0x11
        }
        (c, _) => {
            let v6 = |ip: std::net::IpAddr| match ip {
                std::net::IpAddr::V6(a) => a.octets(),
                std::net::IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            block.extend(v6(c));
            block.extend(v6(to.ip()));
            0x21
        }
    };
    block.extend(client.port().to_be_bytes());
    block.extend(to.port().to_be_bytes());
    block.extend([0x04, 0, 3, 0, 0, 0]);
    v2(1, family, &block)
}

/// A connection from the "load balancer" that has sent `header`.
fn through_balancer(gw: &Gateway, header: &[u8]) -> TcpStream {
    let mut s = connect_from(HONEST, gw.addr).expect("connect");
    s.write_all(header).expect("write the header");
    s
}

/// Refused: closed within a second, without a byte of answer.
fn assert_refused(s: &mut TcpStream, what: &str) {
    let start = Instant::now();
    let (text, closed) = read_until_closed(s, Duration::from_secs(5));
    assert!(text.is_empty(), "{what}: answered {text:?}");
    let closed = closed.unwrap_or_else(|| panic!("{what}: still open after 5 s"));
    assert!(closed - start < Duration::from_secs(1), "{what}: closed after {:?}", closed - start);
}

fn wait_for_log(gw: &Gateway, needle: &str) {
    wait_until(needle, Duration::from_secs(10), || gw.log().contains(needle));
}

#[test]
fn the_per_ip_cap_counts_the_client_its_header_names() {
    let gw = gateway("  max_connections_per_ip: 2\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Two connections for 203.0.113.7, both served and kept open.
    let mut a = through_balancer(&gw, v1("203.0.113.7:40001", gw.addr).as_bytes());
    assert!(request_on(&mut a, GET).starts_with("HTTP/1.1 404"));
    let mut b = through_balancer(&gw, v1("203.0.113.7:40002", gw.addr).as_bytes());
    assert!(request_on(&mut b, GET).starts_with("HTTP/1.1 404"));
    // A third for the same client is refused, though the balancer's own address has only 2.
    let mut c = through_balancer(
        &gw,
        [v1("203.0.113.7:40003", gw.addr).as_bytes(), GET.as_bytes()].concat().as_slice(),
    );
    assert_refused(&mut c, "a third connection for 203.0.113.7");
    assert!(rt.block_on(metric(&gw, &refused("per_ip_cap"))) >= 1.0);
    wait_for_log(&gw, "203.0.113.7:40003 (via 127.0.0.1:");
    // A fourth, for another client, from the same balancer address, is served (v2 this time).
    let client: SocketAddr = "198.51.100.9:5555".parse().unwrap();
    let mut d = through_balancer(&gw, &v2_proxy(client, gw.addr));
    assert!(request_on(&mut d, GET).starts_with("HTTP/1.1 404"));
    wait_for_log(&gw, "client=203.0.113.7:40001");
    wait_for_log(&gw, "client=203.0.113.7:40002");
    wait_for_log(&gw, "client=198.51.100.9:5555");
    // The client's place is given back when its connection ends.
    drop(a);
    wait_until("a's slot given back", Duration::from_secs(10), || {
        rt.block_on(metric(&gw, "presign_connections_open")) <= 2.0
    });
    let mut e = through_balancer(&gw, v1("203.0.113.7:40004", gw.addr).as_bytes());
    assert!(request_on(&mut e, GET).starts_with("HTTP/1.1 404"));
    drop((b, d));
}

#[test]
fn a_missing_garbage_or_slow_header_is_refused() {
    let gw = gateway("  header_timeout_secs: 2\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Plain HTTP, no header: closed unanswered (not a 400: the bytes are not HTTP's yet).
    assert_refused(&mut through_balancer(&gw, GET.as_bytes()), "no header");
    // A v1 header that breaks its grammar, a v2 header of another version, one too long.
    let bad_v1 = format!("PROXY TCP4 203.0.113.7 nope 1 2\r\n{GET}");
    assert_refused(&mut through_balancer(&gw, bad_v1.as_bytes()), "a bad v1 header");
    let mut bad_v2 = v2_proxy("203.0.113.7:1".parse().unwrap(), gw.addr);
    bad_v2[12] = 0x11;
    assert_refused(&mut through_balancer(&gw, &bad_v2), "a v2 header of version 1");
    let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(200));
    assert_refused(&mut through_balancer(&gw, long.as_bytes()), "a v1 header over 107 bytes");
    wait_until("four refusals counted", Duration::from_secs(10), || {
        rt.block_on(metric(&gw, &refused("proxy_protocol"))) >= 4.0
    });
    wait_for_log(&gw, "proxy_protocol: 127.0.0.1:");
    // Half a header, then nothing: closed at the header deadline, counted as a timeout.
    let mut slow = through_balancer(&gw, b"PROXY TCP4 203.0.113.7 ");
    let start = Instant::now();
    let (text, closed) = read_until_closed(&mut slow, Duration::from_secs(6));
    let took = closed.expect("closed at the deadline") - start;
    assert!(text.is_empty(), "{text:?}");
    assert!(took >= Duration::from_millis(1800) && took < Duration::from_millis(3500), "{took:?}");
    assert!(rt.block_on(metric(&gw, &refused("header_timeout"))) >= 1.0);
    // A good header still works.
    let mut ok = through_balancer(&gw, v1("203.0.113.7:40001", gw.addr).as_bytes());
    assert!(request_on(&mut ok, GET).starts_with("HTTP/1.1 404"));
}

#[test]
fn an_untrusted_source_is_refused_at_accept() {
    let gw = gateway("");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // 127.0.0.2 is not in `trusted`: a valid header from it changes nothing.
    let mut s = connect_from(ATTACKER, gw.addr).unwrap();
    s.write_all([v1("203.0.113.7:40001", gw.addr).as_bytes(), GET.as_bytes()].concat().as_slice()).unwrap();
    assert_refused(&mut s, "a header from an untrusted source");
    assert!(rt.block_on(metric(&gw, &refused("proxy_protocol"))) >= 1.0);
    wait_for_log(&gw, "not a trusted PROXY protocol source");
    assert!(gw.log().contains("127.0.0.2:"), "{}", gw.log());
    let mut ok = through_balancer(&gw, v1("203.0.113.7:40001", gw.addr).as_bytes());
    assert!(request_on(&mut ok, GET).starts_with("HTTP/1.1 404"));
}

/// Write `pieces` one at a time, each its own segment, a pause between them (a slow
/// balancer: pacing, not synchronisation).
fn trickle(s: &mut TcpStream, pieces: &[&[u8]]) {
    s.set_nodelay(true).unwrap();
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(100));
        }
        s.write_all(p).unwrap();
    }
}

#[test]
fn a_header_split_across_slow_writes_still_works() {
    let gw = gateway("");
    let line = v1("203.0.113.7:40010", gw.addr);
    let b = line.as_bytes();
    let mut s = connect_from(HONEST, gw.addr).unwrap();
    trickle(&mut s, &[&b[..3], &b[3..17], &b[17..b.len() - 1], &b[b.len() - 1..]]);
    assert!(request_on(&mut s, GET).starts_with("HTTP/1.1 404"));
    wait_for_log(&gw, "client=203.0.113.7:40010");

    // v2 over IPv6, cut inside the signature, the fixed part and the addresses; the last
    // piece carries the request too.
    let client: SocketAddr = "[2001:db8::7]:4000".parse().unwrap();
    let h = v2_proxy(client, gw.addr);
    let last = [&h[30..], GET.as_bytes()].concat();
    let mut s = connect_from(HONEST, gw.addr).unwrap();
    trickle(&mut s, &[&h[..5], &h[5..14], &h[14..30], &last]);
    let text = read_response_head(&mut s);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    wait_for_log(&gw, "client=[2001:db8::7]:4000");

    // LOCAL (a balancer's health check): the balancer's own address stands.
    let mut s = connect_from(HONEST, gw.addr).unwrap();
    let own = s.local_addr().unwrap();
    trickle(&mut s, &[&v2(0, 0, &[])[..7], &v2(0, 0, &[])[7..]]);
    assert!(request_on(&mut s, GET).starts_with("HTTP/1.1 404"));
    wait_for_log(&gw, &format!("client={own}"));
}

/// The head of the answer to a request already written.
fn read_response_head(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains("\r\n\r\n") {
        let n = std::io::Read::read(s, &mut buf).expect("a response");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn connector(pki: &TestPki) -> tokio_rustls::TlsConnector {
    common::pki::tls_connector(&pki.ca_file, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tls_listener_reads_the_header_before_the_handshake() {
    let pki = TestPki::new("proxy-protocol test CA");
    let gw = gateway_with("", Some(TlsOpts::new(&pki)));
    let tls_addr = gw.tls_addr.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let client: SocketAddr = "203.0.113.9:5555".parse().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    tcp.write_all(&v2_proxy(client, tls_addr)).await.unwrap();
    let mut tls = connector(&pki).connect(name.clone(), tcp).await.expect("handshake after the header");
    tls.write_all(b"GET /files/none HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let g = &gw;
    wait_until_async("the client in the access log", Duration::from_secs(10), || {
        g.log().contains("client=203.0.113.9:5555")
    })
    .await;
    // A handshake without a header first is refused before TLS begins.
    let before = metric(&gw, &refused("proxy_protocol")).await;
    let tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    assert!(connector(&pki).connect(name, tcp).await.is_err(), "no header, no handshake");
    let after = metric(&gw, &refused("proxy_protocol")).await;
    assert!(after > before, "{before} -> {after}");
    assert_eq!(metric(&gw, &refused("tls_handshake")).await, 0.0);
}

#[test]
fn off_by_default_a_header_is_only_bytes_that_are_not_http() {
    let gw = Gateway::start(GatewayOpts {
        metrics: true,
        extra_yaml: "limits:\n  max_connections_per_ip: 1\n".into(),
        ..Default::default()
    });
    let mut s = connect_from(HONEST, gw.addr).unwrap();
    let answer = request_on(&mut s, &format!("{}{GET}", v1("203.0.113.7:40001", gw.addr)));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    drop(s);
    // The per-IP cap is still decided at accept, on the socket's address.
    let rt = tokio::runtime::Runtime::new().unwrap();
    wait_until("no connection open", Duration::from_secs(10), || {
        rt.block_on(metric(&gw, "presign_connections_open")) == 0.0
    });
    let _held = connect_from(HONEST, gw.addr).unwrap();
    wait_until("one connection open", Duration::from_secs(10), || {
        rt.block_on(metric(&gw, "presign_connections_open")) >= 1.0
    });
    let mut second = through_balancer(&gw, v1("198.51.100.9:1", gw.addr).as_bytes());
    assert_refused(&mut second, "a second connection from 127.0.0.1");
    assert!(rt.block_on(metric(&gw, &refused("per_ip_cap"))) >= 1.0);
}
