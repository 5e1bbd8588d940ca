//! The cluster topology port: the fixed slots users hash to, the shard processes ("nodes") that
//! hold them under leases, and the guild interest registry (guild → slots with sessions in it).
//!
//! A cluster has `S` slots, fixed when it is initialised. A user's sessions always live in slot
//! [`user_slot`]; a slot is held by the node that [`slot_target`] picks among the live nodes
//! (rendezvous hashing, so adding or removing a node moves only the slots whose winner changed),
//! under a lease with a fencing epoch. The API reads interest to publish each event once per
//! interested slot; the owner of a slot maintains that slot's interest counts.
//!
//! Implementations: an in-process one (all-in-one mode) and a Redis one (cluster mode). Both
//! pass the same conformance tests.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::id::{GuildId, UserId};

/// Index of a slot, `0..slot_count`.
pub type SlotId = u16;

/// Identity of a shard process (its StatefulSet ordinal).
pub type NodeId = u16;

/// Slots in a new cluster unless configured otherwise.
pub const DEFAULT_SLOT_COUNT: u16 = 16;

/// Largest supported slot count (slot ids are embedded in 16-bit session id prefixes).
pub const MAX_SLOT_COUNT: u16 = 1024;

/// The slot holding a user's sessions: a stable hash of the user id modulo the slot count.
pub fn user_slot(user: UserId, slot_count: u16) -> SlotId {
    (mix(user.get()) % u64::from(slot_count.max(1))) as SlotId
}

/// The node that should hold `slot` among `live` nodes (rendezvous hashing): adding a node
/// moves only the slots it now wins; removing one moves only the slots it held.
pub fn slot_target(slot: SlotId, live: &[NodeId]) -> Option<NodeId> {
    live.iter().copied().max_by_key(|node| {
        (
            mix(u64::from(slot) << 32 ^ u64::from(*node) ^ 0x5bd1_e995),
            *node,
        )
    })
}

/// Every slot's target among `live` nodes, indexed by slot.
pub fn assignment(slot_count: u16, live: &[NodeId]) -> Vec<Option<NodeId>> {
    (0..slot_count).map(|s| slot_target(s, live)).collect()
}

/// SplitMix64 finaliser: a cheap, well-distributed, stable 64-bit hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Lifecycle state a node advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Registered, not yet taking slots.
    Starting,
    /// Takes the slots it is the target of.
    Ready,
    /// Leaving: gives its slots up and is not a target any more.
    Draining,
}

/// A shard process's membership record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Address routers open links to (`host:port`).
    pub advertise: String,
    /// Random per-process id: tells a restarted process from the one whose lease is still live.
    pub instance: String,
    /// Node ordinal.
    pub node: NodeId,
    /// Lifecycle state.
    pub state: NodeState,
}

/// A held slot lease: who holds it and under which fencing epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotLease {
    /// Fencing epoch: strictly increases with every acquisition of the slot.
    pub epoch: u64,
    /// Holder.
    pub node: NodeId,
}

/// A consistent-enough picture of the cluster: members and the holder of each slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotTable {
    /// Live members, ordered by node id.
    pub members: Vec<Member>,
    /// Holder of each slot, indexed by slot (`None` while a slot has no owner).
    pub owners: Vec<Option<SlotLease>>,
}

impl SlotTable {
    /// Holder of `slot`.
    pub fn owner(&self, slot: SlotId) -> Option<NodeId> {
        self.owners
            .get(usize::from(slot))
            .copied()
            .flatten()
            .map(|l| l.node)
    }

    /// Membership record of `node`.
    pub fn member(&self, node: NodeId) -> Option<&Member> {
        self.members.iter().find(|m| m.node == node)
    }

    /// Nodes that may be slot targets: registered and ready.
    pub fn ready_nodes(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|m| m.state == NodeState::Ready)
            .map(|m| m.node)
            .collect()
    }
}

/// Cluster-wide settings written once by `cluster init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Unix time (ms) of initialisation.
    pub created_ms: u64,
    /// Slot count `S`.
    pub slots: u16,
}

/// A topology backend failure (the backing store is unreachable or answered an error).
#[derive(Debug, thiserror::Error)]
#[error("topology: {0}")]
pub struct TopologyError(pub String);

/// Result of a topology call.
pub type TopologyResult<T> = Result<T, TopologyError>;

/// The cluster topology: membership with leases, slot leases with fencing, and guild interest.
#[async_trait]
pub trait Topology: Send + Sync {
    /// Number of slots.
    fn slot_count(&self) -> u16;

