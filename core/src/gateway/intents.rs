//! Gateway intents.

use bitflags::bitflags;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

bitflags! {
    /// Intent bits; see Discord Docs/Gateway#Gateway-Intents.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Intents: u64 {
        /// Guilds.
        const GUILDS = 1 << 0;
        /// Guild members.
        const GUILD_MEMBERS = 1 << 1;
        /// Guild moderation.
        const GUILD_MODERATION = 1 << 2;
        /// Guild expressions.
        const GUILD_EXPRESSIONS = 1 << 3;
        /// Guild integrations.
        const GUILD_INTEGRATIONS = 1 << 4;
        /// Guild webhooks.
        const GUILD_WEBHOOKS = 1 << 5;
        /// Guild invites.
        const GUILD_INVITES = 1 << 6;
        /// Guild voice states.
        const GUILD_VOICE_STATES = 1 << 7;
        /// Guild presences.
        const GUILD_PRESENCES = 1 << 8;
        /// Guild messages.
        const GUILD_MESSAGES = 1 << 9;
        /// Guild message reactions.
        const GUILD_MESSAGE_REACTIONS = 1 << 10;
        /// Guild message typing.
        const GUILD_MESSAGE_TYPING = 1 << 11;
        /// Direct messages.
        const DIRECT_MESSAGES = 1 << 12;
        /// Direct message reactions.
        const DIRECT_MESSAGE_REACTIONS = 1 << 13;
        /// Direct message typing.
        const DIRECT_MESSAGE_TYPING = 1 << 14;
        /// Message content.
        const MESSAGE_CONTENT = 1 << 15;
        /// Guild scheduled events.
        const GUILD_SCHEDULED_EVENTS = 1 << 16;
        /// Auto moderation configuration.
        const AUTO_MODERATION_CONFIGURATION = 1 << 20;
        /// Auto moderation execution.
        const AUTO_MODERATION_EXECUTION = 1 << 21;
        /// Guild message polls.
        const GUILD_MESSAGE_POLLS = 1 << 24;
        /// Direct message polls.
        const DIRECT_MESSAGE_POLLS = 1 << 25;
    }
}

impl Intents {
    /// Intents an application must have enabled to request.
    pub const PRIVILEGED: Self = Self::from_bits_truncate(
        Self::GUILD_MEMBERS.bits() | Self::GUILD_PRESENCES.bits() | Self::MESSAGE_CONTENT.bits(),
    );
}

impl Serialize for Intents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.bits())
    }
}

impl<'de> Deserialize<'de> for Intents {
    /// Keeps undefined bits so Identify can answer them with 4013.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::from_bits_retain(u64::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_defined_bits() {
        assert_eq!(Intents::all().bits(), 53608447);
        assert_eq!(Intents::PRIVILEGED.bits(), 2 | 256 | 32768);
        let raw: Intents = serde_json::from_str("131072").unwrap();
        assert!(!Intents::all().contains(raw));
    }
}
