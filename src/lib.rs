//! Concord's all-in-one server: the router, N gateway shards and the API tier in one process,
//! sharing one port for REST and the gateway, with an admin listener beside it.
//!
//! - [`config`]: flags and `CONCORD_*` variables;
//! - [`server`]: composition of the all-in-one server, start and shutdown;
//! - [`role`]: the cluster roles (`api`, `router`, `shard`) and `cluster init|status`;
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz`;
//! - [`telemetry`]: tracing and the Prometheus recorder.

pub mod admin;
pub mod config;
pub mod role;
pub mod server;
pub mod telemetry;

pub use config::Config;
pub use server::Server;
