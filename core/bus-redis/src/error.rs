//! The crate's error type.

use std::time::Duration;

use concord_core::bus::BusError;
use concord_core::topology::TopologyError;

/// Result of a call into this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Redis adapter failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Redis URL does not parse; `url` has its password redacted.
    #[error("invalid Redis URL {url:?}: {reason}")]
    InvalidUrl {
        /// Offending URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting to (or the first PING of) Redis failed.
    #[error("cannot connect to Redis at {url}: {source}")]
    Connect {
        /// Target URL, password redacted.
        url: String,
        /// Driver error.
        #[source]
        source: redis::RedisError,
    },
    /// Redis did not answer the connection attempt in time.
    #[error("cannot connect to Redis at {url}: no answer within {timeout:?}")]
    ConnectTimeout {
        /// Target URL, password redacted.
        url: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// A command failed (transport or server error).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stored value is not valid JSON of the expected shape.
    #[error("malformed JSON in Redis: {0}")]
    Json(#[from] concord_core::json::JsonError),
    /// A bus entry does not decode.
    #[error("malformed bus entry: {0}")]
    Decode(String),
    /// Redis answered something this crate does not expect.
    #[error("unexpected Redis reply: {0}")]
    Reply(String),
    /// A slot id is not below the slot count.
    #[error("slot {slot} out of range: the cluster has {slots} slots")]
    SlotOutOfRange {
        /// Requested slot.
        slot: u16,
        /// Slot count.
        slots: u16,
    },
    /// A slot count outside `1..=MAX_SLOT_COUNT`.
    #[error("invalid slot count {0}: must be between 1 and {max}", max = concord_core::topology::MAX_SLOT_COUNT)]
    InvalidSlotCount(u16),
    /// Every snowflake node id is leased by another process.
    #[error("no free snowflake node id: all {0} are leased")]
    NoFreeNodeId(u16),
}

impl From<Error> for BusError {
    fn from(e: Error) -> Self {
        BusError(e.to_string())
    }
}

impl From<Error> for TopologyError {
    fn from(e: Error) -> Self {
        TopologyError(e.to_string())
    }
}
