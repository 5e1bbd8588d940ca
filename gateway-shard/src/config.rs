//! Shard and connection settings, with their defaults as named constants.

use std::time::Duration;

use crate::error::{Error, Result};

/// Interval advertised in HELLO.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(41_250);
/// Silence allowed before close 4009, as a multiple of the heartbeat interval.
pub const DEFAULT_HEARTBEAT_TIMEOUT_FACTOR: f64 = 1.5;
/// How long a session outlives its socket.
pub const DEFAULT_RESUME_WINDOW: Duration = Duration::from_secs(120);
/// Dispatches kept per session for replay on resume.
pub const DEFAULT_REPLAY_CAPACITY: usize = 2048;
/// Origin clients resume on (and may identify on).
pub const DEFAULT_RESUME_GATEWAY_URL: &str = "ws://127.0.0.1:8080";
/// Deflate window of `zlib-stream` (2^15 = 32 KiB, zlib's maximum).
pub const DEFAULT_ZLIB_WINDOW_BITS: u8 = 15;
/// Window of `zstd-stream` (2^11 = 2 KiB, a few messages back): ~40 KiB of context per
/// connection against ~245 KiB at 2^15, for 8 % less compression of gateway traffic (see
/// `compression` for the budget).
pub const DEFAULT_ZSTD_WINDOW_LOG: u32 = 11;
/// Frames queued per connection before it counts as a slow consumer.
pub const DEFAULT_OUTGOING_CAPACITY: usize = 1024;
/// Member count above which a guild is `large` (Discord's default).
pub const DEFAULT_LARGE_THRESHOLD: u32 = 50;
/// Time between op 7 and the server's own close on shutdown.
pub const DEFAULT_RECONNECT_GRACE: Duration = Duration::from_secs(2);

/// Identify buckets per bot, Discord's default for bots in fewer than 150 000 guilds.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 1;

/// Legal `zlib_window_bits`.
pub const ZLIB_WINDOW_BITS_RANGE: std::ops::RangeInclusive<u8> = 9..=15;
/// Legal `zstd_window_log` (zstd's minimum; the maximum keeps contexts small).
pub const ZSTD_WINDOW_LOG_RANGE: std::ops::RangeInclusive<u32> = 10..=22;

/// Settings of a shard and of the connections it serves.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// Interval advertised in HELLO.
    pub heartbeat_interval: Duration,
    /// Silence allowed before close 4009, in heartbeat intervals.
    pub heartbeat_timeout_factor: f64,
    /// `large_threshold` for sessions whose Identify has none (clients may pick 50..=250).
    pub large_threshold: u32,
    /// Frames queued per connection before it is closed (reconnectable) as a slow consumer.
    pub outgoing_capacity: usize,
    /// Time between op 7 and the server's own close when the router shuts down.
    pub reconnect_grace: Duration,
    /// Dispatches kept per session for replay.
    pub replay_capacity: usize,
    /// Bare origin sent as READY `resume_gateway_url`, e.g. `ws://127.0.0.1:8080`.
    pub resume_gateway_url: String,
    /// How long a session outlives its socket.
    pub resume_window: Duration,
    /// Deflate window of `zlib-stream`, 9..=15.
    pub zlib_window_bits: u8,
    /// Window log of `zstd-stream`, 10..=22.
    pub zstd_window_log: u32,
    /// Identify buckets per bot (`shard_id % max_concurrency`), as `/gateway/bot` reports.
    pub max_concurrency: u32,
    /// Where bot Identifies take their bucket; none = not enforced.
    pub identify_queue: crate::identify_queue::IdentifyQueueHandle,
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            heartbeat_timeout_factor: DEFAULT_HEARTBEAT_TIMEOUT_FACTOR,
            large_threshold: DEFAULT_LARGE_THRESHOLD,
            outgoing_capacity: DEFAULT_OUTGOING_CAPACITY,
            reconnect_grace: DEFAULT_RECONNECT_GRACE,
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
            resume_gateway_url: DEFAULT_RESUME_GATEWAY_URL.to_owned(),
            resume_window: DEFAULT_RESUME_WINDOW,
            zlib_window_bits: DEFAULT_ZLIB_WINDOW_BITS,
            zstd_window_log: DEFAULT_ZSTD_WINDOW_LOG,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            identify_queue: crate::identify_queue::IdentifyQueueHandle::default(),
        }
    }
}

impl ShardConfig {
    /// Silence after which a connection is closed with 4009.
    pub fn heartbeat_timeout(&self) -> Duration {
        self.heartbeat_interval
            .mul_f64(self.heartbeat_timeout_factor.max(1.0))
    }

    /// Checks every field; call once at startup.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, why: &'static str| Err(Error::Config { field, why });
        if self.heartbeat_interval.is_zero() {
            return bad("heartbeat_interval", "must be positive");
        }
        if !(self.heartbeat_timeout_factor.is_finite() && self.heartbeat_timeout_factor >= 1.0) {
            return bad("heartbeat_timeout_factor", "must be at least 1");
        }
        if self.replay_capacity == 0 {
            return bad("replay_capacity", "must be positive");
        }
        if self.outgoing_capacity == 0 {
            return bad("outgoing_capacity", "must be positive");
        }
        if !ZLIB_WINDOW_BITS_RANGE.contains(&self.zlib_window_bits) {
            return bad("zlib_window_bits", "must be within 9..=15");
        }
        if !ZSTD_WINDOW_LOG_RANGE.contains(&self.zstd_window_log) {
            return bad("zstd_window_log", "must be within 10..=22");
        }
        let url = self.resume_gateway_url.as_str();
        let origin = url
            .strip_prefix("ws://")
            .or_else(|| url.strip_prefix("wss://"));
        if origin.is_none_or(|rest| rest.is_empty() || rest.contains(['/', '?'])) {
            return bad(
                "resume_gateway_url",
                "must be a bare ws:// or wss:// origin",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_field() {
        let config = ShardConfig::default();
        config.validate().unwrap();
        assert_eq!(config.heartbeat_timeout(), Duration::from_millis(61_875));

        let bad = ShardConfig {
            zlib_window_bits: 16,
            ..ShardConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::Config {
                field: "zlib_window_bits",
                ..
            })
        ));
        let bad = ShardConfig {
            resume_gateway_url: "ws://host:1/".into(),
            ..ShardConfig::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::Config {
                field: "resume_gateway_url",
                ..
            })
        ));
        let bad = ShardConfig {
            heartbeat_timeout_factor: 0.5,
            ..ShardConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
