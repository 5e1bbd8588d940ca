//! [`ShardNode`]: one gateway-shard process's membership and the slots it holds.
//!
//! The node registers itself under a lease, and on every tick renews that lease and each slot
//! lease, reads the slot table, takes the slots whose rendezvous target it is
//! ([`concord_core::topology::slot_target`] over the ready members) and gives up those it is no
//! longer the target of. A slot's [`Shard`] subscribes to the slot's channel before the slot is
//! published as held, so no session of it can miss an event. The all-in-one server runs one node
//! over the in-process topology; a `concord shard` process runs one over Redis.

use std::sync::{Arc, Mutex};

use concord_core::bus::EventBus;
use concord_core::id::UserId;
use concord_core::repo::Store;
use concord_core::token::TokenKey;
use concord_core::topology::{
    self, Member, NodeId, NodeState, SlotId, SlotLease, Topology, TopologyError,
};
use dashmap::DashMap;
use tokio::sync::oneshot;
use tokio::time::{Duration, Instant};
use tracing::{info, warn};

use crate::config::ShardConfig;
use crate::error::{Error, Result};
use crate::metrics;
use crate::routing::{SessionHost, SessionRouter};
use crate::session::{SessionId, SharedEncodings};
use crate::shard::Shard;

/// Membership and slot-lease timing of a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This process's node ordinal.
    pub node: NodeId,
    /// Address routers open links to (`host:port`); empty in all-in-one mode.
    pub advertise: String,
    /// Lease length of the membership record and of each slot; a dead node's slots are taken
    /// over after at most this long.
    pub lease_ttl: Duration,
    /// Time between membership passes (renewals and slot-table reads).
    pub tick: Duration,
}

impl NodeConfig {
    /// Settings for the one node of an all-in-one process.
    pub fn local() -> Self {
        Self {
            node: 0,
            advertise: String::new(),
            lease_ttl: Duration::from_secs(5),
            tick: Duration::from_millis(500),
        }
    }
}

/// A slot this node holds.
struct Held {
    shard: Arc<Shard>,
    lease: SlotLease,
    /// Last successful renewal: past 70 % of the TTL without one, the slot is given up,
    /// since another node may take it once the lease runs out.
    renewed: Instant,
    /// Dropping it stops the shard's bus consumer.
    _stop: oneshot::Sender<()>,
}

/// A gateway-shard process's slots and membership.
pub struct ShardNode {
    config: NodeConfig,
    member: Mutex<Member>,
    shard_config: Arc<ShardConfig>,
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    topology: Arc<dyn Topology>,
    tokens: TokenKey,
    held: DashMap<SlotId, Held>,
    /// Encodings the node's shards share (an event published to several of its slots is
    /// encoded once).
    encodings: Arc<SharedEncodings>,
}

impl std::fmt::Debug for ShardNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardNode")
            .field("node", &self.config.node)
            .field("slots", &self.owned_slots())
            .finish_non_exhaustive()
    }
}

impl ShardNode {
    /// Registers the node (as ready) and takes the slots it is the target of.
    ///
    /// # Errors
    /// [`Error::Cluster`] when the node id is held by another live process or the topology
    /// cannot be reached.
    pub async fn start(
        config: NodeConfig,
        shard_config: Arc<ShardConfig>,
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        topology: Arc<dyn Topology>,
        tokens: TokenKey,
    ) -> Result<Arc<Self>> {
        let member = Member {
            advertise: config.advertise.clone(),
            instance: format!("{:032x}", rand::random::<u128>()),
            node: config.node,
            state: NodeState::Ready,
        };
        if !topology
            .register(&member, config.lease_ttl)
            .await
            .map_err(cluster)?
        {
            return Err(Error::Cluster(format!(
                "node id {} is held by another live process",
                config.node
            )));
        }
        let node = Arc::new(Self {
            config,
            member: Mutex::new(member),
            shard_config,
            store,
            bus,
            topology,
            tokens,
            held: DashMap::new(),
            encodings: Arc::default(),
        });
        node.reconcile().await.map_err(cluster)?;
        Ok(node)
    }

