//! [`EdgeService`]: the gateway's listener, in place of Pingora's listening service, with an
//! accept loop of its own.
//!
//! Pingora 0.9's loop (`services/listening.rs`) sleeps one second after every EMFILE and
//! logs each failed accept, and it has no place for a cap that must be given back when a
//! connection ends. Here, at accept and before any HTTP work:
//! - the connection takes a [`Slot`](super::admission::Slot) under the global and per-IP
//!   caps, or is closed at once;
//! - in a task of its own, which holds the slot until the app is done with it, it is wrapped
//!   in an [`EdgeStream`] (the header deadline), taken through the TLS handshake on the TLS
//!   listener, and handed to the Pingora app (the proxy);
//! - with the PROXY protocol on ([`super::proxy_protocol`]), a source outside the trusted
//!   networks is closed at accept, and the slot takes only its global place there; the task
//!   reads the header (inside the header deadline), takes the per-IP place for the client it
//!   names, and makes that client the connection's peer address;
//! - when the process is out of descriptors ([`super::accept`]), a reserved descriptor is
//!   given up to accept and close the waiting connections, and the loop waits a short,
//!   growing backoff (never a busy loop, never more than a fraction of a second).
//!
//! The listening socket is shared with Pingora's upgrade machinery exactly as Pingora's own
//! listener does: taken from the fd table on `-u`, added to it otherwise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest};
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::refusals::{Reason, Refusals};

use super::accept::{AcceptError, Backoff, Reserve};
use super::admission::{Admission, Slot};
use super::proxy_protocol::{self, Header, ProxyProtocol, ReadError};
use super::stream::EdgeStream;
use super::tls::TlsEdge;

/// What the listener enforces (from `limits:`; 0 there is `0`/`None` here: no limit).
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub max_connections: u64,
    pub max_connections_per_ip: u64,
    pub header_timeout: Option<Duration>,
    pub keepalive_timeout: Option<Duration>,
    /// `Some`: every connection begins with a PROXY protocol header, from these sources only.
    pub proxy_protocol: Option<ProxyProtocol>,
}

pub struct EdgeService<A> {
    name: String,
    /// Each listener's address, and its TLS when it has some.
    listeners: Vec<(String, Option<Arc<TlsEdge>>)>,
    app: Option<A>,
    settings: EdgeSettings,
    /// One set of caps for every listener.
    admission: Arc<Admission>,
    refusals: Arc<Refusals>,
}

impl<A> EdgeService<A> {
    pub fn new(name: &str, addr: &str, app: A, settings: EdgeSettings, refusals: Arc<Refusals>) -> Self {
        Self {
            name: name.to_string(),
            listeners: vec![(addr.to_string(), None)],
            app: Some(app),
            admission: Admission::new(settings.max_connections, settings.max_connections_per_ip),
            settings,
            refusals,
        }
    }

    /// One more listener, serving TLS (and HTTP/2 when `tls` offers it).
    pub fn with_tls_listener(mut self, addr: &str, tls: Arc<TlsEdge>) -> Self {
        self.listeners.push((addr.to_string(), Some(tls)));
        self
    }
}

/// The listening socket: the one handed over by an upgrade, or a new one (then recorded
/// for the next upgrade).
fn listen(addr: &str, fds: Option<ListenFds>) -> std::io::Result<TcpListener> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let handed_over = fds.as_ref().and_then(|t| t.lock().get(addr).copied());
    let socket = match handed_over {
        // SAFETY: the fd table holds listening sockets this process inherited and owns.
        Some(fd) => unsafe { socket2::Socket::from_raw_fd(fd) },
        None => {
            let sa: SocketAddr = addr.parse().map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?;
            let s = socket2::Socket::new(socket2::Domain::for_address(sa), socket2::Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            s.bind(&sa.into())?;
            s
        }
    };
    // As Pingora does: the kernel's maximum backlog (a second listen() only resizes it).
    socket.listen(65_535)?;
    socket.set_nonblocking(true)?;
    if handed_over.is_none() {
        if let Some(t) = &fds {
            t.lock().add(addr.to_string(), socket.as_raw_fd());
        }
    }
    TcpListener::from_std(socket.into())
}

