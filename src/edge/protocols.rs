//! [`Protocols`]: requests counted by the HTTP version and transport they came over
//! (`presign_downstream_requests_total{protocol}`), so an operator sees what share of the
//! traffic HTTP/2 and TLS carry.

use pingora::proxy::Session;
use prometheus::{IntCounter, IntCounterVec, Opts};

use crate::metrics::Metrics;

pub struct Protocols {
    http1: IntCounter,
    https1: IntCounter,
    h2: IntCounter,
}

impl Protocols {
    pub fn new(metrics: &Metrics) -> Self {
        let vec = IntCounterVec::new(
            Opts::new(
                "presign_downstream_requests_total",
                "Client requests by protocol: http1 (plain), https1 (HTTP/1.1 over TLS), h2",
            ),
            &["protocol"],
        )
        .expect("static metric definition");
        metrics.register(Box::new(vec.clone()));
        // Resolved once: a request costs one atomic add, no label lookup.
        let series = |p: &str| vec.with_label_values(&[p]);
        Self { http1: series("http1"), https1: series("https1"), h2: series("h2") }
    }

    pub fn count(&self, session: &Session) {
        let s = session.as_downstream();
        if s.is_http2() {
            self.h2.inc();
        } else if s.digest().is_some_and(|d| d.ssl_digest.is_some()) {
            self.https1.inc();
        } else {
            self.http1.inc();
        }
    }
}
