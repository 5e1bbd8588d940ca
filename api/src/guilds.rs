//! Guilds: creation, settings, deletion, their channels and their members.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_core::bus::BusMessage;
use concord_core::error_code;
use concord_core::gateway::EventKind;
use concord_core::id::{ChannelId, GuildId, UserId, UserMarker};
use concord_core::model::{Channel, ChannelType, Guild, Member};
use concord_core::permissions::Permissions;
use concord_core::repo::{GuildPatch, NewGuild};
use concord_core::timestamp::Timestamp;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::access::GuildScope;
use crate::channels::{self, OverwriteBody};
use crate::error::{Error, FormErrors, Result};
use crate::events;
use crate::extract::{AppJson, AppPath, AppQuery, AuthUser};
use crate::state::AppState;
use crate::users::GuildGone;
use crate::validate::{self, code, QueryBool, QueryId};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/guilds", post(create_guild))
        .route(
            "/guilds/{guild_id}",
            get(get_guild).patch(modify_guild).delete(delete_guild),
        )
        .route(
            "/guilds/{guild_id}/channels",
            get(list_channels).post(create_channel),
        )
        .route("/guilds/{guild_id}/members", get(list_members))
        .route("/guilds/{guild_id}/members/{user_id}", get(get_member))
}

/// Guilds one user may be in (Discord's cap for user accounts).
const MAX_GUILDS_PER_USER: usize = 100;
/// Channels one guild may have.
const MAX_CHANNELS_PER_GUILD: usize = 500;
/// Largest page of `GET /guilds/{id}/members`.
const MEMBERS_PAGE_MAX: u32 = 1000;
/// Longest slowmode, in seconds.
pub(crate) const SLOWMODE_MAX: i64 = 21_600;
/// Locales Discord accepts for `preferred_locale`.
const LOCALES: [&str; 32] = [
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl",
    "no", "pl", "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th",
    "zh-CN", "ja", "zh-TW", "ko",
];
/// AFK timeouts Discord offers, in seconds.
const AFK_TIMEOUTS: [i64; 5] = [60, 300, 900, 1800, 3600];

#[derive(Debug, Deserialize)]
struct GuildPath {
    guild_id: GuildId,
}

#[derive(Debug, Deserialize)]
struct MemberPath {
    guild_id: GuildId,
    user_id: UserId,
}

#[derive(Debug, Deserialize)]
struct CreateGuild {
    name: String,
}

#[derive(Debug, Deserialize)]
struct WithCountsQuery {
    with_counts: Option<QueryBool>,
}

#[derive(Debug, Deserialize)]
struct MembersQuery {
    limit: Option<u32>,
    after: Option<QueryId<UserMarker>>,
}

#[derive(Debug, Deserialize)]
struct ModifyGuild {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "validate::nullable")]
    description: Option<Option<String>>,
    #[serde(default)]
    verification_level: Option<i64>,
    #[serde(default)]
    default_message_notifications: Option<i64>,
    #[serde(default)]
    explicit_content_filter: Option<i64>,
    #[serde(default)]
    afk_timeout: Option<i64>,
    #[serde(default, deserialize_with = "validate::nullable")]
    afk_channel_id: Option<Option<ChannelId>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    system_channel_id: Option<Option<ChannelId>>,
    #[serde(default)]
    preferred_locale: Option<String>,
    #[serde(default)]
    owner_id: Option<UserId>,
}

#[derive(Debug, Deserialize)]
struct CreateChannel {
    name: String,
    #[serde(rename = "type", default)]
    kind: Option<i64>,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    position: Option<i64>,
    #[serde(default)]
    parent_id: Option<ChannelId>,
    #[serde(default)]
    nsfw: Option<bool>,
    #[serde(default)]
    rate_limit_per_user: Option<i64>,
    #[serde(default)]
    permission_overwrites: Option<Vec<OverwriteBody>>,
}

/// A guild with the optional `with_counts` fields.
#[derive(Debug, Serialize)]
struct GuildWithCounts {
    #[serde(flatten)]
    guild: Guild,
    #[serde(skip_serializing_if = "Option::is_none")]
    approximate_member_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approximate_presence_count: Option<u64>,
}

