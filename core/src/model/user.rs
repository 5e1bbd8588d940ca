//! User objects.

use serde::{Deserialize, Serialize};

use crate::id::UserId;

/// A user as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Avatar hash (32 lowercase hex) or null.
    pub avatar: Option<String>,
    /// Profile banner hash or null.
    pub banner: Option<String>,
    /// Whether this is a bot account.
    pub bot: bool,
    /// `"0"` for users; four digits for bots, like Discord.
    pub discriminator: String,
    /// Display name.
    pub global_name: Option<String>,
    /// User flags (equal to the public ones here).
    pub flags: u64,
    /// User id.
    pub id: UserId,
    /// Primary guild tag; Concord has none.
    pub primary_guild: Option<serde_json::Value>,
    /// Public flags.
    pub public_flags: u64,
    /// Unique name.
    pub username: String,
}

/// The user behind the token (`/users/@me`, READY).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    /// Public part.
    #[serde(flatten)]
    pub user: User,
    /// Email address, if any.
    pub email: Option<String>,
    /// Locale, `en-US` by default.
    pub locale: String,
    /// Always false: Concord has no MFA yet.
    pub mfa_enabled: bool,
    /// Email verified.
    pub verified: bool,
}