    /// Registers `member` with a lease of `ttl`; `false` when another live instance already holds
    /// the same node id.
    async fn register(&self, member: &Member, ttl: Duration) -> TopologyResult<bool>;
    /// Renews (and updates) the member's lease; `false` when the lease was lost (expired or
    /// taken by another instance), in which case the caller must stop acting as that node.
    async fn renew(&self, member: &Member, ttl: Duration) -> TopologyResult<bool>;
    /// Removes the member's record if it is still this instance's.
    async fn deregister(&self, member: &Member) -> TopologyResult<()>;

    /// Takes `slot` for `node` if no one holds it; the new lease's epoch is greater than every
    /// earlier one for the slot. `None` when the slot is held.
    async fn acquire_slot(
        &self,
        slot: SlotId,
        node: NodeId,
        ttl: Duration,
    ) -> TopologyResult<Option<SlotLease>>;
    /// Extends a held lease; `false` when it is no longer held under that epoch (fenced).
    async fn renew_slot(
        &self,
        slot: SlotId,
        lease: SlotLease,
        ttl: Duration,
    ) -> TopologyResult<bool>;
    /// Gives a lease up if it is still held under that epoch.
    async fn release_slot(&self, slot: SlotId, lease: SlotLease) -> TopologyResult<()>;

    /// Members and slot holders, read together.
    async fn table(&self) -> TopologyResult<SlotTable>;

    /// Slots with sessions in `guild` (may include stale ones, never misses a live one).
    async fn interested_slots(&self, guild: GuildId) -> TopologyResult<Vec<SlotId>>;
    /// Adds `delta` to `slot`'s session count in each guild, in one batch.
    async fn change_interest(&self, slot: SlotId, changes: &[(GuildId, i64)])
        -> TopologyResult<()>;
    /// Drops every interest count `slot` holds (a new owner starts from zero: the sessions the
    /// counts stood for went with the previous owner).
    async fn reset_slot_interest(&self, slot: SlotId) -> TopologyResult<()>;

    /// Records how far the owner of `slot` has read its log (a bus position, see
    /// [`crate::bus::Subscription::position`]), so that `cluster status` can show each slot's
    /// lag. Backends without a durable log ignore it.
    async fn report_position(&self, _slot: SlotId, _position: &str) -> TopologyResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;

    #[test]
    fn users_spread_over_slots_stably() {
        let mut counts = [0usize; 16];
        for u in 1..=32_000u64 {
            let user = Id::new(u * 7919);
            let slot = user_slot(user, 16);
            assert_eq!(slot, user_slot(user, 16));
            counts[usize::from(slot)] += 1;
        }
        assert!(
            counts.iter().all(|c| (1_600..2_400).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn adding_a_node_moves_only_the_slots_it_wins() {
        for n in 1..8u16 {
            let before: Vec<NodeId> = (0..n).collect();
            let after: Vec<NodeId> = (0..=n).collect();
            let (a, b) = (assignment(64, &before), assignment(64, &after));
            for (slot, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    x == y || *y == Some(n),
                    "slot {slot} moved from {x:?} to {y:?}"
                );
            }
            assert!(b.contains(&Some(n)), "node {n} wins no slot");
        }
    }

    #[test]
    fn removing_a_node_moves_only_its_slots() {
        let all: Vec<NodeId> = vec![0, 1, 2, 3];
        let without: Vec<NodeId> = vec![0, 1, 3];
        let (a, b) = (assignment(64, &all), assignment(64, &without));
        for (x, y) in a.iter().zip(&b) {
            assert!(x == y || *x == Some(2));
        }
    }

    #[test]
    fn no_live_node_no_target() {
        assert_eq!(slot_target(3, &[]), None);
        assert_eq!(slot_target(3, &[7]), Some(7));
    }

    #[test]
    fn table_lookups() {
        let table = SlotTable {
            members: vec![
                Member {
                    advertise: "a:1".into(),
                    instance: "x".into(),
                    node: 0,
                    state: NodeState::Ready,
                },
                Member {
                    advertise: "b:1".into(),
                    instance: "y".into(),
                    node: 1,
                    state: NodeState::Draining,
                },
            ],
            owners: vec![Some(SlotLease { epoch: 3, node: 1 }), None],
        };
        assert_eq!(table.owner(0), Some(1));
        assert_eq!(table.owner(1), None);
        assert_eq!(table.owner(9), None);
        assert_eq!(table.ready_nodes(), vec![0]);
        assert_eq!(table.member(1).map(|m| m.advertise.as_str()), Some("b:1"));
    }
}
