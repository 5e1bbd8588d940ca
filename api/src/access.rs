//! Loads what a permission check needs (guild roles, the caller's membership, channel
//! overwrites) and asks `concord_core::permissions::compute`, the one permission function.
//!
//! Scopes come from the store, or for the message hot paths from `scope_cache` (see
//! [`ChannelScope::load_cached`]).

use std::sync::Arc;

use concord_core::bus::ChannelAccess;
use concord_core::error_code;
use concord_core::id::{ChannelId, GuildId, RoleId, UserId};
use concord_core::model::{Channel, Guild, Member};
use concord_core::permissions::{self, ChannelContext, GuildContext, MemberContext, Permissions};
use concord_core::timestamp::Timestamp;

use crate::error::{Error, Result};
use crate::state::AppState;

/// The caller as a member of a guild.
#[derive(Debug, Clone)]
pub(crate) struct GuildScope {
    /// Guild with roles (shared with the cache when loaded through it).
    pub(crate) guild: Arc<Guild>,
    /// Every role and its permissions, `@everyone` included.
    pub(crate) roles: Vec<(RoleId, Permissions)>,
    /// Caller's membership.
    pub(crate) member: Member,
    /// Caller.
    pub(crate) user_id: UserId,
}

impl GuildScope {
    /// Loads the guild and the caller's membership.
    ///
    /// # Errors
    /// 10004 when the guild does not exist, 50001 when the caller is not a member.
    pub(crate) async fn load(state: &AppState, guild_id: GuildId, user_id: UserId) -> Result<Self> {
        let guild = state
            .store
            .guild(guild_id)
            .await?
            .ok_or(Error::from(error_code::UNKNOWN_GUILD))?;
        let member = state
            .store
            .member(guild_id, user_id)
            .await?
            .ok_or(Error::from(error_code::MISSING_ACCESS))?;
        Ok(Self::new(Arc::new(guild), member, user_id))
    }

    /// [`Self::load`] through the scope cache.
    async fn load_cached(state: &AppState, guild_id: GuildId, user_id: UserId) -> Result<Self> {
        let guild = state
            .scopes
            .guild(&*state.store, guild_id)
            .await?
            .ok_or(Error::from(error_code::UNKNOWN_GUILD))?;
        let member = state
            .scopes
            .member(&*state.store, guild_id, user_id)
            .await?
            .ok_or(Error::from(error_code::MISSING_ACCESS))?;
        Ok(Self::new(guild, Arc::unwrap_or_clone(member), user_id))
    }

    fn new(guild: Arc<Guild>, member: Member, user_id: UserId) -> Self {
        let roles = guild.roles.iter().map(|r| (r.id, r.permissions)).collect();
        Self {
            guild,
            roles,
            member,
            user_id,
        }
    }

    pub(crate) fn guild_id(&self) -> GuildId {
        self.guild.id
    }

    pub(crate) fn is_owner(&self) -> bool {
        self.guild.owner_id == self.user_id
    }

    fn timed_out(&self) -> bool {
        self.member
            .communication_disabled_until
            .is_some_and(|until| until > Timestamp::now())
    }

    fn compute(&self, channel: Option<&ChannelContext<'_>>) -> Permissions {
        let guild = GuildContext {
            guild_id: self.guild.id,
            owner_id: self.guild.owner_id,
            roles: &self.roles,
        };
        let member = MemberContext {
            user_id: self.user_id,
            roles: &self.member.roles,
            timed_out: self.timed_out(),
        };
        permissions::compute(&guild, &member, channel)
    }

    /// Guild-level permissions (no overwrites).
    pub(crate) fn permissions(&self) -> Permissions {
        self.compute(None)
    }

    /// Permissions in `channel`.
    pub(crate) fn channel_permissions(&self, channel: &Channel) -> Permissions {
        self.compute(Some(&ChannelContext {
            kind: channel.kind,
            overwrites: &channel.permission_overwrites,
        }))
    }

    /// Fails with 50013 unless the caller holds `needed` guild-wide.
    pub(crate) fn require(&self, needed: Permissions) -> Result<()> {
        require(self.permissions(), needed)
    }

