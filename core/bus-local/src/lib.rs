//! In-process implementations of the event-bus and topology ports, used when the API, the router
//! and every slot's shard live in one process (all-in-one mode).
//!
//! - [`LocalBus`]: a bounded channel per slot, so a stalled shard pushes back on publishers
//!   instead of growing memory without limit;
//! - [`LocalTopology`]: members, slot leases with fencing epochs and the guild interest counts,
//!   in memory, with the same semantics as the Redis implementation.

mod bus;
mod topology;

pub use bus::{LocalBus, DEFAULT_CHANNEL_CAPACITY};
pub use topology::LocalTopology;
