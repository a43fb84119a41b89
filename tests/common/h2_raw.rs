//! A raw HTTP/2 client over TLS, for sending what no honest client sends: frames built by
//! hand ([`frame`] and its helpers), header blocks from a tiny HPACK encoder ([`Block`]), and
//! a reader task that reports each frame the server sends, then how the connection ended
//! ([`Event`]).
//!
//! The encoder writes only the static table's indexed fields, literals without Huffman
//! coding, and literals with incremental indexing (an HPACK bomb's seed). The reader decodes
//! no header blocks beyond the status of a response ([`Frame::status`]).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::client::TlsStream;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const CANCEL: u32 = 0x8;
pub const REFUSED_STREAM: u32 = 0x7;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// The largest frame payload a peer must accept before any SETTINGS (RFC 9113, 4.2).
pub const MAX_FRAME_PAYLOAD: usize = 16_384;

/// One frame: the 9-byte header, then `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend([kind, flags]);
    f.extend((stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn settings(values: &[(u16, u32)]) -> Vec<u8> {
    let payload: Vec<u8> =
        values.iter().flat_map(|(id, v)| [&id.to_be_bytes()[..], &v.to_be_bytes()].concat()).collect();
    frame(SETTINGS, 0, 0, &payload)
}

pub fn settings_ack() -> Vec<u8> {
    frame(SETTINGS, ACK, 0, &[])
}

/// HEADERS carrying a whole header block (`END_HEADERS`), with `END_STREAM` when `end_stream`.
pub fn headers(stream: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
    frame(HEADERS, END_HEADERS | if end_stream { END_STREAM } else { 0 }, stream, block)
}

pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

pub fn ping(opaque: u64) -> Vec<u8> {
    frame(PING, 0, 0, &opaque.to_be_bytes())
}

pub fn priority(stream: u32, depends_on: u32) -> Vec<u8> {
    let mut p = depends_on.to_be_bytes().to_vec();
    p.push(15);
    frame(PRIORITY, 0, stream, &p)
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

pub fn data(stream: u32, bytes: &[u8], end_stream: bool) -> Vec<u8> {
    frame(DATA, if end_stream { END_STREAM } else { 0 }, stream, bytes)
}

/// An HPACK header block (RFC 7541), built field by field.
#[derive(Debug, Default, Clone)]
pub struct Block(pub Vec<u8>);

impl Block {
    /// `:method`, `:scheme https`, `:path`, `:authority`: the pseudo-headers of a request.
    pub fn request(method: &str, path: &str, authority: &str) -> Block {
        let b = match method {
            "GET" => Block::default().indexed(2),
            "POST" => Block::default().indexed(3),
            m => Block::default().literal_indexed_name(2, m),
        };
        let b = b.indexed(7);
        let b = if path == "/" { b.indexed(4) } else { b.literal_indexed_name(4, path) };
        b.literal_indexed_name(1, authority)
    }

    /// A field of the static or dynamic table, by index (6.1).
    pub fn indexed(mut self, index: usize) -> Block {
        int(&mut self.0, 7, 0x80, index);
        self
    }

    /// A literal without indexing whose name is the table's entry `index` (6.2.2).
    pub fn literal_indexed_name(mut self, index: usize, value: &str) -> Block {
        int(&mut self.0, 4, 0x00, index);
        string(&mut self.0, value.as_bytes());
        self
    }

    /// A literal without indexing, new name (6.2.2).
    pub fn literal(mut self, name: &str, value: &str) -> Block {
        self.0.push(0x00);
        string(&mut self.0, name.as_bytes());
        string(&mut self.0, value.as_bytes());
        self
    }

    /// A literal with incremental indexing, new name (6.2.1): it enters the dynamic table.
    pub fn incremental(mut self, name: &str, value: &str) -> Block {
        self.0.push(0x40);
        string(&mut self.0, name.as_bytes());
        string(&mut self.0, value.as_bytes());
        self
    }
}

/// An integer with an `n`-bit prefix (5.1); `flags` fills the first byte's other bits.
pub fn int(out: &mut Vec<u8>, n: u32, flags: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A string literal without Huffman coding (5.2).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    int(out, 7, 0x00, s.len());
    out.extend_from_slice(s);
}

/// A frame the server sent.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// RST_STREAM's error code.
    pub fn rst_code(&self) -> Option<u32> {
        (self.kind == RST_STREAM && self.payload.len() == 4).then(|| be32(&self.payload))
    }

    /// GOAWAY's (last stream id, error code, debug data).
    pub fn goaway(&self) -> Option<(u32, u32, String)> {
        (self.kind == GOAWAY && self.payload.len() >= 8).then(|| {
            let debug = String::from_utf8_lossy(&self.payload[8..]).into_owned();
            (be32(&self.payload) & 0x7fff_ffff, be32(&self.payload[4..]), debug)
        })
    }

    /// SETTINGS's (identifier, value) pairs.
    pub fn settings(&self) -> Vec<(u16, u32)> {
        self.payload.chunks_exact(6).map(|c| (u16::from_be_bytes([c[0], c[1]]), be32(&c[2..]))).collect()
    }

    /// The `:status` of a response HEADERS, when its first field is one of the static
    /// table's statuses or a literal with the name `:status` (plain, or Huffman-coded
    /// digits); `None` for anything else (e.g. a reference to the dynamic table).
    pub fn status(&self) -> Option<u16> {
        if self.kind != HEADERS {
            return None;
        }
        let mut b = &self.payload[..];
        // Dynamic table size updates (001xxxxx) may come first.
        while let Some(&first) = b.first() {
            if first & 0xe0 != 0x20 {
                break;
            }
            let (_, used) = read_int(b, 5)?;
            b = &b[used..];
        }
        let first = *b.first()?;
        if first & 0x80 != 0 {
            let (index, _) = read_int(b, 7)?;
            let statuses = [200, 204, 206, 304, 400, 404, 500];
            return (8..=14).contains(&index).then(|| statuses[index - 8]);
        }
        // Literal with incremental indexing (01xxxxxx) or without/never indexed (000xxxxx).
        let prefix = if first & 0x40 != 0 { 6 } else { 4 };
        let (name, used) = read_int(b, prefix)?;
        if name != 8 {
            return None;
        }
        let b = &b[used..];
        let huffman = *b.first()? & 0x80 != 0;
        let (len, used) = read_int(b, 7)?;
        let value = b.get(used..used + len)?;
        let text = if huffman { huffman_digits(value)? } else { String::from_utf8(value.to_vec()).ok()? };
        text.parse().ok()
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// An integer with an `n`-bit prefix, and how many bytes it took.
pub fn read_int(b: &[u8], n: u32) -> Option<(usize, usize)> {
    let max = (1usize << n) - 1;
    let mut v = usize::from(*b.first()?) & max;
    if v < max {
        return Some((v, 1));
    }
    let mut shift = 0;
    for (i, byte) in b.iter().enumerate().skip(1) {
        v += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A Huffman-coded string of digits (RFC 7541, appendix B: '0'-'2' are 5 bits, 00000-00010;
/// '3'-'9' are 6 bits, 011001-011111); the padding is the EOS code's leading ones.
fn huffman_digits(b: &[u8]) -> Option<String> {
    let bits: Vec<u8> = b.iter().flat_map(|byte| (0..8).rev().map(move |i| (byte >> i) & 1)).collect();
    let (mut out, mut i) = (String::new(), 0);
    while i < bits.len() {
        if bits[i..].iter().all(|&x| x == 1) && bits.len() - i < 8 {
            break;
        }
        let code = |n: usize| bits.get(i..i + n).map(|s| s.iter().fold(0u8, |acc, &x| acc << 1 | x));
        match code(5)? {
            c @ 0..=2 => {
                out.push(char::from(b'0' + c));
                i += 5;
            }
            _ => match code(6)? {
                c @ 25..=31 => {
                    out.push(char::from(b'0' + c - 22));
                    i += 6;
                }
                _ => return None,
            },
        }
    }
    Some(out)
}

/// What the reader saw: a frame, or the end of the connection.
#[derive(Debug, Clone)]
pub enum Event {
    Frame(Frame),
    /// EOF, or a read error (a reset, a TLS close without close_notify): the text says which.
    Closed(String),
}

/// How a connection ended, as [`H2Client::ended`] saw it.
#[derive(Debug, Clone)]
pub struct Ended {
    /// The GOAWAY received on the way, if any: (last stream id, error code, debug data).
    pub goaway: Option<(u32, u32, String)>,
    /// Why the reader stopped; `None` when it had not stopped yet (a GOAWAY, then nothing
    /// within the wait).
    pub closed: Option<String>,
    /// Frames of other kinds read while waiting for the end.
    pub frames_before: Vec<Frame>,
}

/// A client connection speaking raw HTTP/2 over TLS (ALPN `h2`); dropping it closes the
/// connection (no GOAWAY, no close_notify).
pub struct H2Client {
    events: mpsc::UnboundedReceiver<Event>,
    /// Owns the read half: the socket closes when both halves are gone.
    reader: tokio::task::JoinHandle<()>,
    writer: WriteHalf<TlsStream<TcpStream>>,
    /// The server's first SETTINGS.
    pub server_settings: Vec<(u16, u32)>,
    /// Bytes written so far (frames, not counting TLS).
    pub written: u64,
}

/// A TLS connection from `from` to `to` (the certificate's name, `localhost`), ALPN `h2`.
pub async fn connect_tls(
    to: SocketAddr,
    from: IpAddr,
    ca_file: &Path,
) -> std::io::Result<TlsStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(to).await?;
    tcp.set_nodelay(true)?;
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let tls = super::pki::tls_connector(ca_file, &[b"h2"]).connect(name, tcp).await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "the server chose h2 by ALPN");
    Ok(tls)
}

const WAIT: Duration = Duration::from_secs(10);

impl H2Client {
    /// Connect, send the preface and `settings`, read the server's SETTINGS and acknowledge
    /// them.
    pub async fn connect(to: SocketAddr, from: IpAddr, ca_file: &Path, settings: &[(u16, u32)]) -> H2Client {
        let tls = connect_tls(to, from, ca_file).await.expect("TLS connection");
        let (mut reader, writer) = tokio::io::split(tls);
        let (tx, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let why = loop {
                let mut head = [0u8; 9];
                if let Err(e) = reader.read_exact(&mut head).await {
                    break e.to_string();
                }
                let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                let mut payload = vec![0u8; len];
                if let Err(e) = reader.read_exact(&mut payload).await {
                    break e.to_string();
                }
                let stream = be32(&head[5..]) & 0x7fff_ffff;
                if tx.send(Event::Frame(Frame { kind: head[3], flags: head[4], stream, payload })).is_err() {
                    return;
                }
            };
            let _ = tx.send(Event::Closed(why));
        });
        let mut c = H2Client { events, reader, writer, server_settings: Vec::new(), written: 0 };
        c.send(&[PREFACE, &self::settings(settings)].concat()).await.expect("preface");
        let first = c
            .until(WAIT, |e| match e {
                Event::Frame(f) if f.kind == SETTINGS && f.flags & ACK == 0 => Some(Ok(f.settings())),
                Event::Closed(why) => Some(Err(why.clone())),
                _ => None,
            })
            .await
            .expect("the server's SETTINGS in time");
        c.server_settings = first.unwrap_or_else(|why| panic!("closed before its SETTINGS: {why}"));
        c.send(&settings_ack()).await.expect("SETTINGS ACK");
        c
    }

    /// The server's value for a setting, if it sent one.
    pub fn server_setting(&self, id: u16) -> Option<u32> {
        self.server_settings.iter().find(|(i, _)| *i == id).map(|(_, v)| *v)
    }

    /// Write and flush `bytes`; an error (or a write stuck for 10 s) means the connection is
    /// gone, or the server stopped reading it.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let write = async {
            self.writer.write_all(bytes).await?;
            self.writer.flush().await
        };
        match tokio::time::timeout(WAIT, write).await {
            Ok(r) => r?,
            Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write stuck")),
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// The next event, or `None` when none came within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Event> {
        tokio::time::timeout(within, self.events.recv()).await.ok().flatten()
    }

    /// Whether an event is waiting now (the reader saw the server's close, or a frame).
    pub fn try_next(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// Events until `f` picks one (its result), or `None` after `within` (or once the reader
    /// has stopped and every event was seen).
    pub async fn until<T>(&mut self, within: Duration, mut f: impl FnMut(&Event) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv()).await.ok()??;
            if let Some(t) = f(&e) {
                return Some(t);
            }
        }
    }

    /// Wait for the end of the connection (EOF or a read error) for up to `within`, noting a
    /// GOAWAY on the way; a GOAWAY then silence for `within` is an end too.
    pub async fn ended(&mut self, within: Duration) -> Option<Ended> {
        let mut end = Ended { goaway: None, closed: None, frames_before: Vec::new() };
        loop {
            match self.next(within).await {
                Some(Event::Closed(why)) => {
                    end.closed = Some(why);
                    return Some(end);
                }
                Some(Event::Frame(f)) => match f.goaway() {
                    Some(g) => end.goaway = Some(g),
                    None => end.frames_before.push(f),
                },
                None => return end.goaway.is_some().then_some(end),
            }
        }
    }

    /// The first answer on each of `streams`: a response status ([`Frame::status`]; 0 when
    /// it cannot be read) or an RST_STREAM code. Panics if the connection ends or `within`
    /// passes first.
    pub async fn outcomes(&mut self, streams: &[u32], within: Duration) -> Vec<(u32, Outcome)> {
        let mut got: Vec<(u32, Outcome)> = Vec::new();
        let done = self
            .until(within, |e| {
                let f = match e {
                    Event::Frame(f) => f,
                    Event::Closed(why) => panic!("closed before answering {streams:?} (got {got:?}): {why}"),
                };
                let outcome = match (f.kind, f.rst_code()) {
                    (HEADERS, _) => Outcome::Status(f.status().unwrap_or(0)),
                    (_, Some(code)) => Outcome::Reset(code),
                    _ => return None,
                };
                if streams.contains(&f.stream) && !got.iter().any(|(s, _)| *s == f.stream) {
                    got.push((f.stream, outcome));
                }
                (got.len() == streams.len()).then_some(())
            })
            .await;
        assert!(done.is_some(), "no answer on every one of {streams:?} within {within:?}: {got:?}");
        got.sort_by_key(|(s, _)| *s);
        got
    }

    /// The frames read until a PING ACK for `opaque` (sent now) comes back. The codec
    /// handles frames in order and writes a stream's refusal before it reads on, so every
    /// RST_STREAM the codec sent for the frames before the PING is among them (the
    /// application's answers may come later: see [`H2Client::outcomes`]).
    pub async fn sync(&mut self, opaque: u64) -> Synced {
        self.send(&ping(opaque)).await.expect("PING");
        let mut seen = Synced::default();
        let acked = self
            .until(WAIT, |e| match e {
                Event::Frame(f)
                    if f.kind == PING && f.flags & ACK != 0 && f.payload == opaque.to_be_bytes() =>
                {
                    Some(true)
                }
                Event::Frame(f) => {
                    seen.frames.push(f.clone());
                    None
                }
                Event::Closed(why) => panic!("closed while syncing: {why}"),
            })
            .await;
        assert_eq!(acked, Some(true), "the PING ACK in time");
        seen
    }
}

impl Drop for H2Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// How the server answered a stream first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    Reset(u32),
}

/// What [`H2Client::sync`] read before its PING ACK.
#[derive(Debug, Default)]
pub struct Synced {
    pub frames: Vec<Frame>,
}

impl Synced {
    /// (stream, code) of each RST_STREAM.
    pub fn resets(&self) -> Vec<(u32, u32)> {
        self.frames.iter().filter_map(|f| Some((f.stream, f.rst_code()?))).collect()
    }
}

/// The resident memory of process `pid`, in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
