//! Channels and permission overwrites.

use serde::{Deserialize, Serialize};

use crate::id::{ChannelId, GenericId, GuildId, MessageId};
use crate::permissions::Permissions;

/// Channel type, by Discord's integer value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u8", into = "u8")]
pub enum ChannelType {
    /// 0: text channel.
    GuildText,
    /// 1: direct message.
    Dm,
    /// 2: voice channel.
    GuildVoice,
    /// 3: group DM.
    GroupDm,
    /// 4: category.
    GuildCategory,
    /// 5: announcement channel.
    GuildAnnouncement,
    /// 13: stage.
    GuildStageVoice,
    /// 15: forum.
    GuildForum,
    /// 16: media.
    GuildMedia,
    /// Any other value, kept as is.
    Unknown(u8),
}

impl From<u8> for ChannelType {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::GuildText,
            1 => Self::Dm,
            2 => Self::GuildVoice,
            3 => Self::GroupDm,
            4 => Self::GuildCategory,
            5 => Self::GuildAnnouncement,
            13 => Self::GuildStageVoice,
            15 => Self::GuildForum,
            16 => Self::GuildMedia,
            other => Self::Unknown(other),
        }
    }
}

impl From<ChannelType> for u8 {
    fn from(t: ChannelType) -> u8 {
        match t {
            ChannelType::GuildText => 0,
            ChannelType::Dm => 1,
            ChannelType::GuildVoice => 2,
            ChannelType::GroupDm => 3,
            ChannelType::GuildCategory => 4,
            ChannelType::GuildAnnouncement => 5,
            ChannelType::GuildStageVoice => 13,
            ChannelType::GuildForum => 15,
            ChannelType::GuildMedia => 16,
            ChannelType::Unknown(v) => v,
        }
    }
}

impl ChannelType {
    /// Channels that hold messages (text rules apply).
    pub fn is_text_like(self) -> bool {
        matches!(
            self,
            Self::GuildText | Self::GuildAnnouncement | Self::GuildForum | Self::GuildMedia
        )
    }

    /// Voice and stage channels.
    pub fn is_voice_like(self) -> bool {
        matches!(self, Self::GuildVoice | Self::GuildStageVoice)
    }

    /// Types a guild channel may be created with here.
    pub const CREATABLE_IN_GUILD: [Self; 5] = [
        Self::GuildText,
        Self::GuildVoice,
        Self::GuildCategory,
        Self::GuildAnnouncement,
        Self::GuildStageVoice,
    ];

    /// Whether messages may be posted (text and voice text-in-voice).
    pub fn accepts_messages(self) -> bool {
        matches!(
            self,
            Self::GuildText
                | Self::GuildAnnouncement
                | Self::GuildVoice
                | Self::GuildStageVoice
                | Self::Dm
        )
    }
}

/// Overwrite target kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum OverwriteType {
    /// 0: a role.
    Role,
    /// 1: a member.
    Member,
}

impl TryFrom<u8> for OverwriteType {
    type Error = &'static str;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        match v {
            0 => Ok(Self::Role),
            1 => Ok(Self::Member),
            _ => Err("overwrite type must be 0 (role) or 1 (member)"),
        }
    }
}

impl From<OverwriteType> for u8 {
    fn from(t: OverwriteType) -> u8 {
        match t {
            OverwriteType::Role => 0,
            OverwriteType::Member => 1,
        }
    }
}

/// A channel permission overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionOverwrite {
    /// Bits allowed.
    #[serde(default)]
    pub allow: Permissions,
    /// Bits denied.
    #[serde(default)]
    pub deny: Permissions,
    /// Role or user id.
    pub id: GenericId,
    /// Target kind.
    #[serde(rename = "type")]
    pub kind: OverwriteType,
}

/// A guild channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Channel flags.
    pub flags: u64,
    /// Guild the channel is in.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub guild_id: Option<GuildId>,
    /// Channel id.
    pub id: ChannelId,
    /// Type.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// Last message id, possibly of a deleted message.
    pub last_message_id: Option<MessageId>,
    /// Name.
    pub name: String,
    /// Age-restricted.
    pub nsfw: bool,
    /// Parent category.
    pub parent_id: Option<ChannelId>,
    /// Overwrites.
    pub permission_overwrites: Vec<PermissionOverwrite>,
    /// Sorting position.
    pub position: i64,
    /// Slowmode seconds.
    pub rate_limit_per_user: u32,
    /// Topic.
    pub topic: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrite_round_trip_spec_example() {
        let raw = r#"{"id":"41771983423143936","type":0,"allow":"1024","deny":"2048"}"#;
        let ow: PermissionOverwrite = serde_json::from_str(raw).unwrap();
        assert_eq!(ow.kind, OverwriteType::Role);
        assert_eq!(ow.allow, Permissions::VIEW_CHANNEL);
        let back = serde_json::to_value(ow).unwrap();
        assert_eq!(back["allow"], "1024");
        assert_eq!(back["type"], 0);
        assert!(serde_json::from_str::<PermissionOverwrite>(r#"{"id":"1","type":5}"#).is_err());
    }
}