async fn create_guild(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(body): AppJson<CreateGuild>,
) -> Result<(StatusCode, Json<Guild>)> {
    let name = body.name.trim().to_owned();
    let mut errors = FormErrors::new();
    validate::length(&mut errors, &["name"], &name, 2, 100);
    errors.finish()?;
    if state.store.user_guild_ids(auth.user_id).await?.len() >= MAX_GUILDS_PER_USER {
        return Err(error_code::MAX_GUILDS.into());
    }

    let guild_id: GuildId = state.ids.next();
    let category_id: ChannelId = state.ids.next();
    let general_id: ChannelId = state.ids.next();
    let channel = |id, kind, name: &str, parent_id| Channel {
        flags: 0,
        guild_id: Some(guild_id),
        id,
        kind,
        last_message_id: None,
        name: name.to_owned(),
        nsfw: false,
        parent_id,
        permission_overwrites: Vec::new(),
        position: 0,
        rate_limit_per_user: 0,
        topic: None,
    };
    let new_guild = NewGuild {
        channels: vec![
            channel(
                category_id,
                ChannelType::GuildCategory,
                "Text Channels",
                None,
            ),
            channel(
                general_id,
                ChannelType::GuildText,
                "general",
                Some(category_id),
            ),
        ],
        everyone_permissions: Permissions::DEFAULT_EVERYONE,
        id: guild_id,
        name,
        owner_id: auth.user_id,
        system_channel_id: Some(general_id),
        created_at: Timestamp::now(),
    };
    let hold = events::hold_join(&state, guild_id, auth.user_id).await?;
    if let Err(error) = state.store.create_guild(&new_guild).await {
        hold.release(&state).await;
        return Err(error.into());
    }
    // The owner's shard subscribes their sessions and sends them GUILD_CREATE.
    hold.announce(&state).await;
    let guild = state
        .store
        .guild(guild_id)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_GUILD))?;
    Ok((StatusCode::CREATED, Json(guild)))
}

async fn get_guild(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<GuildPath>,
    AppQuery(query): AppQuery<WithCountsQuery>,
) -> Result<Json<GuildWithCounts>> {
    let scope = GuildScope::load(&state, path.guild_id, auth.user_id).await?;
    let counts = if query.with_counts.unwrap_or_default().0 {
        Some(state.store.member_count(scope.guild_id()).await?)
    } else {
        None
    };
    Ok(Json(GuildWithCounts {
        guild: Arc::unwrap_or_clone(scope.guild),
        approximate_member_count: counts,
        approximate_presence_count: counts.map(|_| 0),
    }))
}

