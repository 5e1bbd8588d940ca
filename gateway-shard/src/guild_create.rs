//! Builds a session's GUILD_CREATE from the store.

use concord_core::id::{GuildId, RoleId, UserId};
use concord_core::model::GuildCreate;
use concord_core::repo::{RepoResult, Store};
use concord_core::timestamp::Timestamp;

/// A guild as one member sees it on arrival, with that member's roles for permission checks.
pub(crate) struct GuildView {
    pub(crate) create: GuildCreate,
    pub(crate) roles: Vec<RoleId>,
}

/// Loads the GUILD_CREATE for `user` in `guild`; `None` when the guild is gone or the user is
/// no longer a member.
///
/// `members` holds the user's own member, or every member when `all_members` is asked for and
/// the guild is not large (Discord sends the full list only to sessions with presences).
pub(crate) async fn load(
    store: &dyn Store,
    guild: GuildId,
    user: UserId,
    all_members: bool,
    large_threshold: u32,
) -> RepoResult<Option<GuildView>> {
    let Some(info) = store.guild(guild).await? else {
        return Ok(None);
    };
    let Some(own) = store.member(guild, user).await? else {
        return Ok(None);
    };
    let channels = store.guild_channels(guild).await?;
    let member_count = store.member_count(guild).await?;
    let large = member_count > u64::from(large_threshold);
    let members = if all_members && !large {
        let mut all = store.members(guild, None, large_threshold.max(1)).await?;
        if !all
            .iter()
            .any(|m| m.user.as_ref().is_some_and(|u| u.id == user))
        {
            all.push(own.clone());
        }
        all
    } else {
        vec![own.clone()]
    };
    let create = GuildCreate {
        guild: info,
        channels,
        guild_scheduled_events: Vec::new(),
        joined_at: own.joined_at.unwrap_or_else(Timestamp::now),
        large,
        member_count,
        members,
        presences: Vec::new(),
        soundboard_sounds: Vec::new(),
        stage_instances: Vec::new(),
        threads: Vec::new(),
        unavailable: false,
        voice_states: Vec::new(),
    };
    Ok(Some(GuildView {
        create,
        roles: own.roles,
    }))
}
