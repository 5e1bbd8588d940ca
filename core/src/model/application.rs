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
    /// Guilds the bot is in.
    pub approximate_guild_count: u64,
    /// User installs (none: Concord has no user-installed apps).
    pub approximate_user_authorization_count: u64,
    /// User installs (none).
    pub approximate_user_install_count: u64,
    /// Bot user, when sent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bot: Option<User>,
    /// Anyone may add the bot.
    pub bot_public: bool,
    /// Adding needs the full OAuth2 code grant.
    pub bot_require_code_grant: bool,
    /// Description.
    pub description: String,
    /// OAuth2 scopes the application may request.
    pub eligible_oauth2_scopes: Vec<String>,
    /// Interaction content filter: 0 inherit.
    pub explicit_content_filter: u8,
    /// Application flags (privileged intents).
    pub flags: u64,
    /// The same flags as a decimal string.
    pub flags_new: String,
    /// Icon hash.
    pub icon: Option<String>,
    /// Application id (equals the bot user id, like Discord).
    pub id: ApplicationId,
    /// Interactions webhook (none).
    pub interactions_endpoint_url: Option<String>,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: User,
    /// OAuth2 redirect URIs (none).
    pub redirect_uris: Vec<String>,
    /// Linked-roles verification URL (none).
    pub role_connections_verification_url: Option<String>,
    /// Summary (deprecated, empty).
    pub summary: String,
    /// Team (none).
    pub team: Option<serde_json::Value>,
    /// Application type (null for ordinary applications).
    #[serde(rename = "type")]
    pub kind: Option<u8>,
    /// Interactions verify key (hex).
    pub verify_key: String,
}
