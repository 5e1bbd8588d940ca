//! Concord's all-in-one server: the router, N gateway shards and the API tier in one process,
//! sharing one port for REST and the gateway, with an admin listener beside it.
//!
//! - [`config`]: flags and `CONCORD_*` variables;
//! - [`server`]: composition of the components, start and shutdown;
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz`;
//! - [`telemetry`]: tracing and the Prometheus recorder.

pub mod admin;
pub mod config;
pub mod server;
pub mod telemetry;

pub use config::Config;
pub use server::Server;
