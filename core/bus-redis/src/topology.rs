//! [`RedisTopology`]: membership, fenced slot leases and guild interest in Redis.
//!
//! - Member records live at `<p>:{meta}:m:<node>` with a TTL, and their ids in
//!   `<p>:{meta}:members`, both written by one script so a record never exists unlisted.
//! - A slot lease is `<p>:{<tag>}:lease` = `<node>:<epoch>` with a TTL; the epoch comes from
//!   `INCR <p>:{<tag>}:epoch` in the same script, so every acquisition gets a larger one.
//! - Interest is a hash per guild, `<p>:int:{g<id>}`, field = slot, value = session count; a slot
//!   remembers the guilds it counted in `<p>:{<tag>}:guilds` so a new owner can reset them.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use concord_core::id::GuildId;
use concord_core::json;
use concord_core::topology::{
    ClusterConfig, Member, NodeId, SlotId, SlotLease, SlotTable, Topology, TopologyResult,
    MAX_SLOT_COUNT,
};
use futures_util::future::{join_all, try_join_all};
use redis::Script;

use crate::conn::Redis;
use crate::error::{Error, Result};
use crate::keys::Keys;

/// KEYS: member record, members set. ARGV: record JSON, instance, ttl ms, node.
/// Registers unless another instance holds the node id; the same instance overwrites.
static REGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if current then
  local ok, record = pcall(cjson.decode, current)
  if not ok or type(record) ~= 'table' or record['instance'] ~= ARGV[2] then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
",
    )
});

/// KEYS: member record, members set. ARGV: record JSON, instance, ttl ms, node.
/// Renews only a live record of the same instance.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, record = pcall(cjson.decode, current)
if not ok or type(record) ~= 'table' or record['instance'] ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
",
    )
});

/// KEYS: member record, members set. ARGV: instance, node.
static DEREGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, record = pcall(cjson.decode, current)
if not ok or type(record) ~= 'table' or record['instance'] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
",
    )
});

/// KEYS: members set, then the records of the listed nodes. ARGV: those nodes.
/// Drops ids whose record is (still) gone; a node that re-registered meanwhile stays.
static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local removed = 0
for i, node in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then
    removed = removed + redis.call('SREM', KEYS[1], node)
  end
end
return removed
",
    )
});

/// KEYS: lease, epoch. ARGV: node, ttl ms. Returns the new epoch, or nil when held.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. epoch, 'PX', ARGV[2])
return epoch
",
    )
});

/// KEYS: lease. ARGV: `<node>:<epoch>`, ttl ms.
static RENEW_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// KEYS: lease. ARGV: `<node>:<epoch>`.
static RELEASE_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// KEYS: interest hash. ARGV: slot, delta. Counts that reach zero (or below) are removed.
static CHANGE_INTEREST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local count = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if count <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return count
",
    )
});

/// The Redis topology.
#[derive(Debug, Clone)]
pub struct RedisTopology {
    keys: Keys,
    redis: Redis,
}

impl RedisTopology {
    /// A topology over `redis` for a cluster of `slot_count` slots.
    ///
    /// # Errors
    /// [`Error::InvalidSlotCount`] when `slot_count` is 0 or above [`MAX_SLOT_COUNT`].
    pub fn new(redis: Redis, slot_count: u16) -> Result<Self> {
        check_slot_count(slot_count)?;
        Ok(Self {
            keys: Keys::new(redis.prefix(), slot_count),
            redis,
        })
    }

    /// Writes the cluster configuration (`SET NX`) with `slots` slots, unless one exists;
    /// returns the configuration in force, which the caller compares with its own.
    ///
    /// # Errors
    /// [`Error::InvalidSlotCount`], [`Error::Redis`], or [`Error::Json`] for a stored
    /// configuration that does not parse.
    pub async fn init_cluster(redis: &Redis, slots: u16) -> Result<ClusterConfig> {
        check_slot_count(slots)?;
        let config = ClusterConfig {
            created_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            slots,
        };
        let mut set = redis::cmd("SET");
        set.arg(Keys::new(redis.prefix(), 0).config())
            .arg(json::to_vec(&config))
            .arg("NX");
        let written: Option<String> = redis.query(&set).await?;
        if written.is_some() {
            return Ok(config);
        }
        Self::cluster_config(redis)
            .await?
            .ok_or_else(|| Error::Reply("cluster config vanished after SET NX".to_owned()))
    }

    /// The cluster configuration, if the cluster was initialised.
    ///
    /// # Errors
    /// [`Error::Redis`], or [`Error::Json`] for a stored configuration that does not parse.
    pub async fn cluster_config(redis: &Redis) -> Result<Option<ClusterConfig>> {
        let mut get = redis::cmd("GET");
        get.arg(Keys::new(redis.prefix(), 0).config());
        let stored: Option<Vec<u8>> = redis.query(&get).await?;
        stored
            .map(|mut bytes| json::from_slice(&mut bytes).map_err(Error::from))
            .transpose()
    }

