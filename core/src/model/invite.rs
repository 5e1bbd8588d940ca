//! Invites.

use serde::{Deserialize, Serialize};

use crate::id::{ChannelId, GuildId};
use crate::model::channel::ChannelType;
use crate::model::user::User;
use crate::timestamp::Timestamp;

/// Guild part of an invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteGuild {
    /// Banner hash.
    pub banner: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Features.
    pub features: Vec<String>,
    /// Icon hash.
    pub icon: Option<String>,
    /// Guild id.
    pub id: GuildId,
    /// Name.
    pub name: String,
    /// Age-restricted guild.
    pub nsfw: bool,
    /// NSFW level.
    pub nsfw_level: u8,
    /// Boost count.
    pub premium_subscription_count: u32,
    /// Splash hash.
    pub splash: Option<String>,
    /// Vanity code.
    pub vanity_url_code: Option<String>,
    /// Verification level.
    pub verification_level: u8,
}

/// Channel part of an invite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteChannel {
    /// Channel id.
    pub id: ChannelId,
    /// Name.
    pub name: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: ChannelType,
}

/// An invite; the metadata fields appear where Discord sends them (create, listings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// Member count with `with_counts`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approximate_member_count: Option<u64>,
    /// Online count with `with_counts`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approximate_presence_count: Option<u64>,
    /// Channel.
    pub channel: InviteChannel,
    /// Code.
    pub code: String,
    /// Expiry, null for never.
    pub expires_at: Option<Timestamp>,
    /// Guild.
    pub guild: InviteGuild,
    /// Guild id (Discord sends it beside `guild`).
    pub guild_id: GuildId,
    /// Creator.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub inviter: Option<User>,
    /// Metadata, when sent.
    #[serde(flatten, skip_serializing_if = "Option::is_none", default)]
    pub metadata: Option<InviteMetadata>,
    /// 0: guild invite.
    #[serde(rename = "type")]
    pub kind: u8,
}

/// Invite usage metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteMetadata {
    /// Creation time.
    pub created_at: Timestamp,
    /// Lifetime seconds, 0 = forever.
    pub max_age: u32,
    /// Use cap, 0 = unlimited.
    pub max_uses: u32,
    /// Temporary membership.
    pub temporary: bool,
    /// Times used.
    pub uses: u32,
}
