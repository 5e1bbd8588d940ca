//! Redis adapters for Concord's cluster mode (see `CLUSTER.md`): the [`EventBus`] over one
//! Redis Stream per slot, the [`Topology`] (membership, fenced slot leases, guild interest) and
//! the cluster-wide helpers the API and router share. Works on a standalone Redis and on a Redis
//! Cluster alike.
//!
//! - [`url`] parses `redis://` and `redis+cluster://` URLs;
//! - [`conn`] holds [`Redis`], the connection handle over either deployment;
//! - [`keys`] names every key and computes the per-slot hash tags;
//! - [`codec`] is the binary encoding of bus messages;
//! - [`bus`] is [`RedisBus`] and its subscriptions;
//! - [`topology`] is [`RedisTopology`];
//! - [`extras`] holds snowflake node-id leases, rate windows and the identify gate.
//!
//! [`EventBus`]: concord_core::bus::EventBus
//! [`Topology`]: concord_core::topology::Topology

#![warn(missing_docs)]

pub mod bus;
pub mod codec;
pub mod conn;
mod error;
pub mod extras;
pub mod keys;
pub mod topology;
pub mod url;

pub use bus::{LogSubscription, NoticeSubscription, RedisBus};
pub use conn::Redis;
pub use error::{Error, Result};
pub use extras::{IdentifyGate, RateWindow, SnowflakeLease};
pub use keys::Keys;
pub use topology::RedisTopology;
pub use url::RedisTarget;

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_across_tasks<T: Send + Sync>() {}
    fn moved_into_a_task<T: Send>() {}

    #[test]
    fn handles_are_send_and_sync() {
        shared_across_tasks::<Redis>();
        shared_across_tasks::<RedisBus>();
        shared_across_tasks::<RedisTopology>();
        shared_across_tasks::<SnowflakeLease>();
        shared_across_tasks::<RateWindow>();
        shared_across_tasks::<IdentifyGate>();
        shared_across_tasks::<Error>();
        moved_into_a_task::<LogSubscription>();
        moved_into_a_task::<NoticeSubscription>();
    }
}
