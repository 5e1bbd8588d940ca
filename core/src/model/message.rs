//! Messages, reactions and emoji.

use serde::{Deserialize, Serialize};

use crate::id::{ChannelId, GuildId, MessageId, RoleId};
use crate::model::member::Member;
use crate::model::user::User;
use crate::timestamp::Timestamp;

/// A reply/forward reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReference {
    /// Channel of the referenced message.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub channel_id: Option<ChannelId>,
    /// Fail when the target is gone (request only).
    #[serde(skip_serializing, default)]
    pub fail_if_not_exists: Option<bool>,
    /// Guild of the referenced message.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub guild_id: Option<GuildId>,
    /// Referenced message.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message_id: Option<MessageId>,
    /// 0 reply, 1 forward.
    #[serde(rename = "type", default)]
    pub kind: u8,
}

/// A partial emoji: unicode (`id` null) or custom.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Emoji {
    /// Custom emoji id.
    pub id: Option<crate::id::GenericId>,
    /// Name or the unicode character(s).
    pub name: Option<String>,
}

/// Reaction counts on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// Burst colours (none).
    pub burst_colors: Vec<String>,
    /// Total count.
    pub count: u64,
    /// Count by kind.
    pub count_details: ReactionCountDetails,
    /// Emoji.
    pub emoji: Emoji,
    /// Whether the caller reacted.
    pub me: bool,
    /// Whether the caller super-reacted.
    pub me_burst: bool,
}

/// Reaction counts by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionCountDetails {
    /// Super reactions.
    pub burst: u64,
    /// Normal reactions.
    pub normal: u64,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Attachments (uploads come later).
    pub attachments: Vec<serde_json::Value>,
    /// Author.
    pub author: User,
    /// Channel.
    pub channel_id: ChannelId,
    /// Components.
    pub components: Vec<serde_json::Value>,
    /// Content, up to 2000 characters.
    pub content: String,
    /// Last edit time.
    pub edited_timestamp: Option<Timestamp>,
    /// Embeds.
    pub embeds: Vec<serde_json::Value>,
    /// Message flags.
    pub flags: u64,
    /// Guild, for guild messages.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub guild_id: Option<GuildId>,
    /// Message id.
    pub id: MessageId,
    /// Author's member object (without user), for guild messages in events.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub member: Option<Member>,
    /// `@everyone`/`@here` mentioned.
    pub mention_everyone: bool,
    /// Role mentions.
    pub mention_roles: Vec<RoleId>,
    /// User mentions.
    pub mentions: Vec<User>,
    /// Reply reference.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message_reference: Option<MessageReference>,
    /// Echo of the create nonce.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<serde_json::Value>,
    /// Pinned.
    pub pinned: bool,
    /// Reactions, omitted when none.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub reactions: Vec<Reaction>,
    /// The replied-to message, for replies (null when deleted).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub referenced_message: Option<Option<Box<Message>>>,
    /// Creation time.
    pub timestamp: Timestamp,
    /// Text to speech.
    pub tts: bool,
    /// Message type: 0 default, 19 reply.
    #[serde(rename = "type")]
    pub kind: u8,
}
