//! Concord's gateway router: the one public WebSocket entry point (also `resume_gateway_url`).
//!
//! [`serve_upgrade`] upgrades any request it is given, whatever the path and query, and runs
//! the connection; the connection asks the [`GatewayRouter`] (through
//! [`concord_gateway_shard::SessionRouter`]) which shard owns a new session or holds a resumed
//! one. [`GatewayRouter::shutdown`] tells every client to reconnect and resume.
//!
//! - [`router`]: [`GatewayRouter`], shard selection and shutdown;
//! - [`upgrade`]: the axum entry point;
//! - `query`: the connection URL's query parameters;
//! - `tracker`: the count of open connections, for draining;
//! - [`error`]: the HTTP answers to requests that cannot be upgraded.

pub mod error;
mod query;
pub mod router;
mod tracker;
pub mod upgrade;

pub use error::Error;
pub use router::{GatewayRouter, RouterParts};
pub use upgrade::serve_upgrade;
