//! Reactions on messages: add and remove one's own, remove someone else's, list who reacted.

use axum::extract::State;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use concord_core::error_code;
use concord_core::gateway::EventKind;
use concord_core::id::{ChannelId, GenericId, GuildId, MessageId, UserId, UserMarker};
use concord_core::model::{Member, Message, User};
use concord_core::permissions::Permissions;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::access::ChannelScope;
use crate::error::{Error, FormErrors, Result};
use crate::events;
use crate::extract::{AppPath, AppQuery, AuthUser};
use crate::state::AppState;
use crate::validate::{self, QueryId};

pub(crate) fn router() -> Router<AppState> {
    const BASE: &str = "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}";
    Router::new()
        .route(BASE, get(list_reactors))
        .route(
            &format!("{BASE}/@me"),
            put(add_own_reaction).delete(remove_own_reaction),
        )
        .route(&format!("{BASE}/{{user_id}}"), delete(remove_user_reaction))
}

/// Distinct emoji one message may carry.
const MAX_DISTINCT_EMOJI: u64 = 20;
/// Largest page of reactors.
const REACTORS_PAGE_MAX: u32 = 100;
/// Reactors page size when `limit` is absent.
const REACTORS_PAGE_DEFAULT: u32 = 25;

#[derive(Debug, Deserialize)]
struct ReactionPath {
    channel_id: ChannelId,
    message_id: MessageId,
    emoji: String,
}

#[derive(Debug, Deserialize)]
struct UserReactionPath {
    channel_id: ChannelId,
    message_id: MessageId,
    emoji: String,
    user_id: UserId,
}

#[derive(Debug, Deserialize)]
struct ReactorsQuery {
    after: Option<QueryId<UserMarker>>,
    limit: Option<u32>,
}

/// An emoji from the `{emoji}` path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedEmoji {
    id: Option<GenericId>,
    name: String,
    animated: bool,
}

impl ParsedEmoji {
    /// Storage key: the unicode text, or `name:id` for a custom emoji.
    fn key(&self) -> String {
        match self.id {
            Some(id) => format!("{}:{id}", self.name),
            None => self.name.clone(),
        }
    }

    fn matches(&self, other: &concord_core::model::Emoji) -> bool {
        match self.id {
            Some(id) => other.id == Some(id),
            None => other.id.is_none() && other.name.as_deref() == Some(self.name.as_str()),
        }
    }

    /// A custom emoji is its id; the name in the path is the caller's say. Reusing the name
    /// already on the message keeps one emoji under one storage key, so a renamed path can
    /// neither split a reaction in two nor count as "already there" while adding a new key.
    fn on(mut self, message: &Message) -> Self {
        if self.id.is_some() {
            let stored = message
                .reactions
                .iter()
                .find(|r| self.matches(&r.emoji))
                .and_then(|r| r.emoji.name.clone());
            if let Some(name) = stored {
                self.name = name;
            }
        }
        self
    }
}

/// Parses an already percent-decoded segment: a unicode emoji, `name:id` or `a:name:id`.
fn parse_emoji(raw: &str) -> Option<ParsedEmoji> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (animated, name, id) = match parts.as_slice() {
        [unicode] => {
            let plausible = !unicode.is_empty()
                && unicode.chars().count() <= 16
                && !unicode.is_ascii()
                && !unicode.chars().any(|c| c.is_whitespace() || c.is_control());
            return plausible.then(|| ParsedEmoji {
                id: None,
                name: (*unicode).to_owned(),
                animated: false,
            });
        }
        [name, id] => (false, *name, *id),
        ["a", name, id] => (true, *name, *id),
        _ => return None,
    };
    let valid_name = (2..=32).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let id = id.parse::<GenericId>().ok()?;
    valid_name.then(|| ParsedEmoji {
        id: Some(id),
        name: name.to_owned(),
        animated,
    })
}

fn emoji_or_reject(raw: &str) -> Result<ParsedEmoji> {
    parse_emoji(raw).ok_or(Error::from(error_code::UNKNOWN_EMOJI))
}

/// Emoji as sent in reaction events.
#[derive(Debug, Serialize)]
struct EventEmoji {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    animated: bool,
    id: Option<GenericId>,
    name: String,
}

impl From<&ParsedEmoji> for EventEmoji {
    fn from(e: &ParsedEmoji) -> Self {
        Self {
            animated: e.animated,
            id: e.id,
            name: e.name.clone(),
        }
    }
}

/// `d` of MESSAGE_REACTION_ADD.
#[derive(Debug, Serialize)]
struct ReactionAdded {
    burst: bool,
    burst_colors: Vec<String>,
    channel_id: ChannelId,
    emoji: EventEmoji,
    guild_id: GuildId,
    member: Member,
    message_author_id: UserId,
    message_id: MessageId,
    #[serde(rename = "type")]
    kind: u8,
    user_id: UserId,
}

/// `d` of MESSAGE_REACTION_REMOVE.
#[derive(Debug, Serialize)]
struct ReactionRemoved {
    burst: bool,
    channel_id: ChannelId,
    emoji: EventEmoji,
    guild_id: GuildId,
    message_id: MessageId,
    #[serde(rename = "type")]
    kind: u8,
    user_id: UserId,
}

