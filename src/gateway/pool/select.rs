//! Picking one origin out of the candidates: round robin, least connections, or rendezvous
//! hashing on the key. Pure functions over the origins' states, so each rule is tested alone.

use std::hash::{Hash, Hasher};

use crate::config::Selection;

/// What selection needs to know of the origins, by index (no per-request collection).
pub(super) trait Candidates {
    fn len(&self) -> usize;
    /// Origin `i` may take this request: healthy, not ejected, not tried by it yet.
    fn eligible(&self, i: usize) -> bool;
    fn in_flight(&self, i: usize) -> usize;
}

/// The index of the origin to use, if any is eligible. `turn` is the round-robin counter's
/// value for this request; `key` the request path (for [`Selection::KeyHash`]).
pub(super) fn pick(rule: Selection, origins: &impl Candidates, turn: usize, key: &str) -> Option<usize> {
    let n = origins.len();
    if n == 0 {
        return None;
    }
    match rule {
        Selection::RoundRobin => (0..n).map(|k| (turn + k) % n).find(|&i| origins.eligible(i)),
        // Ties go round robin, so an idle pool still spreads its first requests.
        Selection::LeastConnections => (0..n)
            .map(|k| (turn + k) % n)
            .filter(|&i| origins.eligible(i))
            .min_by_key(|&i| origins.in_flight(i)),
        Selection::KeyHash => {
            (0..n).filter(|&i| origins.eligible(i)).max_by_key(|&i| rendezvous_weight(key, i))
        }
    }
}

/// Highest random weight: each (key, origin) pair scores independently, so removing an
/// origin moves only the keys it held and adding one takes about 1/n of them.
fn rendezvous_weight(key: &str, origin: usize) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    origin.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct O {
        ok: bool,
        busy: usize,
    }
    impl Candidates for Vec<O> {
        fn len(&self) -> usize {
            self.as_slice().len()
        }
        fn eligible(&self, i: usize) -> bool {
            self[i].ok
        }
        fn in_flight(&self, i: usize) -> usize {
            self[i].busy
        }
    }
    fn all(n: usize) -> Vec<O> {
        (0..n).map(|_| O { ok: true, busy: 0 }).collect()
    }

    #[test]
    fn round_robin_skips_the_ineligible_in_order() {
        let mut o = all(3);
        o[1].ok = false;
        // The pure rule starts at the turn and takes the first eligible; the pool then moves
        // its counter past the skipped ones, so shares stay equal (pool::tests).
        let got: Vec<_> = (0..6).map(|t| pick(Selection::RoundRobin, &o, t, "").unwrap()).collect();
        assert_eq!(got, [0, 2, 2, 0, 2, 2]);
        o.iter_mut().for_each(|x| x.ok = false);
        assert_eq!(pick(Selection::RoundRobin, &o, 0, ""), None);
        assert_eq!(pick(Selection::RoundRobin, &Vec::<O>::new(), 0, ""), None);
    }

    #[test]
    fn least_connections_takes_the_idlest_eligible() {
        let mut o = all(3);
        o[0].busy = 5;
        o[1].busy = 1;
        o[2].busy = 1;
        assert_eq!(pick(Selection::LeastConnections, &o, 0, ""), Some(1));
        assert_eq!(pick(Selection::LeastConnections, &o, 2, ""), Some(2), "ties go round robin");
        o[1].ok = false;
        o[2].ok = false;
        assert_eq!(pick(Selection::LeastConnections, &o, 0, ""), Some(0));
    }

    #[test]
    fn key_hash_is_stable_and_losing_an_origin_moves_only_its_keys() {
        let keys: Vec<String> = (0..600).map(|i| format!("/media/uploads/user/1/{i}.png")).collect();
        let mut o = all(3);
        let before: Vec<_> = keys.iter().map(|k| pick(Selection::KeyHash, &o, 0, k).unwrap()).collect();
        let again: Vec<_> = keys.iter().map(|k| pick(Selection::KeyHash, &o, 7, k).unwrap()).collect();
        assert_eq!(before, again, "the turn does not matter, only the key");
        for i in 0..3 {
            let share = before.iter().filter(|&&x| x == i).count();
            assert!((120..=280).contains(&share), "origin {i} holds {share} of 600 keys");
        }
        o[1].ok = false;
        for (k, was) in keys.iter().zip(&before) {
            let now = pick(Selection::KeyHash, &o, 0, k).unwrap();
            if *was != 1 {
                assert_eq!(now, *was, "{k} moved though its origin is up");
            } else {
                assert_ne!(now, 1);
            }
        }
    }
}