    /// This node's ordinal.
    pub fn id(&self) -> NodeId {
        self.config.node
    }

    /// The topology the node is a member of.
    pub fn topology(&self) -> &Arc<dyn Topology> {
        &self.topology
    }

    /// Settings of the sessions this node serves.
    pub fn shard_config(&self) -> &Arc<ShardConfig> {
        &self.shard_config
    }

    /// Key that verifies client tokens.
    pub fn token_key(&self) -> &TokenKey {
        &self.tokens
    }

    /// The shard of `slot`, when this node holds it.
    pub fn shard(&self, slot: SlotId) -> Option<Arc<Shard>> {
        self.held.get(&slot).map(|h| h.shard.clone())
    }

    /// Slots held, ascending.
    pub fn owned_slots(&self) -> Vec<SlotId> {
        let mut slots: Vec<SlotId> = self.held.iter().map(|h| *h.key()).collect();
        slots.sort_unstable();
        slots
    }

    /// Live sessions over every held slot.
    pub fn session_count(&self) -> usize {
        self.held.iter().map(|h| h.shard.session_count()).sum()
    }

    /// Whether the node holds its membership and is taking slots.
    pub fn is_ready(&self) -> bool {
        self.member().state == NodeState::Ready
    }

    fn member(&self) -> Member {
        self.member
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs membership passes every tick until `shutdown` resolves, then drains.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()> + Send) {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = tick.tick() => {
                    if let Err(error) = self.pass().await {
                        warn!(node = self.config.node, %error, "membership pass failed");
                    }
                    self.drop_stale_slots();
                }
            }
        }
        self.drain().await;
    }

    /// Leaves the cluster: stops being a target, gives every slot up (closing its sessions
    /// with a resumable close) and removes the membership record.
    pub async fn drain(&self) {
        let member = {
            let mut member = self.member.lock().unwrap_or_else(|e| e.into_inner());
            member.state = NodeState::Draining;
            member.clone()
        };
        let _ = self.topology.renew(&member, self.config.lease_ttl).await;
        for slot in self.owned_slots() {
            self.give_up(slot, true).await;
        }
        if let Err(error) = self.topology.deregister(&member).await {
            warn!(node = self.config.node, %error, "could not deregister");
        }
    }

    async fn pass(&self) -> std::result::Result<(), TopologyError> {
        let member = self.member();
        if !self.topology.renew(&member, self.config.lease_ttl).await? {
            // Our record expired (a long pause, or the store lost it): register again, unless
            // another process took the id meanwhile.
            if !self
                .topology
                .register(&member, self.config.lease_ttl)
                .await?
            {
                warn!(node = self.config.node, "node id taken by another process");
                for slot in self.owned_slots() {
                    self.give_up(slot, false).await;
                }
                return Ok(());
            }
        }
        let slots: Vec<(SlotId, SlotLease, Option<String>)> = self
            .held
            .iter()
            .map(|h| (*h.key(), h.lease, h.shard.position()))
            .collect();
        for (slot, lease, position) in slots {
            if let Some(position) = position {
                self.topology.report_position(slot, &position).await?;
            }
            if self
                .topology
                .renew_slot(slot, lease, self.config.lease_ttl)
                .await?
            {
                if let Some(mut held) = self.held.get_mut(&slot) {
                    held.renewed = Instant::now();
                }
            } else {
                warn!(node = self.config.node, slot, "slot lease lost");
                ::metrics::counter!(metrics::SLOT_CHANGES, "event" => "fenced").increment(1);
                self.give_up(slot, false).await;
            }
        }
        self.reconcile().await
    }

    /// Takes the slots this node is the target of and gives up the others.
    async fn reconcile(&self) -> std::result::Result<(), TopologyError> {
        let table = self.topology.table().await?;
        let me = self.member();
        let mut ready = table.ready_nodes();
        if me.state == NodeState::Ready && !ready.contains(&me.node) {
            ready.push(me.node);
        }
        if me.state != NodeState::Ready {
            ready.retain(|n| *n != me.node);
        }
        for slot in 0..self.topology.slot_count() {
            let target = topology::slot_target(slot, &ready);
            let held = self.held.contains_key(&slot);
            if target == Some(me.node) && !held {
                self.take(slot).await?;
            } else if target != Some(me.node) && held {
                self.give_up(slot, true).await;
            }
        }
        Ok(())
    }

    async fn take(&self, slot: SlotId) -> std::result::Result<(), TopologyError> {
        let Some(lease) = self
            .topology
            .acquire_slot(slot, self.config.node, self.config.lease_ttl)
            .await?
        else {
            // Still held by its previous owner, which gives it up on its next pass (or its
            // lease runs out).
            return Ok(());
        };
        // Sessions counted under this slot belonged to the previous owner.
        self.topology.reset_slot_interest(slot).await?;
        let shard = Shard::new(
            slot,
            self.shard_config.clone(),
            self.store.clone(),
            self.bus.clone(),
            self.topology.clone(),
            self.tokens.clone(),
            self.encodings.clone(),
        );
        let subscription = match shard.subscribe().await {
            Ok(subscription) => subscription,
            Err(error) => {
                let _ = self.topology.release_slot(slot, lease).await;
                return Err(TopologyError(error.to_string()));
            }
        };
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(shard.clone().run(subscription, async move {
            let _ = stopped.await;
        }));
        self.held.insert(
            slot,
            Held {
                shard,
                lease,
                renewed: Instant::now(),
                _stop: stop,
            },
        );
        info!(
            node = self.config.node,
            slot,
            epoch = lease.epoch,
            "slot acquired"
        );
        ::metrics::counter!(metrics::SLOT_CHANGES, "event" => "acquired").increment(1);
        self.record_slots();
        Ok(())
    }

    /// Stops serving `slot`: its sessions get a resumable close; the lease is released when
    /// `release` (a fenced slot is someone else's already).
    async fn give_up(&self, slot: SlotId, release: bool) {
        let Some((_, held)) = self.held.remove(&slot) else {
            return;
        };
        held.shard.close_all().await;
        if release {
            if let Err(error) = self.topology.release_slot(slot, held.lease).await {
                warn!(node = self.config.node, slot, %error, "slot release failed");
            }
            ::metrics::counter!(metrics::SLOT_CHANGES, "event" => "released").increment(1);
        }
        info!(node = self.config.node, slot, "slot given up");
        self.record_slots();
    }

    /// Gives up slots whose lease could not be renewed for most of its TTL: another node may
    /// hold them soon, and two owners must never serve one slot.
    fn drop_stale_slots(&self) {
        let limit = self.config.lease_ttl.mul_f64(0.7);
        let stale: Vec<SlotId> = self
            .held
            .iter()
            .filter(|h| h.renewed.elapsed() > limit)
            .map(|h| *h.key())
            .collect();
        for slot in stale {
            if let Some((_, held)) = self.held.remove(&slot) {
                warn!(
                    node = self.config.node,
                    slot, "slot lease not renewed in time"
                );
                ::metrics::counter!(metrics::SLOT_CHANGES, "event" => "fenced").increment(1);
                tokio::spawn(async move { held.shard.close_all().await });
            }
        }
        self.record_slots();
    }

    fn record_slots(&self) {
        ::metrics::gauge!(metrics::SLOTS_OWNED).set(self.held.len() as f64);
    }
}

impl SessionRouter for ShardNode {
    fn route_identify(&self, user: UserId) -> Option<SessionHost> {
        let slot = topology::user_slot(user, self.topology.slot_count());
        self.shard(slot).map(SessionHost::Local)
    }

    fn route_resume(&self, session: SessionId) -> Option<SessionHost> {
        self.shard(session.shard())
            .filter(|s| s.has_session(session))
            .map(SessionHost::Local)
    }
}

fn cluster(error: TopologyError) -> Error {
    Error::Cluster(error.to_string())
}
