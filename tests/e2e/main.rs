//! End-to-end tests of the all-in-one server over real sockets: REST through reqwest, the
//! gateway through tokio-tungstenite and twilight, responses checked against Discord's OpenAPI.

mod cluster;
mod common;
mod flow;
mod openapi;
mod twilight_client;
