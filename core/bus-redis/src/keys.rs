//! Key names (CLUSTER.md §6) and the Redis Cluster hash-slot math behind the per-slot tags.
//!
//! Every key starts with a configurable prefix (`cc` by default). Keys that a Lua script touches
//! together share a hash tag, so the script is legal on a Redis Cluster: `{meta}` for cluster
//! metadata, one tag per slot for its lease, epoch, log and guild set, one per guild for its
//! interest hash.
//!
//! Bare tags `{s0}`, `{s1}`, ... crowd onto a few cluster nodes, so slot `N` of `S` gets the tag
//! `sN.k` with the smallest `k` whose CRC16 hash slot lies in the `N`-th of `S` equal ranges of
//! `0..16384`: the slots' keys spread as evenly as the cluster's hash slots do.

use std::sync::Arc;

use concord_core::id::GuildId;
use concord_core::topology::{NodeId, SlotId};

use crate::error::{Error, Result};

/// Key prefix unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "cc";

/// Number of hash slots in a Redis Cluster.
pub const CLUSTER_HASH_SLOTS: u16 = 16_384;

/// CRC16-XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster hashes keys with.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The Redis Cluster hash slot of `key` (what `CLUSTER KEYSLOT` answers): the CRC16 of its hash
/// tag (the text between the first `{` and the next `}`, when not empty) or of the whole key.
pub fn key_hash_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let tail = &key[open + 1..];
            tail.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &tail[..close])
        })
        .unwrap_or(key);
    crc16(hashed) % CLUSTER_HASH_SLOTS
}

/// The hash tag (without braces) of `slot` in a cluster of `slot_count` slots.
///
/// Deterministic: every process computes the same tags from the slot count alone.
pub fn slot_tag(slot: SlotId, slot_count: u16) -> String {
    let count = u32::from(slot_count.max(1));
    let slot32 = u32::from(slot).min(count - 1);
    let total = u32::from(CLUSTER_HASH_SLOTS);
    let (lo, hi) = (slot32 * total / count, (slot32 + 1) * total / count);
    // Each range holds at least 16 hash slots (slot_count <= 1024), so a hit comes within a few
    // thousand tries; the bound only guards against a logic error looping forever.
    (0..1_000_000u32)
        .map(|k| format!("s{slot}.{k}"))
        .find(|tag| (lo..hi).contains(&u32::from(key_hash_slot(tag.as_bytes()))))
        .unwrap_or_else(|| format!("s{slot}"))
}

/// Key names for one prefix and slot count.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: Arc<str>,
    tags: Arc<[String]>,
}

