//! The origin pool for pass-through traffic: which origin a request goes to, when it may try
//! another, and which origins are healthy.
//!
//! - **Selection** ([`select`]): round robin, least connections, or rendezvous hashing on the
//!   path, over the origins that are healthy, not ejected, and not yet tried by this request.
//! - **Active health** ([`health`]): Pingora's TCP or HTTP check, as a background service.
//! - **TLS** ([`tls`]): with `origin_tls` on, every peer (health checks too) speaks TLS with
//!   the configured name and CAs, verified.
//! - **Passive health**: connect failures and 502/503/504 answers in a row eject an origin at
//!   once for `passive.eject_ms`, without waiting for the next check.
//! - **Retries**: a connect failure moves to the next eligible origin; so does a dead pooled
//!   connection when the method is idempotent and no byte of the request body has been read
//!   (so none can have gone upstream). A request partly sent is never replayed. At most
//!   `max_tries` origins per request, and never more than the pool holds.
//!
//! The pick is ours, not Pingora's `select`: that hashes each backend (SipHash) to look its
//! health up several times per request, which was the largest cost the gateway added to a
//! proxied request. Here it is a counter and a few atomic loads.

mod health;
mod select;
mod tls;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::prelude::HttpPeer;
use pingora::{Error, ErrorType, Result};
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, LoadBalancer};
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use crate::config::{Config, ConfigError, OriginPoolConfig, Selection};
use crate::metrics::Metrics;

use tls::OriginTls;

/// The origin pool's health-check task, to be added to the server beside the proxy.
pub type OriginHealthService = pingora::services::background::GenBackgroundService<LoadBalancer<RoundRobin>>;

pub(crate) struct OriginPool {
    origins: Arc<[Origin]>,
    next: AtomicUsize,
    selection: Selection,
    max_tries: usize,
    passive_max_failures: u32,
    eject_for: Duration,
    /// Ejections are kept as milliseconds since this instant.
    epoch: Instant,
    connect_timeout: Duration,
    read_timeout: Duration,
    /// `None`: plain HTTP.
    tls: Option<OriginTls>,
}

/// One origin and what the pool knows of it.
struct Origin {
    backend: Backend,
    /// The active check's verdict (every origin starts up, as in Pingora).
    healthy: AtomicBool,
    /// Passive: ejected until this many ms after the pool's epoch (0: not ejected).
    ejected_until_ms: AtomicU64,
    /// Passive: failures in a row.
    failures: AtomicU32,
    in_flight: AtomicUsize,
    metrics: OriginMetrics,
}

/// Per-origin series, resolved once (an origin's requests cost atomic adds, no label lookup).
struct OriginMetrics {
    up: IntGauge,
    requests: IntCounter,
    connect_failures: IntCounter,
    proxy_failures: IntCounter,
    server_errors: IntCounter,
    retries: IntCounter,
    ejections: IntCounter,
}

/// What one request has done with the pool: the origins it tried, and the one it is on (its
/// in-flight count is released when the request, or this try, ends).
#[derive(Default)]
pub(crate) struct Upstream {
    tried: u64,
    tries: usize,
    current: Option<InFlight>,
}

struct InFlight {
    origins: Arc<[Origin]>,
    index: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.origins[self.index].in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The origins as [`select`] sees them for one request.
struct View<'a> {
    origins: &'a [Origin],
    tried: u64,
    now_ms: u64,
    ignore_ejection: bool,
}

impl select::Candidates for View<'_> {
    fn len(&self) -> usize {
        self.origins.len()
    }
    fn eligible(&self, i: usize) -> bool {
        let o = &self.origins[i];
        self.tried & (1 << i) == 0
            && o.healthy.load(Ordering::Relaxed)
            && (self.ignore_ejection || o.ejected_until_ms.load(Ordering::Relaxed) <= self.now_ms)
    }
    fn in_flight(&self, i: usize) -> usize {
        self.origins[i].in_flight.load(Ordering::Relaxed)
    }
}

