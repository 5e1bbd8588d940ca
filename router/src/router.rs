//! [`GatewayRouter`]: picks the shard for each new session, finds the shard holding a resumed
//! one, and drains connections on shutdown.

use std::sync::Arc;
use std::time::Duration;

use concord_core::bus::ShardId;
use concord_core::id::UserId;
use concord_core::shard_math;
use concord_core::token::TokenKey;
use concord_gateway_shard::{ConnectionContext, SessionId, SessionRouter, Shard, ShardConfig};
use tokio::sync::watch;

use crate::tracker::{ConnectionGuard, ConnectionTracker};

/// Margin past the reconnect grace for connections to finish their close handshake.
const DRAIN_MARGIN: Duration = Duration::from_secs(3);

/// The front door of every gateway connection.
pub struct GatewayRouter {
    shards: Vec<Arc<Shard>>,
    live: Vec<ShardId>,
    config: Arc<ShardConfig>,
    tokens: TokenKey,
    shutdown: watch::Sender<bool>,
    connections: ConnectionTracker,
}

impl std::fmt::Debug for GatewayRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRouter")
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl GatewayRouter {
    /// A router over the given (live) shards. Connection settings (heartbeat, compression,
    /// queue sizes) and the token key come from the first shard; every shard of a process
    /// is built from the same configuration.
    ///
    /// # Panics
    /// When `shards` is empty: a gateway needs at least one shard.
    pub fn new(shards: Vec<Arc<Shard>>) -> Self {
        let first = shards
            .first()
            .expect("the gateway router needs at least one shard");
        let config = first.config().clone();
        let tokens = first.token_key().clone();
        let mut live: Vec<ShardId> = shards.iter().map(|s| s.id()).collect();
        live.sort_unstable();
        live.dedup();
        Self {
            shards,
            live,
            config,
            tokens,
            shutdown: watch::Sender::new(false),
            connections: ConnectionTracker::new(),
        }
    }

    /// The shards.
    pub fn shards(&self) -> &[Arc<Shard>] {
        &self.shards
    }

    /// Open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.connections.count()
    }

    /// Whether [`GatewayRouter::shutdown`] has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
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

    fn shard(&self, id: ShardId) -> Option<&Arc<Shard>> {
        self.shards.iter().find(|s| s.id() == id)
    }
}

impl SessionRouter for GatewayRouter {
    fn route_identify(&self, user: UserId) -> Option<Arc<Shard>> {
        shard_math::owner_shard(user, &self.live)
            .and_then(|id| self.shard(id))
            .cloned()
    }

    fn route_resume(&self, session: SessionId) -> Option<Arc<Shard>> {
        // The id names the shard that created the session; a session moved since is found by
        // asking the others.
        if let Some(shard) = self
            .shard(session.shard())
            .filter(|s| s.has_session(session))
        {
            return Some(shard.clone());
        }
        self.shards.iter().find(|s| s.has_session(session)).cloned()
    }
}
