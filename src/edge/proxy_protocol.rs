//! The PROXY protocol, v1 (text) and v2 (binary), as HAProxy's specification defines it
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>): the header a load
//! balancer sends first on each connection, naming the client it stands for.
//!
//! - [`parse`] is pure: a buffer holds a whole header (and how many bytes it took), the
//!   beginning of one, or something else.
//! - [`read_header`] reads exactly the header's bytes from the socket, never one byte of the
//!   HTTP or TLS that follows: it peeks, parses, and then takes only what the header used
//!   (a header split over several segments is taken segment by segment, each waited for).
//! - [`ProxyProtocol`]: which sources may send a header at all.
//!
//! What a header says: v1 `TCP4`/`TCP6` and v2 `PROXY` over TCP name a client, which becomes
//! the connection's peer address. v1 `UNKNOWN`, v2 `LOCAL` (a balancer's health check) and
//! v2 families the gateway has no use for (`UNSPEC`, UDP, Unix) keep the balancer's own
//! address, as the specification asks. v2 TLVs are skipped. A v1 line is at most
//! [`V1_MAX`] bytes; a v2 address block at most [`V2_MAX_LEN`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Longest v1 header, CRLF included (the specification's figure).
pub const V1_MAX: usize = 107;
/// Longest v2 address block (addresses and TLVs) accepted: a Unix address pair is 216, and
/// the TLVs balancers add (AWS's endpoint id, Azure's link id, a TLS summary) are tens.
pub const V2_MAX_LEN: usize = 512;
/// v2's fixed part: the signature, version and command, family, length.
const V2_FIXED: usize = 16;
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8; 6] = b"PROXY ";

/// What a whole header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The connection carries this client's bytes.
    Proxied { client: SocketAddr },
    /// The connection is the balancer's own, or names no address of ours to use: the
    /// balancer's address stands.
    Local,
}

/// How far a buffer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A whole header, in the first `len` bytes.
    Done { header: Header, len: usize },
    /// The beginning of a header: more bytes are needed.
    More,
}

/// Why a connection's first bytes are not a header we take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Neither signature.
    NotProxy,
    /// A v1 line that breaks its grammar.
    V1(&'static str),
    /// A v2 header that breaks its grammar.
    V2(&'static str),
    /// Longer than [`V1_MAX`], or a v2 length over [`V2_MAX_LEN`].
    TooLong,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::NotProxy => f.write_str("not a PROXY protocol header"),
            ParseError::V1(why) => write!(f, "PROXY v1: {why}"),
            ParseError::V2(why) => write!(f, "PROXY v2: {why}"),
            ParseError::TooLong => {
                write!(f, "longer than {V1_MAX} bytes (v1) or {V2_MAX_LEN} bytes of addresses (v2)")
            }
        }
    }
}

/// Whether `buf`, as far as it goes, agrees with `sig`.
fn starts_like(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf[..n] == sig[..n]
}

/// Where the connection's first bytes stand: a whole header, the start of one, or an error.
/// Bytes after the header (the HTTP or TLS that follows) are left alone.
pub fn parse(buf: &[u8]) -> Result<Step, ParseError> {
    if starts_like(buf, V2_SIGNATURE) {
        return if buf.len() < V2_SIGNATURE.len() { Ok(Step::More) } else { parse_v2(buf) };
    }
    if starts_like(buf, V1_PREFIX) {
        return if buf.len() < V1_PREFIX.len() { Ok(Step::More) } else { parse_v1(buf) };
    }
    Err(ParseError::NotProxy)
}

// PROXY v1:
//   "PROXY" SP ( "TCP4" | "TCP6" ) SP src SP dst SP sport SP dport CRLF
//   "PROXY" SP "UNKNOWN" [ anything but CRLF ] CRLF
fn parse_v1(buf: &[u8]) -> Result<Step, ParseError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let end = memchr::memmem::find(window, b"\r\n");
    let line = &window[..end.unwrap_or(window.len())];
    // Printable ASCII only; a CR may only be waiting for its LF at the very end.
    let body = line.strip_suffix(b"\r").filter(|_| end.is_none()).unwrap_or(line);
    if !body.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(ParseError::V1("a byte that is not printable ASCII before CRLF"));
    }
    let Some(end) = end else {
        return if buf.len() >= V1_MAX { Err(ParseError::TooLong) } else { Ok(Step::More) };
    };
    let len = end + 2;
    // Printable ASCII is UTF-8.
    let text = std::str::from_utf8(line).map_err(|_| ParseError::V1("not ASCII"))?;
    let rest = &text[V1_PREFIX.len()..];
    if rest == "UNKNOWN" || rest.starts_with("UNKNOWN ") {
        // The receiver ignores whatever follows UNKNOWN and keeps the connection's address.
        return Ok(Step::Done { header: Header::Local, len });
    }
    let fields: Vec<&str> = rest.split(' ').collect();
    let [proto, src, dst, sport, dport] = fields[..] else {
        return Err(ParseError::V1("not TCP4/TCP6 with two addresses and two ports, one space apart"));
    };
    let address = |s: &str| -> Option<IpAddr> {
        match proto {
            "TCP4" => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            _ => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        }
    };
    if proto != "TCP4" && proto != "TCP6" {
        return Err(ParseError::V1("protocol is not TCP4, TCP6 or UNKNOWN"));
    }
    let ip = address(src).ok_or(ParseError::V1("source address does not match its protocol"))?;
    address(dst).ok_or(ParseError::V1("destination address does not match its protocol"))?;
    let port = v1_port(sport).ok_or(ParseError::V1("source port is not 0..65535 in decimal"))?;
    v1_port(dport).ok_or(ParseError::V1("destination port is not 0..65535 in decimal"))?;
    Ok(Step::Done { header: Header::Proxied { client: SocketAddr::new(ip, port) }, len })
}

