//! Users: the caller's profile, other users, and the caller's guild list.

use axum::extract::State;
use axum::routing::{delete, get};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use concord_core::bus::BusMessage;
use concord_core::error_code;
use concord_core::gateway::EventKind;
use concord_core::id::{GuildId, GuildMarker, UserId};
use concord_core::model::{CurrentUser, PartialGuild, User};
use concord_core::repo::{constraint, UserPatch};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access;
use crate::auth::username_taken;
use crate::error::{Error, FormErrors, Result, ResultExt};
use crate::events;
use crate::extract::{AppJson, AppPath, AppQuery, AuthUser};
use crate::state::AppState;
use crate::validate::{self, code, QueryBool, QueryId};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/users/@me",
            get(get_current_user).patch(modify_current_user),
        )
        .route("/users/@me/guilds", get(list_current_user_guilds))
        .route("/users/@me/guilds/{guild_id}", delete(leave_guild))
        .route("/users/{user_id}", get(get_user))
}

/// Largest page of `GET /users/@me/guilds`.
const GUILDS_PAGE_MAX: u32 = 200;
/// Image types accepted in avatar data URIs.
const IMAGE_TYPES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/gif",
    "image/webp",
];

#[derive(Debug, Deserialize)]
struct ModifyCurrentUser {
    #[serde(default)]
    username: Option<String>,
    #[serde(default, deserialize_with = "validate::nullable")]
    global_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    avatar: Option<Option<String>>,
}

#[derive(Debug, Deserialize)]
struct GuildsQuery {
    before: Option<QueryId<GuildMarker>>,
    after: Option<QueryId<GuildMarker>>,
    limit: Option<u32>,
    with_counts: Option<QueryBool>,
}

#[derive(Debug, Deserialize)]
struct UserPath {
    user_id: UserId,
}

#[derive(Debug, Deserialize)]
struct GuildPath {
    guild_id: GuildId,
}

/// `d` of GUILD_DELETE sent to a user who left: no `unavailable` key.
#[derive(Debug, Serialize)]
pub(crate) struct GuildGone {
    pub(crate) id: GuildId,
}

/// `d` of GUILD_MEMBER_REMOVE.
#[derive(Debug, Serialize)]
pub(crate) struct MemberRemoved {
    pub(crate) guild_id: GuildId,
    pub(crate) user: User,
}

