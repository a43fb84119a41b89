//! Upload bodies that arrive too slowly: [`Pacer`] aborts a body whose bytes stop for the
//! stall timeout, or whose average rate since its first read falls below the minimum once
//! the grace period is over. One timer per read, set to whichever of the two would fire
//! first, so a client trickling a byte just before each stall timeout is still caught by
//! the rate.

use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora::proxy::Session;

use crate::config::UploadBodyConfig;
use crate::refusals::Reason;

/// Why a paced read ended the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceError {
    /// A limit was broken ([`Reason::BodyStalled`] or [`Reason::BodyTooSlow`]).
    Slow(Reason),
    /// The client went away or sent a broken body.
    Read,
}

/// The pace of one body.
pub struct Pacer {
    stall: Option<Duration>,
    min_rate: u64,
    grace: Duration,
    started: Instant,
    bytes: u64,
}

impl Pacer {
    pub fn new(cfg: &UploadBodyConfig) -> Self {
        Self {
            stall: (cfg.stall_timeout_secs > 0).then(|| Duration::from_secs(cfg.stall_timeout_secs)),
            min_rate: cfg.min_bytes_per_sec,
            grace: Duration::from_secs(cfg.min_rate_grace_secs),
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// When the average rate would fall below the minimum, from the start of the body.
    fn rate_deadline(&self) -> Option<Duration> {
        if self.min_rate == 0 {
            return None;
        }
        // At t the body must have min_rate * t bytes: it has enough until bytes / min_rate.
        let covered = Duration::from_secs_f64(self.bytes as f64 / self.min_rate as f64);
        Some(covered.max(self.grace))
    }

    /// How long the next read may wait, and which limit that wait stands for.
    fn next_wait(&self) -> Option<(Duration, Reason)> {
        let elapsed = self.started.elapsed();
        let rate = self.rate_deadline().map(|d| (d.saturating_sub(elapsed), Reason::BodyTooSlow));
        let stall = self.stall.map(|s| (s, Reason::BodyStalled));
        match (rate, stall) {
            (Some(r), Some(s)) => Some(if r.0 < s.0 { r } else { s }),
            (r, s) => r.or(s),
        }
    }

    /// The next chunk of the body, or `None` at its end.
    pub async fn read(&mut self, session: &mut Session) -> Result<Option<Bytes>, PaceError> {
        let read = match self.next_wait() {
            Some((wait, reason)) => match tokio::time::timeout(wait, session.read_request_body()).await {
                Ok(r) => r,
                Err(_) => return Err(self.fail(session, reason)),
            },
            None => session.read_request_body().await,
        };
        match read {
            Ok(Some(chunk)) => {
                self.bytes += chunk.len() as u64;
                Ok(Some(chunk))
            }
            Ok(None) => Ok(None),
            Err(_) => Err(PaceError::Read),
        }
    }

    /// A body cut short leaves the rest of itself on the wire: the connection is not reused.
    fn fail(&self, session: &mut Session, reason: Reason) -> PaceError {
        session.set_keepalive(None);
        PaceError::Slow(reason)
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Seconds since the body began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(stall: u64, rate: u64, grace: u64) -> UploadBodyConfig {
        UploadBodyConfig { stall_timeout_secs: stall, min_bytes_per_sec: rate, min_rate_grace_secs: grace }
    }

    #[test]
    fn the_nearer_limit_sets_the_wait() {
        let mut p = Pacer::new(&cfg(30, 1000, 5));
        let (wait, why) = p.next_wait().unwrap();
        assert!(wait <= Duration::from_secs(5) && why == Reason::BodyTooSlow, "{wait:?} {why:?}");
        // 100 kB covers 100 s at 1000 B/s: the stall timeout is nearer.
        p.bytes = 100_000;
        assert_eq!(p.next_wait(), Some((Duration::from_secs(30), Reason::BodyStalled)));
    }

    #[test]
    fn zero_turns_each_limit_off() {
        assert_eq!(Pacer::new(&cfg(0, 0, 5)).next_wait(), None);
        assert_eq!(
            Pacer::new(&cfg(7, 0, 5)).next_wait(),
            Some((Duration::from_secs(7), Reason::BodyStalled))
        );
        assert_eq!(Pacer::new(&cfg(0, 10, 0)).next_wait().map(|w| w.1), Some(Reason::BodyTooSlow));
    }
}
