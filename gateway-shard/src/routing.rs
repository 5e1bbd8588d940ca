//! How a connection finds the host of its session, without this crate knowing the router.

use std::sync::Arc;

use concord_core::id::UserId;

use crate::link::LinkClient;
use crate::session::SessionId;
use crate::shard::Shard;

/// Where a session lives.
#[derive(Debug, Clone)]
pub enum SessionHost {
    /// A slot's shard in this process.
    Local(Arc<Shard>),
    /// A slot held by another process, reached over this router's link to it.
    Remote(Arc<LinkClient>),
}

/// Picks session hosts for connections; implemented by the router (which knows the slot table)
/// and by a shard node (for the links routers open to it).
pub trait SessionRouter: Send + Sync {
    /// Host of a new session of `user`; `None` when no process holds the user's slot.
    fn route_identify(&self, user: UserId) -> Option<SessionHost>;
    /// Host of `session`; `None` when it is unknown (the client gets op 9).
    fn route_resume(&self, session: SessionId) -> Option<SessionHost>;
}
