//! Wall-clock time as unix nanoseconds: the one clock senders and receivers share.
//!
//! Delivery latency is the receiver's clock minus the sender's, so both must run on the same
//! machine (the parent posts, its workers receive).

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the unix epoch (0 if the clock is before it).
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Microseconds from `earlier` to `later` (both unix nanoseconds), 0 if `later` is earlier.
pub fn micros_between(earlier: u64, later: u64) -> u64 {
    later.saturating_sub(earlier) / 1_000
}
