//! A concurrent map whose entries expire, with fills that cannot outlive an invalidation.
//!
//! The caches built on it ([`crate::token_cache`], [`crate::scope_cache`]) hold copies of rows
//! that other requests change. Two rules keep them honest:
//!
//! - every entry expires after a fixed TTL, which bounds how stale a copy can be when it was
//!   changed by another process (nothing tells this one);
//! - a change made by this process invalidates synchronously, and a fill that raced that change
//!   is dropped. A reader takes a [`Fill`] ticket *before* reading the store and hands it back
//!   with the value; [`TtlMap::insert`] stores the value, then drops it again if any
//!   invalidation happened since the ticket was taken. Writers invalidate *after* their store
//!   write, so a value read before the write either is still unstored when the invalidation
//!   runs (and is then dropped by its own insert) or is stored before it (and is removed by it).
//!
//! The map holds at most `capacity` entries: when full, expired entries are swept, and if that
//! frees nothing the map is cleared (a cache miss costs one store read; unbounded memory costs
//! the process).

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

/// Expiring entries keyed by `K`.
#[derive(Debug)]
pub(crate) struct TtlMap<K: Eq + Hash, V> {
    entries: DashMap<K, Entry<V>>,
    ttl: Duration,
    capacity: usize,
    /// Bumped by every invalidation; fills taken before a bump are discarded.
    generation: AtomicU64,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    expires: Instant,
}

/// Proof of when a store read started, for [`TtlMap::insert`].
#[derive(Debug, Clone, Copy)]
#[must_use = "a fill ticket is only useful handed back to `insert`"]
pub(crate) struct Fill(u64);

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    /// An empty map whose entries live `ttl` and which holds at most `capacity` of them.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: DashMap::new(),
            ttl,
            capacity: capacity.max(1),
            generation: AtomicU64::new(0),
        }
    }

    /// The live value for `key`; an expired one is removed.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let now = Instant::now();
        {
            let entry = self.entries.get(key)?;
            if entry.expires > now {
                return Some(entry.value.clone());
            }
        }
        self.entries.remove_if(key, |_, e| e.expires <= now);
        None
    }

    /// The live value for `key`, or else what `load` reads from the store (remembered when
    /// found; absence is not remembered, so a row created meanwhile is seen at once).
    pub(crate) async fn get_or_load<E, Fut>(
        &self,
        key: K,
        load: impl FnOnce() -> Fut,
    ) -> Result<Option<V>, E>
    where
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        if let Some(value) = self.get(&key) {
            return Ok(Some(value));
        }
        let fill = self.fill();
        let value = load().await?;
        if let Some(value) = &value {
            self.insert(fill, key, value.clone());
        }
        Ok(value)
    }

    /// A ticket to take before reading the value to insert from the store.
    pub(crate) fn fill(&self) -> Fill {
        Fill(self.generation.load(Ordering::SeqCst))
    }

    /// Stores `value` for `key` unless an invalidation happened since `fill` was taken.
    pub(crate) fn insert(&self, fill: Fill, key: K, value: V) {
        if self.generation.load(Ordering::SeqCst) != fill.0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            self.make_room();
        }
        let expires = Instant::now() + self.ttl;
        self.entries.insert(key.clone(), Entry { value, expires });
        // An invalidation may have run between the check above and the insert; it bumped the
        // generation before removing, so seeing the old generation here means it removed (or
        // will remove) after this insert.
        if self.generation.load(Ordering::SeqCst) != fill.0 {
            self.entries.remove(&key);
        }
    }

    /// Forgets `key`, and any fill of it in flight.
    pub(crate) fn invalidate(&self, key: &K) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.remove(key);
    }

    /// Forgets every entry `doomed` selects, and every fill in flight.
    pub(crate) fn invalidate_where(&self, doomed: impl Fn(&K, &V) -> bool) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.retain(|k, e| !doomed(k, &e.value));
    }

    fn make_room(&self) {
        let now = Instant::now();
        self.entries.retain(|_, e| e.expires > now);
        if self.entries.len() >= self.capacity {
            self.entries.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(capacity: usize) -> TtlMap<u64, &'static str> {
        TtlMap::new(Duration::from_secs(2), capacity)
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl() {
        let m = map(10);
        m.insert(m.fill(), 1, "a");
        assert_eq!(m.get(&1), Some("a"));
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert_eq!(m.get(&1), Some("a"));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(m.get(&1), None);
        assert_eq!(m.len(), 0, "an expired entry is removed when found");
    }

    #[tokio::test]
    async fn invalidation_removes_and_discards_fills_in_flight() {
        let m = map(10);
        m.insert(m.fill(), 1, "a");
        m.insert(m.fill(), 2, "b");
        let before_write = m.fill();
        m.invalidate(&1);
        assert_eq!(m.get(&1), None);
        assert_eq!(m.get(&2), Some("b"), "other keys stay");
        // A value read before the write must not come back after it.
        m.insert(before_write, 1, "stale");
        assert_eq!(m.get(&1), None);
        m.insert(m.fill(), 1, "fresh");
        assert_eq!(m.get(&1), Some("fresh"));

        let before_write = m.fill();
        m.invalidate_where(|_, v| *v == "b");
        assert_eq!(m.get(&2), None);
        assert_eq!(m.get(&1), Some("fresh"));
        m.insert(before_write, 2, "stale");
        assert_eq!(m.get(&2), None);
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_is_a_hard_bound() {
        let m = map(3);
        for key in 0..3 {
            m.insert(m.fill(), key, "x");
        }
        tokio::time::advance(Duration::from_secs(3)).await;
        m.insert(m.fill(), 3, "y");
        assert_eq!(m.len(), 1, "expired entries are swept when full");
        m.insert(m.fill(), 4, "y");
        m.insert(m.fill(), 5, "y");
        m.insert(m.fill(), 6, "z");
        assert!(m.len() <= 3);
        assert_eq!(m.get(&6), Some("z"));
    }
}
