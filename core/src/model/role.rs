//! Guild roles.

use serde::{Deserialize, Serialize};

use crate::id::RoleId;
use crate::permissions::Permissions;

/// Role colours; `primary_color` mirrors the deprecated `color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RoleColors {
    /// Main colour.
    pub primary_color: u32,
    /// Gradient end, if any.
    pub secondary_color: Option<u32>,
    /// Holographic third colour, if any.
    pub tertiary_color: Option<u32>,
}

/// A guild role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Deprecated single colour, equal to `colors.primary_color`.
    pub color: u32,
    /// Colours.
    pub colors: RoleColors,
    /// Role flags.
    pub flags: u64,
    /// Shown separately in the member list.
    pub hoist: bool,
    /// Icon hash.
    pub icon: Option<String>,
    /// Role id (`@everyone` = guild id).
    pub id: RoleId,
    /// Managed by an integration.
    pub managed: bool,
    /// Mentionable by everyone.
    pub mentionable: bool,
    /// Name.
    pub name: String,
    /// Permissions granted.
    pub permissions: Permissions,
    /// Position; `@everyone` is 0.
    pub position: i64,
    /// Unicode emoji icon.
    pub unicode_emoji: Option<String>,
}
