//! [`EdgeStream`]: a client connection with a header deadline.
//!
//! Pingora's own timeouts are per read, so a client sending a byte just before each one
//! expires holds a connection forever. This wrapper keeps one deadline for the whole header
//! block instead: `header_timeout` from the connection's start, and on a keep-alive
//! connection from the first byte of the next request (the idle wait before that byte is the
//! keep-alive timeout's, as in nginx). Bytes arriving do not move it. At the deadline the
//! client gets a 408 (best effort: one non-blocking write) and the read fails.
//!
//! The gateway's hooks mark the phases ([`mark_request_started`], [`mark_response_done`]):
//! they see a request once its headers are parsed and again once its answer is sent.

/// Pingora's own listener's write buffer (`DEFAULT_L4_WRITE_BUFFER_SIZE`): one MSS.
const WRITE_BUFFER: usize = 1460;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, TimingDigest,
    UniqueID, UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::refusals::{Reason, Refusals};

const TIMEOUT_RESPONSE: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// Nothing new from the hooks.
const WAITING: u8 = 0;
/// A request's headers are in.
const IN_REQUEST: u8 = 1;
/// The answer is sent; the connection may carry another request.
const RESPONSE_DONE: u8 = 2;
/// No header deadline any more (an HTTP/2 connection, whose streams are multiplexed).
const NO_DEADLINE: u8 = 3;

/// Where the connection is in its request cycle, as far as the header deadline cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading request headers; the deadline runs.
    Headers,
    /// A reused connection before the first byte of its next request (keep-alive idle).
    Idle,
    /// Headers parsed: the request (body, answer) is the request's own business.
    Request,
    /// The deadline passed; every read ends.
    Expired,
}

struct HeaderClock {
    timeout: Duration,
    deadline: Instant,
    /// The keep-alive idle timeout, when this stream enforces it (see [`Phase::Idle`]).
    idle_timeout: Option<Duration>,
    idle_deadline: Instant,
    /// The timer that wakes a read waiting at a deadline: made only when a read has to wait,
    /// and moved only when it would fire too late (see [`wait_for`]), so a keep-alive
    /// connection registers about one timer per idle timeout, not one per request.
    timer: Option<Pin<Box<Sleep>>>,
    phase: Phase,
    /// Bytes read in this header phase.
    bytes: u64,
    /// Whether an answer written during the header phase was counted already.
    counted_answer: bool,
}

/// A client connection: the L4 stream, plus the header deadline when one is set.
pub struct EdgeStream {
    /// Writes are buffered as Pingora's own listener buffers them, so a response's header and
    /// a small body leave in one send (Pingora flushes at the end of each header and body).
    inner: BufWriter<L4Stream>,
    clock: Option<HeaderClock>,
    /// Set by the hooks ([`IN_REQUEST`], [`RESPONSE_DONE`]); the reader takes
    /// [`RESPONSE_DONE`] back to [`WAITING`] as it starts the idle phase.
    signal: AtomicU8,
    /// Whether the deadline answers 408 (not below TLS, where it would be plaintext).
    answer_timeout: bool,
    refusals: Arc<Refusals>,
}

impl std::fmt::Debug for EdgeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeStream").field("inner", &self.inner).finish()
    }
}

impl EdgeStream {
    /// `header_timeout`: `None` for no deadline (and then no idle timeout here either: the
    /// caller leaves that to Pingora). `idle_timeout`: `None` for idle keep-alive
    /// connections that never time out.
    pub fn new(
        inner: L4Stream,
        header_timeout: Option<Duration>,
        idle_timeout: Option<Duration>,
        refusals: Arc<Refusals>,
    ) -> Self {
        let now = Instant::now();
        let clock = header_timeout.map(|timeout| HeaderClock {
            timeout,
            deadline: now + timeout,
            idle_timeout,
            idle_deadline: now,
            timer: None,
            phase: Phase::Headers,
            bytes: 0,
            counted_answer: false,
        });
        let inner = BufWriter::with_capacity(WRITE_BUFFER, inner);
        Self { inner, clock, signal: AtomicU8::new(WAITING), answer_timeout: true, refusals }
    }

