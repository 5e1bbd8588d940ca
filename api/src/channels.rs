//! Guild channels: read, edit, delete, and the typing indicator; plus the permission-overwrite
//! rules shared with channel creation.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_core::error_code;
use concord_core::gateway::EventKind;
use concord_core::id::{ChannelId, GenericId, GuildId, UserId};
use concord_core::model::{Channel, ChannelType, Member, OverwriteType, PermissionOverwrite};
use concord_core::permissions::Permissions;
use concord_core::timestamp::Timestamp;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::access::{ChannelScope, GuildScope};
use crate::error::{Error, FormErrors, Result};
use crate::events;
use crate::extract::{AppJson, AppPath, AuthUser};
use crate::guilds::SLOWMODE_MAX;
use crate::state::AppState;
use crate::validate::{self, code};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{channel_id}",
            get(get_channel)
                .patch(modify_channel)
                .delete(delete_channel),
        )
        .route("/channels/{channel_id}/typing", post(trigger_typing))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChannelPath {
    pub(crate) channel_id: ChannelId,
}

/// A permission overwrite as sent in create/edit bodies (`allow`/`deny` may be absent or null).
#[derive(Debug, Deserialize)]
pub(crate) struct OverwriteBody {
    id: GenericId,
    #[serde(rename = "type")]
    kind: i64,
    #[serde(default)]
    allow: Option<Permissions>,
    #[serde(default)]
    deny: Option<Permissions>,
}

#[derive(Debug, Deserialize)]
struct ModifyChannel {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "validate::nullable")]
    topic: Option<Option<String>>,
    #[serde(default)]
    nsfw: Option<bool>,
    #[serde(default)]
    position: Option<i64>,
    #[serde(default, deserialize_with = "validate::nullable")]
    parent_id: Option<Option<ChannelId>>,
    #[serde(default)]
    rate_limit_per_user: Option<i64>,
    #[serde(default)]
    permission_overwrites: Option<Vec<OverwriteBody>>,
}

/// `d` of TYPING_START.
#[derive(Debug, Serialize)]
struct TypingStart {
    channel_id: ChannelId,
    guild_id: GuildId,
    member: Member,
    timestamp: i64,
    user_id: UserId,
}

/// Converts body overwrites, recording a form error for each bad `type`.
pub(crate) fn overwrites_from_body(
    errors: &mut FormErrors,
    body: &[OverwriteBody],
) -> Vec<PermissionOverwrite> {
    let mut overwrites = Vec::with_capacity(body.len());
    for (index, ow) in body.iter().enumerate() {
        let kind = match ow.kind {
            0 => OverwriteType::Role,
            1 => OverwriteType::Member,
            _ => {
                let index = index.to_string();
                validate::choice(
                    errors,
                    &["permission_overwrites", &index, "type"],
                    ow.kind,
                    &[0, 1],
                );
                continue;
            }
        };
        overwrites.push(PermissionOverwrite {
            allow: ow.allow.unwrap_or_default(),
            deny: ow.deny.unwrap_or_default(),
            id: ow.id,
            kind,
        });
    }
    overwrites
}

/// Checks overwrite targets (roles of the guild, members of it) and the hierarchy rule: an
/// actor without ADMINISTRATOR may only set bits it holds (`held`), and MANAGE_ROLES only when
/// `manage_roles_allowed`. Overwrites already in `current` are not re-checked, so an edit can
/// keep entries the caller could not have written.
pub(crate) async fn check_overwrites(
    state: &AppState,
    scope: &GuildScope,
    held: Permissions,
    current: &[PermissionOverwrite],
    new: &[PermissionOverwrite],
    manage_roles_allowed: bool,
) -> Result<()> {
    let mut errors = FormErrors::new();
    for (index, ow) in new.iter().enumerate() {
        let index = index.to_string();
        let known = match ow.kind {
            OverwriteType::Role => scope.guild.roles.iter().any(|r| r.id.get() == ow.id.get()),
            OverwriteType::Member => state
                .store
                .member_roles(scope.guild_id(), ow.id.cast())
                .await?
                .is_some(),
        };
        if !known {
            errors.add(
                &["permission_overwrites", &index, "id"],
                code::INVALID,
                "Unknown role or member.",
            );
        }
    }
    errors.finish()?;
    if held.contains(Permissions::ADMINISTRATOR) {
        return Ok(());
    }
    for ow in new.iter().filter(|ow| !current.contains(ow)) {
        let bits = ow.allow | ow.deny;
        if !held.contains(bits)
            || (!manage_roles_allowed && bits.contains(Permissions::MANAGE_ROLES))
        {
            return Err(error_code::MISSING_PERMISSIONS.into());
        }
    }
    Ok(())
}

async fn get_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ChannelPath>,
) -> Result<Json<Channel>> {
    let scope = ChannelScope::load(&state, path.channel_id, auth.user_id).await?;
    Ok(Json(scope.channel))
}

