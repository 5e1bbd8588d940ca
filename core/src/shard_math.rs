//! Discord's client-side shard rule: which of a bot's shards receives a guild's events. (Which
//! process holds a user's sessions is [`crate::topology`]'s business.)

use crate::id::GuildId;

/// Discord's client-side shard rule: `(guild_id >> 22) % num_shards`.
/// See Discord Docs/Topics/Gateway#sharding.
pub fn client_shard_of_guild(guild: GuildId, num_shards: u32) -> u32 {
    ((guild.get() >> 22) % u64::from(num_shards.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;

    #[test]
    fn discord_guild_rule() {
        assert_eq!(client_shard_of_guild(Id::new(41771983423143937), 1), 0);
        assert_eq!(client_shard_of_guild(Id::new((1234 << 22) | 7), 16), 2);
        assert_eq!(
            client_shard_of_guild(Id::new(1 << 22), 0),
            0,
            "no shards means one"
        );
    }
}