    /// The connection started at `at` (its accept, before a PROXY header was read): the first
    /// header deadline counts from there.
    pub fn started_at(mut self, at: Instant) -> Self {
        if let Some(c) = &mut self.clock {
            c.deadline = at + c.timeout;
        }
        self
    }

    /// Below TLS: the deadline closes without a plaintext 408.
    pub fn below_tls(mut self) -> Self {
        self.answer_timeout = false;
        self
    }

    /// The header deadline ends here for the rest of the connection.
    pub fn end_header_deadline(&self) {
        self.signal.store(NO_DEADLINE, Ordering::Relaxed);
    }

    pub(super) fn peer(&self) -> String {
        self.inner
            .get_ref()
            .get_socket_digest()
            .and_then(|d| d.peer_addr().map(|a| a.to_string()))
            .unwrap_or_else(|| "-".into())
    }
}

/// The edge connection under a Pingora stream, plain or below TLS.
fn edge_of(stream: Option<&pingora::protocols::Stream>) -> Option<&EdgeStream> {
    let any = (**stream?).as_any();
    any.downcast_ref::<EdgeStream>()
        .or_else(|| any.downcast_ref::<super::tls::TlsEdgeStream>().map(|t| t.edge()))
}

/// The request's headers are in: the deadline stops (called from `early_request_filter`).
pub fn mark_request_started(stream: Option<&pingora::protocols::Stream>) {
    if let Some(s) = edge_of(stream) {
        s.mark(IN_REQUEST);
    }
}

/// The answer is sent: the next request's header phase begins (called from `logging`).
pub fn mark_response_done(stream: Option<&pingora::protocols::Stream>) {
    if let Some(s) = edge_of(stream) {
        s.mark(RESPONSE_DONE);
    }
}

impl EdgeStream {
    fn mark(&self, phase: u8) {
        // A connection without a deadline stays so (set before the first request, by the
        // connection's own task: no race with the hooks).
        if self.signal.load(Ordering::Relaxed) != NO_DEADLINE {
            self.signal.store(phase, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for EdgeStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(clock) = &mut this.clock else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        if clock.phase == Phase::Expired {
            return Poll::Ready(Ok(()));
        }
        // The hooks may have run several times since the last read (a GET reads nothing
        // after its headers): the latest signal says where the connection is now.
        match this.signal.load(Ordering::Relaxed) {
            NO_DEADLINE => {
                this.clock = None;
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            IN_REQUEST => clock.phase = Phase::Request,
            RESPONSE_DONE => {
                this.signal.store(WAITING, Ordering::Relaxed);
                clock.phase = Phase::Idle;
                clock.counted_answer = false;
                if let Some(idle) = clock.idle_timeout {
                    clock.idle_deadline = Instant::now() + idle;
                }
            }
            _ => {}
        }
        match clock.phase {
            Phase::Headers => {
                let before = buf.filled().len();
                let r = Pin::new(&mut this.inner).poll_read(cx, buf);
                let expired = match &r {
                    Poll::Ready(Ok(())) => {
                        let n = buf.filled().len() - before;
                        clock.bytes += n as u64;
                        // Bytes arriving never move the deadline.
                        n > 0 && Instant::now() >= clock.deadline
                    }
                    Poll::Ready(Err(_)) => false,
                    Poll::Pending => wait_for(&mut clock.timer, clock.deadline, cx),
                };
                if !expired {
                    return r;
                }
                clock.phase = Phase::Expired;
                let bytes = clock.bytes;
                let secs = clock.timeout.as_secs_f64();
                // Best effort: a client that stopped reading does not get to hold us.
                if this.answer_timeout {
                    let _ = Pin::new(&mut this.inner).poll_write(cx, TIMEOUT_RESPONSE);
                    let _ = Pin::new(&mut this.inner).poll_flush(cx);
                }
                let peer = this.peer();
                this.refusals.record(
                    Reason::HeaderTimeout,
                    format_args!("{peer}: no complete request headers in {secs} s ({bytes} bytes)"),
                );
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "request header timeout")))
            }
            Phase::Idle => {
                let before = buf.filled().len();
                let r = Pin::new(&mut this.inner).poll_read(cx, buf);
                let n = buf.filled().len() - before;
                if n > 0 {
                    clock.phase = Phase::Headers;
                    clock.bytes = n as u64;
                    clock.deadline = Instant::now() + clock.timeout;
                } else if r.is_pending()
                    && clock.idle_timeout.is_some()
                    && wait_for(&mut clock.timer, clock.idle_deadline, cx)
                {
                    // Idle too long: the connection ends as if the client closed it.
                    clock.phase = Phase::Expired;
                    return Poll::Ready(Ok(()));
                }
                r
            }
            Phase::Request | Phase::Expired => Pin::new(&mut this.inner).poll_read(cx, buf),
        }
    }
}

