//! [`LocalTopology`]: the topology port in memory, with the Redis implementation's semantics
//! (leases expire, epochs only grow, interest is counted per slot and guild).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use concord_core::id::GuildId;
use concord_core::topology::{
    Member, NodeId, SlotId, SlotLease, SlotTable, Topology, TopologyResult,
};
use dashmap::DashMap;
use tokio::time::Instant;

/// The in-process topology.
#[derive(Debug)]
pub struct LocalTopology {
    slot_count: u16,
    state: Mutex<State>,
    /// guild → (slot → number of that slot's sessions in the guild).
    interest: DashMap<GuildId, Vec<(SlotId, i64)>>,
}

#[derive(Debug, Default)]
struct State {
    members: HashMap<NodeId, (Member, Instant)>,
    /// slot → (lease, expiry).
    leases: HashMap<SlotId, (SlotLease, Instant)>,
    epochs: HashMap<SlotId, u64>,
}

impl State {
    fn expire(&mut self, now: Instant) {
        self.members.retain(|_, (_, until)| *until > now);
        self.leases.retain(|_, (_, until)| *until > now);
    }
}

impl LocalTopology {
    /// A topology of `slot_count` slots.
    pub fn new(slot_count: u16) -> Self {
        Self {
            slot_count,
            state: Mutex::new(State::default()),
            interest: DashMap::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.expire(Instant::now());
        state
    }
}

#[async_trait]
impl Topology for LocalTopology {
    fn slot_count(&self) -> u16 {
        self.slot_count
    }

    async fn register(&self, member: &Member, ttl: Duration) -> TopologyResult<bool> {
        let mut state = self.state();
        if let Some((held, _)) = state.members.get(&member.node) {
            if held.instance != member.instance {
                return Ok(false);
            }
        }
        state
            .members
            .insert(member.node, (member.clone(), Instant::now() + ttl));
        Ok(true)
    }

