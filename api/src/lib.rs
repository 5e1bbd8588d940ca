//! Concord's REST tier: Discord HTTP API v10 (also served as v9) over axum.
//!
//! Every handler follows one shape: validate the request, check permissions with
//! `concord_core::permissions::compute`, call the repository, publish the gateway event(s),
//! respond. Modules:
//!
//! - `http` assembles the [`router`]; resource modules (`auth`, `applications`, `users`,
//!   `gateway`, `guilds`, `channels`, `messages`, `reactions`, `invites`) each open with their
//!   route table;
//! - [`error`] is the one error type and its mapping to Discord's error bodies;
//! - [`extract`] holds the token and body/path/query extractors;
//! - `access` loads permission contexts, `events` publishes dispatches to the bus,
//!   `ratelimit` and `telemetry` wrap every request;
//! - `token_cache` and `scope_cache` (over `ttl_map`) spare the hot paths store round trips
//!   for token liveness and permission contexts; every write route invalidates them.

mod access;
mod applications;
mod auth;
mod channels;
pub mod config;
pub mod error;
mod events;
pub mod extract;
mod gateway;
mod guilds;
mod http;
pub mod invalidation;
mod invites;
mod messages;
mod password;
mod ratelimit;
mod reactions;
mod scope_cache;
mod state;
mod telemetry;
mod token_cache;
mod ttl_map;
mod users;
mod validate;

pub use config::{ApiConfig, Argon2Params, RateLimitConfig};
pub use error::{Error, Result};
pub use http::router;
pub use ratelimit::SharedWindows;
pub use state::AppState;