/// Whether `deadline` has passed, for a read that has to wait; arranges a wake-up at it
/// otherwise. The timer is moved earlier when it would fire too late, but never later: one
/// that fires early (set for an earlier request's deadline) is moved then, once. A busy
/// keep-alive connection, whose deadline moves on with every request, so re-registers its
/// timer about once per timeout instead of once per request.
fn wait_for(timer: &mut Option<Pin<Box<Sleep>>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    let t = match timer {
        Some(t) => {
            if t.deadline() > deadline {
                t.as_mut().reset(deadline);
            }
            t
        }
        none => none.insert(Box::pin(tokio::time::sleep_until(deadline))),
    };
    if t.as_mut().poll(cx).is_pending() {
        return false;
    }
    if Instant::now() >= deadline {
        return true;
    }
    t.as_mut().reset(deadline);
    // Registers the wake-up at the new deadline (it cannot have passed yet).
    t.as_mut().poll(cx).is_ready()
}

impl EdgeStream {
    /// Pingora answers unparsable headers itself (400) before any hook runs: an answer
    /// written while headers are awaited is one of those, counted once per request.
    pub(super) fn note_early_answer(&mut self, status: [u8; 3]) {
        let Some(clock) = &mut self.clock else { return };
        let in_request = match self.signal.load(Ordering::Relaxed) {
            IN_REQUEST => true,
            RESPONSE_DONE => false,
            _ => clock.phase == Phase::Request,
        };
        if in_request || clock.counted_answer || clock.phase == Phase::Expired {
            return;
        }
        clock.counted_answer = true;
        let status = std::str::from_utf8(&status).unwrap_or("?");
        let peer = self.peer();
        self.refusals.record(Reason::BadRequest, format_args!("{peer}: answered {status} by Pingora"));
    }
}

/// The status code of an HTTP/1 status line (`HTTP/1.1 400 ...`), or `???`.
pub(super) fn status_of(buf: &[u8]) -> [u8; 3] {
    match buf.get(9..12) {
        Some(&[a, b, c]) => [a, b, c],
        _ => [b'?'; 3],
    }
}

impl AsyncWrite for EdgeStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // Below TLS these are records, not HTTP: the TLS stream notes its own answers.
        if self.clock.is_some() && self.answer_timeout {
            self.note_early_answer(status_of(buf));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.clock.is_some() && self.answer_timeout {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or([b'?'; 3], |b| status_of(b));
            self.note_early_answer(first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for EdgeStream {
    async fn shutdown(&mut self) {
        let _ = self.inner.flush().await;
        Shutdown::shutdown(self.inner.get_mut()).await
    }
}

impl UniqueID for EdgeStream {
    fn id(&self) -> UniqueIDType {
        self.inner.get_ref().id()
    }
}

impl Ssl for EdgeStream {}

impl GetTimingDigest for EdgeStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_ref().get_timing_digest()
    }
}

impl GetProxyDigest for EdgeStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_ref().get_proxy_digest()
    }
}

impl GetSocketDigest for EdgeStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_ref().get_socket_digest()
    }

    fn set_socket_digest(&mut self, d: SocketDigest) {
        self.inner.get_mut().set_socket_digest(d)
    }
}

#[async_trait]
impl Peek for EdgeStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.get_mut().try_peek(buf).await
    }
}
