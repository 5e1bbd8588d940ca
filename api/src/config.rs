//! Settings of the REST tier. The composition layer fills [`ApiConfig`] from its own CLI/env
//! configuration; tests build it directly.

use std::time::Duration;

/// Requests allowed per route bucket and window when not configured.
pub const DEFAULT_ROUTE_LIMIT: u32 = 50;
/// Length of a route bucket's window when not configured.
pub const DEFAULT_ROUTE_WINDOW: Duration = Duration::from_secs(1);
/// Requests allowed per token (or IP) per second across all routes when not configured.
pub const DEFAULT_GLOBAL_LIMIT_PER_SECOND: u32 = 50;
/// Shard count advertised by `/gateway/bot` when not configured.
pub const DEFAULT_SHARD_COUNT: u32 = 1;

/// Argon2id memory cost in KiB (OWASP's minimum recommendation for Argon2id).
pub const DEFAULT_ARGON2_MEMORY_KIB: u32 = 19_456;
/// Argon2id passes.
pub const DEFAULT_ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes.
pub const DEFAULT_ARGON2_PARALLELISM: u32 = 1;

/// Configuration of the REST tier.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Bare gateway origin (`ws://host:port`, no path or query) returned by `/gateway` and
    /// `/gateway/bot`; clients append `?v=10…` themselves.
    pub gateway_url: String,
    /// New applications get every privileged-intent flag when true.
    pub privileged_intents_by_default: bool,
    /// HTTP rate limits.
    pub rate_limits: RateLimitConfig,
    /// Password hashing cost.
    pub argon2: Argon2Params,
    /// `shards` advertised by `/gateway/bot`.
    pub shard_count: u32,
    /// `session_start_limit.max_concurrency` of `/gateway/bot`: identify buckets per bot, as the
    /// gateway enforces them.
    pub max_concurrency: u32,
}

impl ApiConfig {
    /// Configuration with production defaults for everything but the gateway URL.
    pub fn new(gateway_url: impl Into<String>) -> Self {
        Self {
            gateway_url: gateway_url.into(),
            privileged_intents_by_default: false,
            rate_limits: RateLimitConfig::default(),
            argon2: Argon2Params::default(),
            shard_count: DEFAULT_SHARD_COUNT,
            max_concurrency: 1,
        }
    }
}

/// HTTP rate limits, applied in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests per window per (caller, method, route template, top-level resource id).
    pub route_limit: u32,
    /// Window of a route bucket.
    pub route_window: Duration,
    /// Requests per second per caller across every route.
    pub global_per_second: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            route_limit: DEFAULT_ROUTE_LIMIT,
            route_window: DEFAULT_ROUTE_WINDOW,
            global_per_second: DEFAULT_GLOBAL_LIMIT_PER_SECOND,
        }
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB (at least 8 × `parallelism`).
    pub memory_kib: u32,
    /// Number of passes (at least 1).
    pub iterations: u32,
    /// Lanes (at least 1).
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: DEFAULT_ARGON2_MEMORY_KIB,
            iterations: DEFAULT_ARGON2_ITERATIONS,
            parallelism: DEFAULT_ARGON2_PARALLELISM,
        }
    }
}
