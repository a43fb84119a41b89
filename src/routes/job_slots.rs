//! [`JobSlots`]: a cap on concurrent jobs per API key (from-url fetches), released when the
//! job's [`Slot`] is dropped, whatever way the job ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Concurrent jobs per key id, at most `max_per_key` each.
pub(crate) struct JobSlots {
    max_per_key: usize,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

/// Holds one slot for a key until dropped.
pub(crate) struct Slot {
    key_id: String,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

impl JobSlots {
    pub fn new(max_per_key: usize) -> Self {
        Self { max_per_key, in_flight: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// A slot for `key_id`, or `None` when it already runs `max_per_key` jobs.
    pub fn acquire(&self, key_id: &str) -> Option<Slot> {
        let mut m = self.in_flight.lock().ok()?;
        let n = m.entry(key_id.to_string()).or_insert(0);
        if *n >= self.max_per_key {
            return None;
        }
        *n += 1;
        Some(Slot { key_id: key_id.to_string(), in_flight: self.in_flight.clone() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.in_flight.lock() {
            if let Some(n) = m.get_mut(&self.key_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.key_id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_per_key_and_released_on_drop() {
        let slots = JobSlots::new(2);
        let a1 = slots.acquire("a").unwrap();
        let _a2 = slots.acquire("a").unwrap();
        assert!(slots.acquire("a").is_none());
        assert!(slots.acquire("b").is_some());
        drop(a1);
        assert!(slots.acquire("a").is_some());
    }
}
