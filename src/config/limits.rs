//! `limits:` (the binary's part): how many connections the edge holds and how long a client
//! may take to say what it wants, and `limits.proxy_protocol:` (whose address counts as the
//! client's behind a load balancer); `upload_body:` (the routes' part): how slowly an upload
//! body may arrive. Safe with no config; 0 turns any one of them off. The reasons for each
//! default are in README.md, "Running it on the internet".

use ipnet::IpNet;
use serde::Deserialize;

use super::ConfigError;

/// Longest a limit in seconds may be: a day. Anything longer is a typo, not a policy.
const MAX_SECS: u64 = 86_400;

/// `limits:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Seconds a client has to send complete request headers: from the connection's start,
    /// and on a keep-alive connection from the first byte of the next request.
    pub header_timeout_secs: u64,
    /// Seconds an idle keep-alive connection (no byte of a next request) stays open.
    pub keepalive_timeout_secs: u64,
    /// Client connections open at once. Unset: half the file descriptors left after a
    /// reserve (see [`auto_max_connections`]), so that each connection may also hold an
    /// upstream socket or a file.
    pub max_connections: Option<u64>,
    /// Client connections open at once from one IP address, refused at accept (behind the
    /// PROXY protocol: once the header has named the client).
    pub max_connections_per_ip: u64,
    /// The PROXY protocol on the gateway's listeners; off by default.
    pub proxy_protocol: ProxyProtocolConfig,
}

/// `limits.proxy_protocol:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyProtocolConfig {
    /// Every connection to the listeners (plain and TLS) begins with a PROXY protocol header
    /// (v1 or v2) from a load balancer; the client it names is the connection's client (its
    /// per-IP cap, the logs). A connection without a valid header is refused.
    pub enabled: bool,
    /// The load balancers: networks (`10.0.0.0/8`) or addresses (`10.0.3.4`). With `enabled`,
    /// a connection from any other address is refused at accept.
    pub trusted: Vec<String>,
}

impl ProxyProtocolConfig {
    /// `trusted` parsed (an address is a network of one); an error names the entry at fault.
    pub fn networks(&self) -> Result<Vec<IpNet>, ConfigError> {
        let parse = |(i, n): (usize, &String)| {
            n.parse::<IpNet>()
                .or_else(|e| n.parse::<std::net::IpAddr>().map(IpNet::from).map_err(|_| e))
                .map_err(|e| {
                    ConfigError::new(
                        format!("limits.proxy_protocol.trusted[{i}]"),
                        format!("{n:?}: {e} (a network like 10.0.0.0/8, or an address)"),
                    )
                })
        };
        self.trusted.iter().enumerate().map(parse).collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.networks()?;
        if self.enabled && self.trusted.is_empty() {
            return Err(ConfigError::new(
                "limits.proxy_protocol.trusted",
                "must list the load balancers' networks when the PROXY protocol is enabled (a connection from anywhere else is refused)",
            ));
        }
        Ok(())
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            keepalive_timeout_secs: 60,
            max_connections: None,
            max_connections_per_ip: 512,
            proxy_protocol: ProxyProtocolConfig::default(),
        }
    }
}

/// Descriptors kept out of the connection budget: listeners, the runtime's epoll and
/// eventfds, log files, the key file, DNS, the health checker.
pub const RESERVED_FDS: u64 = 64;

/// The default global cap for a process allowed `nofile` descriptors: each client connection
/// may hold one more descriptor (an upstream socket, or an upload's temp file), so half of
/// what the reserve leaves.
pub fn auto_max_connections(nofile: u64) -> u64 {
    (nofile.saturating_sub(RESERVED_FDS) / 2).max(1)
}

impl LimitsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_secs("limits.header_timeout_secs", self.header_timeout_secs)?;
        check_secs("limits.keepalive_timeout_secs", self.keepalive_timeout_secs)?;
        self.proxy_protocol.validate()
    }
}

/// `upload_body:`: bodies the upload routes read (PUTs, parts, forms).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadBodyConfig {
    /// Seconds without a body byte before the upload is aborted (also the read timeout of
    /// bodies passed through to the origin).
    pub stall_timeout_secs: u64,
    /// Minimum average rate of an upload body, in bytes per second, once the grace period
    /// is over.
    pub min_bytes_per_sec: u64,
    /// Seconds from the start of the body before the minimum rate applies.
    pub min_rate_grace_secs: u64,
}

impl Default for UploadBodyConfig {
    fn default() -> Self {
        Self { stall_timeout_secs: 30, min_bytes_per_sec: 4096, min_rate_grace_secs: 30 }
    }
}

