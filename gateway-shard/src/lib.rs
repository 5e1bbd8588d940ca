//! Concord's gateway shard: owns the WebSocket sessions of one hash slice of users.
//!
//! A [`Shard`] consumes its event-bus channel and fans each dispatch out to its local sessions,
//! filtering by intents, VIEW_CHANNEL (with each member's roles) and MESSAGE_CONTENT, framing
//! the once-encoded event per session with only the sequence number added. Sessions keep a
//! bounded replay buffer and outlive their socket for the resume window.
//!
//! - [`shard`]: one slot's shard, its bus consumer and reaper;
//! - [`node`]: a process's membership and the slots it holds ([`ShardNode`]);
//! - [`link`]: multiplexed links between a router and the shard processes holding slots;
//! - [`connection`]: the per-socket task (HELLO, heartbeats, limits, Identify/Resume);
//! - `session`: sequence numbers, replay, subscriptions, per-recipient filtering;
//! - `op`: Identify, Resume and Request Guild Members;
//! - [`compression`]: `zlib-stream` / `zstd-stream` transport contexts and their memory budget;
//! - [`routing`]: the [`SessionRouter`] port and [`SessionHost`] handles;
//! - [`identify_queue`]: bot identify concurrency (`max_concurrency` buckets);
//! - [`config`]: [`ShardConfig`] and its defaults; [`error`]: [`Error`] → close codes.

pub mod compression;
pub mod config;
pub mod connection;
pub mod error;
mod frame;
mod guild_create;
pub mod identify_queue;
pub mod link;
mod metrics;
pub mod node;
mod op;
pub mod routing;
mod session;
pub mod shard;
mod table;
mod task;

pub use compression::Compression;
pub use config::ShardConfig;
pub use connection::{serve, ConnectParams, ConnectionContext};
pub use error::{Error, Result};
pub use identify_queue::{IdentifyQueue, IdentifyQueueHandle};
pub use link::{serve_links, LinkClient, LinkPool, LinkTickets};
pub use node::{NodeConfig, ShardNode};
pub use routing::{SessionHost, SessionRouter};
pub use session::SessionId;
pub use shard::Shard;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn shared<T: Send + Sync + 'static>() {}
    fn spawnable<T: std::future::Future + Send + 'static>(_: T) {}

    #[test]
    fn shared_types_cross_tasks() {
        shared::<Shard>();
        shared::<ShardConfig>();
        shared::<Error>();
        shared::<ConnectionContext>();
    }

    /// Compiled, never run: the shard loop and the connection task must be spawnable.
    #[allow(dead_code)]
    fn futures_are_spawnable(
        shard: Arc<Shard>,
        ws: fastwebsockets::WebSocket<tokio::net::TcpStream>,
        context: ConnectionContext,
        subscription: Box<dyn concord_core::bus::Subscription>,
    ) {
        spawnable(shard.run(subscription, std::future::pending()));
        spawnable(serve(ws, ConnectParams::default(), context));
    }
}