/// A Pingora L4 stream for an accepted socket, with the peer address Pingora's own listener
/// records (the proxy reads the client address from it): the socket's peer, or the client a
/// PROXY header named.
fn l4_stream(tcp: TcpStream, peer: SocketAddr) -> L4Stream {
    use std::os::fd::AsRawFd;
    let digest = SocketDigest::from_raw_fd(tcp.as_raw_fd());
    let _ = digest.peer_addr.set(Some(PeerAddr::Inet(peer)));
    let mut s: L4Stream = tcp.into();
    s.set_socket_digest(digest);
    s
}

struct Loop<A> {
    app: Arc<A>,
    admission: Arc<Admission>,
    refusals: Arc<Refusals>,
    header_timeout: Option<Duration>,
    keepalive_timeout: Option<Duration>,
    tls: Option<Arc<TlsEdge>>,
    proxy: Option<Arc<ProxyProtocol>>,
    shutdown: ShutdownWatch,
}

impl<A: ServerApp + Send + Sync + 'static> Loop<A> {
    /// Decide what the peer address alone decides, then hand the connection to its own task.
    fn admit(&self, tcp: TcpStream, peer: SocketAddr) {
        let started = Instant::now();
        let slot = match &self.proxy {
            None => self.admission.admit(peer.ip()),
            // The client is known once its header is read: only the global cap here.
            Some(p) if p.trusts(peer.ip()) => self.admission.admit_any(),
            Some(_) => {
                self.refusals.record(
                    Reason::ProxyProtocol,
                    format_args!("{peer}: not a trusted PROXY protocol source, refused at accept"),
                );
                return;
            }
        };
        let slot = match slot {
            Ok(slot) => slot,
            Err(reason) => {
                self.refusals.record(reason, format_args!("{peer} refused at accept"));
                return;
            }
        };
        // Small answers go out at once; a failure here only costs latency.
        let _ = tcp.set_nodelay(true);
        let conn = Connection {
            app: self.app.clone(),
            refusals: self.refusals.clone(),
            header_timeout: self.header_timeout,
            keepalive_timeout: self.keepalive_timeout,
            tls: self.tls.clone(),
            proxied: self.proxy.is_some(),
            shutdown: self.shutdown.clone(),
        };
        pingora_runtime::current_handle().spawn(conn.run(tcp, peer, slot, started));
    }

    async fn run(&mut self, listener: TcpListener) {
        let mut backoff = Backoff::default();
        let mut reserve = Reserve::open();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let accepted = tokio::select! {
                biased;
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        log::info!("{}: no longer accepting", listener.local_addr().map(|a| a.to_string()).unwrap_or_default());
                        return;
                    }
                    continue;
                }
                r = listener.accept() => r,
                _ = tick.tick() => {
                    self.refusals.flush();
                    continue;
                }
            };
            match accepted {
                Ok((tcp, peer)) => {
                    backoff.reset();
                    self.admit(tcp, peer);
                }
                Err(e) => match AcceptError::classify(&e) {
                    // The peer gave up between SYN and accept: nothing to do.
                    AcceptError::PeerGone => {}
                    AcceptError::OutOfDescriptors => {
                        let shed = reserve.shed(&listener);
                        self.refusals.record(
                            Reason::FdExhausted,
                            format_args!("accept: {e}; closed {shed} waiting connection(s)"),
                        );
                        tokio::time::sleep(backoff.next()).await;
                    }
                    AcceptError::Other => {
                        log::warn!("accept: {e}");
                        tokio::time::sleep(backoff.next()).await;
                    }
                },
            }
        }
    }
}

/// One connection's task: its PROXY header and per-IP place (on a listener that takes
/// headers), the TLS handshake (on the TLS listener), the app's requests, then the slot back.
/// Whatever a slow client holds up here, it holds up only its own connection.
struct Connection<A> {
    app: Arc<A>,
    refusals: Arc<Refusals>,
    header_timeout: Option<Duration>,
    keepalive_timeout: Option<Duration>,
    tls: Option<Arc<TlsEdge>>,
    proxied: bool,
    shutdown: ShutdownWatch,
}

