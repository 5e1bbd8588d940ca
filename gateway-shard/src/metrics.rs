//! Metric names and the few helpers that record them (labels come from bounded sets only).

use concord_core::gateway::EventKind;

/// Gauge: live sessions, by shard.
pub(crate) const SESSIONS: &str = "concord_gateway_sessions";
/// Gauge: open sockets.
pub(crate) const CONNECTIONS: &str = "concord_gateway_connections";
/// Counter: dispatches sequenced for sessions, by event name.
pub(crate) const DISPATCHES: &str = "concord_gateway_dispatches_total";
/// Histogram: time from Identify to READY being queued.
pub(crate) const IDENTIFY_SECONDS: &str = "concord_gateway_identify_seconds";
/// Counter: closes, by code (client-initiated ones by `client_normal`/`client_other`/`dropped`).
pub(crate) const CLOSES: &str = "concord_gateway_close_total";
/// Histogram: time a bot Identify waited for its `max_concurrency` bucket.
pub(crate) const IDENTIFY_WAIT_SECONDS: &str = "concord_gateway_identify_wait_seconds";
/// Counter: interest-registry updates that failed (the slot's counts are off until retaken).
pub(crate) const INTEREST_ERRORS: &str = "concord_gateway_interest_errors_total";
/// Gauge: slots this process holds.
pub(crate) const SLOTS_OWNED: &str = "concord_gateway_slots_owned";
/// Counter: slots taken (`event="acquired"`), given up (`"released"`) or lost (`"fenced"`).
pub(crate) const SLOT_CHANGES: &str = "concord_gateway_slot_changes_total";

/// Gauge: open router ↔ shard links (each end counts its own).
pub(crate) const LINKS: &str = "concord_gateway_links";

/// Counts `count` dispatches of `kind`.
pub(crate) fn dispatched(kind: EventKind, count: u64) {
    if count > 0 {
        metrics::counter!(DISPATCHES, "event" => kind.name()).increment(count);
    }
}

/// Counts one close.
pub(crate) fn closed(code: &'static str) {
    metrics::counter!(CLOSES, "code" => code).increment(1);
}

/// Label for a server close code; unknown numbers share one label to keep the set bounded.
pub(crate) fn code_label(code: u16) -> &'static str {
    match code {
        4000 => "4000",
        4001 => "4001",
        4002 => "4002",
        4003 => "4003",
        4004 => "4004",
        4005 => "4005",
        4007 => "4007",
        4008 => "4008",
        4009 => "4009",
        4010 => "4010",
        4011 => "4011",
        4012 => "4012",
        4013 => "4013",
        4014 => "4014",
        _ => "other",
    }
}
