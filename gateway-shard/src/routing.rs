//! How a connection finds the shard for its session, without this crate knowing the router.

use std::sync::Arc;

use concord_core::id::UserId;

use crate::session::SessionId;
use crate::shard::Shard;

/// Picks shards for connections; implemented by the router, which knows the live shard set.
pub trait SessionRouter: Send + Sync {
    /// Shard that should host a new session of `user`; `None` when no shard is live.
    fn route_identify(&self, user: UserId) -> Option<Arc<Shard>>;
    /// Shard holding `session`; `None` when no shard knows it (the client gets op 9).
    fn route_resume(&self, session: SessionId) -> Option<Arc<Shard>>;
}
