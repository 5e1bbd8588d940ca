//! Cache invalidation between API processes.
//!
//! Every change that evicts an entry from this process's token or scope cache is also handed to
//! the [`InvalidationSink`] (in cluster mode, a Redis stream that every API process reads), and
//! invalidations from other processes are applied with [`crate::AppState::apply_invalidation`],
//! so a change made through one process applies on every other one's very next request rather
//! than after the caches' TTL.

use concord_core::id::{ChannelId, GuildId, UserId};
use serde::{Deserialize, Serialize};

/// One cache eviction, as carried between processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Invalidation {
    /// A channel was updated or deleted.
    Channel {
        /// Channel.
        id: ChannelId,
    },
    /// A guild's settings changed.
    Guild {
        /// Guild.
        id: GuildId,
    },
    /// A guild was deleted with its channels and memberships.
    GuildDeleted {
        /// Guild.
        id: GuildId,
    },
    /// A membership changed (join, leave, edit).
    Member {
        /// Guild.
        guild: GuildId,
        /// Member.
        user: UserId,
    },
    /// A user's profile changed.
    User {
        /// User.
        user: UserId,
    },
    /// One token was revoked.
    Token {
        /// Token id.
        token_id: u64,
    },
    /// Every token of a user was revoked.
    UserTokens {
        /// User.
        user: UserId,
    },
}

/// Where this process's invalidations go. `send` must not block: it is called on request paths.
pub trait InvalidationSink: Send + Sync {
    /// Hands one invalidation to the other processes.
    fn send(&self, invalidation: &Invalidation);
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::id::Id;

    #[test]
    fn round_trips_as_tagged_json() {
        let all = [
            Invalidation::Channel { id: Id::new(1) },
            Invalidation::Guild { id: Id::new(2) },
            Invalidation::GuildDeleted { id: Id::new(3) },
            Invalidation::Member {
                guild: Id::new(4),
                user: Id::new(5),
            },
            Invalidation::User { user: Id::new(6) },
            Invalidation::Token { token_id: 7 },
            Invalidation::UserTokens { user: Id::new(8) },
        ];
        for invalidation in all {
            let json = serde_json::to_vec(&invalidation).unwrap();
            assert_eq!(
                serde_json::from_slice::<Invalidation>(&json).unwrap(),
                invalidation
            );
        }
    }
}
