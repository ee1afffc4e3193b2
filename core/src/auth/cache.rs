//! A bounded cache whose entries expire at a given instant.

use std::collections::HashMap;
use std::hash::Hash;

use crate::time::Instant;

/// Entries are visible while `now <= expires`; an entry that expires at the instant it
/// was recorded is therefore seen by lookups made at that same instant only.
#[derive(Debug)]
pub(crate) struct TtlCache<K, V> {
    entries: HashMap<K, (V, Instant)>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> TtlCache<K, V> {
    /// A cache of at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        TtlCache {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn get(&self, key: &K, now: Instant) -> Option<&V> {
        self.entries
            .get(key)
            .filter(|(_, expires)| now <= *expires)
            .map(|(value, _)| value)
    }

    /// Records `value` until `expires`. When full, expired entries go first, then the
    /// entry closest to expiry.
    pub(crate) fn insert(&mut self, key: K, value: V, expires: Instant, now: Instant) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (_, e)| now <= *e);
            if self.entries.len() >= self.capacity {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, e))| *e)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (value, expires));
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Instant {
        Instant::from_nanos(s * 1_000_000_000)
    }

    #[test]
    fn expiry_and_capacity() {
        let mut c = TtlCache::new(2);
        c.insert("a", 1, at(10), at(0));
        assert_eq!(c.get(&"a", at(10)), Some(&1));
        assert_eq!(c.get(&"a", at(11)), None);
        c.insert("b", 2, at(5), at(0));
        c.insert("c", 3, at(20), at(1));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&"b", at(1)), None, "closest to expiry evicted");
        assert_eq!(c.get(&"a", at(1)), Some(&1));
        c.insert("d", 4, at(30), at(15));
        assert_eq!(c.get(&"a", at(15)), None);
        assert_eq!(c.get(&"c", at(15)), Some(&3));
        assert_eq!(c.get(&"d", at(15)), Some(&4));
        c.insert("d", 5, at(15), at(15));
        assert_eq!(c.get(&"d", at(15)), Some(&5));
        assert_eq!(c.get(&"d", at(16)), None);
    }
}
