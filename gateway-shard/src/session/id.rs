//! Session ids: 32 lowercase hex characters whose first four name the shard that created them.

use std::fmt;

use concord_core::bus::ShardId;

/// Bits below the shard ordinal.
const RANDOM_BITS: u32 = 112;

/// A session id; the top 16 bits are the creating shard's ordinal, the rest random, so the
/// router can find the shard without asking every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(u128);

impl SessionId {
    /// A fresh id for a session created on `shard`.
    pub(crate) fn generate(shard: ShardId) -> Self {
        let random: u128 = rand::random::<u128>() & ((1u128 << RANDOM_BITS) - 1);
        Self((u128::from(shard) << RANDOM_BITS) | random)
    }

    /// Parses the form clients echo in Resume; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 32
            || !text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(Self)
    }

    /// Ordinal of the shard that created the session (it may have moved since).
    pub fn shard(self) -> ShardId {
        (self.0 >> RANDOM_BITS) as ShardId
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_carries_the_shard() {
        for shard in [0u16, 1, 7, u16::MAX] {
            let id = SessionId::generate(shard);
            let text = id.to_string();
            assert_eq!(text.len(), 32);
            assert_eq!(SessionId::parse(&text), Some(id));
            assert_eq!(id.shard(), shard);
        }
        assert_ne!(SessionId::generate(3), SessionId::generate(3));
        assert_eq!(SessionId::parse("abc"), None);
        assert_eq!(SessionId::parse(&"G".repeat(32)), None);
        assert_eq!(SessionId::parse(&"A".repeat(32)), None, "ids are lowercase");
    }
}