    async fn renew(&self, member: &Member, ttl: Duration) -> TopologyResult<bool> {
        let mut state = self.state();
        match state.members.get_mut(&member.node) {
            Some((held, until)) if held.instance == member.instance => {
                *held = member.clone();
                *until = Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn deregister(&self, member: &Member) -> TopologyResult<()> {
        let mut state = self.state();
        if state
            .members
            .get(&member.node)
            .is_some_and(|(held, _)| held.instance == member.instance)
        {
            state.members.remove(&member.node);
        }
        Ok(())
    }

    async fn acquire_slot(
        &self,
        slot: SlotId,
        node: NodeId,
        ttl: Duration,
    ) -> TopologyResult<Option<SlotLease>> {
        let mut state = self.state();
        if state.leases.contains_key(&slot) {
            return Ok(None);
        }
        let epoch = state.epochs.entry(slot).or_default();
        *epoch += 1;
        let lease = SlotLease {
            epoch: *epoch,
            node,
        };
        state.leases.insert(slot, (lease, Instant::now() + ttl));
        Ok(Some(lease))
    }

    async fn renew_slot(
        &self,
        slot: SlotId,
        lease: SlotLease,
        ttl: Duration,
    ) -> TopologyResult<bool> {
        let mut state = self.state();
        match state.leases.get_mut(&slot) {
            Some((held, until)) if *held == lease => {
                *until = Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_slot(&self, slot: SlotId, lease: SlotLease) -> TopologyResult<()> {
        let mut state = self.state();
        if state
            .leases
            .get(&slot)
            .is_some_and(|(held, _)| *held == lease)
        {
            state.leases.remove(&slot);
        }
        Ok(())
    }

    async fn table(&self) -> TopologyResult<SlotTable> {
        let state = self.state();
        let mut members: Vec<Member> = state.members.values().map(|(m, _)| m.clone()).collect();
        members.sort_by_key(|m| m.node);
        let owners = (0..self.slot_count)
            .map(|slot| state.leases.get(&slot).map(|(lease, _)| *lease))
            .collect();
        Ok(SlotTable { members, owners })
    }

    async fn interested_slots(&self, guild: GuildId) -> TopologyResult<Vec<SlotId>> {
        Ok(self
            .interest
            .get(&guild)
            .map(|entry| {
                entry
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(s, _)| *s)
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn change_interest(
        &self,
        slot: SlotId,
        changes: &[(GuildId, i64)],
    ) -> TopologyResult<()> {
        for (guild, delta) in changes {
            let empty = {
                let mut entry = self.interest.entry(*guild).or_default();
                match entry.iter().position(|(s, _)| *s == slot) {
                    Some(pos) => {
                        entry[pos].1 += delta;
                        if entry[pos].1 <= 0 {
                            entry.swap_remove(pos);
                        }
                    }
                    None if *delta > 0 => entry.push((slot, *delta)),
                    None => {}
                }
                entry.is_empty()
            };
            if empty {
                self.interest.remove_if(guild, |_, v| v.is_empty());
            }
        }
        Ok(())
    }

    async fn reset_slot_interest(&self, slot: SlotId) -> TopologyResult<()> {
        self.interest.retain(|_, entry| {
            entry.retain(|(s, _)| *s != slot);
            !entry.is_empty()
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::id::Id;
    use concord_core::topology::NodeState;

    fn member(node: NodeId, instance: &str) -> Member {
        Member {
            advertise: format!("127.0.0.1:{}", 7000 + node),
            instance: instance.to_owned(),
            node,
            state: NodeState::Ready,
        }
    }

    #[tokio::test]
    async fn interest_is_counted_per_slot() {
        let t = LocalTopology::new(4);
        let g: GuildId = Id::new(10);
        t.change_interest(0, &[(g, 2)]).await.unwrap();
        t.change_interest(1, &[(g, 1)]).await.unwrap();
        let mut slots = t.interested_slots(g).await.unwrap();
        slots.sort_unstable();
        assert_eq!(slots, vec![0, 1]);
        t.change_interest(0, &[(g, -1)]).await.unwrap();
        assert_eq!(t.interested_slots(g).await.unwrap().len(), 2);
        t.change_interest(0, &[(g, -1)]).await.unwrap();
        assert_eq!(t.interested_slots(g).await.unwrap(), vec![1]);
        t.reset_slot_interest(1).await.unwrap();
        assert!(t.interested_slots(g).await.unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn leases_fence_and_expire() {
        let t = LocalTopology::new(2);
        let ttl = Duration::from_secs(5);
        let first = t.acquire_slot(0, 1, ttl).await.unwrap().unwrap();
        assert_eq!(t.acquire_slot(0, 2, ttl).await.unwrap(), None);
        assert!(t.renew_slot(0, first, ttl).await.unwrap());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(!t.renew_slot(0, first, ttl).await.unwrap(), "expired");
        let second = t.acquire_slot(0, 2, ttl).await.unwrap().unwrap();
        assert!(second.epoch > first.epoch);
        t.release_slot(0, first).await.unwrap();
        assert_eq!(
            t.table().await.unwrap().owner(0),
            Some(2),
            "stale release ignored"
        );
        t.release_slot(0, second).await.unwrap();
        assert_eq!(t.table().await.unwrap().owner(0), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_id_is_held_by_one_instance() {
        let t = LocalTopology::new(2);
        let ttl = Duration::from_secs(5);
        assert!(t.register(&member(3, "a"), ttl).await.unwrap());
        assert!(!t.register(&member(3, "b"), ttl).await.unwrap());
        assert!(!t.renew(&member(3, "b"), ttl).await.unwrap());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(!t.renew(&member(3, "a"), ttl).await.unwrap());
        assert!(t.register(&member(3, "b"), ttl).await.unwrap());
        assert_eq!(t.table().await.unwrap().members, vec![member(3, "b")]);
    }
}
