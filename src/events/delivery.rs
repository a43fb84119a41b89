//! [`EventDelivery`]: the worker that hands the outbox's events to the receiver.
//!
//! One task. It wakes when an event is recorded, when the earliest retry is due, and when an
//! attempt finishes; each time it takes the due events not already in flight (at most
//! `concurrency` in flight), POSTs each signed, and writes the outcomes back in one
//! transaction: a 2xx removes the event, anything else schedules the next attempt after an
//! exponential backoff with jitter, and the last allowed attempt parks it in `dead`. At
//! start it resumes whatever the outbox holds, which is how events recorded by a process
//! that was killed still arrive.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use rand::Rng;
use tokio::task::JoinSet;

use super::outbox::{Applied, Outcome};
use super::signature::{sign, EVENT_ID_HEADER, SIGNATURE_HEADER};
use super::{now_ms, Events};

/// The outbox is scanned at least this often, whatever the schedule says.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// Retry of a failed outbox read (e.g. while an upgrade's old process still holds it).
const OUTBOX_RETRY: Duration = Duration::from_millis(500);
/// How long written-back outcomes may stay without an fsync before the worker syncs them
/// (a record's commit usually does it sooner).
const SYNC_AFTER: Duration = Duration::from_millis(200);

/// One finished attempt: the event id, its failures before this attempt, and the result.
type Attempt = (String, u32, Result<(), String>);

/// The delivery worker, run as a Pingora background service.
pub struct EventDelivery(pub(crate) Arc<Events>);

/// The delay before attempt `failures + 1`: `initial * 2^(failures-1)` capped at `max`, then
/// "equal jitter" (half fixed, half random), so retries of many events spread out but none
/// comes back almost at once.
pub fn backoff_ms(failures: u32, initial_ms: u64, max_ms: u64, rng: &mut impl Rng) -> u64 {
    let shift = failures.saturating_sub(1).min(63);
    let base = initial_ms.saturating_mul(1u64 << shift).min(max_ms);
    let half = base / 2;
    half + rng.gen_range(0..=base - half)
}

#[async_trait]
impl BackgroundService for EventDelivery {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let ev = &self.0;
        ev.refresh_gauges();
        let mut in_flight: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<Attempt> = JoinSet::new();
        // Since when outcomes were written back without an fsync.
        let mut unsynced: Option<tokio::time::Instant> = None;
        loop {
            if unsynced.is_some_and(|t| t.elapsed() >= SYNC_AFTER) {
                let outbox = ev.outbox.clone();
                match tokio::task::spawn_blocking(move || outbox.sync()).await {
                    Ok(Ok(())) => unsynced = None,
                    Ok(Err(e)) => log::warn!("events: {e}"),
                    Err(e) => log::warn!("events: sync: {e}"),
                }
            }
            let now = now_ms();
            let free = ev.cfg.concurrency.saturating_sub(in_flight.len());
            let mut wake = Some(MAX_IDLE);
            if free > 0 {
                match ev.outbox.due(now, free, &in_flight) {
                    Ok((due, next)) => {
                        for (id, record) in due {
                            in_flight.insert(id.clone());
                            tasks.spawn(send(ev.clone(), id, record.attempts, record.body));
                        }
                        wake = next.map(|at| Duration::from_millis(at.saturating_sub(now)).min(MAX_IDLE));
                        if wake.is_none() {
                            wake = Some(MAX_IDLE);
                        }
                    }
                    Err(e) => {
                        log::warn!("events: {e}");
                        wake = Some(OUTBOX_RETRY);
                    }
                }
            }
            let mut wake = wake.unwrap_or(MAX_IDLE);
            if let Some(t) = unsynced {
                wake = wake.min(SYNC_AFTER.saturating_sub(t.elapsed()));
            }
            let sleep = tokio::time::sleep(wake);
            tokio::select! {
                _ = ev.notify.notified() => {}
                _ = sleep => {}
                Some(first) = tasks.join_next(), if !tasks.is_empty() => {
                    let mut finished = vec![first];
                    while let Some(more) = tasks.try_join_next() {
                        finished.push(more);
                    }
                    let outcomes = outcomes(ev, finished, &mut in_flight);
                    if finish(ev, outcomes).await == Some(false) && unsynced.is_none() {
                        unsynced = Some(tokio::time::Instant::now());
                    }
                }
                _ = shutdown.changed() => {
                    // Attempts still in flight are not written back: they are sent again
                    // by the next process (the receiver dedupes by id).
                    log::info!("events: delivery stops with {} in flight", in_flight.len());
                    return;
                }
            }
        }
    }
}

