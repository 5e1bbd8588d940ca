//! Dispatch event kinds: their names and the intent that gates each.

use serde::{Deserialize, Serialize};

use crate::gateway::intents::Intents;

/// A dispatch event the server produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// Session ready.
    Ready,
    /// Replay finished.
    Resumed,
    /// Guild available or joined.
    GuildCreate,
    /// Guild changed.
    GuildUpdate,
    /// Guild gone or left.
    GuildDelete,
    /// Channel created.
    ChannelCreate,
    /// Channel changed.
    ChannelUpdate,
    /// Channel deleted.
    ChannelDelete,
    /// Member joined.
    GuildMemberAdd,
    /// Member changed.
    GuildMemberUpdate,
    /// Member left.
    GuildMemberRemove,
    /// Member chunk answer to op 8.
    GuildMembersChunk,
    /// Message created.
    MessageCreate,
    /// Message edited.
    MessageUpdate,
    /// Message deleted.
    MessageDelete,
    /// Reaction added.
    MessageReactionAdd,
    /// Reaction removed.
    MessageReactionRemove,
    /// Typing started.
    TypingStart,
    /// Invite created.
    InviteCreate,
    /// Own user changed.
    UserUpdate,
}

impl EventKind {
    /// Name sent as `t`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::Resumed => "RESUMED",
            Self::GuildCreate => "GUILD_CREATE",
            Self::GuildUpdate => "GUILD_UPDATE",
            Self::GuildDelete => "GUILD_DELETE",
            Self::ChannelCreate => "CHANNEL_CREATE",
            Self::ChannelUpdate => "CHANNEL_UPDATE",
            Self::ChannelDelete => "CHANNEL_DELETE",
            Self::GuildMemberAdd => "GUILD_MEMBER_ADD",
            Self::GuildMemberUpdate => "GUILD_MEMBER_UPDATE",
            Self::GuildMemberRemove => "GUILD_MEMBER_REMOVE",
            Self::GuildMembersChunk => "GUILD_MEMBERS_CHUNK",
            Self::MessageCreate => "MESSAGE_CREATE",
            Self::MessageUpdate => "MESSAGE_UPDATE",
            Self::MessageDelete => "MESSAGE_DELETE",
            Self::MessageReactionAdd => "MESSAGE_REACTION_ADD",
            Self::MessageReactionRemove => "MESSAGE_REACTION_REMOVE",
            Self::TypingStart => "TYPING_START",
            Self::InviteCreate => "INVITE_CREATE",
            Self::UserUpdate => "USER_UPDATE",
        }
    }

    /// Intent a session needs to receive the event in a guild; `None` = always delivered.
    pub const fn guild_intent(self) -> Option<Intents> {
        match self {
            Self::GuildCreate
            | Self::GuildUpdate
            | Self::GuildDelete
            | Self::ChannelCreate
            | Self::ChannelUpdate
            | Self::ChannelDelete => Some(Intents::GUILDS),
            Self::GuildMemberAdd | Self::GuildMemberUpdate | Self::GuildMemberRemove => {
                Some(Intents::GUILD_MEMBERS)
            }
            Self::MessageCreate | Self::MessageUpdate | Self::MessageDelete => {
                Some(Intents::GUILD_MESSAGES)
            }
            Self::MessageReactionAdd | Self::MessageReactionRemove => {
                Some(Intents::GUILD_MESSAGE_REACTIONS)
            }
            Self::TypingStart => Some(Intents::GUILD_MESSAGE_TYPING),
            Self::InviteCreate => Some(Intents::GUILD_INVITES),
            Self::Ready | Self::Resumed | Self::GuildMembersChunk | Self::UserUpdate => None,
        }
    }

    /// Whether content fields are stripped for sessions without MESSAGE_CONTENT.
    pub const fn carries_content(self) -> bool {
        matches!(self, Self::MessageCreate | Self::MessageUpdate)
    }
}
