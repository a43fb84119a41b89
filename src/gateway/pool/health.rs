//! Active health: Pingora's own TCP or HTTP check, run as a background service, and the
//! observer that keeps each origin's flag and `presign_origin_up` gauge in step with it.
//! With TLS to the origins, a check connects as traffic does: a TCP check completes a
//! verified handshake, an HTTP check sends its request over it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::services::background::background_service;
use pingora_load_balancing::health_check::{HealthCheck, HealthObserve, HttpHealthCheck, TcpHealthCheck};
use pingora_load_balancing::selection::RoundRobin;
use pingora_load_balancing::{Backend, LoadBalancer};

use super::tls::OriginTls;
use super::{Origin, OriginHealthService};
use crate::config::{ConfigError, HealthCheckConfig, HealthCheckKind};

/// Keeps the pool's flags in step with the health check, with one short line when an origin
/// goes down or comes back (Pingora's own line dumps the whole peer configuration; main.rs
/// turns that one down to errors).
struct Observer {
    origins: Arc<[Origin]>,
}

#[async_trait]
impl HealthObserve for Observer {
    async fn observe(&self, target: &Backend, healthy: bool) {
        for o in self.origins.iter().filter(|o| o.backend.addr == target.addr) {
            o.healthy.store(healthy, Ordering::Relaxed);
            o.metrics.up.set(i64::from(healthy));
        }
        let state = if healthy { "up" } else { "down" };
        log::warn!("origin {} is {state} (health check)", target.addr);
    }
}

/// The check the config asks for, as a background service over the pool's origins.
pub(super) fn service(
    cfg: &HealthCheckConfig,
    origins: &Arc<[Origin]>,
    addresses: &[String],
    tls: Option<&OriginTls>,
) -> Result<OriginHealthService, ConfigError> {
    let mut lb = LoadBalancer::<RoundRobin>::try_from_iter(addresses.iter().map(String::as_str))
        .map_err(|e| ConfigError::new("origin", e.to_string()))?;
    let timeout = Some(Duration::from_millis(cfg.timeout_ms));
    let observer = Box::new(Observer { origins: origins.clone() });
    let check: Box<dyn HealthCheck + Send + Sync> = match cfg.kind {
        HealthCheckKind::Tcp => {
            let mut hc = TcpHealthCheck::new();
            if let Some(tls) = tls {
                hc.peer_template.sni = tls.sni.clone();
                tls.apply(&mut hc.peer_template.options);
            }
            hc.peer_template.options.connection_timeout = timeout;
            hc.consecutive_failure = cfg.fall;
            hc.consecutive_success = cfg.rise;
            hc.health_changed_callback = Some(observer);
            hc
        }
        HealthCheckKind::Http => {
            let field = |f: &str| format!("origin_pool.health_check.{f}");
            let mut hc = HttpHealthCheck::new(cfg.host.as_deref().unwrap_or("origin"), tls.is_some());
            if let Some(tls) = tls {
                hc.peer_template.sni = tls.sni.clone();
                tls.apply(&mut hc.peer_template.options);
            }
            let mut req = RequestHeader::build(cfg.method.as_str(), cfg.path.as_bytes(), None)
                .map_err(|e| ConfigError::new(field("path"), e.to_string()))?;
            if let Some(host) = &cfg.host {
                req.insert_header("host", host)
                    .map_err(|e| ConfigError::new(field("host"), e.to_string()))?;
            }
            hc.req = req;
            hc.peer_template.options.connection_timeout = timeout;
            hc.peer_template.options.read_timeout = timeout;
            hc.consecutive_failure = cfg.fall;
            hc.consecutive_success = cfg.rise;
            hc.port_override = cfg.port;
            let healthy = cfg.healthy_statuses.clone();
            hc.validator = Some(Box::new(move |resp| {
                let status = resp.status.as_u16();
                if healthy.contains(&status) {
                    Ok(())
                } else {
                    pingora::Error::e_explain(
                        pingora::ErrorType::CustomCode("unhealthy status", status),
                        format!("health check answered {status}"),
                    )
                }
            }));
            hc.health_changed_callback = Some(observer);
            Box::new(hc)
        }
    };
    lb.set_health_check(check);
    lb.health_check_frequency = Some(Duration::from_millis(cfg.interval_ms));
    Ok(background_service("origin health check", lb))
}
