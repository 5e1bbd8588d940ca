//! Gateway integration tests over real sockets: an axum server whose fallback is
//! `serve_upgrade`, real shards on a `LocalBus`, a real SQLite or PostgreSQL store, and a
//! tokio-tungstenite client.

mod common;

/// Shards in this process, as in all-in-one mode (see `linked/main.rs` for the other way).
pub const LINKED: bool = false;

mod delivery;
mod handshake;
mod postgres;
mod resume;
mod shutdown;
mod transport;
