//! The gateway's clock: the system's, shifted by `PRESIGN_GATEWAY_CLOCK_OFFSET_MS` when set.
//!
//! Presigned URLs carry their signing time, so a fleet depends on its clocks agreeing. The
//! offset lets a test (or an operator reproducing a report) run one gateway ahead of or
//! behind the others without touching the system clock. It is read once, at start-up.

use std::sync::OnceLock;

use time::{Duration, OffsetDateTime};

use crate::config::ConfigError;

pub const OFFSET_ENV: &str = "PRESIGN_GATEWAY_CLOCK_OFFSET_MS";

/// At most a day either way: anything more is a typo, not a clock.
const MAX_OFFSET_MS: i64 = 86_400_000;

static OFFSET: OnceLock<Duration> = OnceLock::new();

fn parse(v: Option<String>) -> Result<Duration, ConfigError> {
    let Some(v) = v else { return Ok(Duration::ZERO) };
    match v.trim().parse::<i64>() {
        Ok(ms) if ms.abs() <= MAX_OFFSET_MS => Ok(Duration::milliseconds(ms)),
        _ => Err(ConfigError::new(OFFSET_ENV, format!("{v:?} is not a whole number of ms within a day"))),
    }
}

/// Read and check the offset; the binary calls this at start-up so a bad value is an error
/// naming the variable rather than a silent zero.
pub fn init() -> Result<Duration, ConfigError> {
    if let Some(d) = OFFSET.get() {
        return Ok(*d);
    }
    let d = parse(std::env::var(OFFSET_ENV).ok())?;
    Ok(*OFFSET.get_or_init(|| d))
}

/// Now, on the gateway's clock.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    match OFFSET.get() {
        Some(d) if !d.is_zero() => now.checked_add(*d).unwrap_or(now),
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_checked() {
        assert_eq!(parse(None).unwrap(), Duration::ZERO);
        assert_eq!(parse(Some("-2500".into())).unwrap(), Duration::milliseconds(-2500));
        assert_eq!(parse(Some("5s".into())).unwrap_err().field, OFFSET_ENV);
        assert!(parse(Some("86400001".into())).is_err());
    }
}