impl UploadBodyConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_secs("upload_body.stall_timeout_secs", self.stall_timeout_secs)?;
        check_secs("upload_body.min_rate_grace_secs", self.min_rate_grace_secs)?;
        if self.min_bytes_per_sec > 1 << 30 {
            return Err(ConfigError::new("upload_body.min_bytes_per_sec", "must be at most 1 GiB/s"));
        }
        Ok(())
    }
}

fn check_secs(field: &str, v: u64) -> Result<(), ConfigError> {
    if v > MAX_SECS {
        return Err(ConfigError::new(field, format!("must be at most {MAX_SECS} seconds (0 turns it off)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Config;

    const MIN: &str = "listen: 127.0.0.1:8080\nstorage:\n  local:\n    root: /tmp/x\n";

    #[test]
    fn defaults_are_safe_and_zero_turns_each_off() {
        let c = Config::from_yaml(MIN).expect("valid");
        let l = &c.limits;
        assert_eq!(
            (l.header_timeout_secs, l.keepalive_timeout_secs, l.max_connections_per_ip),
            (10, 60, 512)
        );
        assert_eq!(l.max_connections, None);
        let b = c.routes.upload_body;
        assert_eq!((b.stall_timeout_secs, b.min_bytes_per_sec, b.min_rate_grace_secs), (30, 4096, 30));
        let off = format!(
            "{MIN}limits: {{header_timeout_secs: 0, keepalive_timeout_secs: 0, max_connections: 0, max_connections_per_ip: 0}}\nupload_body: {{stall_timeout_secs: 0, min_bytes_per_sec: 0}}\n"
        );
        let c = Config::from_yaml(&off).expect("0 is allowed everywhere");
        assert_eq!(c.limits.max_connections, Some(0));
    }

    #[test]
    fn bad_limits_name_their_field() {
        let field = |y: &str| Config::from_yaml(&format!("{MIN}{y}")).unwrap_err().field;
        assert_eq!(field("limits: {header_timeout_secs: 86401}\n"), "limits.header_timeout_secs");
        assert_eq!(field("limits: {keepalive_timeout_secs: 99999999}\n"), "limits.keepalive_timeout_secs");
        assert_eq!(field("upload_body: {stall_timeout_secs: 86401}\n"), "upload_body.stall_timeout_secs");
        assert_eq!(field("upload_body: {min_rate_grace_secs: 86401}\n"), "upload_body.min_rate_grace_secs");
        assert_eq!(field("upload_body: {min_bytes_per_sec: 2000000000}\n"), "upload_body.min_bytes_per_sec");
        let e = Config::from_yaml(&format!("{MIN}limits: {{header_timeout: 5}}\n")).unwrap_err();
        assert!(e.to_string().contains("header_timeout"), "{e}");
    }

    #[test]
    fn proxy_protocol_is_off_by_default_and_needs_its_trusted_sources() {
        let c = Config::from_yaml(MIN).expect("valid");
        assert!(!c.limits.proxy_protocol.enabled && c.limits.proxy_protocol.trusted.is_empty());
        let y = format!(
            "{MIN}limits:\n  proxy_protocol:\n    enabled: true\n    trusted: [10.0.0.0/8, 192.0.2.10, '2001:db8::/32']\n"
        );
        let c = Config::from_yaml(&y).expect("valid");
        let nets = c.limits.proxy_protocol.networks().unwrap();
        assert_eq!(nets[1], "192.0.2.10/32".parse::<IpNet>().unwrap());
        assert_eq!(nets.len(), 3);
        let field = |y: &str| Config::from_yaml(&format!("{MIN}{y}")).unwrap_err().field;
        assert_eq!(field("limits: {proxy_protocol: {enabled: true}}\n"), "limits.proxy_protocol.trusted");
        assert_eq!(
            field("limits: {proxy_protocol: {trusted: [10.0.0.0/8, 10.0.0.0/33]}}\n"),
            "limits.proxy_protocol.trusted[1]"
        );
        assert_eq!(
            field("limits: {proxy_protocol: {trusted: [lb.internal]}}\n"),
            "limits.proxy_protocol.trusted[0]"
        );
        let e =
            Config::from_yaml(&format!("{MIN}limits: {{proxy_protocol: {{enabled: true, trust: []}}}}\n"))
                .unwrap_err();
        assert!(e.to_string().contains("trust"), "{e}");
    }

    #[test]
    fn auto_cap_leaves_a_descriptor_per_connection_and_the_reserve() {
        assert_eq!(auto_max_connections(2048), 992);
        assert_eq!(auto_max_connections(1_048_576), 524_256);
        assert_eq!(auto_max_connections(10), 1);
    }
}
