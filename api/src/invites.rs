//! Invites: created on a channel, looked up by code, and accepted to join the guild.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_core::error_code;
use concord_core::gateway::EventKind;
use concord_core::id::{ChannelId, GuildId};
use concord_core::model::{ChannelType, Invite, Member, User};
use concord_core::permissions::Permissions;
use concord_core::repo::{constraint, InviteAcceptance, NewInvite, RepoError};
use concord_core::timestamp::Timestamp;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::access::ChannelScope;
use crate::channels::ChannelPath;
use crate::error::{Error, FormErrors, Result};
use crate::events;
use crate::extract::{AppJson, AppPath, AppQuery, AuthUser, MaybeAuthUser};
use crate::state::AppState;
use crate::validate::{self, QueryBool};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/channels/{channel_id}/invites", post(create_invite))
        .route("/invites/{code}", get(get_invite).post(accept_invite))
}

/// Longest invite lifetime, in seconds (7 days).
const MAX_AGE_MAX: i64 = 604_800;
/// Invite lifetime when `max_age` is absent (24 hours).
const MAX_AGE_DEFAULT: i64 = 86_400;
/// Largest use cap.
const MAX_USES_MAX: i64 = 100;
/// Characters in a generated code.
const CODE_LEN: usize = 8;
/// Attempts at a code that does not collide.
const CODE_ATTEMPTS: usize = 5;

#[derive(Debug, Deserialize)]
struct InvitePath {
    code: String,
}

/// Create-invite body. Discord's `unique` is accepted and ignored: every invite is unique here,
/// Concord never hands back an equivalent existing one.
#[derive(Debug, Deserialize)]
struct CreateInvite {
    #[serde(default)]
    max_age: Option<i64>,
    #[serde(default)]
    max_uses: Option<i64>,
    #[serde(default)]
    temporary: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct InviteQuery {
    with_counts: Option<QueryBool>,
}

/// `d` of INVITE_CREATE.
#[derive(Debug, Serialize)]
struct InviteCreated {
    channel_id: ChannelId,
    code: String,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    guild_id: GuildId,
    #[serde(skip_serializing_if = "Option::is_none")]
    inviter: Option<User>,
    max_age: u32,
    max_uses: u32,
    temporary: bool,
    uses: u32,
}

/// `d` of GUILD_MEMBER_ADD.
#[derive(Debug, Serialize)]
struct MemberAdded {
    #[serde(flatten)]
    member: Member,
    guild_id: GuildId,
}

async fn create_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ChannelPath>,
    AppJson(body): AppJson<CreateInvite>,
) -> Result<Json<Invite>> {
    let max_age = body.max_age.unwrap_or(MAX_AGE_DEFAULT);
    let max_uses = body.max_uses.unwrap_or(0);
    let mut errors = FormErrors::new();
    validate::range(&mut errors, &["max_age"], max_age, 0, MAX_AGE_MAX);
    validate::range(&mut errors, &["max_uses"], max_uses, 0, MAX_USES_MAX);
    errors.finish()?;

    let scope = ChannelScope::load(&state, path.channel_id, auth.user_id).await?;
    if scope.channel.kind == ChannelType::GuildCategory {
        return Err(error_code::INVALID_CHANNEL_TYPE.into());
    }
    scope.require(Permissions::CREATE_INSTANT_INVITE)?;

    let mut new = NewInvite {
        channel_id: scope.channel.id,
        code: String::new(),
        created_at: Timestamp::now(),
        guild_id: scope.guild_id(),
        inviter_id: auth.user_id,
        max_age: u32::try_from(max_age).unwrap_or(0),
        max_uses: u32::try_from(max_uses).unwrap_or(0),
        temporary: body.temporary.unwrap_or(false),
    };
    for attempt in 1..=CODE_ATTEMPTS {
        new.code = random_code();
        match state.store.insert_invite(&new).await {
            Ok(()) => break,
            Err(RepoError::Conflict(c))
                if c == constraint::INVITE_CODE && attempt < CODE_ATTEMPTS =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        }
    }
    let invite = state
        .store
        .invite(&new.code)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_INVITE))?;

    let created = InviteCreated {
        channel_id: new.channel_id,
        code: new.code.clone(),
        created_at: new.created_at,
        expires_at: invite.expires_at,
        guild_id: new.guild_id,
        inviter: invite.inviter.clone(),
        max_age: new.max_age,
        max_uses: new.max_uses,
        temporary: new.temporary,
        uses: 0,
    };
    let mut dispatch = events::dispatch(EventKind::InviteCreate, Some(scope.guild_id()), &created);
    dispatch.access = Some(scope.access(Permissions::VIEW_CHANNEL | Permissions::MANAGE_CHANNELS));
    events::to_guild(&state, scope.guild_id(), dispatch).await;
    Ok(Json(invite))
}