fn origin_metrics(m: &Metrics) -> Result<[IntCounterVec; 6], ConfigError> {
    let vec = |name: &str, help: &str| {
        let v = IntCounterVec::new(Opts::new(name, help), &["origin"])
            .map_err(|e| ConfigError::new("metrics", e.to_string()))?;
        m.register(Box::new(v.clone()));
        Ok::<_, ConfigError>(v)
    };
    Ok([
        vec("presign_origin_requests_total", "Pass-through tries sent to each origin")?,
        vec("presign_origin_connect_failures_total", "Connect failures per origin")?,
        vec("presign_origin_proxy_failures_total", "Failures after connecting, per origin")?,
        vec("presign_origin_server_errors_total", "502/503/504 answers per origin")?,
        vec("presign_origin_retries_total", "Requests retried on another origin after failing on this one")?,
        vec("presign_origin_ejections_total", "Passive ejections per origin")?,
    ])
}

impl OriginPool {
    /// The pool and its health-check service; the per-origin metrics go into `metrics`.
    pub fn from_config(cfg: &Config, metrics: &Metrics) -> Result<(Self, OriginHealthService), ConfigError> {
        let mut unique: Vec<Backend> = Vec::with_capacity(cfg.origin.len());
        for (i, o) in cfg.origin.iter().enumerate() {
            let backend =
                Backend::new(o).map_err(|e| ConfigError::new(format!("origin[{i}]"), e.to_string()))?;
            // Listed twice is listed once, as in Pingora's own pool: no origin gets two turns.
            if !unique.iter().any(|u| u.addr == backend.addr) {
                unique.push(backend);
            }
        }
        let up = IntGaugeVec::new(
            Opts::new("presign_origin_up", "1 while the health check finds the origin up"),
            &["origin"],
        )
        .map_err(|e| ConfigError::new("metrics", e.to_string()))?;
        metrics.register(Box::new(up.clone()));
        let [requests, connect, proxy, server, retries, ejections] = origin_metrics(metrics)?;
        let origins: Arc<[Origin]> = unique
            .into_iter()
            .map(|backend| {
                let label = backend.addr.to_string();
                let l: &[&str] = &[&label];
                let m = OriginMetrics {
                    up: up.with_label_values(l),
                    requests: requests.with_label_values(l),
                    connect_failures: connect.with_label_values(l),
                    proxy_failures: proxy.with_label_values(l),
                    server_errors: server.with_label_values(l),
                    retries: retries.with_label_values(l),
                    ejections: ejections.with_label_values(l),
                };
                m.up.set(1);
                Origin {
                    backend,
                    healthy: AtomicBool::new(true),
                    ejected_until_ms: AtomicU64::new(0),
                    failures: AtomicU32::new(0),
                    in_flight: AtomicUsize::new(0),
                    metrics: m,
                }
            })
            .collect();
        let p: &OriginPoolConfig = &cfg.origin_pool;
        let tls = OriginTls::from_config(&cfg.origin_tls)?;
        let health = health::service(&p.health_check, &origins, &cfg.origin, tls.as_ref())?;
        let pool = Self {
            max_tries: p.max_tries.min(origins.len()).max(1),
            origins,
            next: AtomicUsize::new(0),
            selection: p.selection,
            passive_max_failures: p.passive.max_failures,
            eject_for: Duration::from_millis(p.passive.eject_ms),
            epoch: Instant::now(),
            connect_timeout: Duration::from_millis(cfg.origin_timeouts.connect_ms),
            read_timeout: Duration::from_millis(cfg.origin_timeouts.read_ms),
            tls,
        };
        Ok((pool, health))
    }