    /// Key names this topology uses.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    async fn member_script(&self, script: &Script, member: &Member, ttl: Duration) -> Result<bool> {
        let mut conn = self.redis.clone();
        let done: i64 = script
            .key(self.keys.member(member.node))
            .key(self.keys.members())
            .arg(json::to_vec(member))
            .arg(&member.instance)
            .arg(millis(ttl))
            .arg(member.node)
            .invoke_async(&mut conn)
            .await?;
        Ok(done == 1)
    }

    async fn members(&self) -> Result<Vec<Member>> {
        let mut smembers = redis::cmd("SMEMBERS");
        smembers.arg(self.keys.members());
        let mut nodes: Vec<NodeId> = self.redis.query(&smembers).await?;
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        nodes.sort_unstable();
        let mut mget = redis::cmd("MGET");
        for node in &nodes {
            mget.arg(self.keys.member(*node));
        }
        let records: Vec<Option<Vec<u8>>> = self.redis.query(&mget).await?;
        let mut members = Vec::with_capacity(nodes.len());
        let mut gone = Vec::new();
        for (node, record) in nodes.into_iter().zip(records) {
            match record.map(|mut r| json::from_slice::<Member>(&mut r)) {
                Some(Ok(member)) => members.push(member),
                Some(Err(error)) => {
                    tracing::warn!(node, %error, "skipping malformed member record");
                }
                None => gone.push(node),
            }
        }
        if !gone.is_empty() {
            let mut conn = self.redis.clone();
            let mut invocation = PRUNE.key(self.keys.members());
            for node in &gone {
                invocation.key(self.keys.member(*node)).arg(*node);
            }
            let _: i64 = invocation.invoke_async(&mut conn).await?;
        }
        Ok(members)
    }

    async fn owners(&self) -> Result<Vec<Option<SlotLease>>> {
        let gets = (0..self.keys.slot_count()).map(|slot| {
            let mut get = redis::cmd("GET");
            get.arg(self.keys.lease(slot));
            async move { self.redis.query::<Option<String>>(&get).await }
        });
        let leases = try_join_all(gets).await?;
        Ok(leases
            .into_iter()
            .map(|lease| lease.as_deref().and_then(parse_lease))
            .collect())
    }
}

#[async_trait]
impl Topology for RedisTopology {
    fn slot_count(&self) -> u16 {
        self.keys.slot_count()
    }

    async fn register(&self, member: &Member, ttl: Duration) -> TopologyResult<bool> {
        Ok(self.member_script(&REGISTER, member, ttl).await?)
    }

    async fn renew(&self, member: &Member, ttl: Duration) -> TopologyResult<bool> {
        Ok(self.member_script(&RENEW, member, ttl).await?)
    }

    async fn deregister(&self, member: &Member) -> TopologyResult<()> {
        let mut conn = self.redis.clone();
        let _: i64 = DEREGISTER
            .key(self.keys.member(member.node))
            .key(self.keys.members())
            .arg(&member.instance)
            .arg(member.node)
            .invoke_async(&mut conn)
            .await
            .map_err(Error::from)?;
        Ok(())
    }

    async fn acquire_slot(
        &self,
        slot: SlotId,
        node: NodeId,
        ttl: Duration,
    ) -> TopologyResult<Option<SlotLease>> {
        self.keys.check_slot(slot)?;
        let mut conn = self.redis.clone();
        let epoch: Option<u64> = ACQUIRE
            .key(self.keys.lease(slot))
            .key(self.keys.epoch(slot))
            .arg(node)
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(Error::from)?;
        Ok(epoch.map(|epoch| SlotLease { epoch, node }))
    }

    async fn renew_slot(
        &self,
        slot: SlotId,
        lease: SlotLease,
        ttl: Duration,
    ) -> TopologyResult<bool> {
        self.keys.check_slot(slot)?;
        let mut conn = self.redis.clone();
        let renewed: i64 = RENEW_SLOT
            .key(self.keys.lease(slot))
            .arg(lease_value(lease))
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(Error::from)?;
        Ok(renewed == 1)
    }

    async fn release_slot(&self, slot: SlotId, lease: SlotLease) -> TopologyResult<()> {
        self.keys.check_slot(slot)?;
        let mut conn = self.redis.clone();
        let _: i64 = RELEASE_SLOT
            .key(self.keys.lease(slot))
            .arg(lease_value(lease))
            .invoke_async(&mut conn)
            .await
            .map_err(Error::from)?;
        Ok(())
    }