fn random_code() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(CODE_LEN)
        .map(char::from)
        .collect()
}

/// The invite if it exists, has not expired and has uses left.
async fn live_invite(state: &AppState, code: &str) -> Result<Invite> {
    let invite = state
        .store
        .invite(code)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_INVITE))?;
    let now = Timestamp::now();
    let expired = invite.expires_at.is_some_and(|at| at <= now);
    let exhausted = invite
        .metadata
        .as_ref()
        .is_some_and(|m| m.max_uses > 0 && m.uses >= m.max_uses);
    if expired || exhausted {
        return Err(error_code::UNKNOWN_INVITE.into());
    }
    Ok(invite)
}

async fn get_invite(
    State(state): State<AppState>,
    _auth: MaybeAuthUser,
    AppPath(path): AppPath<InvitePath>,
    AppQuery(query): AppQuery<InviteQuery>,
) -> Result<Json<Invite>> {
    let mut invite = live_invite(&state, &path.code).await?;
    invite.metadata = None;
    if query.with_counts.unwrap_or_default().0 {
        invite.approximate_member_count = Some(state.store.member_count(invite.guild_id).await?);
        // Presence lives in the gateway; the REST tier cannot count who is online.
        invite.approximate_presence_count = Some(0);
    }
    Ok(Json(invite))
}

async fn accept_invite(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<InvitePath>,
) -> Result<Json<Invite>> {
    let mut invite = live_invite(&state, &path.code).await?;
    invite.metadata = None;
    let hold = events::hold_join(&state, invite.guild_id, auth.user_id).await?;
    // The join and the counted use commit together: a member re-accepting (even racing
    // itself) never burns a use, and concurrent joiners cannot overshoot `max_uses`.
    let accepted = state
        .store
        .accept_invite(&invite.code, auth.user_id, Timestamp::now())
        .await;
    // A membership left through another API process may still be cached here; the rejoin
    // must not be judged by it.
    if let Ok(InviteAcceptance::Joined(guild_id)) = accepted {
        state.scopes.member_changed(guild_id, auth.user_id);
    }
    let guild_id = match accepted {
        Ok(InviteAcceptance::Joined(guild_id)) => guild_id,
        other => {
            // Nothing joined (already a member, invite gone, or the write failed).
            hold.release(&state).await;
            return match other? {
                InviteAcceptance::AlreadyMember(_) => Ok(Json(invite)),
                _ => Err(error_code::UNKNOWN_INVITE.into()),
            };
        }
    };
    let member = match state.store.member(guild_id, auth.user_id).await {
        Ok(Some(member)) => member,
        failed => {
            // Joined, but gone again (or unreadable): the shard still handles the join and
            // releases the hold, finding the user is no longer a member if so.
            hold.announce(&state).await;
            failed?;
            return Err(error_code::UNKNOWN_MEMBER.into());
        }
    };
    let added = events::dispatch(
        EventKind::GuildMemberAdd,
        Some(guild_id),
        &MemberAdded { member, guild_id },
    );
    events::to_guild(&state, guild_id, added).await;
    // The joiner's shard subscribes their sessions and sends them GUILD_CREATE.
    hold.announce(&state).await;
    Ok(Json(invite))
}