async fn modify_guild(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<GuildPath>,
    AppJson(body): AppJson<ModifyGuild>,
) -> Result<Json<Guild>> {
    let mut errors = FormErrors::new();
    let mut patch = GuildPatch::default();
    if let Some(name) = &body.name {
        let name = name.trim().to_owned();
        validate::length(&mut errors, &["name"], &name, 2, 100);
        patch.name = Some(name);
    }
    if let Some(description) = &body.description {
        if let Some(text) = description {
            validate::length(&mut errors, &["description"], text, 0, 120);
        }
        patch.description = Some(description.clone().filter(|d| !d.is_empty()));
    }
    let mut level = |field: &'static str, value: Option<i64>, max: i64| -> Option<u8> {
        let value = value?;
        validate::choice(&mut errors, &[field], value, &(0..=max).collect::<Vec<_>>());
        u8::try_from(value).ok().filter(|v| i64::from(*v) <= max)
    };
    patch.verification_level = level("verification_level", body.verification_level, 4);
    patch.default_message_notifications = level(
        "default_message_notifications",
        body.default_message_notifications,
        1,
    );
    patch.explicit_content_filter =
        level("explicit_content_filter", body.explicit_content_filter, 2);
    if let Some(timeout) = body.afk_timeout {
        validate::choice(&mut errors, &["afk_timeout"], timeout, &AFK_TIMEOUTS);
        patch.afk_timeout = u32::try_from(timeout).ok();
    }
    if let Some(locale) = &body.preferred_locale {
        validate::choice(
            &mut errors,
            &["preferred_locale"],
            locale.as_str(),
            &LOCALES,
        );
        patch.preferred_locale = Some(locale.clone());
    }
    errors.finish()?;

    let scope = GuildScope::load(&state, path.guild_id, auth.user_id).await?;
    scope.require(Permissions::MANAGE_GUILD)?;
    if let Some(owner_id) = body.owner_id {
        if !scope.is_owner() {
            return Err(error_code::MISSING_PERMISSIONS.into());
        }
        if state
            .store
            .member_roles(scope.guild_id(), owner_id)
            .await?
            .is_none()
        {
            return Err(error_code::UNKNOWN_MEMBER.into());
        }
        patch.owner_id = Some(owner_id);
    }
    let mut errors = FormErrors::new();
    if let Some(afk) = body.afk_channel_id {
        if let Some(id) = afk {
            check_guild_channel(
                &state,
                &mut errors,
                "afk_channel_id",
                scope.guild_id(),
                id,
                |k| k.is_voice_like(),
            )
            .await?;
        }
        patch.afk_channel_id = Some(afk);
    }
    if let Some(system) = body.system_channel_id {
        if let Some(id) = system {
            check_guild_channel(
                &state,
                &mut errors,
                "system_channel_id",
                scope.guild_id(),
                id,
                |k| k == ChannelType::GuildText,
            )
            .await?;
        }
        patch.system_channel_id = Some(system);
    }
    errors.finish()?;

    let updated = state.store.update_guild(scope.guild_id(), &patch).await;
    // Invalidated whatever the outcome: a failed call may still have committed.
    state.scopes.guild_changed(scope.guild_id());
    let guild = updated?.ok_or(Error::from(error_code::UNKNOWN_GUILD))?;
    let update = events::dispatch(EventKind::GuildUpdate, Some(guild.id), &guild);
    events::to_guild(&state, guild.id, update).await;
    Ok(Json(guild))
}

/// Records a form error unless `id` is a channel of the guild whose type satisfies `accept`.
async fn check_guild_channel(
    state: &AppState,
    errors: &mut FormErrors,
    field: &'static str,
    guild_id: GuildId,
    id: ChannelId,
    accept: impl Fn(ChannelType) -> bool,
) -> Result<()> {
    let valid = state
        .store
        .channel(id)
        .await?
        .is_some_and(|c| c.guild_id == Some(guild_id) && accept(c.kind));
    if !valid {
        errors.add(&[field], code::CHANNEL_INVALID, "Invalid channel");
    }
    Ok(())
}