    async fn table(&self) -> TopologyResult<SlotTable> {
        let (members, owners) = tokio::try_join!(self.members(), self.owners())?;
        Ok(SlotTable { members, owners })
    }

    async fn interested_slots(&self, guild: GuildId) -> TopologyResult<Vec<SlotId>> {
        let mut hgetall = redis::cmd("HGETALL");
        hgetall.arg(self.keys.interest(guild));
        // Only numeric fields are slot counts; anything else (join holds) is not ours to read.
        let fields: HashMap<String, String> = self.redis.query(&hgetall).await?;
        let mut slots: Vec<SlotId> = fields
            .into_iter()
            .filter(|(_, count)| count.parse::<i64>().is_ok_and(|c| c > 0))
            .filter_map(|(field, _)| field.parse().ok())
            // A slot beyond the count can only be a leftover; publishing to it would fail.
            .filter(|slot| *slot < self.keys.slot_count())
            .collect();
        slots.sort_unstable();
        Ok(slots)
    }

    async fn change_interest(
        &self,
        slot: SlotId,
        changes: &[(GuildId, i64)],
    ) -> TopologyResult<()> {
        self.keys.check_slot(slot)?;
        let updates = changes
            .iter()
            .filter(|(_, delta)| *delta != 0)
            .map(|(guild, delta)| {
                let mut invocation = CHANGE_INTEREST.key(self.keys.interest(*guild));
                invocation.arg(slot).arg(*delta);
                let mut conn = self.redis.clone();
                async move { invocation.invoke_async::<i64>(&mut conn).await }
            });
        let mut sadd = redis::cmd("SADD");
        sadd.arg(self.keys.guilds(slot));
        let mut added = false;
        for (guild, _) in changes.iter().filter(|(_, delta)| *delta > 0) {
            sadd.arg(guild.get());
            added = true;
        }
        let remember = async {
            if added {
                self.redis.query::<i64>(&sadd).await.map(drop)
            } else {
                Ok(())
            }
        };
        let (results, remembered) = tokio::join!(join_all(updates), remember);
        for result in results {
            result.map_err(Error::from)?;
        }
        remembered?;
        Ok(())
    }

    async fn report_position(&self, slot: SlotId, position: &str) -> TopologyResult<()> {
        self.keys.check_slot(slot)?;
        let mut set = redis::cmd("SET");
        // Expires with its owner: a slot nobody reads shows no position, not a stale one.
        set.arg(self.keys.applied(slot))
            .arg(position)
            .arg("PX")
            .arg(APPLIED_TTL_MS);
        self.redis.query::<()>(&set).await?;
        Ok(())
    }

    async fn reset_slot_interest(&self, slot: SlotId) -> TopologyResult<()> {
        self.keys.check_slot(slot)?;
        let mut smembers = redis::cmd("SMEMBERS");
        smembers.arg(self.keys.guilds(slot));
        let guilds: Vec<u64> = self.redis.query(&smembers).await?;
        let deletes = guilds
            .into_iter()
            .filter_map(GuildId::new_checked)
            .map(|guild| {
                let mut hdel = redis::cmd("HDEL");
                hdel.arg(self.keys.interest(guild)).arg(slot);
                async move { self.redis.query::<i64>(&hdel).await }
            });
        try_join_all(deletes).await?;
        let mut del = redis::cmd("DEL");
        del.arg(self.keys.guilds(slot));
        self.redis.query::<i64>(&del).await?;
        Ok(())
    }
}

/// Lifetime of a reported read position, in milliseconds.
const APPLIED_TTL_MS: u64 = 10_000;

fn check_slot_count(slots: u16) -> Result<()> {
    if slots == 0 || slots > MAX_SLOT_COUNT {
        Err(Error::InvalidSlotCount(slots))
    } else {
        Ok(())
    }
}

/// A TTL in whole milliseconds, at least 1 (Redis refuses `PX 0`).
pub(crate) fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn lease_value(lease: SlotLease) -> String {
    format!("{}:{}", lease.node, lease.epoch)
}

fn parse_lease(value: &str) -> Option<SlotLease> {
    let (node, epoch) = value.split_once(':')?;
    Some(SlotLease {
        epoch: epoch.parse().ok()?,
        node: node.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_values_round_trip() {
        let lease = SlotLease { epoch: 42, node: 7 };
        assert_eq!(lease_value(lease), "7:42");
        assert_eq!(parse_lease("7:42"), Some(lease));
        assert_eq!(parse_lease("7"), None);
        assert_eq!(parse_lease("x:1"), None);
    }

    #[test]
    fn ttls_are_positive_millis() {
        assert_eq!(millis(Duration::from_micros(10)), 1);
        assert_eq!(millis(Duration::from_secs(5)), 5_000);
    }
}
