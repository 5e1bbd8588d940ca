//! Guild objects: the full guild, the GUILD_CREATE payload and the `/users/@me/guilds` partial.

use serde::{Deserialize, Serialize};

use crate::id::{ApplicationId, ChannelId, GuildId, UserId};
use crate::model::{Channel, Member, Role};
use crate::permissions::Permissions;
use crate::timestamp::Timestamp;

/// A guild with every field Discord sends, nulls included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guild {
    /// AFK channel.
    pub afk_channel_id: Option<ChannelId>,
    /// AFK timeout seconds.
    pub afk_timeout: u32,
    /// Creating application.
    pub application_id: Option<ApplicationId>,
    /// Banner hash.
    pub banner: Option<String>,
    /// Default notification level.
    pub default_message_notifications: u8,
    /// Description.
    pub description: Option<String>,
    /// Discovery splash hash.
    pub discovery_splash: Option<String>,
    /// Custom emojis (none yet).
    pub emojis: Vec<serde_json::Value>,
    /// Explicit content filter level.
    pub explicit_content_filter: u8,
    /// Feature strings.
    pub features: Vec<String>,
    /// Server guide header hash.
    pub home_header: Option<String>,
    /// Icon hash.
    pub icon: Option<String>,
    /// Guild id.
    pub id: GuildId,
    /// Incident actions.
    pub incidents_data: Option<serde_json::Value>,
    /// Member cap.
    pub max_members: u32,
    /// Presence cap.
    pub max_presences: Option<u32>,
    /// Video cap.
    pub max_stage_video_channel_users: u32,
    /// Video cap.
    pub max_video_channel_users: u32,
    /// MFA level.
    pub mfa_level: u8,
    /// Name.
    pub name: String,
    /// Age-restricted guild.
    pub nsfw: bool,
    /// NSFW level.
    pub nsfw_level: u8,
    /// Owner.
    pub owner_id: UserId,
    /// Locale.
    pub preferred_locale: String,
    /// Boost bar shown.
    pub premium_progress_bar_enabled: bool,
    /// Boost count.
    pub premium_subscription_count: u32,
    /// Boost tier.
    pub premium_tier: u8,
    /// Public updates channel.
    pub public_updates_channel_id: Option<ChannelId>,
    /// Voice region; Discord now always sends `"deprecated"`.
    pub region: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Rules channel.
    pub rules_channel_id: Option<ChannelId>,
    /// Safety alerts channel.
    pub safety_alerts_channel_id: Option<ChannelId>,
    /// Invite splash hash.
    pub splash: Option<String>,
    /// Stickers (none yet).
    pub stickers: Vec<serde_json::Value>,
    /// System message channel.
    pub system_channel_id: Option<ChannelId>,
    /// System channel flags.
    pub system_channel_flags: u64,
    /// Vanity invite code.
    pub vanity_url_code: Option<String>,
    /// Verification level.
    pub verification_level: u8,
    /// Widget channel.
    pub widget_channel_id: Option<ChannelId>,
    /// Widget enabled.
    pub widget_enabled: bool,
}

/// The GUILD_CREATE dispatch: the guild plus the session's view of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GuildCreate {
    /// Guild fields.
    #[serde(flatten)]
    pub guild: Guild,
    /// Channels the session may see.
    pub channels: Vec<Channel>,
    /// Scheduled events (none yet).
    pub guild_scheduled_events: Vec<serde_json::Value>,
    /// When the session's user joined.
    pub joined_at: Timestamp,
    /// More members than the large threshold.
    pub large: bool,
    /// Member count.
    pub member_count: u64,
    /// Members sent up front (at least the session's own).
    pub members: Vec<Member>,
    /// Presences (none yet).
    pub presences: Vec<serde_json::Value>,
    /// Soundboard sounds (none yet).
    pub soundboard_sounds: Vec<serde_json::Value>,
    /// Stage instances (none yet).
    pub stage_instances: Vec<serde_json::Value>,
    /// Active threads (none yet).
    pub threads: Vec<serde_json::Value>,
    /// Always false here.
    pub unavailable: bool,
    /// Voice states (none yet).
    pub voice_states: Vec<serde_json::Value>,
}

/// Entry of `GET /users/@me/guilds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialGuild {
    /// Member count when `with_counts`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approximate_member_count: Option<u64>,
    /// Online count when `with_counts`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approximate_presence_count: Option<u64>,
    /// Banner hash.
    pub banner: Option<String>,
    /// Features.
    pub features: Vec<String>,
    /// Icon hash.
    pub icon: Option<String>,
    /// Guild id.
    pub id: GuildId,
    /// Name.
    pub name: String,
    /// Whether the caller owns it.
    pub owner: bool,
    /// Caller's guild-level permissions.
    pub permissions: Permissions,
}