async fn get_current_user(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<CurrentUser>> {
    let user = state
        .store
        .current_user(auth.user_id)
        .await?
        .ok_or(Error::from(error_code::UNAUTHORIZED))?;
    Ok(Json(user))
}

async fn modify_current_user(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(body): AppJson<ModifyCurrentUser>,
) -> Result<Json<CurrentUser>> {
    let mut errors = FormErrors::new();
    let mut patch = UserPatch::default();
    if let Some(raw) = body.username {
        let name = validate::normalize_name(&raw);
        validate::username(&mut errors, &["username"], &name);
        patch.username = Some(name);
    }
    if let Some(global_name) = body.global_name {
        let global_name = global_name
            .map(|n| validate::normalize_name(&n))
            .filter(|n| !n.is_empty());
        if let Some(name) = &global_name {
            validate::length(&mut errors, &["global_name"], name, 1, 32);
        }
        patch.global_name = Some(global_name);
    }
    if let Some(avatar) = body.avatar {
        patch.avatar = Some(match avatar {
            None => None,
            Some(uri) => match image_hash(&uri) {
                Some(hash) => Some(hash),
                None => {
                    errors.add(&["avatar"], code::IMAGE_INVALID, "Invalid image data");
                    None
                }
            },
        });
    }
    errors.finish()?;

    let updated = state.store.update_user(auth.user_id, &patch).await;
    // Cached memberships embed the user; invalidated whatever the outcome, as a failed call
    // may still have committed.
    state.scopes.user_changed(auth.user_id);
    let user = updated
        .on_constraint(constraint::USER_USERNAME, username_taken)?
        .ok_or(Error::from(error_code::UNAUTHORIZED))?;
    events::to_user(
        &state,
        auth.user_id,
        events::dispatch(EventKind::UserUpdate, None, &user),
    )
    .await;
    Ok(Json(user))
}

/// Hash of an image data URI (`data:image/png;base64,…`): 32 lowercase hex characters derived
/// from the decoded bytes, the shape strict clients require of image hashes.
fn image_hash(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("data:")?;
    let (mime, data) = rest.split_once(";base64,")?;
    if !IMAGE_TYPES.iter().any(|t| t.eq_ignore_ascii_case(mime)) {
        return None;
    }
    let bytes = STANDARD
        .decode(data.trim())
        .ok()
        .filter(|b| !b.is_empty())?;
    let digest = Sha256::digest(&bytes);
    Some(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
}

async fn get_user(
    State(state): State<AppState>,
    _auth: AuthUser,
    AppPath(path): AppPath<UserPath>,
) -> Result<Json<User>> {
    let user = state.store.users(&[path.user_id]).await?.into_iter().next();
    user.map(Json).ok_or(error_code::UNKNOWN_USER.into())
}

async fn list_current_user_guilds(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(query): AppQuery<GuildsQuery>,
) -> Result<Json<Vec<PartialGuild>>> {
    let limit = query.limit.unwrap_or(GUILDS_PAGE_MAX);
    let mut errors = FormErrors::new();
    validate::range(&mut errors, &["limit"], limit, 1, GUILDS_PAGE_MAX);
    errors.finish()?;
    let with_counts = query.with_counts.unwrap_or_default().0;

    let guilds = state
        .store
        .user_guilds(
            auth.user_id,
            query.before.map(|b| b.0),
            query.after.map(|a| a.0),
            limit,
        )
        .await?;
    let mut listed = Vec::with_capacity(guilds.len());
    for guild in guilds {
        let Some(roles) = state.store.member_roles(guild.id, auth.user_id).await? else {
            continue; // left between the two reads
        };
        let member_count = if with_counts {
            Some(state.store.member_count(guild.id).await?)
        } else {
            None
        };
        listed.push(PartialGuild {
            approximate_member_count: member_count,
            // Presence lives in the gateway; the REST tier cannot count who is online.
            approximate_presence_count: member_count.map(|_| 0),
            banner: guild.banner.clone(),
            features: guild.features.clone(),
            icon: guild.icon.clone(),
            id: guild.id,
            name: guild.name.clone(),
            owner: guild.owner_id == auth.user_id,
            permissions: access::listed_permissions(&guild, auth.user_id, &roles),
        });
    }
    Ok(Json(listed))
}

async fn leave_guild(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<GuildPath>,
) -> Result<StatusCode> {
    let guild = state
        .store
        .guild(path.guild_id)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_GUILD))?;
    if guild.owner_id == auth.user_id {
        return Err(error_code::OWNER_CANNOT_LEAVE.into());
    }
    let member = state
        .store
        .member(guild.id, auth.user_id)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_GUILD))?;
    let removed = state.store.remove_member(guild.id, auth.user_id).await;
    // Invalidated whatever the outcome: a failed call may still have committed.
    state.scopes.member_changed(guild.id, auth.user_id);
    if !removed? {
        return Err(error_code::UNKNOWN_GUILD.into());
    }
    announce_departure(&state, guild.id, auth.user_id, member.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells the leaver's sessions the guild is gone (GUILD_DELETE, then the unsubscribe) and the
/// guild that the member left (GUILD_MEMBER_REMOVE).
pub(crate) async fn announce_departure(
    state: &AppState,
    guild_id: GuildId,
    user_id: UserId,
    user: Option<User>,
) -> Result<()> {
    let gone = events::dispatch(
        EventKind::GuildDelete,
        Some(guild_id),
        &GuildGone { id: guild_id },
    );
    events::to_user(state, user_id, gone).await;
    events::to_user_slot(state, user_id, BusMessage::GuildLeft { guild_id, user_id }).await;
    let user = match user {
        Some(user) => user,
        None => state
            .store
            .users(&[user_id])
            .await?
            .into_iter()
            .next()
            .ok_or(Error::from(error_code::UNKNOWN_USER))?,
    };
    let removed = MemberRemoved { guild_id, user };
    events::to_guild(
        state,
        guild_id,
        events::dispatch(EventKind::GuildMemberRemove, Some(guild_id), &removed),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatar_hash_from_data_uri() {
        let uri = format!(
            "data:image/png;base64,{}",
            STANDARD.encode(b"\x89PNG fake image")
        );
        let hash = image_hash(&uri).unwrap();
        assert_eq!(hash.len(), 32);
        assert!(hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(image_hash(&uri), Some(hash));
        assert_eq!(image_hash("data:text/plain;base64,aGk="), None);
        assert_eq!(image_hash("data:image/png;base64,!!!"), None);
        assert_eq!(image_hash("nope"), None);
    }
}
