//! Conformance suite for `concord_core::repo::Store`: every test runs against a fresh SQLite file
//! and a fresh PostgreSQL database.

mod common;

mod applications;
mod channels;
mod connect;
mod guilds;
mod invites;
mod members;
mod messages;
mod reactions;
mod tokens;
mod users;