async fn load_message(
    state: &AppState,
    scope: &ChannelScope,
    id: MessageId,
    viewer: UserId,
) -> Result<Message> {
    state
        .store
        .message(scope.channel.id, id, viewer)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_MESSAGE))
}

async fn add_own_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ReactionPath>,
) -> Result<StatusCode> {
    let emoji = emoji_or_reject(&path.emoji)?;
    let scope = ChannelScope::load_cached(&state, path.channel_id, auth.user_id).await?;
    scope.require(Permissions::READ_MESSAGE_HISTORY)?;
    let message = load_message(&state, &scope, path.message_id, auth.user_id).await?;
    let emoji = emoji.on(&message);
    let is_new = !message.reactions.iter().any(|r| emoji.matches(&r.emoji));
    if is_new {
        scope.require(Permissions::ADD_REACTIONS)?;
        if state.store.reaction_emoji_count(message.id).await? >= MAX_DISTINCT_EMOJI {
            return Err(error_code::MAX_REACTIONS.into());
        }
    }
    if !state
        .store
        .add_reaction(message.id, auth.user_id, &emoji.key())
        .await?
    {
        return Ok(StatusCode::NO_CONTENT);
    }
    let added = ReactionAdded {
        burst: false,
        burst_colors: Vec::new(),
        channel_id: scope.channel.id,
        emoji: (&emoji).into(),
        guild_id: scope.guild_id(),
        member: scope.guild.member.clone(),
        message_author_id: message.author.id,
        message_id: message.id,
        kind: 0,
        user_id: auth.user_id,
    };
    let mut dispatch = events::dispatch(
        EventKind::MessageReactionAdd,
        Some(scope.guild_id()),
        &added,
    );
    dispatch.access = Some(scope.access(Permissions::VIEW_CHANNEL));
    events::to_guild(&state, scope.guild_id(), dispatch).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_own_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ReactionPath>,
) -> Result<StatusCode> {
    let emoji = emoji_or_reject(&path.emoji)?;
    let scope = ChannelScope::load_cached(&state, path.channel_id, auth.user_id).await?;
    remove(&state, &scope, path.message_id, auth.user_id, &emoji).await
}

async fn remove_user_reaction(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<UserReactionPath>,
) -> Result<StatusCode> {
    let emoji = emoji_or_reject(&path.emoji)?;
    let scope = ChannelScope::load_cached(&state, path.channel_id, auth.user_id).await?;
    if path.user_id != auth.user_id {
        scope.require(Permissions::MANAGE_MESSAGES)?;
    }
    remove(&state, &scope, path.message_id, path.user_id, &emoji).await
}

async fn remove(
    state: &AppState,
    scope: &ChannelScope,
    message_id: MessageId,
    user_id: UserId,
    emoji: &ParsedEmoji,
) -> Result<StatusCode> {
    let message = load_message(state, scope, message_id, scope.guild.user_id).await?;
    let emoji = &emoji.clone().on(&message);
    if state
        .store
        .remove_reaction(message.id, user_id, &emoji.key())
        .await?
    {
        let removed = ReactionRemoved {
            burst: false,
            channel_id: scope.channel.id,
            emoji: emoji.into(),
            guild_id: scope.guild_id(),
            message_id: message.id,
            kind: 0,
            user_id,
        };
        let mut dispatch = events::dispatch(
            EventKind::MessageReactionRemove,
            Some(scope.guild_id()),
            &removed,
        );
        dispatch.access = Some(scope.access(Permissions::VIEW_CHANNEL));
        events::to_guild(state, scope.guild_id(), dispatch).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list_reactors(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ReactionPath>,
    AppQuery(query): AppQuery<ReactorsQuery>,
) -> Result<Json<Vec<User>>> {
    let limit = query.limit.unwrap_or(REACTORS_PAGE_DEFAULT);
    let mut errors = FormErrors::new();
    validate::range(&mut errors, &["limit"], limit, 1, REACTORS_PAGE_MAX);
    errors.finish()?;
    let emoji = emoji_or_reject(&path.emoji)?;
    let scope = ChannelScope::load_cached(&state, path.channel_id, auth.user_id).await?;
    scope.require(Permissions::READ_MESSAGE_HISTORY)?;
    let message = load_message(&state, &scope, path.message_id, auth.user_id).await?;
    let emoji = emoji.on(&message);
    Ok(Json(
        state
            .store
            .reactors(message.id, &emoji.key(), query.after.map(|a| a.0), limit)
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::id::Id;

    #[test]
    fn emoji_segments() {
        let fire = parse_emoji("🔥").unwrap();
        assert_eq!(
            (fire.id, fire.name.as_str(), fire.key()),
            (None, "🔥", "🔥".to_owned())
        );
        let custom = parse_emoji("blob:123").unwrap();
        assert_eq!(
            (custom.id, custom.animated, custom.key()),
            (Some(Id::new(123)), false, "blob:123".to_owned())
        );
        let animated = parse_emoji("a:blob:123").unwrap();
        assert!(animated.animated);
        assert_eq!(animated.key(), "blob:123");
        assert!(parse_emoji("1️⃣").is_some());
        for bad in [
            "",
            "abc",
            "123",
            "blob:",
            "blob:x",
            ":123",
            "b:l:o:b",
            "a b",
            "bad name:1",
            "🔥 🔥",
        ] {
            assert!(parse_emoji(bad).is_none(), "{bad:?}");
        }
    }
}
