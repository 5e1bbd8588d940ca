//! Cluster-wide helpers the API and router share: snowflake node-id leases, fixed-window rate
//! counters and the identify-concurrency gate.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use crate::conn::Redis;
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::topology::millis;

/// Number of snowflake node ids (10 bits: worker << 5 | process).
pub const SNOWFLAKE_NODE_IDS: u16 = 1024;

/// KEYS: lease. ARGV: instance, ttl ms. Takes a free id, or refreshes our own.
static TAKE_NODE_ID: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
",
    )
});

/// KEYS: lease. ARGV: instance, ttl ms.
static RENEW_NODE_ID: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// KEYS: lease. ARGV: instance.
static RELEASE_NODE_ID: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// KEYS: window counter. ARGV: limit, window ms. Returns {used, ms until reset}; hits past the
/// limit are not counted, so `used` stops at limit + 1.
static RATE_HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local limit = tonumber(ARGV[1])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used <= limit then
  used = redis.call('INCR', KEYS[1])
  if used == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {used, ttl}
",
    )
});

/// KEYS: bucket. ARGV: ttl ms. Returns -1 when taken, else the ms until the bucket frees.
static IDENTIFY_TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return -1 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return tonumber(ARGV[1])
end
return ttl
",
    )
});

/// Snowflake node-id leases (`<p>:{meta}:sf:<n>` = instance, with a TTL): each API replica
/// holds one id so replicas mint distinct snowflakes.
#[derive(Debug, Clone)]
pub struct SnowflakeLease {
    keys: Keys,
    redis: Redis,
}

impl SnowflakeLease {
    /// Leases over `redis`.
    pub fn new(redis: Redis) -> Self {
        Self {
            keys: Keys::new(redis.prefix(), 0),
            redis,
        }
    }

    /// Leases the lowest free node id for `instance` (a random per-process id) for `ttl`; an id
    /// `instance` already holds counts as free.
    ///
    /// # Errors
    /// [`Error::NoFreeNodeId`] when all [`SNOWFLAKE_NODE_IDS`] are held, or [`Error::Redis`].
    pub async fn lease_node_id(&self, instance: &str, ttl: Duration) -> Result<u16> {
        for node_id in 0..SNOWFLAKE_NODE_IDS {
            let mut conn = self.redis.clone();
            let taken: i64 = TAKE_NODE_ID
                .key(self.keys.snowflake(node_id))
                .arg(instance)
                .arg(millis(ttl))
                .invoke_async(&mut conn)
                .await?;
            if taken == 1 {
                return Ok(node_id);
            }
        }
        Err(Error::NoFreeNodeId(SNOWFLAKE_NODE_IDS))
    }

    /// Extends `instance`'s lease on `node_id`; `false` when it expired or another instance took
    /// it, in which case the caller must stop minting with that id.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn renew(&self, node_id: u16, instance: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.redis.clone();
        let renewed: i64 = RENEW_NODE_ID
            .key(self.keys.snowflake(node_id))
            .arg(instance)
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(renewed == 1)
    }

    /// Gives `node_id` up if `instance` still holds it.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn release(&self, node_id: u16, instance: &str) -> Result<()> {
        let mut conn = self.redis.clone();
        let _: i64 = RELEASE_NODE_ID
            .key(self.keys.snowflake(node_id))
            .arg(instance)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}

/// Fixed-window rate counters shared by every replica (`<p>:{rl:<bucket>}`).
#[derive(Debug, Clone)]
pub struct RateWindow {
    keys: Keys,
    redis: Redis,
}

impl RateWindow {
    /// Counters over `redis`.
    pub fn new(redis: Redis) -> Self {
        Self {
            keys: Keys::new(redis.prefix(), 0),
            redis,
        }
    }

    /// Counts one hit on `bucket`, whose window of `window` starts at its first hit. Returns the
    /// hits in the window including this one (the hit is allowed when that is at most `limit`;
    /// hits past the limit are not counted, so the value stops at `limit + 1`) and the time
    /// until the window resets.
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn hit(&self, bucket: &str, limit: u64, window: Duration) -> Result<(u64, Duration)> {
        let mut conn = self.redis.clone();
        let (used, reset_ms): (u64, u64) = RATE_HIT
            .key(self.keys.rate(bucket))
            .arg(limit)
            .arg(millis(window))
            .invoke_async(&mut conn)
            .await?;
        Ok((used, Duration::from_millis(reset_ms)))
    }
}

/// The identify-concurrency gate (`<p>:{idq:<app>}:<bucket>`): one identify per bucket per
/// interval, cluster-wide.
#[derive(Debug, Clone)]
pub struct IdentifyGate {
    keys: Keys,
    redis: Redis,
}

impl IdentifyGate {
    /// A gate over `redis`.
    pub fn new(redis: Redis) -> Self {
        Self {
            keys: Keys::new(redis.prefix(), 0),
            redis,
        }
    }

    /// Takes `bucket` of application `app` for `ttl`: `None` when taken (identify now), else
    /// how long until it frees (wait, then try again).
    ///
    /// # Errors
    /// [`Error::Redis`].
    pub async fn try_take(&self, app: u64, bucket: u32, ttl: Duration) -> Result<Option<Duration>> {
        let mut conn = self.redis.clone();
        let wait_ms: i64 = IDENTIFY_TAKE
            .key(self.keys.identify(app, bucket))
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(u64::try_from(wait_ms).ok().map(Duration::from_millis))
    }
}
