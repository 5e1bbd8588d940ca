//! In-process implementation of [`EventBus`]: one bounded channel per shard and an in-memory
//! interest registry, used when the API and every shard live in one process.
//!
//! Channels are bounded so a stalled shard pushes back on the publishers instead of growing
//! memory without limit; with the default capacity that only happens when a shard stops
//! draining altogether.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use concord_core::bus::{BusError, BusMessage, EventBus, ShardId, Subscription};
use concord_core::id::{GuildId, UserId};
use concord_core::shard_math;
use dashmap::DashMap;
use tokio::sync::mpsc;

/// Messages a shard's channel holds before publishers wait.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 65_536;

/// The in-process bus.
#[derive(Debug)]
pub struct LocalBus {
    shards: Vec<ShardId>,
    senders: DashMap<ShardId, mpsc::Sender<BusMessage>>,
    /// guild → (shard → number of that shard's sessions in the guild).
    interest: DashMap<GuildId, Vec<(ShardId, u32)>>,
    capacity: usize,
    pending: Mutex<Vec<(ShardId, mpsc::Receiver<BusMessage>)>>,
}

impl LocalBus {
    /// A bus for the given live shard ordinals.
    pub fn new(shards: Vec<ShardId>) -> Arc<Self> {
        Self::with_capacity(shards, DEFAULT_CHANNEL_CAPACITY)
    }

    /// A bus whose per-shard channels hold `capacity` messages.
    pub fn with_capacity(shards: Vec<ShardId>, capacity: usize) -> Arc<Self> {
        let bus = Self {
            shards,
            senders: DashMap::new(),
            interest: DashMap::new(),
            capacity: capacity.max(1),
            pending: Mutex::new(Vec::new()),
        };
        // Channels exist from the start so events published before a shard subscribes wait
        // in its channel instead of being dropped.
        for shard in &bus.shards {
            let (tx, rx) = mpsc::channel(bus.capacity);
            bus.senders.insert(*shard, tx);
            bus.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((*shard, rx));
        }
        Arc::new(bus)
    }

    /// Live shard ordinals.
    pub fn shards(&self) -> &[ShardId] {
        &self.shards
    }
}

struct LocalSubscription {
    rx: mpsc::Receiver<BusMessage>,
}

#[async_trait]
impl Subscription for LocalSubscription {
    async fn next(&mut self) -> Option<BusMessage> {
        self.rx.recv().await
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, shard: ShardId, message: BusMessage) -> Result<(), BusError> {
        let sender = self
            .senders
            .get(&shard)
            .map(|s| s.clone())
            .ok_or_else(|| BusError(format!("no shard {shard}")))?;
        sender
            .send(message)
            .await
            .map_err(|_| BusError(format!("shard {shard} is not subscribed")))?;
        metrics::counter!("concord_bus_published_total", "bus" => "local").increment(1);
        Ok(())
    }

    async fn guild_shards(&self, guild: GuildId) -> Vec<ShardId> {
        self.interest
            .get(&guild)
            .map(|entry| {
                entry
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(s, _)| *s)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn user_shard(&self, user: UserId) -> ShardId {
        shard_math::owner_shard(user, &self.shards).unwrap_or(0)
    }

    async fn add_interest(&self, shard: ShardId, guild: GuildId) {
        let mut entry = self.interest.entry(guild).or_default();
        match entry.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, n)) => *n += 1,
            None => entry.push((shard, 1)),
        }
    }

    async fn remove_interest(&self, shard: ShardId, guild: GuildId) {
        let empty = {
            let Some(mut entry) = self.interest.get_mut(&guild) else {
                return;
            };
            if let Some(pos) = entry.iter().position(|(s, _)| *s == shard) {
                entry[pos].1 = entry[pos].1.saturating_sub(1);
                if entry[pos].1 == 0 {
                    entry.swap_remove(pos);
                }
            }
            entry.is_empty()
        };
        if empty {
            self.interest.remove_if(&guild, |_, v| v.is_empty());
        }
    }

    async fn subscribe(&self, shard: ShardId) -> Box<dyn Subscription> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = pending.iter().position(|(s, _)| *s == shard) {
            let (_, rx) = pending.swap_remove(pos);
            return Box::new(LocalSubscription { rx });
        }
        // A re-subscription (a restarted shard task) gets a fresh channel; the old
        // receiver is gone with its task.
        let (tx, rx) = mpsc::channel(self.capacity);
        self.senders.insert(shard, tx);
        Box::new(LocalSubscription { rx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::id::Id;

    #[tokio::test]
    async fn interest_is_counted_per_session() {
        let bus = LocalBus::new(vec![0, 1]);
        let g: GuildId = Id::new(10);
        bus.add_interest(0, g).await;
        bus.add_interest(0, g).await;
        bus.add_interest(1, g).await;
        let mut shards = bus.guild_shards(g).await;
        shards.sort_unstable();
        assert_eq!(shards, vec![0, 1]);
        bus.remove_interest(0, g).await;
        assert_eq!(bus.guild_shards(g).await.len(), 2);
        bus.remove_interest(0, g).await;
        assert_eq!(bus.guild_shards(g).await, vec![1]);
        bus.remove_interest(1, g).await;
        assert!(bus.guild_shards(g).await.is_empty());
    }

    #[tokio::test]
    async fn publish_reaches_subscriber_in_order_even_before_subscribe() {
        let bus = LocalBus::new(vec![0]);
        let u: UserId = Id::new(5);
        for i in 1..=3u64 {
            let msg = BusMessage::GuildLeft {
                guild_id: Id::new(i),
                user_id: u,
            };
            bus.publish(0, msg).await.unwrap();
        }
        let mut sub = bus.subscribe(0).await;
        for i in 1..=3u64 {
            match sub.next().await {
                Some(BusMessage::GuildLeft { guild_id, .. }) => assert_eq!(guild_id.get(), i),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(bus
            .publish(
                9,
                BusMessage::GuildRemoved {
                    guild_id: Id::new(1)
                }
            )
            .await
            .is_err());
    }

    #[test]
    fn user_shard_is_a_live_shard() {
        let bus = LocalBus::new(vec![3, 5]);
        for u in 1..100u64 {
            assert!([3, 5].contains(&bus.user_shard(Id::new(u))));
        }
    }
}
