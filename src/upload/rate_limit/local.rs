//! The per-process limiter: one-second windows per key id, counted in a count-min estimator
//! (`pingora-limits`: no lock, no per-key allocation).
//!
//! The window is ours, not `pingora_limits::rate::Rate`: in 0.9.1 a thread that read the clock
//! just before another thread reset the window computes `now - last_reset` below zero. That
//! panics in a debug build, and in a release build wraps to a huge interval that resets the
//! window again, so a key gets a fresh allowance mid-second.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use pingora_limits::estimator::Estimator;

/// The same sketch shape as `Rate::new`: 4 hashes over 1,024 counters.
const HASHES: usize = 4;
const SLOTS: usize = 1024;
const WINDOW_MS: u64 = 1000;

pub struct LocalLimiter {
    window: Window,
    default_per_sec: u32,
}

impl LocalLimiter {
    /// `default_per_sec` 0 means unlimited unless a key sets its own limit.
    pub fn new(default_per_sec: u32) -> Self {
        Self { window: Window::new(WINDOW_MS), default_per_sec }
    }

    /// Count one request for `key_id`, whose own limit (from its config entry or the
    /// application's answer) overrides the default; false when it is over its limit.
    pub fn admit(&self, key_id: &str, own_limit: Option<u32>) -> bool {
        let limit = own_limit.unwrap_or(self.default_per_sec);
        if limit == 0 {
            return true;
        }
        self.window.observe(&key_id) <= limit as isize
    }
}

/// Counts per key in the current fixed window. Two sketches: the one being counted and the one
/// cleared for the next window, so a reset never clears the counts other threads are adding to.
struct Window {
    sketches: [Estimator; 2],
    current: AtomicUsize,
    start: Instant,
    length_ms: u64,
    /// Milliseconds since `start` at which the current window began.
    began_ms: AtomicU64,
}

impl Window {
    fn new(length_ms: u64) -> Self {
        Self {
            sketches: [Estimator::new(HASHES, SLOTS), Estimator::new(HASHES, SLOTS)],
            current: AtomicUsize::new(0),
            start: Instant::now(),
            length_ms,
            began_ms: AtomicU64::new(0),
        }
    }

    /// Counts one event for `key`; returns the events counted for it in this window so far.
    fn observe<T: Hash>(&self, key: &T) -> isize {
        let now_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.observe_at(key, now_ms)
    }

    fn observe_at<T: Hash>(&self, key: &T, now_ms: u64) -> isize {
        let began = self.began_ms.load(Ordering::Acquire);
        // A clock read before another thread's reset is earlier than the window it began:
        // that is no time elapsed, not a wrap-around.
        if now_ms.saturating_sub(began) >= self.length_ms
            && self.began_ms.compare_exchange(began, now_ms, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            let next = self.current.load(Ordering::Acquire) ^ 1;
            self.sketches[next].reset();
            self.current.store(next, Ordering::Release);
        }
        self.sketches[self.current.load(Ordering::Acquire)].incr(key, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key() {
        let rl = LocalLimiter::new(3);
        assert_eq!((0..10).filter(|_| rl.admit("a", None)).count(), 3);
        assert_eq!((0..10).filter(|_| rl.admit("b", None)).count(), 3, "keys are independent");
        assert_eq!((0..10).filter(|_| rl.admit("vip", Some(5))).count(), 5);
        assert_eq!((0..10).filter(|_| rl.admit("free", Some(0))).count(), 10, "0 = unlimited");
    }

    #[test]
    fn a_new_window_starts_from_zero() {
        let w = Window::new(1000);
        assert_eq!(w.observe_at(&"k", 10), 1);
        assert_eq!(w.observe_at(&"k", 999), 2);
        assert_eq!(w.observe_at(&"k", 1000), 1, "the window that began at 0 ended at 1000");
        assert_eq!(w.observe_at(&"k", 1999), 2);
        assert_eq!(w.observe_at(&"k", 5000), 1, "windows with no events are skipped");
    }

    /// The race in pingora-limits 0.9.1: thread A reads the clock (1499), thread B reads it
    /// (1500) and resets the window, then A compares its older reading with B's reset.
    #[test]
    fn a_clock_read_from_before_a_reset_neither_panics_nor_resets_again() {
        let w = Window::new(1000);
        for _ in 0..5 {
            w.observe_at(&"k", 100);
        }
        assert_eq!(w.observe_at(&"k", 1500), 1, "B resets");
        assert_eq!(w.observe_at(&"k", 1499), 2, "A counts in B's window, no second reset");
        assert_eq!(w.observe_at(&"k", 0), 3, "a reading far behind is still no reset");
    }

    #[test]
    fn threads_counting_across_resets_never_panic_and_never_overcount() {
        let w = std::sync::Arc::new(Window::new(1));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let w = w.clone();
                std::thread::spawn(move || (0..200_000).map(|_| w.observe(&"k")).max())
            })
            .collect();
        for h in handles {
            let max = h.join().expect("a counting thread panicked").unwrap_or(0);
            assert!((1..=800_000).contains(&max), "count {max}");
        }
    }
}
