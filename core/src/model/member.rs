//! Guild members.

use serde::{Deserialize, Serialize};

use crate::id::RoleId;
use crate::model::user::User;
use crate::timestamp::Timestamp;

/// A guild member; `user` is absent in message `member` objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Guild avatar hash.
    pub avatar: Option<String>,
    /// Guild banner hash.
    pub banner: Option<String>,
    /// Timeout end.
    pub communication_disabled_until: Option<Timestamp>,
    /// Server-deafened.
    pub deaf: bool,
    /// Member flags.
    pub flags: u64,
    /// Join time.
    pub joined_at: Option<Timestamp>,
    /// Server-muted.
    pub mute: bool,
    /// Guild nickname.
    pub nick: Option<String>,
    /// Membership screening pending.
    pub pending: bool,
    /// Boosting since.
    pub premium_since: Option<Timestamp>,
    /// Role ids, never `@everyone`.
    pub roles: Vec<RoleId>,
    /// User, omitted inside messages.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<User>,
}

impl Member {
    /// The same member without its user, as embedded in messages.
    pub fn without_user(&self) -> Self {
        Self {
            user: None,
            ..self.clone()
        }
    }
}
