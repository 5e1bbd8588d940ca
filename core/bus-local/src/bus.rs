//! [`LocalBus`]: one bounded channel per slot.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use concord_core::bus::{BusError, BusMessage, EventBus, ShardId, Subscription};
use dashmap::DashMap;
use tokio::sync::mpsc;

/// Messages a slot's channel holds before publishers wait.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 65_536;

/// The in-process bus.
#[derive(Debug)]
pub struct LocalBus {
    senders: DashMap<ShardId, mpsc::Sender<BusMessage>>,
    capacity: usize,
    /// Receivers made before anyone subscribed, so that nothing published early is dropped.
    pending: Mutex<Vec<(ShardId, mpsc::Receiver<BusMessage>)>>,
}

impl LocalBus {
    /// A bus for slots `0..slot_count`.
    pub fn new(slot_count: u16) -> Arc<Self> {
        Self::with_capacity(slot_count, DEFAULT_CHANNEL_CAPACITY)
    }

    /// A bus whose per-slot channels hold `capacity` messages.
    pub fn with_capacity(slot_count: u16, capacity: usize) -> Arc<Self> {
        let bus = Self {
            senders: DashMap::new(),
            capacity: capacity.max(1),
            pending: Mutex::new(Vec::new()),
        };
        for slot in 0..slot_count {
            let (tx, rx) = mpsc::channel(bus.capacity);
            bus.senders.insert(slot, tx);
            bus.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((slot, rx));
        }
        Arc::new(bus)
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
    async fn publish(&self, slots: &[ShardId], message: BusMessage) -> Result<(), BusError> {
        for slot in slots {
            let sender = self
                .senders
                .get(slot)
                .map(|s| s.clone())
                .ok_or_else(|| BusError(format!("no slot {slot}")))?;
            // A slot whose shard is gone (moved, restarting) has no receiver: like a log nobody
            // reads yet, the message is of no use to anyone, so it is not an error.
            let _ = sender.send(message.clone()).await;
            metrics::counter!("concord_bus_published_total", "bus" => "local").increment(1);
        }
        Ok(())
    }

    async fn subscribe(&self, slot: ShardId) -> Result<Box<dyn Subscription>, BusError> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = pending.iter().position(|(s, _)| *s == slot) {
            let (_, rx) = pending.swap_remove(pos);
            return Ok(Box::new(LocalSubscription { rx }));
        }
        // A re-subscription (a slot taken again) gets a fresh channel from now on.
        let (tx, rx) = mpsc::channel(self.capacity);
        self.senders.insert(slot, tx);
        Ok(Box::new(LocalSubscription { rx }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::id::Id;

    #[tokio::test]
    async fn publish_reaches_subscriber_in_order_even_before_subscribe() {
        let bus = LocalBus::new(2);
        for i in 1..=3u64 {
            let msg = BusMessage::GuildRemoved {
                guild_id: Id::new(i),
            };
            bus.publish(&[0, 1], msg).await.unwrap();
        }
        for slot in [0, 1] {
            let mut sub = bus.subscribe(slot).await.unwrap();
            for i in 1..=3u64 {
                match sub.next().await {
                    Some(BusMessage::GuildRemoved { guild_id }) => assert_eq!(guild_id.get(), i),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        let unknown = BusMessage::GuildRemoved {
            guild_id: Id::new(1),
        };
        assert!(bus.publish(&[9], unknown).await.is_err());
    }

    #[tokio::test]
    async fn a_resubscription_sees_what_is_published_after_it() {
        let bus = LocalBus::new(1);
        let first = bus.subscribe(0).await.unwrap();
        drop(first);
        let mut second = bus.subscribe(0).await.unwrap();
        let msg = BusMessage::GuildRemoved {
            guild_id: Id::new(4),
        };
        bus.publish(&[0], msg.clone()).await.unwrap();
        assert_eq!(second.next().await, Some(msg));
    }
}
