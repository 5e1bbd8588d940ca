//! Snowflake generation with Discord's layout: 42 bits of ms since 2015, 5 worker, 5 process, 12 increment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::id::Id;

/// Discord's epoch, 2015-01-01T00:00:00Z, in Unix milliseconds.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Largest worker or process id (5 bits each).
pub const MAX_NODE_PART: u8 = 31;

/// Mints ids that are unique per (worker, process) pair and strictly increasing per generator.
///
/// The state packs `(ms since epoch << 12) | increment` into one atomic so minting is lock-free;
/// when 4096 ids are minted within one millisecond the generator borrows from the next one, which
/// keeps ids monotonic at the cost of running slightly ahead of the clock under bursts.
#[derive(Debug)]
pub struct SnowflakeGenerator {
    node: u64,
    state: AtomicU64,
}

impl SnowflakeGenerator {
    /// Creates a generator for a worker/process pair. Two live processes must never share a pair.
    ///
    /// # Panics
    /// When either part is over [`MAX_NODE_PART`].
    pub fn new(worker: u8, process: u8) -> Self {
        assert!(
            worker <= MAX_NODE_PART && process <= MAX_NODE_PART,
            "worker and process ids are 5 bits"
        );
        Self {
            node: (u64::from(worker) << 17) | (u64::from(process) << 12),
            state: AtomicU64::new(0),
        }
    }

    /// Mints the next id.
    pub fn next<M>(&self) -> Id<M> {
        let now = now_ms().saturating_sub(DISCORD_EPOCH_MS).max(1);
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let floor = now << 12;
            let next = if current >= floor { current + 1 } else { floor };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    let ms = next >> 12;
                    let increment = next & 0xFFF;
                    return Id::new((ms << 22) | self.node | increment);
                }
                Err(actual) => current = actual,
            }
        }
    }
}

/// Worker id of a snowflake.
pub fn worker_of(raw: u64) -> u8 {
    ((raw & 0x3E_0000) >> 17) as u8
}

/// Process id of a snowflake.
pub fn process_of(raw: u64) -> u8 {
    ((raw & 0x1_F000) >> 12) as u8
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::UserMarker;
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn layout_carries_node_and_time() {
        let generator = SnowflakeGenerator::new(7, 19);
        let before = now_ms();
        let id = generator.next::<UserMarker>();
        let after = now_ms();
        assert_eq!(worker_of(id.get()), 7);
        assert_eq!(process_of(id.get()), 19);
        // The generator may run ahead by borrowed milliseconds only under bursts.
        assert!(id.timestamp_ms() >= before && id.timestamp_ms() <= after + 1);
    }

    #[test]
    fn monotonic_and_unique_under_threads() {
        let generator = Arc::new(SnowflakeGenerator::new(1, 2));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let g = Arc::clone(&generator);
                std::thread::spawn(move || {
                    let ids: Vec<u64> = (0..20_000).map(|_| g.next::<UserMarker>().get()).collect();
                    assert!(
                        ids.windows(2).all(|w| w[0] < w[1]),
                        "ids from one thread must increase"
                    );
                    ids
                })
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                assert!(all.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(all.len(), 80_000);
    }

    #[test]
    fn different_nodes_never_collide() {
        let a = SnowflakeGenerator::new(0, 1);
        let b = SnowflakeGenerator::new(0, 2);
        let ids_a: HashSet<u64> = (0..5000).map(|_| a.next::<UserMarker>().get()).collect();
        assert!((0..5000).all(|_| !ids_a.contains(&b.next::<UserMarker>().get())));
    }
}