    /// Recipient filter for an event about `channel`.
    pub(crate) fn access(&self, channel: &Channel, required: Permissions) -> ChannelAccess {
        ChannelAccess {
            kind: channel.kind,
            owner_id: self.guild.owner_id,
            overwrites: channel.permission_overwrites.clone(),
            required,
            roles: self.roles.clone(),
        }
    }
}

/// The caller in a guild channel it can see.
#[derive(Debug, Clone)]
pub(crate) struct ChannelScope {
    /// Channel.
    pub(crate) channel: Channel,
    /// Caller's guild scope.
    pub(crate) guild: GuildScope,
    /// Caller's permissions in the channel.
    pub(crate) permissions: Permissions,
}

impl ChannelScope {
    /// Loads the channel and checks that the caller can view it.
    ///
    /// # Errors
    /// 10003 when the channel does not exist; 50001 when the caller is not in its guild or
    /// lacks VIEW_CHANNEL.
    pub(crate) async fn load(
        state: &AppState,
        channel_id: ChannelId,
        user_id: UserId,
    ) -> Result<Self> {
        let channel = state
            .store
            .channel(channel_id)
            .await?
            .ok_or(Error::from(error_code::UNKNOWN_CHANNEL))?;
        let guild_id = guild_of(&channel)?;
        let guild = GuildScope::load(state, guild_id, user_id).await;
        Self::check(channel, guild)
    }

    /// [`Self::load`] through the scope cache, for routes that use the scope only to decide and
    /// to address events: it may be up to `scope_cache::SCOPE_TTL` old when the channel, guild
    /// or membership was changed through another API process, and `channel.last_message_id` is
    /// not current, so `channel` must not be sent to the client.
    ///
    /// # Errors
    /// As [`Self::load`].
    pub(crate) async fn load_cached(
        state: &AppState,
        channel_id: ChannelId,
        user_id: UserId,
    ) -> Result<Self> {
        let channel = state
            .scopes
            .channel(&*state.store, channel_id)
            .await?
            .ok_or(Error::from(error_code::UNKNOWN_CHANNEL))?;
        let guild_id = guild_of(&channel)?;
        let guild = GuildScope::load_cached(state, guild_id, user_id).await;
        Self::check(Arc::unwrap_or_clone(channel), guild)
    }

    fn check(channel: Channel, guild: Result<GuildScope>) -> Result<Self> {
        let guild = match guild {
            Err(Error::Code(row)) if row == error_code::UNKNOWN_GUILD => {
                return Err(error_code::UNKNOWN_CHANNEL.into())
            }
            other => other?,
        };
        let permissions = guild.channel_permissions(&channel);
        if !permissions.contains(Permissions::VIEW_CHANNEL) {
            return Err(error_code::MISSING_ACCESS.into());
        }
        Ok(Self {
            channel,
            guild,
            permissions,
        })
    }

    pub(crate) fn guild_id(&self) -> GuildId {
        self.guild.guild_id()
    }

    /// Fails with 50013 unless the caller holds `needed` in the channel.
    pub(crate) fn require(&self, needed: Permissions) -> Result<()> {
        require(self.permissions, needed)
    }

    /// Recipient filter for an event in this channel.
    pub(crate) fn access(&self, required: Permissions) -> ChannelAccess {
        self.guild.access(&self.channel, required)
    }
}

/// The channel's guild: Concord has guild channels only, so a channel without one is nobody's
/// to see.
fn guild_of(channel: &Channel) -> Result<GuildId> {
    channel
        .guild_id
        .ok_or(Error::from(error_code::MISSING_ACCESS))
}

fn require(held: Permissions, needed: Permissions) -> Result<()> {
    if held.contains(needed) {
        Ok(())
    } else {
        Err(error_code::MISSING_PERMISSIONS.into())
    }
}

/// Guild-level permissions of a user holding `roles` (no overwrites, no timeout), as listed by
/// `GET /users/@me/guilds`.
pub(crate) fn listed_permissions(guild: &Guild, user_id: UserId, roles: &[RoleId]) -> Permissions {
    let role_perms: Vec<(RoleId, Permissions)> =
        guild.roles.iter().map(|r| (r.id, r.permissions)).collect();
    let guild_ctx = GuildContext {
        guild_id: guild.id,
        owner_id: guild.owner_id,
        roles: &role_perms,
    };
    let member = MemberContext {
        user_id,
        roles,
        timed_out: false,
    };
    permissions::compute(&guild_ctx, &member, None)
}
