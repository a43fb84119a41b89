//! The TLS listener's half of the edge: the rustls server configuration ([`TlsEdge`]) and
//! the stream Pingora serves over it ([`TlsEdgeStream`]).
//!
//! The handshake runs in the connection's own task, after the connection has its slot
//! under the caps and inside the header deadline of the [`EdgeStream`] below it, so a client
//! that stalls its handshake is closed like one that stalls its headers. The handshake is
//! tokio-rustls's; the certificate comes from [`Certificates`] at each handshake, so a
//! reload needs no new configuration. Pingora picks HTTP/2 or HTTP/1.1 from the ALPN this
//! stream reports.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::SslDigest;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, TimingDigest,
    UniqueID, UniqueIDType, ALPN,
};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::server::TlsStream;

use crate::refusals::{Reason, Refusals};

use super::certs::Certificates;
use super::h2_guard::{H2Guard, H2Limits, Violation};
use super::stream::{status_of, EdgeStream};

/// Sessions remembered for resumption by ID (a few hundred bytes each).
const SESSION_CACHE: usize = 4096;

/// The TLS listener's settings, shared by its connections.
pub struct TlsEdge {
    acceptor: tokio_rustls::TlsAcceptor,
    h2: Option<H2Limits>,
}

impl TlsEdge {
    /// TLS 1.3 and 1.2 with the ring provider's suites (all AEAD with forward secrecy);
    /// ALPN `h2` then `http/1.1` when `h2` is given.
    pub fn new(
        certs: Arc<Certificates>,
        provider: Arc<rustls::crypto::CryptoProvider>,
        h2: Option<H2Limits>,
    ) -> Result<Self, rustls::Error> {
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(certs);
        // Resumption, so a returning client skips the full handshake: stateless tickets
        // (their key rotates every 6 hours) and a bounded cache for clients without them.
        config.ticketer = rustls::crypto::ring::Ticketer::new()?;
        config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
        config.alpn_protocols = if h2.is_some() {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(Self { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), h2 })
    }

    /// The handshake; `None` when it failed (counted and logged, rate-limited).
    pub async fn accept(&self, stream: EdgeStream, refusals: &Arc<Refusals>) -> Option<TlsEdgeStream> {
        let peer = stream.peer();
        let tls = match self.acceptor.accept(stream).await {
            Ok(tls) => tls,
            Err(e) => {
                // A deadline that passed was counted as a header timeout by the stream.
                if e.kind() != io::ErrorKind::TimedOut {
                    refusals.record(Reason::TlsHandshake, format_args!("{peer}: TLS handshake: {e}"));
                }
                return None;
            }
        };
        let (edge, conn) = tls.get_ref();
        let alpn = match conn.alpn_protocol() {
            Some(b"h2") => Some(ALPN::H2),
            Some(b"http/1.1") => Some(ALPN::H1),
            _ => None,
        };
        let digest = Arc::new(SslDigest::new(
            conn.negotiated_cipher_suite().map_or("", |s| s.suite().as_str().unwrap_or("")),
            conn.protocol_version().map_or("", |v| v.as_str().unwrap_or("")),
            None,
            None,
            Vec::new(),
        ));
        let guard = match (alpn.as_ref(), self.h2) {
            (Some(ALPN::H2), Some(limits)) => {
                // Streams are multiplexed: no single request's headers end the connection's
                // header phase. The idle timeout, the stream limit and the guard take over.
                edge.end_header_deadline();
                Some(H2Guard::new(limits))
            }
            _ => None,
        };
        Some(TlsEdgeStream { inner: tls, alpn, digest, guard, refusals: refusals.clone() })
    }
}

/// A client connection over TLS, with its ALPN, for Pingora.
pub struct TlsEdgeStream {
    inner: TlsStream<EdgeStream>,
    alpn: Option<ALPN>,
    digest: Arc<SslDigest>,
    guard: Option<H2Guard>,
    refusals: Arc<Refusals>,
}

impl TlsEdgeStream {
    /// The connection below TLS (the hooks mark the request phases on it).
    pub fn edge(&self) -> &EdgeStream {
        self.inner.get_ref().0
    }

    fn violation(&self, v: Violation) -> io::Error {
        let peer = self.edge().peer();
        self.refusals
            .record(Reason::H2Abuse, format_args!("{peer}: HTTP/2 connection ended: {}", v.describe()));
        io::Error::new(io::ErrorKind::InvalidData, v.describe())
    }
}

impl std::fmt::Debug for TlsEdgeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsEdgeStream").field("alpn", &self.alpn).finish()
    }
}

impl AsyncRead for TlsEdgeStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(guard)) = (&r, &mut this.guard) {
            if let Err(v) = guard.feed(&buf.filled()[before..]) {
                return Poll::Ready(Err(this.violation(v)));
            }
        }
        r
    }
}

impl AsyncWrite for TlsEdgeStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.guard.is_none() {
            self.inner.get_mut().0.note_early_answer(status_of(buf));
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
        if self.guard.is_none() {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or([b'?'; 3], |b| status_of(b));
            self.inner.get_mut().0.note_early_answer(first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for TlsEdgeStream {
    async fn shutdown(&mut self) {
        // close_notify, then the TCP shutdown below it.
        let _ = AsyncWriteExt::shutdown(&mut self.inner).await;
    }
}

impl UniqueID for TlsEdgeStream {
    fn id(&self) -> UniqueIDType {
        self.edge().id()
    }
}

impl Ssl for TlsEdgeStream {
    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        Some(self.digest.clone())
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.alpn.clone()
    }
}

impl GetTimingDigest for TlsEdgeStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.edge().get_timing_digest()
    }
}

impl GetProxyDigest for TlsEdgeStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.edge().get_proxy_digest()
    }
}

impl GetSocketDigest for TlsEdgeStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.edge().get_socket_digest()
    }

    fn set_socket_digest(&mut self, d: SocketDigest) {
        self.inner.get_mut().0.set_socket_digest(d)
    }
}

#[async_trait]
impl Peek for TlsEdgeStream {}
