//! Session links: how a router serves a session whose slot another process holds.
//!
//! The router terminates the client's WebSocket (HELLO, compression, its own heartbeat deadline)
//! and opens one TCP connection per session to the shard process holding the slot. The router
//! writes `CONCORD-LINK/1 <ticket>\n`, where the ticket is a short-lived HS256 JWT that only
//! processes sharing the cluster secret can mint ([`LinkTickets`]); after that line both ends
//! speak WebSocket framing: the router forwards the client's payloads as they came, and the shard
//! runs the ordinary connection task (without HELLO, which the router already sent, and without
//! compression, which the router applies per client).

mod client;
mod server;
mod ticket;

pub use client::LinkInbound;
pub(crate) use client::RemoteLink;
pub use server::serve_links;
pub use ticket::LinkTickets;

/// First bytes a router sends on a session link, before the ticket.
pub(crate) const PREAMBLE: &[u8] = b"CONCORD-LINK/1 ";
/// Longest preamble line accepted.
pub(crate) const MAX_PREAMBLE: usize = 2048;
