//! Concord's pure domain crate: everything the API, gateway shards and router agree on.
//!
//! - [`id`] typed snowflake ids and [`snowflake`] their generator;
//! - [`permissions`] Discord's permission bits and the one function that computes them;
//! - [`model`] REST/gateway wire objects; [`gateway`] opcodes, close codes, intents, payloads;
//! - [`error_code`] the Discord JSON error-code table;
//! - [`token`] client token minting and verification;
//! - [`repo`], [`bus`] and [`topology`] the ports that storage, event-bus and cluster adapters
//!   implement.
//!
//! This crate performs no I/O: no sockets, no database, no async runtime.

#![warn(missing_docs)]

pub mod bus;
pub mod error_code;
pub mod gateway;
pub mod id;
pub mod json;
pub mod model;
pub mod permissions;
pub mod repo;
pub mod shard_math;
pub mod snowflake;
pub mod timestamp;
pub mod token;
pub mod topology;
