//! The parser against each form of the specification, its bounds and garbage, and the reader
//! against headers split over segments (taking exactly the header's bytes).

use std::collections::VecDeque;

use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn done(buf: &[u8]) -> (Header, usize) {
    match parse(buf) {
        Ok(Step::Done { header, len }) => (header, len),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

/// A v2 header: `ver_cmd`, `family`, then `block` (addresses and TLVs).
fn v2(ver_cmd: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend([ver_cmd, family]);
    h.extend((block.len() as u16).to_be_bytes());
    h.extend(block);
    h
}

/// 203.0.113.7:51234 → 10.0.0.1:443, then a TLV (type 0x04, NOOP, 3 bytes).
fn v2_ipv4_block() -> Vec<u8> {
    let mut b = vec![203, 0, 113, 7, 10, 0, 0, 1];
    b.extend(51234u16.to_be_bytes());
    b.extend(443u16.to_be_bytes());
    b.extend([0x04, 0, 3, 0, 0, 0]);
    b
}

fn v2_ipv6_block() -> Vec<u8> {
    let mut b = "2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec();
    b.extend("2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    b.extend(4000u16.to_be_bytes());
    b.extend(443u16.to_be_bytes());
    b
}

#[test]
fn v1_tcp4_and_tcp6_name_the_client_and_stop_at_crlf() {
    let line = "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n";
    let buf = format!("{line}GET / HTTP/1.1\r\n");
    assert_eq!(done(buf.as_bytes()), (Header::Proxied { client: addr("203.0.113.7:51234") }, line.len()));
    let line = "PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n";
    assert_eq!(done(line.as_bytes()), (Header::Proxied { client: addr("[2001:db8::7]:4000") }, line.len()));
    // The specification's longest line (104 bytes), and port 0.
    let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let line = format!("PROXY TCP6 {f} {f} 65535 65535\r\n");
    assert_eq!(line.len(), 104);
    assert_eq!(done(line.as_bytes()).1, 104);
    let line = "PROXY TCP4 203.0.113.7 10.0.0.1 0 443\r\n";
    assert_eq!(done(line.as_bytes()).0, Header::Proxied { client: addr("203.0.113.7:0") });
}

#[test]
fn v1_unknown_keeps_the_connections_address() {
    assert_eq!(done(b"PROXY UNKNOWN\r\n"), (Header::Local, 15));
    let line = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    assert_eq!(done(line), (Header::Local, line.len()));
}

#[test]
fn v1_is_at_most_107_bytes() {
    let line = |total: usize| format!("PROXY UNKNOWN {}\r\n", "x".repeat(total - 16));
    assert_eq!(done(line(107).as_bytes()).1, 107);
    assert_eq!(parse(line(108).as_bytes()), Err(ParseError::TooLong));
    // No CRLF within 107 bytes: refused without waiting for more.
    assert_eq!(parse(&[b"PROXY ".as_slice(), &[b'1'; 101]].concat()), Err(ParseError::TooLong));
    assert_eq!(parse(&[b"PROXY ".as_slice(), &[b'1'; 100]].concat()), Ok(Step::More));
}

#[test]
fn v1_grammar_is_strict() {
    for bad in [
        "PROXY TCP4 203.0.113.7 10.0.0.1 051234 443\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 +1 443\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 1 \r\n",
        "PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
        "PROXY TCP6 203.0.113.7 2001:db8::1 1 2\r\n",
        "PROXY TCP4 203.0.113.7 2001:db8::1 1 2\r\n",
        "PROXY TCP4 203.0.113.7  10.0.0.1 1 2\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 1 2 3\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 1\r\n",
        "PROXY TCP5 203.0.113.7 10.0.0.1 1 2\r\n",
        "PROXY tcp4 203.0.113.7 10.0.0.1 1 2\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 1 2\n",
        "PROXY TCP4 203.0.113.7\r10.0.0.1 1 2\r\n",
        "PROXY TCP4 203.0.113.7 10.0.0.1 1 2\0\r\n",
        "PROXY \r\n",
    ] {
        assert!(
            matches!(parse(bad.as_bytes()), Err(ParseError::V1(_))),
            "{bad:?}: {:?}",
            parse(bad.as_bytes())
        );
    }
}

#[test]
fn v2_proxy_names_the_client_and_skips_tlvs() {
    let h = v2(0x21, 0x11, &v2_ipv4_block());
    let buf = [h.as_slice(), b"\x16\x03\x01"].concat();
    assert_eq!(done(&buf), (Header::Proxied { client: addr("203.0.113.7:51234") }, h.len()));
    let h = v2(0x21, 0x21, &v2_ipv6_block());
    assert_eq!(done(&h), (Header::Proxied { client: addr("[2001:db8::7]:4000") }, 16 + 36));
}

#[test]
fn v2_local_and_families_without_a_tcp_client_keep_the_connections_address() {
    // LOCAL: family and block are ignored, even when they name addresses.
    assert_eq!(done(&v2(0x20, 0x00, &[])), (Header::Local, 16));
    assert_eq!(done(&v2(0x20, 0x11, &v2_ipv4_block())), (Header::Local, 16 + 18));
    for family in [0x00, 0x12, 0x22, 0x31, 0x32] {
        assert_eq!(done(&v2(0x21, family, &[0; 216])), (Header::Local, 16 + 216), "{family:#x}");
    }
}

#[test]
fn v2_bad_headers_are_refused() {
    let ipv4 = v2_ipv4_block();
    for (what, h) in [
        ("version 1", v2(0x11, 0x11, &ipv4)),
        ("version 3", v2(0x31, 0x11, &ipv4)),
        ("command 2", v2(0x22, 0x11, &ipv4)),
        ("family 4", v2(0x21, 0x41, &ipv4)),
        ("transport 3", v2(0x21, 0x13, &ipv4)),
        ("IPv4 block short", v2(0x21, 0x11, &ipv4[..11])),
        ("IPv6 block short", v2(0x21, 0x21, &v2_ipv6_block()[..35])),
    ] {
        assert!(matches!(parse(&h), Err(ParseError::V2(_))), "{what}: {:?}", parse(&h));
    }
    // A bad version is known from the 13th byte on.
    assert!(matches!(parse(&v2(0x11, 0x11, &ipv4)[..13]), Err(ParseError::V2(_))));
}

#[test]
fn v2_length_is_capped() {
    assert_eq!(done(&v2(0x21, 0x11, &[0; V2_MAX_LEN])).1, 16 + V2_MAX_LEN);
    let mut h = v2(0x21, 0x11, &[]);
    h[14..16].copy_from_slice(&(V2_MAX_LEN as u16 + 1).to_be_bytes());
    // Refused from the fixed part alone, before its block is waited for.
    assert_eq!(parse(&h), Err(ParseError::TooLong));
    h[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    assert_eq!(parse(&h), Err(ParseError::TooLong));
}

#[test]
fn every_truncation_of_a_header_asks_for_more() {
    let headers = [
        b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n".to_vec(),
        b"PROXY UNKNOWN\r\n".to_vec(),
        v2(0x21, 0x11, &v2_ipv4_block()),
        v2(0x21, 0x21, &v2_ipv6_block()),
        v2(0x20, 0x00, &[]),
    ];
    for h in headers {
        for cut in 0..h.len() {
            assert_eq!(parse(&h[..cut]), Ok(Step::More), "{:?} cut at {cut}", String::from_utf8_lossy(&h));
        }
        assert_eq!(done(&h).1, h.len());
    }
}

#[test]
fn garbage_is_refused_from_its_first_differing_byte() {
    for bad in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(),
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"PROXX",
        b"proxy TCP4",
        b"\r\n\r\nX",
        b"\r\n\r\n\0\r\nQUIT\r",
        b"\0",
    ] {
        assert_eq!(parse(bad), Err(ParseError::NotProxy), "{:?}", String::from_utf8_lossy(bad));
    }
    assert_eq!(parse(b""), Ok(Step::More));
    assert!(matches!(parse(b"PROXY \x16\x03"), Err(ParseError::V1(_))));
}

/// Bytes that arrive in segments: each segment arrives when everything before it was taken
/// (as a socket's next segment does while the reader waits on an empty buffer).
struct Segments {
    arrived: Vec<u8>,
    pos: usize,
    to_come: VecDeque<Vec<u8>>,
    peeks: usize,
}

impl Segments {
    fn new(segments: &[&[u8]]) -> Self {
        Self { arrived: Vec::new(), pos: 0, to_come: segments.iter().map(|s| s.to_vec()).collect(), peeks: 0 }
    }

    /// What the reader left for whoever reads next.
    fn rest(&self) -> Vec<u8> {
        let mut r = self.arrived[self.pos..].to_vec();
        self.to_come.iter().for_each(|s| r.extend(s));
        r
    }
}

impl Source for Segments {
    async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.peeks += 1;
        if self.pos == self.arrived.len() {
            match self.to_come.pop_front() {
                Some(s) => self.arrived.extend(s),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.arrived.len() - self.pos);
        buf[..n].copy_from_slice(&self.arrived[self.pos..self.pos + n]);
        Ok(n)
    }

    async fn take(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        let end = self.pos + buf.len();
        assert!(end <= self.arrived.len(), "took bytes that were not peeked");
        buf.copy_from_slice(&self.arrived[self.pos..end]);
        self.pos = end;
        Ok(())
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

#[test]
fn a_header_split_over_segments_is_read_exactly_with_one_peek_per_segment() {
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".as_slice();
    let mut s = Segments::new(&[
        b"PROXY TCP4 203.0.",
        b"113.7 10.0.0.1 5123",
        b"4 443\r",
        b"\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ]);
    let h = run(read_from(&mut s)).unwrap();
    assert_eq!(h, Header::Proxied { client: addr("203.0.113.7:51234") });
    assert_eq!(s.rest(), http);
    assert_eq!(s.peeks, 4, "one wait per segment, never a spin");

    let v2h = v2(0x21, 0x21, &v2_ipv6_block());
    let tail = [&v2h[40..], http].concat();
    let mut s = Segments::new(&[&v2h[..5], &v2h[5..14], &v2h[14..16], &v2h[16..40], &tail]);
    assert_eq!(run(read_from(&mut s)).unwrap(), Header::Proxied { client: addr("[2001:db8::7]:4000") });
    assert_eq!(s.rest(), http);
    assert_eq!(s.peeks, 5);
}

#[test]
fn a_close_mid_header_and_garbage_end_the_read() {
    let mut s = Segments::new(&[b"PROXY TCP4 203.0.113.7"]);
    assert!(matches!(run(read_from(&mut s)), Err(ReadError::Closed(22))));
    // Garbage ends the read at the first segment; nothing of it is taken.
    let mut s = Segments::new(&[b"GET / HTTP/1.1\r\n", b"Host: x\r\n\r\n"]);
    assert!(matches!(run(read_from(&mut s)), Err(ReadError::Parse(ParseError::NotProxy))));
    assert_eq!((s.peeks, s.pos), (1, 0));
}

#[test]
fn a_real_socket_keeps_the_bytes_after_the_header() {
    run(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = listener.local_addr().unwrap();
        let h = v2(0x21, 0x11, &v2_ipv4_block());
        let client = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut c = TcpStream::connect(to).await.unwrap();
            c.set_nodelay(true).unwrap();
            c.write_all(&h[..10]).await.unwrap();
            c.write_all(&[&h[10..], b"\x16\x03\x01 and the rest".as_slice()].concat()).await.unwrap();
            c
        });
        let (mut tcp, _) = listener.accept().await.unwrap();
        let header = read_header(&mut tcp).await.unwrap();
        assert_eq!(header, Header::Proxied { client: addr("203.0.113.7:51234") });
        drop(client.await.unwrap());
        let mut rest = Vec::new();
        tcp.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"\x16\x03\x01 and the rest");
    });
}

#[test]
fn trusted_networks_match_ipv4_mapped_addresses_too() {
    let p = ProxyProtocol::new(vec!["10.0.0.0/8".parse().unwrap(), "2001:db8::/32".parse().unwrap()]);
    for yes in ["10.1.2.3", "::ffff:10.1.2.3", "2001:db8::5"] {
        assert!(p.trusts(yes.parse().unwrap()), "{yes}");
    }
    for no in ["11.0.0.1", "127.0.0.1", "2001:db9::1", "::ffff:11.0.0.1"] {
        assert!(!p.trusts(no.parse().unwrap()), "{no}");
    }
}