impl<A: ServerApp + Send + Sync + 'static> Connection<A> {
    async fn run(self, mut tcp: TcpStream, peer: SocketAddr, mut slot: Slot, started: Instant) {
        let client = if self.proxied {
            let Some(client) = self.proxy_header(&mut tcp, peer, started).await else { return };
            if let Err(reason) = slot.hold_ip(client.ip()) {
                self.refusals
                    .record(reason, format_args!("{client} (via {peer}) refused after its PROXY header"));
                return;
            }
            client
        } else {
            peer
        };
        // One header deadline from accept: PROXY header, TLS handshake and request headers.
        let stream = EdgeStream::new(
            l4_stream(tcp, client),
            self.header_timeout,
            self.keepalive_timeout,
            self.refusals.clone(),
        )
        .started_at(started);
        let Some(tls) = &self.tls else {
            return self.serve(Box::new(stream), slot).await;
        };
        // The slot is held through the handshake, which the header deadline bounds.
        if let Some(stream) = tls.accept(stream.below_tls(), &self.refusals).await {
            self.serve(Box::new(stream), slot).await;
        }
    }

    /// The client the connection's PROXY header names (the balancer's own address for a
    /// LOCAL header and the like), within the header deadline; `None`: refused and counted,
    /// or the balancer went away.
    async fn proxy_header(
        &self,
        tcp: &mut TcpStream,
        peer: SocketAddr,
        started: Instant,
    ) -> Option<SocketAddr> {
        let read = proxy_protocol::read_header(tcp);
        let read = match self.header_timeout {
            None => read.await,
            Some(t) => match tokio::time::timeout_at(started + t, read).await {
                Ok(r) => r,
                Err(_) => {
                    let secs = t.as_secs_f64();
                    self.refusals.record(
                        Reason::HeaderTimeout,
                        format_args!("{peer}: no complete PROXY header in {secs} s"),
                    );
                    return None;
                }
            },
        };
        match read {
            Ok(Header::Proxied { client }) => Some(client),
            Ok(Header::Local) => Some(peer),
            // Opened and closed, or reset, before a byte: a TCP health check, not a refusal.
            Err(ReadError::Closed(0) | ReadError::Io(_)) => None,
            Err(e) => {
                self.refusals.record(Reason::ProxyProtocol, format_args!("{peer}: {e}"));
                None
            }
        }
    }

    /// The app's requests, then the slot back.
    async fn serve(&self, stream: pingora::protocols::Stream, slot: Slot) {
        let open = &self.refusals.open;
        open.inc();
        let mut next = self.app.process_new(stream, &self.shutdown).await;
        while let Some(s) = next {
            next = self.app.process_new(s, &self.shutdown).await;
        }
        open.dec();
        drop(slot);
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> Service for EdgeService<A> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        _listeners_per_fd: usize,
    ) {
        let Some(app) = self.app.take() else { return };
        let mut sockets = Vec::with_capacity(self.listeners.len());
        for (addr, tls) in &self.listeners {
            match listen(addr, fds.clone()) {
                Ok(l) => sockets.push((l, tls.clone())),
                Err(e) => {
                    // Pingora's own listener panics here; a clear line and an exit say more.
                    log::error!("cannot listen on {addr}: {e}");
                    std::process::exit(1);
                }
            }
        }
        let app = Arc::new(app);
        let proxy = self.settings.proxy_protocol.clone().map(Arc::new);
        let loops = sockets.into_iter().map(|(listener, tls)| {
            let mut run = Loop {
                app: app.clone(),
                admission: self.admission.clone(),
                refusals: self.refusals.clone(),
                header_timeout: self.settings.header_timeout,
                keepalive_timeout: self.settings.keepalive_timeout,
                tls,
                proxy: proxy.clone(),
                shutdown: shutdown.clone(),
            };
            async move { run.run(listener).await }
        });
        futures_util::future::join_all(loops).await;
        app.cleanup().await;
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        Some(self.listeners.iter().map(|(a, _)| a.clone()).collect())
    }
}