async fn delete_guild(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<GuildPath>,
) -> Result<StatusCode> {
    let scope = GuildScope::load(&state, path.guild_id, auth.user_id).await?;
    if !scope.is_owner() {
        return Err(error_code::MISSING_PERMISSIONS.into());
    }
    let guild_id = scope.guild_id();
    let deleted = state.store.delete_guild(guild_id).await;
    // Invalidated whatever the outcome: a failed call may still have committed.
    state.scopes.guild_deleted(guild_id);
    if !deleted? {
        return Err(error_code::UNKNOWN_GUILD.into());
    }
    let slots = events::interested(&state, guild_id).await;
    let gone = events::dispatch(
        EventKind::GuildDelete,
        Some(guild_id),
        &GuildGone { id: guild_id },
    );
    events::to_slots(&state, &slots, BusMessage::Dispatch(gone.into())).await;
    events::to_slots(&state, &slots, BusMessage::GuildRemoved { guild_id }).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_channels(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<GuildPath>,
) -> Result<Json<Vec<Channel>>> {
    let scope = GuildScope::load(&state, path.guild_id, auth.user_id).await?;
    // Like Discord, the list names every channel; hidden ones stay unreadable elsewhere.
    Ok(Json(state.store.guild_channels(scope.guild_id()).await?))
}

async fn create_channel(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<GuildPath>,
    AppJson(body): AppJson<CreateChannel>,
) -> Result<(StatusCode, Json<Channel>)> {
    let mut errors = FormErrors::new();
    let name = body.name.trim().to_owned();
    validate::length(&mut errors, &["name"], &name, 1, 100);
    let kind_raw = body.kind.unwrap_or(0);
    let creatable = ChannelType::CREATABLE_IN_GUILD.map(|t| i64::from(u8::from(t)));
    validate::choice(&mut errors, &["type"], kind_raw, &creatable);
    let kind = u8::try_from(kind_raw)
        .map(ChannelType::from)
        .unwrap_or(ChannelType::GuildText);
    if let Some(topic) = &body.topic {
        validate::length(&mut errors, &["topic"], topic, 0, 1024);
    }
    let slowmode = body.rate_limit_per_user.unwrap_or(0);
    validate::range(
        &mut errors,
        &["rate_limit_per_user"],
        slowmode,
        0,
        SLOWMODE_MAX,
    );
    let overwrites = channels::overwrites_from_body(
        &mut errors,
        body.permission_overwrites.as_deref().unwrap_or_default(),
    );
    errors.finish()?;

    let scope = GuildScope::load(&state, path.guild_id, auth.user_id).await?;
    scope.require(Permissions::MANAGE_CHANNELS)?;
    let existing = state.store.guild_channels(scope.guild_id()).await?;
    if existing.len() >= MAX_CHANNELS_PER_GUILD {
        return Err(error_code::MAX_CHANNELS.into());
    }
    let parent = match body.parent_id {
        None => None,
        Some(parent_id) => {
            let parent = existing
                .iter()
                .find(|c| c.id == parent_id && c.kind == ChannelType::GuildCategory);
            match parent {
                Some(parent) if kind != ChannelType::GuildCategory => Some(parent),
                _ => {
                    return Err(Error::field(
                        &["parent_id"],
                        code::CHANNEL_PARENT_INVALID,
                        "Not a category",
                    ));
                }
            }
        }
    };
    // Overwrites may only carry bits the caller holds where the channel will live.
    let held = match parent {
        Some(parent) => scope.channel_permissions(parent),
        None => scope.permissions(),
    };
    channels::check_overwrites(&state, &scope, held, &[], &overwrites, false).await?;

    let position = body.position.unwrap_or_else(|| {
        existing
            .iter()
            .filter(|c| c.parent_id == body.parent_id)
            .map(|c| c.position + 1)
            .max()
            .unwrap_or(0)
    });
    let channel = Channel {
        flags: 0,
        guild_id: Some(scope.guild_id()),
        id: state.ids.next(),
        kind,
        last_message_id: None,
        name,
        nsfw: body.nsfw.unwrap_or(false),
        parent_id: parent.map(|p| p.id),
        permission_overwrites: overwrites,
        position,
        rate_limit_per_user: u32::try_from(slowmode).unwrap_or(0),
        topic: body.topic.filter(|t| !t.is_empty()),
    };
    state.store.insert_channel(&channel).await?;
    let mut created = events::dispatch(EventKind::ChannelCreate, Some(scope.guild_id()), &channel);
    created.access = Some(scope.access(&channel, Permissions::VIEW_CHANNEL));
    events::to_guild(&state, scope.guild_id(), created).await;
    Ok((StatusCode::CREATED, Json(channel)))
}

async fn list_members(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<GuildPath>,
    AppQuery(query): AppQuery<MembersQuery>,
) -> Result<Json<Vec<Member>>> {
    let limit = query.limit.unwrap_or(1);
    let mut errors = FormErrors::new();
    validate::range(&mut errors, &["limit"], limit, 1, MEMBERS_PAGE_MAX);
    errors.finish()?;
    let scope = GuildScope::load(&state, path.guild_id, auth.user_id).await?;
    Ok(Json(
        state
            .store
            .members(scope.guild_id(), query.after.map(|a| a.0), limit)
            .await?,
    ))
}

async fn get_member(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<MemberPath>,
) -> Result<Json<Member>> {
    let scope = GuildScope::load(&state, path.guild_id, auth.user_id).await?;
    let member = state.store.member(scope.guild_id(), path.user_id).await?;
    member.map(Json).ok_or(error_code::UNKNOWN_MEMBER.into())
}
