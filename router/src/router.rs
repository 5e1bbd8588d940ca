//! [`GatewayRouter`]: finds the host of each new or resumed session from the slot table, and
//! drains connections on shutdown.
//!
//! A user's sessions live in slot [`topology::user_slot`]; a session id names its slot. The
//! router serves a session from a shard of its own process when it holds the slot (all-in-one
//! mode), and otherwise links the connection to the process the slot table names as the slot's
//! holder. The table is re-read every [`TABLE_REFRESH`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use concord_core::id::UserId;
use concord_core::token::TokenKey;
use concord_core::topology::{self, SlotId, SlotTable, Topology};
use concord_gateway_shard::{
    ConnectionContext, LinkPool, LinkTickets, SessionHost, SessionId, SessionRouter, ShardConfig,
    ShardNode,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::tracker::{ConnectionGuard, ConnectionTracker};

/// Margin past the reconnect grace for connections to finish their close handshake.
const DRAIN_MARGIN: Duration = Duration::from_secs(3);
/// How often the slot table is read.
pub const TABLE_REFRESH: Duration = Duration::from_millis(500);
/// A table older than this makes the router unready.
const TABLE_STALE: Duration = Duration::from_secs(5);

/// What a router is built from.
pub struct RouterParts {
    /// Connection settings (heartbeat, compression, queue sizes).
    pub config: Arc<ShardConfig>,
    /// Verifies client tokens before routing.
    pub tokens: TokenKey,
    /// The slot table's source.
    pub topology: Arc<dyn Topology>,
    /// Shards of this process (all-in-one mode), served without a link.
    pub local: Option<Arc<ShardNode>>,
    /// Signs links to other processes (cluster mode).
    pub tickets: Option<Arc<LinkTickets>>,
}

/// The front door of every gateway connection.
pub struct GatewayRouter {
    config: Arc<ShardConfig>,
    tokens: TokenKey,
    topology: Arc<dyn Topology>,
    local: Option<Arc<ShardNode>>,
    /// Links to the shard processes (cluster mode).
    links: Option<LinkPool>,
    table: RwLock<(Arc<SlotTable>, Option<Instant>)>,
    shutdown: watch::Sender<bool>,
    connections: ConnectionTracker,
}

impl std::fmt::Debug for GatewayRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRouter")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl GatewayRouter {
    /// A router; call [`GatewayRouter::refresh`] (or spawn [`GatewayRouter::run`]) before
    /// serving when sessions may live in other processes.
    pub fn new(parts: RouterParts) -> Self {
        Self {
            config: parts.config,
            tokens: parts.tokens,
            topology: parts.topology,
            local: parts.local,
            links: parts.tickets.map(LinkPool::new),
            table: RwLock::new((Arc::new(SlotTable::default()), None)),
            shutdown: watch::Sender::new(false),
            connections: ConnectionTracker::new(),
        }
    }

    /// The shard node of this process, in all-in-one mode.
    pub fn local(&self) -> Option<&Arc<ShardNode>> {
        self.local.as_ref()
    }

    /// Open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.connections.count()
    }

    /// Whether [`GatewayRouter::shutdown`] has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Whether the router can route: it is not draining, and (unless every slot is local) it
    /// has read the slot table recently.
    pub fn is_ready(&self) -> bool {
        if self.is_shutting_down() {
            return false;
        }
        if self.local.is_some() && self.links.is_none() {
            return true;
        }
        let read = self.table.read().unwrap_or_else(|e| e.into_inner()).1;
        read.is_some_and(|at| at.elapsed() < TABLE_STALE)
    }

    /// The last slot table read.
    pub fn table(&self) -> Arc<SlotTable> {
        self.table
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Reads the slot table once.
    ///
    /// # Errors
    /// When the topology cannot be read; the previous table stays in use.
    pub async fn refresh(&self) -> Result<(), topology::TopologyError> {
        let table = self.topology.table().await?;
        if let Some(links) = &self.links {
            links.retain(|node, addr| {
                table
                    .member(node)
                    .is_some_and(|member| member.advertise == addr)
            });
        }
        *self.table.write().unwrap_or_else(|e| e.into_inner()) =
            (Arc::new(table), Some(Instant::now()));
        Ok(())
    }

    /// Re-reads the slot table every [`TABLE_REFRESH`] until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()> + Send) {
        let mut tick = tokio::time::interval(TABLE_REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {
                    if let Err(error) = self.refresh().await {
                        tracing::warn!(%error, "slot table refresh failed");
                    }
                }
            }
        }
    }

    /// Tells every connection to reconnect (op 7), closes those still open after the
    /// configured grace with 4000 (their sessions stay resumable), refuses new upgrades, and
    /// waits for the connections to finish, at most grace + a few seconds.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let limit = self.config.reconnect_grace + DRAIN_MARGIN;
        if tokio::time::timeout(limit, self.connections.idle())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.connections.count(),
                "gateway connections still open after the drain limit"
            );
        }
    }

    /// Registers a connection and returns what it needs to run.
    pub(crate) fn connect(self: &Arc<Self>) -> (ConnectionContext, ConnectionGuard) {
        let context = ConnectionContext {
            router: self.clone(),
            config: self.config.clone(),
            tokens: self.tokens.clone(),
            shutdown: self.shutdown.subscribe(),
        };
        (context, self.connections.enter())
    }

    /// The holder of `slot`: a local shard, or a link to the process the table names.
    fn host(&self, slot: SlotId) -> Option<SessionHost> {
        if let Some(shard) = self.local.as_ref().and_then(|node| node.shard(slot)) {
            return Some(SessionHost::Local(shard));
        }
        let links = self.links.as_ref()?;
        let table = self.table();
        let node = table.owner(slot)?;
        if self.local.as_ref().is_some_and(|local| local.id() == node) {
            // The table still names this process for a slot it has just given up.
            return None;
        }
        let member = table.member(node)?;
        Some(SessionHost::Remote(links.get(node, &member.advertise)))
    }
}

impl SessionRouter for GatewayRouter {
    fn route_identify(&self, user: UserId) -> Option<SessionHost> {
        self.host(topology::user_slot(user, self.topology.slot_count()))
    }

    fn route_resume(&self, session: SessionId) -> Option<SessionHost> {
        match self.host(session.shard())? {
            SessionHost::Local(shard) if !shard.has_session(session) => None,
            host => Some(host),
        }
    }
}