impl Keys {
    /// Keys under `prefix` for a cluster of `slot_count` slots (tags are computed once here).
    pub fn new(prefix: &str, slot_count: u16) -> Self {
        Self {
            prefix: prefix.into(),
            tags: (0..slot_count).map(|s| slot_tag(s, slot_count)).collect(),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Number of slots the tags were computed for.
    pub fn slot_count(&self) -> u16 {
        self.tags.len() as u16
    }

    /// `Ok` when `slot` is one of this cluster's slots.
    ///
    /// # Errors
    /// [`Error::SlotOutOfRange`] otherwise.
    pub fn check_slot(&self, slot: SlotId) -> Result<()> {
        if slot < self.slot_count() {
            Ok(())
        } else {
            Err(Error::SlotOutOfRange {
                slot,
                slots: self.slot_count(),
            })
        }
    }

    /// Hash tag of `slot` (without braces).
    ///
    /// # Panics
    /// When `slot` is not below the slot count (callers check it first).
    pub fn slot_tag(&self, slot: SlotId) -> &str {
        &self.tags[usize::from(slot)]
    }

    /// `<p>:{meta}:config`: the cluster configuration.
    pub fn config(&self) -> String {
        format!("{}:{{meta}}:config", self.prefix)
    }

    /// `<p>:{meta}:m:<node>`: a member's record and lease.
    pub fn member(&self, node: NodeId) -> String {
        format!("{}:{{meta}}:m:{node}", self.prefix)
    }

    /// `<p>:{meta}:members`: the set of registered node ids.
    pub fn members(&self) -> String {
        format!("{}:{{meta}}:members", self.prefix)
    }

    /// `<p>:{meta}:sf:<n>`: a snowflake node-id lease.
    pub fn snowflake(&self, node_id: u16) -> String {
        format!("{}:{{meta}}:sf:{node_id}", self.prefix)
    }

    /// `<p>:{meta}:notices`: the stream of cross-process control notices.
    pub fn notices(&self) -> String {
        format!("{}:{{meta}}:notices", self.prefix)
    }

    /// `<p>:{<tag>}:lease`: the slot's lease (`<node>:<epoch>`).
    pub fn lease(&self, slot: SlotId) -> String {
        self.slot_key(slot, "lease")
    }

    /// `<p>:{<tag>}:epoch`: the slot's fencing epoch counter.
    pub fn epoch(&self, slot: SlotId) -> String {
        self.slot_key(slot, "epoch")
    }

    /// `<p>:{<tag>}:log`: the slot's event stream.
    pub fn log(&self, slot: SlotId) -> String {
        self.slot_key(slot, "log")
    }

    /// `<p>:{<tag>}:applied`: the id of the last log entry the slot's owner has read.
    pub fn applied(&self, slot: SlotId) -> String {
        self.slot_key(slot, "applied")
    }

    /// `<p>:{<tag>}:guilds`: guilds the slot has interest counts in.
    pub fn guilds(&self, slot: SlotId) -> String {
        self.slot_key(slot, "guilds")
    }

    /// `<p>:int:{g<guild>}`: the guild's interest hash (field = slot, value = session count).
    pub fn interest(&self, guild: GuildId) -> String {
        format!("{}:int:{{g{guild}}}", self.prefix)
    }

    /// `<p>:{rl:<bucket>}`: a rate-limit window counter.
    pub fn rate(&self, bucket: &str) -> String {
        format!("{}:{{rl:{bucket}}}", self.prefix)
    }

    /// `<p>:{idq:<app>}:<bucket>`: an identify-concurrency bucket.
    pub fn identify(&self, app: u64, bucket: u32) -> String {
        format!("{}:{{idq:{app}}}:{bucket}", self.prefix)
    }

    fn slot_key(&self, slot: SlotId, what: &str) -> String {
        format!("{}:{{{}}}:{what}", self.prefix, self.slot_tag(slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::id::Id;

    #[test]
    fn hash_slots_match_redis() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_hash_slot(b"foo"), 12182);
        assert_eq!(key_hash_slot(b"{user1000}.following"), 3443);
        assert_eq!(key_hash_slot(b"{user1000}.followers"), 3443);
        // An empty tag hashes the whole key; only the first `{...}` counts.
        assert_eq!(key_hash_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_eq!(key_hash_slot(b"foo{{bar}}zap"), crc16(b"{bar") % 16384);
        assert_eq!(key_hash_slot(b"foo{bar}{zap}"), crc16(b"bar") % 16384);
    }

    #[test]
    fn slot_tags_spread_evenly() {
        for count in [1u16, 3, 16, 64, 1024] {
            let keys = Keys::new("cc", count);
            let width = 16_384 / u32::from(count);
            let mut hash_slots: Vec<u16> = (0..count)
                .map(|s| key_hash_slot(keys.log(s).as_bytes()))
                .collect();
            for (s, hs) in hash_slots.iter().enumerate() {
                let lo = s as u32 * 16_384 / u32::from(count);
                assert!(
                    (lo..lo + width + 1).contains(&u32::from(*hs)),
                    "{count}/{s}"
                );
            }
            hash_slots.dedup();
            assert_eq!(hash_slots.len(), usize::from(count));
        }
        // Deterministic, and independent of the prefix.
        assert_eq!(slot_tag(5, 16), Keys::new("other", 16).slot_tag(5));
    }

    #[test]
    fn a_slots_keys_share_its_tag() {
        let keys = Keys::new("cc", 16);
        let slot = key_hash_slot(keys.lease(7).as_bytes());
        for key in [keys.epoch(7), keys.log(7), keys.guilds(7)] {
            assert_eq!(key_hash_slot(key.as_bytes()), slot, "{key}");
        }
        assert_eq!(
            key_hash_slot(keys.member(3).as_bytes()),
            key_hash_slot(keys.members().as_bytes())
        );
        assert_eq!(keys.lease(7), format!("cc:{{{}}}:lease", keys.slot_tag(7)));
        assert_eq!(keys.interest(Id::new(42)), "cc:int:{g42}");
        assert_eq!(keys.identify(9, 2), "cc:{idq:9}:2");
        assert_eq!(keys.rate("global:1"), "cc:{rl:global:1}");
        assert_eq!(keys.config(), "cc:{meta}:config");
        assert_eq!(keys.snowflake(1023), "cc:{meta}:sf:1023");
        assert_eq!(keys.notices(), "cc:{meta}:notices");
    }
}
