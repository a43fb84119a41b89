//! `events:`: where `upload.completed` events go, and how hard the gateway tries. Absent:
//! no events, and nothing else changes.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// `events:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// The application's receiver, e.g. `http://127.0.0.1:9000/hooks/uploads`.
    pub url: String,
    /// The outbox file (a redb database), created when missing. Events are written here
    /// before the upload is acknowledged and stay until the receiver takes them.
    pub outbox: PathBuf,
    /// The environment variable holding the signing secret; the gateway refuses to start
    /// when it is unset or shorter than [`MIN_EVENTS_SECRET_LEN`].
    #[serde(default = "default_secret_env")]
    pub secret_env: String,
    /// Deliveries tried before an event is dead-lettered.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay; each later one doubles, up to `backoff_max_ms`, with jitter.
    #[serde(default = "default_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Limit for one delivery (connect, send, answer).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Deliveries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

/// The shortest signing secret accepted (128 bits of hex).
pub const MIN_EVENTS_SECRET_LEN: usize = 32;

fn default_secret_env() -> String {
    "PRESIGN_GATEWAY_EVENTS_SECRET".into()
}
fn default_max_attempts() -> u32 {
    12
}
fn default_backoff_initial_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    60_000
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_concurrency() -> usize {
    8
}

impl EventsConfig {
    /// Every value the file alone can show to be wrong; each error names its field.
    pub fn check(&self) -> Result<(), ConfigError> {
        let u = url::Url::parse(&self.url)
            .map_err(|e| ConfigError::new("events.url", format!("{:?}: {e}", self.url)))?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(ConfigError::new("events.url", "must be an http(s) URL with a host"));
        }
        if self.outbox.as_os_str().is_empty() {
            return Err(ConfigError::new("events.outbox", "must not be empty"));
        }
        if self.secret_env.is_empty() {
            return Err(ConfigError::new("events.secret_env", "must name an environment variable"));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(ConfigError::new("events.max_attempts", "must be 1..=100"));
        }
        if self.backoff_initial_ms == 0 {
            return Err(ConfigError::new("events.backoff_initial_ms", "must be at least 1 ms"));
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            return Err(ConfigError::new("events.backoff_max_ms", "must be at least backoff_initial_ms"));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new("events.timeout_ms", "must be at least 1 ms"));
        }
        if !(1..=256).contains(&self.concurrency) {
            return Err(ConfigError::new("events.concurrency", "must be 1..=256"));
        }
        Ok(())
    }

    /// The signing secret from the environment (startup and `-t`).
    pub fn secret(&self) -> Result<String, ConfigError> {
        self.secret_from(std::env::var(&self.secret_env).ok())
    }

    fn secret_from(&self, value: Option<String>) -> Result<String, ConfigError> {
        let value = value.ok_or_else(|| {
            ConfigError::new(
                "events.secret_env",
                format!("environment variable {} is not set (or not UTF-8)", self.secret_env),
            )
        })?;
        if value.len() < MIN_EVENTS_SECRET_LEN {
            return Err(ConfigError::new(
                "events.secret_env",
                format!(
                    "{} is only {} characters long; it must be at least {MIN_EVENTS_SECRET_LEN} \
                     (e.g. `openssl rand -hex 32`)",
                    self.secret_env,
                    value.len()
                ),
            ));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const MIN: &str = "listen: 127.0.0.1:8080\nstorage:\n  local:\n    root: /tmp/x\n";

    fn with_events(body: &str) -> String {
        format!("{MIN}events:\n  url: http://127.0.0.1:9000/hooks/uploads\n  outbox: /tmp/o.redb\n{body}")
    }

    #[test]
    fn absent_is_off_and_present_takes_the_defaults() {
        assert!(Config::from_yaml(MIN).unwrap().routes.events.is_none());
        let e = Config::from_yaml(&with_events("")).unwrap().routes.events.unwrap();
        assert_eq!((e.max_attempts, e.backoff_initial_ms, e.backoff_max_ms), (12, 500, 60_000));
        assert_eq!(
            (e.timeout_ms, e.concurrency, e.secret_env.as_str()),
            (5000, 8, "PRESIGN_GATEWAY_EVENTS_SECRET")
        );
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let cases = [
            ("", "url: ftp://x", "events.url"),
            ("", "url: nope", "events.url"),
            ("  max_attempts: 0\n", "", "events.max_attempts"),
            ("  backoff_initial_ms: 0\n", "", "events.backoff_initial_ms"),
            ("  backoff_initial_ms: 900\n  backoff_max_ms: 800\n", "", "events.backoff_max_ms"),
            ("  timeout_ms: 0\n", "", "events.timeout_ms"),
            ("  concurrency: 0\n", "", "events.concurrency"),
            ("  secret_env: ''\n", "", "events.secret_env"),
        ];
        for (extra, url, field) in cases {
            let mut y = with_events(extra);
            if !url.is_empty() {
                y = y.replace("url: http://127.0.0.1:9000/hooks/uploads", url);
            }
            assert_eq!(Config::from_yaml(&y).unwrap_err().field, field, "{extra}{url}");
        }
        let e = Config::from_yaml(&with_events("  retries: 3\n")).unwrap_err();
        assert!(e.to_string().contains("retries"), "unknown keys are refused: {e}");
    }

    #[test]
    fn a_short_or_missing_secret_is_refused() {
        let e = Config::from_yaml(&with_events("  secret_env: PRESIGN_TEST_UNSET_SECRET_VAR\n"))
            .unwrap()
            .routes
            .events
            .unwrap();
        assert_eq!(e.secret().unwrap_err().field, "events.secret_env");
        assert!(e.secret_from(Some("short".into())).unwrap_err().message.contains("at least 32"));
        assert!(e.secret_from(Some("s".repeat(32))).is_ok());
    }
}
