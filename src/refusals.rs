//! [`Refusals`]: connections and request bodies the edge ends because the client broke a
//! limit. Each is counted in `/metrics` by reason (`presign_connections_refused_total`), and
//! logged at most once per reason per second with the number of those not logged, so an
//! attacker who breaks limits as fast as the network allows adds one line per reason per
//! second to the log, never one per connection.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

use crate::metrics::Metrics;

/// Why the edge ended a connection or a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Refused at accept: the client's address had `max_connections_per_ip` open.
    PerIpCap,
    /// Refused at accept: the process had `max_connections` open.
    MaxConnections,
    /// Shed at accept while the process was out of file descriptors.
    FdExhausted,
    /// No complete request headers within `header_timeout_secs`.
    HeaderTimeout,
    /// Headers Pingora could not parse (answered 400 by Pingora itself).
    BadRequest,
    /// An upload body whose bytes stopped for `stall_timeout_secs`.
    BodyStalled,
    /// An upload body below `min_bytes_per_sec` on average after its grace period.
    BodyTooSlow,
    /// A TLS handshake that failed (not a deadline: those are `HeaderTimeout`).
    TlsHandshake,
    /// An HTTP/2 connection ended by its frames (rapid reset, CONTINUATION or control floods).
    H2Abuse,
    /// With `limits.proxy_protocol` on: a source not in its `trusted` list (refused at
    /// accept), or a trusted one whose first bytes are not a valid PROXY header.
    ProxyProtocol,
}

impl Reason {
    const ALL: [Reason; 10] = [
        Reason::PerIpCap,
        Reason::MaxConnections,
        Reason::FdExhausted,
        Reason::HeaderTimeout,
        Reason::BadRequest,
        Reason::BodyStalled,
        Reason::BodyTooSlow,
        Reason::TlsHandshake,
        Reason::H2Abuse,
        Reason::ProxyProtocol,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::PerIpCap => "per_ip_cap",
            Reason::MaxConnections => "max_connections",
            Reason::FdExhausted => "fd_exhausted",
            Reason::HeaderTimeout => "header_timeout",
            Reason::BadRequest => "bad_request",
            Reason::BodyStalled => "body_stalled",
            Reason::BodyTooSlow => "body_too_slow",
            Reason::TlsHandshake => "tls_handshake",
            Reason::H2Abuse => "h2_abuse",
            Reason::ProxyProtocol => "proxy_protocol",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One reason's log budget: the second of its last line, and how many were not logged since.
#[derive(Default)]
struct LogSlot {
    /// Seconds since [`epoch`] + 1 of the last line; 0: never logged.
    last: AtomicU64,
    suppressed: AtomicU64,
}

/// The counters and log budgets of every reason; shared by the listener and the routes.
pub struct Refusals {
    counters: Vec<IntCounter>,
    slots: Vec<LogSlot>,
    /// Client connections open now.
    pub open: IntGauge,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_secs() -> u64 {
    epoch().elapsed().as_secs() + 1
}

impl Refusals {
    /// Register the series with `metrics`.
    pub fn new(metrics: &Metrics) -> Arc<Self> {
        let vec = IntCounterVec::new(
            Opts::new(
                "presign_connections_refused_total",
                "Connections and upload bodies ended because the client broke a limit, by reason",
            ),
            &["reason"],
        )
        .expect("static metric definition");
        let counters = Reason::ALL.iter().map(|r| vec.with_label_values(&[r.label()])).collect();
        let open = IntGauge::new("presign_connections_open", "Client connections open now")
            .expect("static metric definition");
        metrics.register(Box::new(vec));
        metrics.register(Box::new(open.clone()));
        Arc::new(Self { counters, slots: Reason::ALL.iter().map(|_| LogSlot::default()).collect(), open })
    }

    /// A standalone set, for a listener without the routes' metrics (and tests).
    pub fn unregistered() -> Arc<Self> {
        Self::new(&Metrics::new())
    }

    /// Count one, and log it unless this reason was logged in the current second.
    pub fn record(&self, reason: Reason, detail: fmt::Arguments<'_>) {
        self.counters[reason.index()].inc();
        let slot = &self.slots[reason.index()];
        let now = now_secs();
        let last = slot.last.load(Ordering::Relaxed);
        if last != now && slot.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            let n = slot.suppressed.swap(0, Ordering::Relaxed);
            log::warn!(target: "edge", "{}: {detail} ({n} more not logged since the last line)", reason.label());
        } else {
            slot.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Log the count of each reason not logged for a second or more (called once a second),
    /// so the last burst of an attack is reported even when nothing follows it.
    pub fn flush(&self) {
        let now = now_secs();
        for (reason, slot) in Reason::ALL.iter().zip(&self.slots) {
            let last = slot.last.load(Ordering::Relaxed);
            if last < now
                && slot.suppressed.load(Ordering::Relaxed) > 0
                && slot.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                let n = slot.suppressed.swap(0, Ordering::Relaxed);
                log::warn!(target: "edge", "{}: {n} more not logged since the last line", reason.label());
            }
        }
    }

    /// The count of one reason (tests).
    pub fn count(&self, reason: Reason) -> u64 {
        self.counters[reason.index()].get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_one_and_logs_one_per_second() {
        let r = Refusals::unregistered();
        for _ in 0..1000 {
            r.record(Reason::HeaderTimeout, format_args!("x"));
        }
        assert_eq!(r.count(Reason::HeaderTimeout), 1000);
        let slot = &r.slots[Reason::HeaderTimeout.index()];
        // One line was logged (two if a second began meanwhile); the rest wait for the next
        // line or the flush.
        assert!(slot.suppressed.load(Ordering::Relaxed) >= 998);
        assert_eq!(r.count(Reason::PerIpCap), 0);
    }
}
