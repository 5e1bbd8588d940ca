//! Pure shard arithmetic: which shard owns a user's sessions, and Discord's guild → shard rule.

use crate::id::{GuildId, UserId};

/// The in-cluster shard that owns a user's sessions, by rendezvous hashing over the live shard
/// ordinals so that adding or removing a shard only moves the users whose winner changed.
pub fn owner_shard(user: UserId, live_shards: &[u16]) -> Option<u16> {
    live_shards
        .iter()
        .copied()
        .max_by_key(|shard| mix(user.get() ^ (u64::from(*shard) << 48 | 0x9E37)))
}

/// Discord's client-side shard rule: `(guild_id >> 22) % num_shards`.
pub fn client_shard_of_guild(guild: GuildId, num_shards: u32) -> u32 {
    ((guild.get() >> 22) % u64::from(num_shards.max(1))) as u32
}

/// SplitMix64 finaliser: a cheap, well-distributed, stable 64-bit hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;

    #[test]
    fn stable_and_balanced() {
        let shards = [0u16, 1, 2, 3];
        let mut counts = [0usize; 4];
        for u in 1..=40_000u64 {
            let user = Id::new(u * 7919);
            let s = owner_shard(user, &shards).unwrap();
            assert_eq!(owner_shard(user, &shards), Some(s));
            counts[s as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (8_000..12_000).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn adding_a_shard_moves_only_its_winners() {
        let before = [0u16, 1, 2];
        let after = [0u16, 1, 2, 3];
        for u in 1..=10_000u64 {
            let user = Id::new(u);
            let (a, b) = (
                owner_shard(user, &before).unwrap(),
                owner_shard(user, &after).unwrap(),
            );
            assert!(a == b || b == 3);
        }
    }

    #[test]
    fn discord_guild_rule() {
        assert_eq!(client_shard_of_guild(Id::new(41771983423143937), 1), 0);
        assert_eq!(client_shard_of_guild(Id::new((1234 << 22) | 7), 16), 2);
        assert_eq!(owner_shard(Id::new(1), &[]), None);
    }
}