/// A v1 port: decimal digits, no sign, no leading zero.
fn v1_port(s: &str) -> Option<u16> {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

// PROXY v2:
//   signature (12) | version << 4 | command (1) | family << 4 | transport (1) | len (2, BE)
//   | addresses (by family) | TLVs (to len)
fn parse_v2(buf: &[u8]) -> Result<Step, ParseError> {
    if let Some(&ver_cmd) = buf.get(12) {
        if ver_cmd >> 4 != 2 {
            return Err(ParseError::V2("version is not 2"));
        }
        if ver_cmd & 0x0f > 1 {
            return Err(ParseError::V2("command is neither LOCAL nor PROXY"));
        }
    }
    if buf.len() < V2_FIXED {
        return Ok(Step::More);
    }
    let (command, family) = (buf[12] & 0x0f, buf[13]);
    let addr_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if addr_len > V2_MAX_LEN {
        return Err(ParseError::TooLong);
    }
    let len = V2_FIXED + addr_len;
    let Some(block) = buf.get(V2_FIXED..len) else { return Ok(Step::More) };
    if command == 0 {
        // LOCAL: the balancer's own connection (a health check); family and block ignored.
        return Ok(Step::Done { header: Header::Local, len });
    }
    let client = match family {
        // TCP over IPv4: source, destination, source port, destination port.
        0x11 => {
            let a = block.get(..12).ok_or(ParseError::V2("shorter than an IPv4 address pair"))?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]])))
        }
        // TCP over IPv6.
        0x21 => {
            let a = block.get(..36).ok_or(ParseError::V2("shorter than an IPv6 address pair"))?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&a[..16]);
            Some(SocketAddr::new(Ipv6Addr::from(ip).into(), u16::from_be_bytes([a[32], a[33]])))
        }
        // UNSPEC, UDP over IPv4 or IPv6, Unix stream or datagram: valid, but no client
        // address for a TCP listener; the specification falls back to the connection's own.
        0x00 | 0x12 | 0x22 | 0x31 | 0x32 => None,
        _ => return Err(ParseError::V2("unknown address family or transport")),
    };
    let header = client.map_or(Header::Local, |client| Header::Proxied { client });
    Ok(Step::Done { header, len })
}

/// Why no header was read.
#[derive(Debug)]
pub enum ReadError {
    /// The bytes are not a header.
    Parse(ParseError),
    /// The peer closed after this many bytes of a header.
    Closed(usize),
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Parse(e) => e.fmt(f),
            ReadError::Closed(n) => write!(f, "closed after {n} bytes of a PROXY header"),
            ReadError::Io(e) => write!(f, "reading a PROXY header: {e}"),
        }
    }
}

/// Where header bytes come from: a socket (peek, then take), or a test's segments.
trait Source {
    /// Bytes waiting, without taking them; waits for at least one; 0 at the end.
    async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Take bytes already seen by [`Source::peek`].
    async fn take(&mut self, buf: &mut [u8]) -> std::io::Result<()>;
}

impl Source for TcpStream {
    async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        TcpStream::peek(self, buf).await
    }

    async fn take(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.read_exact(buf).await.map(|_| ())
    }
}

/// Read one header from `tcp`, taking exactly its bytes. No deadline of its own: the caller
/// bounds it (the connection's header deadline).
pub async fn read_header(tcp: &mut TcpStream) -> Result<Header, ReadError> {
    read_from(tcp).await
}

async fn read_from<S: Source>(src: &mut S) -> Result<Header, ReadError> {
    let mut buf = [0u8; V2_FIXED + V2_MAX_LEN];
    // Bytes of the header taken so far, at the front of `buf`.
    let mut taken = 0;
    loop {
        // `parse` ends every header before the buffer does, so there is always room here.
        let n = src.peek(&mut buf[taken..]).await.map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Closed(taken));
        }
        let (header, used) = match parse(&buf[..taken + n]).map_err(ReadError::Parse)? {
            Step::Done { header, len } => (Some(header), len - taken),
            // Everything seen belongs to the header: take it, and the next peek waits.
            Step::More => (None, n),
        };
        src.take(&mut buf[taken..taken + used]).await.map_err(ReadError::Io)?;
        taken += used;
        if let Some(h) = header {
            return Ok(h);
        }
    }
}

/// Which sources may send a header (`limits.proxy_protocol.trusted`).
#[derive(Debug, Clone)]
pub struct ProxyProtocol {
    trusted: Vec<IpNet>,
}

impl ProxyProtocol {
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Self { trusted }
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address counts as its IPv4) is a trusted balancer.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests;
