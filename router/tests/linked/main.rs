//! The gateway scenarios again, with the router and the shards connected as in cluster mode:
//! the shard node serves a link listener, the router holds no slot and reaches every session
//! over its multiplexed link. Same sockets, same store, same assertions.

#[path = "../common.rs"]
mod common;

/// Sessions live behind a link.
pub const LINKED: bool = true;

#[path = "../delivery.rs"]
mod delivery;
#[path = "../handshake.rs"]
mod handshake;
#[path = "../resume.rs"]
mod resume;
#[path = "../shutdown.rs"]
mod shutdown;
#[path = "../transport.rs"]
mod transport;