    fn now_ms(&self) -> u64 {
        // +1: an ejection never ends at 0, which means "not ejected".
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX).saturating_add(1)
    }

    /// The next origin for this request, or 502 `no_healthy_origin` when none is left.
    pub fn next_peer(&self, up: &mut Upstream, key: &str) -> Result<Box<HttpPeer>> {
        let now_ms = self.now_ms();
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let tried = up.tried;
        let view = |ignore_ejection| View { origins: &self.origins, tried, now_ms, ignore_ejection };
        // Ejection is a hint from recent traffic: with every untried origin ejected, one of
        // them is still a better bet than a 502.
        let index = select::pick(self.selection, &view(false), turn, key)
            .or_else(|| select::pick(self.selection, &view(true), turn, key));
        let Some(index) = index else {
            return Error::e_explain(ErrorType::ConnectNoRoute, "no healthy origin");
        };
        if self.selection == Selection::RoundRobin {
            // The skipped origins' turns pass on in order, so the healthy ones keep equal
            // shares (not: the origin after a down one taking its turn as well as its own).
            let n = self.origins.len();
            let skipped = (index + n - turn % n) % n;
            if skipped > 0 {
                self.next.fetch_add(skipped, Ordering::Relaxed);
            }
        }
        if let Some(previous) = &up.current {
            self.origins[previous.index].metrics.retries.inc();
        }
        let origin = &self.origins[index];
        origin.in_flight.fetch_add(1, Ordering::Relaxed);
        origin.metrics.requests.inc();
        up.current = Some(InFlight { origins: self.origins.clone(), index });
        up.tried |= 1 << index;
        up.tries += 1;
        let mut peer = match &self.tls {
            None => HttpPeer::new(origin.backend.clone(), false, String::new()),
            Some(tls) => {
                let mut peer = HttpPeer::new(origin.backend.clone(), true, tls.sni.clone());
                tls.apply(&mut peer.options);
                peer
            }
        };
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(self.read_timeout);
        Ok(Box::new(peer))
    }

    /// Whether this request may try one more origin.
    pub fn may_retry(&self, up: &Upstream) -> bool {
        up.tries < self.max_tries && up.tried.count_ones() < self.origins.len() as u32
    }

    /// The current try could not connect.
    pub fn connect_failed(&self, up: &Upstream) {
        if let Some(o) = self.current(up) {
            o.metrics.connect_failures.inc();
            self.passive_failure(o);
        }
    }

    /// The current try failed after connecting.
    pub fn proxy_failed(&self, up: &Upstream) {
        if let Some(o) = self.current(up) {
            o.metrics.proxy_failures.inc();
            self.passive_failure(o);
        }
    }

    /// The origin answered with this status.
    pub fn answered(&self, up: &Upstream, status: u16) {
        let Some(o) = self.current(up) else { return };
        // 502/503/504 say the node or what is behind it is failing (Garage without quorum
        // answers 503); a 500 is usually one route's bug, not a reason to drop a node.
        if matches!(status, 502..=504) {
            o.metrics.server_errors.inc();
            self.passive_failure(o);
        } else if o.failures.load(Ordering::Relaxed) != 0 {
            o.failures.store(0, Ordering::Relaxed);
        }
    }

    fn current(&self, up: &Upstream) -> Option<&Origin> {
        up.current.as_ref().map(|c| &self.origins[c.index])
    }

    fn passive_failure(&self, o: &Origin) {
        if self.passive_max_failures == 0 {
            return;
        }
        let failures = o.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.passive_max_failures {
            let until =
                self.now_ms().saturating_add(u64::try_from(self.eject_for.as_millis()).unwrap_or(u64::MAX));
            let before = o.ejected_until_ms.swap(until, Ordering::Relaxed);
            if before < self.now_ms() {
                o.metrics.ejections.inc();
                log::warn!(
                    "origin {} ejected for {:?} after {failures} failure(s) in a row",
                    o.backend.addr,
                    self.eject_for
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(origins: &str, extra: &str) -> OriginPool {
        let yaml =
            format!("listen: 127.0.0.1:1\norigin: {origins}\nstorage:\n  local:\n    root: /tmp/x\n{extra}");
        let cfg = Config::from_yaml(&yaml).expect("config");
        OriginPool::from_config(&cfg, &Metrics::new()).expect("pool").0
    }

    fn pick(p: &OriginPool) -> String {
        p.next_peer(&mut Upstream::default(), "/k").map(|peer| peer._address.to_string()).unwrap_or_default()
    }

    #[test]
    fn turns_are_shared_equally_and_skip_a_down_origin() {
        let p = pool("[127.0.0.1:1001, 127.0.0.1:1001, 127.0.0.1:1002, 127.0.0.1:1003]", "");
        assert_eq!(p.origins.len(), 3, "an origin listed twice is one origin");
        p.origins[2].healthy.store(false, Ordering::Relaxed);
        let got: Vec<_> = (0..6).map(|_| pick(&p)).collect();
        assert_eq!(got.iter().filter(|a| a.ends_with(":1001")).count(), 3, "{got:?}");
        assert_eq!(got.iter().filter(|a| a.ends_with(":1002")).count(), 3, "{got:?}");
        for o in p.origins.iter() {
            o.healthy.store(false, Ordering::Relaxed);
        }
        assert!(p.next_peer(&mut Upstream::default(), "/").is_err(), "no healthy origin");
        assert!(pool("[]", "").next_peer(&mut Upstream::default(), "/").is_err(), "no origin at all");
    }

    #[test]
    fn a_request_never_tries_an_origin_twice_nor_more_than_max_tries() {
        let p = pool("[127.0.0.1:1001, 127.0.0.1:1002, 127.0.0.1:1003]", "origin_pool: {max_tries: 2}\n");
        let mut up = Upstream::default();
        let a = p.next_peer(&mut up, "/").unwrap()._address.to_string();
        assert!(p.may_retry(&up));
        let b = p.next_peer(&mut up, "/").unwrap()._address.to_string();
        assert_ne!(a, b);
        assert!(!p.may_retry(&up), "max_tries 2");
        let in_flight: usize = p.origins.iter().map(|o| o.in_flight.load(Ordering::Relaxed)).sum();
        assert_eq!(in_flight, 1, "the first try's slot was released when the second began");
        drop(up);
        assert!(p.origins.iter().all(|o| o.in_flight.load(Ordering::Relaxed) == 0));
    }

    #[test]
    fn a_connect_failure_ejects_at_once_and_a_lone_ejected_origin_still_serves() {
        let p = pool(
            "[127.0.0.1:1001, 127.0.0.1:1002]",
            "origin_pool: {passive: {max_failures: 1, eject_ms: 60000}}\n",
        );
        let mut up = Upstream::default();
        let first = p.next_peer(&mut up, "/").unwrap()._address.to_string();
        p.connect_failed(&up);
        let others: Vec<_> = (0..4).map(|_| pick(&p)).collect();
        assert!(others.iter().all(|a| *a != first), "{first} ejected: {others:?}");
        let mut up2 = Upstream::default();
        let second = p.next_peer(&mut up2, "/").unwrap()._address.to_string();
        p.connect_failed(&up2);
        assert_ne!(first, second);
        assert!(!pick(&p).is_empty(), "everything ejected: still try one rather than 502");
    }

    #[test]
    fn with_tls_every_peer_carries_the_name_and_one_shared_ca_and_verifies() {
        let plain = pool("[127.0.0.1:1001]", "").next_peer(&mut Upstream::default(), "/").unwrap();
        assert!(!plain.is_tls() && plain.sni.is_empty() && plain.options.ca.is_none());

        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();
        let p = pool(
            "[127.0.0.1:1001, 127.0.0.1:1002]",
            &format!("origin_tls: {{enabled: true, sni: api.internal, ca_file: {}}}\n", ca.display()),
        );
        let (a, b) = (
            p.next_peer(&mut Upstream::default(), "/").unwrap(),
            p.next_peer(&mut Upstream::default(), "/").unwrap(),
        );
        assert_ne!(a._address, b._address);
        for peer in [&a, &b] {
            assert!(peer.is_tls() && peer.sni == "api.internal");
            assert!(peer.options.verify_cert && peer.options.verify_hostname);
            assert_eq!(peer.options.ca.as_ref().map(|c| c.len()), Some(1));
        }
        let (ca_a, ca_b) = (a.options.ca.as_ref().unwrap(), b.options.ca.as_ref().unwrap());
        assert!(Arc::ptr_eq(ca_a, ca_b), "the CA is loaded once and shared, not per request");
    }

    #[test]
    fn a_success_clears_the_failure_count_and_500_is_not_a_node_failure() {
        let p = pool(
            "[127.0.0.1:1001, 127.0.0.1:1002]",
            "origin_pool: {passive: {max_failures: 2, eject_ms: 60000}}\n",
        );
        let mut up = Upstream::default();
        p.next_peer(&mut up, "/").unwrap();
        let i = up.current.as_ref().unwrap().index;
        p.answered(&up, 503);
        p.answered(&up, 200);
        p.answered(&up, 500);
        p.answered(&up, 503);
        assert_eq!(p.origins[i].ejected_until_ms.load(Ordering::Relaxed), 0, "an answer clears the count");
        p.answered(&up, 503);
        assert!(p.origins[i].ejected_until_ms.load(Ordering::Relaxed) > 0);
    }
}