async fn modify_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ChannelPath>,
    AppJson(body): AppJson<ModifyChannel>,
) -> Result<Json<Channel>> {
    let mut errors = FormErrors::new();
    let name = body.name.as_deref().map(str::trim);
    if let Some(name) = name {
        validate::length(&mut errors, &["name"], name, 1, 100);
    }
    if let Some(Some(topic)) = &body.topic {
        validate::length(&mut errors, &["topic"], topic, 0, 1024);
    }
    if let Some(slowmode) = body.rate_limit_per_user {
        validate::range(
            &mut errors,
            &["rate_limit_per_user"],
            slowmode,
            0,
            SLOWMODE_MAX,
        );
    }
    let overwrites = body
        .permission_overwrites
        .as_deref()
        .map(|b| overwrites_from_body(&mut errors, b));
    errors.finish()?;

    let scope = ChannelScope::load(&state, path.channel_id, auth.user_id).await?;
    scope.require(Permissions::MANAGE_CHANNELS)?;
    let mut channel = scope.channel.clone();
    if let Some(overwrites) = overwrites {
        scope.require(Permissions::MANAGE_ROLES)?;
        check_overwrites(
            &state,
            &scope.guild,
            scope.permissions,
            &channel.permission_overwrites,
            &overwrites,
            true,
        )
        .await?;
        channel.permission_overwrites = overwrites;
    }
    if let Some(parent) = body.parent_id {
        if let Some(parent_id) = parent {
            let valid = channel.kind != ChannelType::GuildCategory
                && state.store.channel(parent_id).await?.is_some_and(|p| {
                    p.guild_id == Some(scope.guild_id()) && p.kind == ChannelType::GuildCategory
                });
            if !valid {
                return Err(Error::field(
                    &["parent_id"],
                    code::CHANNEL_PARENT_INVALID,
                    "Not a category",
                ));
            }
        }
        channel.parent_id = parent;
    }
    if let Some(name) = name {
        channel.name = name.to_owned();
    }
    if let Some(topic) = body.topic {
        channel.topic = topic.filter(|t| !t.is_empty());
    }
    if let Some(nsfw) = body.nsfw {
        channel.nsfw = nsfw;
    }
    if let Some(position) = body.position {
        channel.position = position;
    }
    if let Some(slowmode) = body.rate_limit_per_user {
        channel.rate_limit_per_user = u32::try_from(slowmode).unwrap_or(0);
    }
    let updated = state.store.update_channel(&channel).await;
    // Invalidated whatever the outcome: a failed call may still have committed.
    state.scopes.channel_changed(channel.id);
    if !updated? {
        return Err(error_code::UNKNOWN_CHANNEL.into());
    }
    let mut update = events::dispatch(EventKind::ChannelUpdate, Some(scope.guild_id()), &channel);
    update.access = Some(scope.guild.access(&channel, Permissions::VIEW_CHANNEL));
    events::to_guild(&state, scope.guild_id(), update).await;
    Ok(Json(channel))
}

async fn delete_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ChannelPath>,
) -> Result<Json<Channel>> {
    let scope = ChannelScope::load(&state, path.channel_id, auth.user_id).await?;
    scope.require(Permissions::MANAGE_CHANNELS)?;
    let guild_id = scope.guild_id();
    let orphans: Vec<Channel> = if scope.channel.kind == ChannelType::GuildCategory {
        let all = state.store.guild_channels(guild_id).await?;
        all.into_iter()
            .filter(|c| c.parent_id == Some(scope.channel.id))
            .collect()
    } else {
        Vec::new()
    };
    let deleted = state.store.delete_channel(scope.channel.id).await;
    // Invalidated whatever the outcome: a failed call may still have committed. The children
    // lost their parent.
    state.scopes.channel_changed(scope.channel.id);
    for child in &orphans {
        state.scopes.channel_changed(child.id);
    }
    if !deleted? {
        return Err(error_code::UNKNOWN_CHANNEL.into());
    }
    // Recipients are those who could see the channel before it went away.
    let mut deleted = events::dispatch(EventKind::ChannelDelete, Some(guild_id), &scope.channel);
    deleted.access = Some(scope.access(Permissions::VIEW_CHANNEL));
    events::to_guild(&state, guild_id, deleted).await;
    for mut child in orphans {
        child.parent_id = None;
        let mut update = events::dispatch(EventKind::ChannelUpdate, Some(guild_id), &child);
        update.access = Some(scope.guild.access(&child, Permissions::VIEW_CHANNEL));
        events::to_guild(&state, guild_id, update).await;
    }
    Ok(Json(scope.channel))
}

async fn trigger_typing(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ChannelPath>,
) -> Result<StatusCode> {
    let scope = ChannelScope::load_cached(&state, path.channel_id, auth.user_id).await?;
    scope.require(Permissions::SEND_MESSAGES)?;
    if !scope.channel.kind.accepts_messages() {
        return Err(error_code::NON_TEXT_CHANNEL.into());
    }
    let typing = TypingStart {
        channel_id: scope.channel.id,
        guild_id: scope.guild_id(),
        member: scope.guild.member.clone(),
        timestamp: Timestamp::now().unix_ms() / 1000,
        user_id: auth.user_id,
    };
    let mut dispatch = events::dispatch(EventKind::TypingStart, Some(scope.guild_id()), &typing);
    dispatch.access = Some(scope.access(Permissions::VIEW_CHANNEL));
    events::to_guild(&state, scope.guild_id(), dispatch).await;
    Ok(StatusCode::NO_CONTENT)
}
