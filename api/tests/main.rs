//! Integration tests of the REST tier: the real router over real SQLite and PostgreSQL stores
//! and the in-process bus.

mod common;

mod applications;
mod auth;
mod channels;
mod gateway;
mod guilds;
mod invalidation;
mod invites;
mod messages;
mod protocol;
mod reactions;
mod users;
