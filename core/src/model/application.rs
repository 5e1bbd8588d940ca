//! Applications (the owner side of a bot).

use serde::{Deserialize, Serialize};

use crate::id::ApplicationId;
use crate::model::user::User;

/// Application flag: GATEWAY_PRESENCE (privileged presences enabled).
pub const FLAG_GATEWAY_PRESENCE: u64 = 1 << 12;
/// Application flag: GATEWAY_GUILD_MEMBERS (privileged members intent enabled).
pub const FLAG_GATEWAY_GUILD_MEMBERS: u64 = 1 << 14;
/// Application flag: GATEWAY_MESSAGE_CONTENT (privileged content intent enabled).
pub const FLAG_GATEWAY_MESSAGE_CONTENT: u64 = 1 << 18;
/// All three privileged-intent flags.
pub const FLAGS_ALL_PRIVILEGED: u64 =
    FLAG_GATEWAY_PRESENCE | FLAG_GATEWAY_GUILD_MEMBERS | FLAG_GATEWAY_MESSAGE_CONTENT;

/// An application with its bot user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Bot user, when sent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bot: Option<User>,
    /// Anyone may add the bot.
    pub bot_public: bool,
    /// Adding needs the full OAuth2 code grant.
    pub bot_require_code_grant: bool,
    /// Description.
    pub description: String,
    /// Application flags (privileged intents).
    pub flags: u64,
    /// Icon hash.
    pub icon: Option<String>,
    /// Application id (equals the bot user id, like Discord).
    pub id: ApplicationId,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: User,
    /// Summary (deprecated, empty).
    pub summary: String,
    /// Team (none).
    pub team: Option<serde_json::Value>,
    /// Interactions verify key (hex).
    pub verify_key: String,
}
