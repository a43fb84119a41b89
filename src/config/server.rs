//! The binary's own sections: metrics listener, logging, origin timeouts, and the Pingora
//! server settings passed through.

use serde::Deserialize;

/// `metrics:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// e.g. `127.0.0.1:9091`; serves `/metrics` and `/healthz`. Unset: no listener.
    pub listen: Option<String>,
}

/// `logging:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `error`, `warn`, `info`, `debug` or `trace` (RUST_LOG wins when set).
    pub level: String,
    /// One structured line per request at info level (target `access`).
    pub access_log: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { level: "info".into(), access_log: false }
    }
}

/// `origin_timeouts:`: pass-through timeouts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OriginTimeouts {
    /// Connect timeout; an unreachable origin is a 502.
    pub connect_ms: u64,
    /// Read timeout; a slow origin is a 504.
    pub read_ms: u64,
}

impl Default for OriginTimeouts {
    fn default() -> Self {
        Self { connect_ms: 2_000, read_ms: 30_000 }
    }
}

/// `server:`: the subset of Pingora's `ServerConf` an operator is expected to tune.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Where the pid file goes.
    pub pid_file: String,
    /// The socket a graceful upgrade (`-u`) takes the listeners over from.
    pub upgrade_sock: String,
    /// Pingora's error log file; stderr when unset.
    pub error_log: Option<String>,
    /// How long a draining process keeps serving before it stops accepting work.
    pub grace_period_seconds: u64,
    /// How long in-flight requests get after that.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Idle upstream connections kept per process.
    pub upstream_keepalive_pool_size: usize,
    /// Let idle worker threads steal tasks from busy ones.
    pub work_stealing: bool,
    /// Most threads in the pool that runs file I/O (tokio's blocking pool, per runtime;
    /// tokio's own default is 512). Unset: `threads`, and at least 4. Each thread keeps its
    /// own allocator pages, so a pool that grows with every burst of disk work leaves RSS
    /// higher after each one.
    pub blocking_threads: Option<usize>,
    /// How long an idle file-I/O thread is kept before it exits (tokio's default is 10 s).
    pub blocking_threads_idle_seconds: u64,
}

impl ServerSettings {
    /// `blocking_threads`, or its default for `threads` workers.
    pub fn blocking_threads_for(&self, threads: usize) -> usize {
        self.blocking_threads.unwrap_or(threads.max(4))
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            pid_file: "/tmp/presign-gateway.pid".into(),
            upgrade_sock: "/tmp/presign-gateway-upgrade.sock".into(),
            error_log: None,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 5,
            upstream_keepalive_pool_size: 128,
            work_stealing: true,
            blocking_threads: None,
            blocking_threads_idle_seconds: 600,
        }
    }
}
