//! Server → client payloads.

use serde::Serialize;

use crate::id::{ApplicationId, GuildId};
use crate::model::{CurrentUser, Member};

/// Op 10 Hello data.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Hello {
    /// Milliseconds between heartbeats.
    pub heartbeat_interval: u64,
}

/// Guild entry in READY.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct UnavailableGuild {
    /// Guild id.
    pub id: GuildId,
    /// Always true in READY.
    pub unavailable: bool,
}

/// Application part of READY.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReadyApplication {
    /// Application flags.
    pub flags: u64,
    /// Application id.
    pub id: ApplicationId,
}

/// READY dispatch data.
#[derive(Debug, Clone, Serialize)]
pub struct Ready {
    /// Debug trace.
    pub _trace: Vec<String>,
    /// The bot's application (for users, a zero-flag stand-in with the user's id).
    pub application: ReadyApplication,
    /// Guilds, all unavailable until their GUILD_CREATE.
    pub guilds: Vec<UnavailableGuild>,
    /// Always empty for bots.
    pub private_channels: Vec<serde_json::Value>,
    /// Always empty.
    pub relationships: Vec<serde_json::Value>,
    /// Where to resume: the router's own URL.
    pub resume_gateway_url: String,
    /// Session id.
    pub session_id: String,
    /// Session type.
    pub session_type: &'static str,
    /// Echo of the Identify shard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<[u32; 2]>,
    /// Current user.
    pub user: CurrentUser,
    /// Empty settings object.
    pub user_settings: serde_json::Value,
    /// Gateway version.
    pub v: u8,
}

/// GUILD_MEMBERS_CHUNK data.
#[derive(Debug, Clone, Serialize)]
pub struct GuildMembersChunk {
    /// Chunk count.
    pub chunk_count: u32,
    /// Chunk index.
    pub chunk_index: u32,
    /// Guild.
    pub guild_id: GuildId,
    /// Members.
    pub members: Vec<Member>,
    /// Echoed nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Ids not found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<String>,
}
