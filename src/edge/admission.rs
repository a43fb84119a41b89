//! [`Admission`]: the global and per-IP connection caps, decided at accept from the peer
//! address alone, before any TLS or HTTP work. A [`Slot`] is held for the connection's life
//! and gives its place back on drop.
//!
//! Behind the PROXY protocol the client's address is known only once its header is read, in
//! the connection's task: the slot is then taken in two steps, the global place at accept
//! ([`Admission::admit_any`]) and the per-IP one for the address the header names
//! ([`Slot::hold_ip`]). Both are given back by the same drop.
//!
//! The per-IP table is sharded by address so that accepts on different threads rarely meet
//! on one lock; it holds only addresses with a connection open, so its size is bounded by
//! the global cap. std's SipHash keeps an attacker who picks addresses from crowding one
//! bucket.

use std::collections::hash_map::{Entry, HashMap, RandomState};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::refusals::Reason;

const SHARDS: usize = 16;

pub struct Admission {
    /// 0: no global cap.
    max_total: u64,
    /// 0: no per-IP cap.
    max_per_ip: u32,
    total: AtomicU64,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<IpAddr, u32>>>,
}

/// One admitted connection's place under the caps.
pub struct Slot {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
}

impl Admission {
    pub fn new(max_total: u64, max_per_ip: u64) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip: u32::try_from(max_per_ip).unwrap_or(u32::MAX),
            total: AtomicU64::new(0),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    fn shard(&self, ip: &IpAddr) -> &Mutex<HashMap<IpAddr, u32>> {
        &self.shards[(self.hasher.hash_one(ip) as usize) % SHARDS]
    }

    /// A place for a connection from `ip`, or the cap it would break.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Reason> {
        let mut slot = self.admit_any()?;
        // Refused: dropping the slot gives its global place back.
        slot.hold_ip(ip)?;
        Ok(slot)
    }

    /// A place under the global cap alone, for a connection whose client is not known yet.
    pub fn admit_any(self: &Arc<Self>) -> Result<Slot, Reason> {
        let total = self.total.fetch_add(1, Ordering::Relaxed);
        if self.max_total > 0 && total >= self.max_total {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return Err(Reason::MaxConnections);
        }
        Ok(Slot { admission: self.clone(), ip: None })
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Connections open now from `ip` (tests).
    pub fn open_from(&self, ip: IpAddr) -> u32 {
        let shard = self.shard(&ip).lock().unwrap_or_else(|p| p.into_inner());
        shard.get(&ip).copied().unwrap_or(0)
    }
}

impl Slot {
    /// Count this connection under `ip`'s cap too, or say it is full (the slot keeps only its
    /// global place). A slot counts under one address: a second call is refused.
    pub fn hold_ip(&mut self, ip: IpAddr) -> Result<(), Reason> {
        let a = &self.admission;
        if a.max_per_ip == 0 {
            return Ok(());
        }
        if self.ip.is_some() {
            return Err(Reason::PerIpCap);
        }
        // A poisoned shard only means another accept panicked mid-update; its counts are
        // still the best there is.
        let mut shard = a.shard(&ip).lock().unwrap_or_else(|p| p.into_inner());
        let n = shard.entry(ip).or_insert(0);
        if *n >= a.max_per_ip {
            return Err(Reason::PerIpCap);
        }
        *n += 1;
        drop(shard);
        self.ip = Some(ip);
        Ok(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let a = &self.admission;
        if let Some(ip) = self.ip {
            let mut shard = a.shard(&ip).lock().unwrap_or_else(|p| p.into_inner());
            if let Entry::Occupied(mut e) = shard.entry(ip) {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
        a.total.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_global_caps_hold_and_give_back() {
        let a = Admission::new(3, 2);
        let x: IpAddr = "127.0.0.2".parse().unwrap();
        let y: IpAddr = "127.0.0.1".parse().unwrap();
        let s1 = a.admit(x).unwrap();
        let _s2 = a.admit(x).unwrap();
        assert_eq!(a.admit(x).err(), Some(Reason::PerIpCap));
        let _s3 = a.admit(y).unwrap();
        assert_eq!(a.admit(y).err(), Some(Reason::MaxConnections));
        drop(s1);
        assert_eq!((a.open(), a.open_from(x)), (2, 1));
        assert!(a.admit(x).is_ok());
    }

    #[test]
    fn a_slot_taken_in_two_steps_counts_where_its_client_is_known() {
        let a = Admission::new(3, 1);
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let mut first = a.admit_any().unwrap();
        let mut second = a.admit_any().unwrap();
        assert_eq!((a.open(), a.open_from(client)), (2, 0), "global at accept, no address yet");
        first.hold_ip(client).unwrap();
        assert_eq!(second.hold_ip(client), Err(Reason::PerIpCap));
        assert_eq!(first.hold_ip(client), Err(Reason::PerIpCap), "one address per slot");
        drop(second);
        assert_eq!((a.open(), a.open_from(client)), (1, 1), "a refused slot gives its global place back");
        let _third = a.admit_any().unwrap();
        let _fourth = a.admit_any().unwrap();
        assert_eq!(a.admit_any().err(), Some(Reason::MaxConnections));
        drop(first);
        assert_eq!(a.open_from(client), 0);
    }

    #[test]
    fn zero_is_no_cap() {
        let a = Admission::new(0, 0);
        let x: IpAddr = "127.0.0.2".parse().unwrap();
        let held: Vec<Slot> = (0..1000).map(|_| a.admit(x).unwrap()).collect();
        assert_eq!(a.open(), 1000);
        drop(held);
        assert_eq!(a.open(), 0);
    }
}
