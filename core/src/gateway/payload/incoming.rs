//! Client → server payloads.

use serde::Deserialize;

use crate::gateway::intents::Intents;
use crate::id::{GuildId, UserId};

/// Envelope of every client payload; `d` is decoded per opcode.
#[derive(Debug, Deserialize)]
pub struct ClientFrame {
    /// Data, shape depends on `op`.
    #[serde(default)]
    pub d: serde_json::Value,
    /// Opcode (kept raw so unknown values become close 4001, not decode errors).
    pub op: i64,
}

/// Connection properties.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IdentifyProperties {
    /// Library name.
    #[serde(default, alias = "$browser")]
    pub browser: Option<String>,
    /// Device.
    #[serde(default, alias = "$device")]
    pub device: Option<String>,
    /// Operating system.
    #[serde(default, alias = "$os")]
    pub os: Option<String>,
}

/// Op 2 Identify.
#[derive(Debug, Clone, Deserialize)]
pub struct Identify {
    /// Payload compression request; ignored (transport compression is used instead).
    #[serde(default)]
    pub compress: Option<bool>,
    /// Intents.
    pub intents: Intents,
    /// Offline-member threshold, 50–250.
    #[serde(default)]
    pub large_threshold: Option<u32>,
    /// Initial presence.
    #[serde(default)]
    pub presence: Option<serde_json::Value>,
    /// Connection properties.
    #[serde(default)]
    pub properties: IdentifyProperties,
    /// `[shard_id, num_shards]`.
    #[serde(default)]
    pub shard: Option<[u32; 2]>,
    /// Token, optionally prefixed with `Bot `.
    pub token: String,
}

/// Op 6 Resume.
#[derive(Debug, Clone, Deserialize)]
pub struct Resume {
    /// Last sequence the client saw.
    #[serde(default)]
    pub seq: Option<u64>,
    /// Session to resume.
    pub session_id: String,
    /// Token, optionally prefixed with `Bot `.
    pub token: String,
}

/// `user_ids` of op 8: one id or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UserIds {
    /// A single id.
    One(UserId),
    /// Up to 100 ids.
    Many(Vec<UserId>),
}

/// Op 8 Request Guild Members.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestGuildMembers {
    /// Guild (string or integer).
    pub guild_id: GuildId,
    /// Result cap.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Echoed nonce.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Include presences.
    #[serde(default)]
    pub presences: Option<bool>,
    /// Username prefix.
    #[serde(default)]
    pub query: Option<String>,
    /// Specific users.
    #[serde(default)]
    pub user_ids: Option<UserIds>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identify_from_discord_py_shape() {
        let raw = serde_json::json!({
            "token": "abc", "properties": {"os": "linux", "browser": "discord.py", "device": "discord.py"},
            "compress": true, "large_threshold": 250, "intents": 513
        });
        let id: Identify = serde_json::from_value(raw).unwrap();
        assert_eq!(id.intents, Intents::GUILDS | Intents::GUILD_MESSAGES);
        assert_eq!(id.properties.browser.as_deref(), Some("discord.py"));
    }

    #[test]
    fn request_members_accepts_integer_guild() {
        let raw = serde_json::json!({"guild_id": 81384788765712384u64, "query": "", "limit": 0});
        let r: RequestGuildMembers = serde_json::from_value(raw).unwrap();
        assert_eq!(r.guild_id.get(), 81384788765712384);
    }
}