/// The outcome of each finished attempt; a panicked attempt leaves its event pending.
fn outcomes(
    ev: &Events,
    finished: Vec<Result<Attempt, tokio::task::JoinError>>,
    in_flight: &mut HashSet<String>,
) -> Vec<Outcome> {
    let now = now_ms();
    let mut rng = rand::thread_rng();
    let mut out = Vec::with_capacity(finished.len());
    for f in finished {
        let Ok((id, attempts, result)) = f else {
            log::error!("events: a delivery task failed; its event stays pending until restart");
            continue;
        };
        in_flight.remove(&id);
        out.push(match result {
            Ok(()) => Outcome::Delivered { id },
            Err(error) => {
                let delay =
                    backoff_ms(attempts + 1, ev.cfg.backoff_initial_ms, ev.cfg.backoff_max_ms, &mut rng);
                log::debug!("events: {id} attempt {} failed: {error}", attempts + 1);
                Outcome::Failed {
                    id,
                    error,
                    next_at_ms: now + delay,
                    max_attempts: ev.cfg.max_attempts,
                    now_ms: now,
                }
            }
        });
    }
    out
}

/// Write the outcomes back (off the runtime thread: it may fsync) and count them; whether
/// the write is durable yet, `None` when nothing was written.
async fn finish(ev: &Arc<Events>, outcomes: Vec<Outcome>) -> Option<bool> {
    if outcomes.is_empty() {
        return None;
    }
    let outbox = ev.outbox.clone();
    let applied = tokio::task::spawn_blocking(move || outbox.apply(&outcomes)).await;
    match applied {
        Ok(Ok((a, durable))) => {
            ev.count_applied(&a);
            Some(durable)
        }
        Ok(Err(e)) => {
            log::error!("events: writing delivery outcomes: {e}; they are retried");
            None
        }
        Err(e) => {
            log::error!("events: writing delivery outcomes: {e}");
            None
        }
    }
}

impl Events {
    fn count_applied(&self, a: &Applied) {
        let m = &self.metrics;
        m.events_delivered.inc_by(a.delivered);
        m.events_attempt_failures.inc_by(a.failed);
        m.events_dead_lettered.inc_by(a.dead_lettered);
        if a.dead_lettered > 0 {
            log::warn!(
                "events: {} event(s) dead-lettered after {} attempts",
                a.dead_lettered,
                self.cfg.max_attempts
            );
        }
        self.set_gauges(a.counts);
    }
}

/// One attempt: the body signed now, POSTed with a deadline; a 2xx is success.
async fn send(ev: Arc<Events>, id: String, attempts: u32, body: String) -> Attempt {
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = sign(&ev.secret, t, body.as_bytes());
    let result = ev
        .client
        .post(&ev.cfg.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(EVENT_ID_HEADER, &id)
        .timeout(Duration::from_millis(ev.cfg.timeout_ms))
        .body(body)
        .send()
        .await;
    let result = match result {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
        Err(e) if e.is_timeout() => Err(format!("timed out after {} ms", ev.cfg.timeout_ms)),
        Err(e) => Err(format!("unreachable: {e}")),
    };
    (id, attempts, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_bounded_jitter() {
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let d1 = backoff_ms(1, 500, 60_000, &mut rng);
            assert!((250..=500).contains(&d1), "{d1}");
            let d3 = backoff_ms(3, 500, 60_000, &mut rng);
            assert!((1000..=2000).contains(&d3), "{d3}");
            let d40 = backoff_ms(40, 500, 60_000, &mut rng);
            assert!((30_000..=60_000).contains(&d40), "{d40}");
            assert!(backoff_ms(u32::MAX, u64::MAX, u64::MAX, &mut rng) >= u64::MAX / 2);
        }
    }
}
