//! Messages in guild channels: history, sending (with replies and mentions), editing, deleting.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use concord_core::error_code;
use concord_core::gateway::EventKind;
use concord_core::id::{ChannelId, GuildId, MessageId, MessageMarker, RoleId, UserId};
use concord_core::model::message::MessageReference;
use concord_core::model::{Message, User};
use concord_core::permissions::Permissions;
use concord_core::repo::{MessagePage, NewMessage};
use concord_core::timestamp::Timestamp;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::ChannelScope;
use crate::channels::ChannelPath;
use crate::error::{Error, FormErrors, Result};
use crate::events;
use crate::extract::{AppJson, AppPath, AppQuery, AuthUser};
use crate::state::AppState;
use crate::validate::{self, code, QueryId, REQUIRED_MESSAGE};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{channel_id}/messages",
            get(list_messages).post(create_message),
        )
        .route(
            "/channels/{channel_id}/messages/{message_id}",
            get(get_message).patch(edit_message).delete(delete_message),
        )
}

/// Longest message content, in characters.
const CONTENT_MAX: usize = 2000;
/// Longest string nonce.
const NONCE_MAX: usize = 25;
/// Largest history page.
const PAGE_MAX: u32 = 100;
/// History page size when `limit` is absent.
const PAGE_DEFAULT: u32 = 50;
/// Distinct users a message may mention.
const MENTIONS_MAX: usize = 100;
/// Message type of a reply.
const TYPE_REPLY: u8 = 19;

#[derive(Debug, Deserialize)]
pub(crate) struct MessagePath {
    pub(crate) channel_id: ChannelId,
    pub(crate) message_id: MessageId,
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    before: Option<QueryId<MessageMarker>>,
    after: Option<QueryId<MessageMarker>>,
    around: Option<QueryId<MessageMarker>>,
    limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct CreateMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    nonce: Option<Value>,
    #[serde(default)]
    tts: Option<bool>,
    #[serde(default)]
    message_reference: Option<ReferenceBody>,
}

#[derive(Debug, Deserialize)]
struct ReferenceBody {
    #[serde(default)]
    message_id: Option<MessageId>,
    #[serde(default)]
    channel_id: Option<ChannelId>,
    #[serde(default)]
    fail_if_not_exists: Option<bool>,
    #[serde(rename = "type", default)]
    kind: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct EditMessage {
    #[serde(default, deserialize_with = "validate::nullable")]
    content: Option<Option<String>>,
}

/// `d` of MESSAGE_DELETE.
#[derive(Debug, Serialize)]
struct MessageDeleted {
    id: MessageId,
    channel_id: ChannelId,
    guild_id: GuildId,
}

/// Mentions found in message content.
#[derive(Debug, Default, PartialEq, Eq)]
struct ParsedMentions {
    users: Vec<UserId>,
    roles: Vec<RoleId>,
    everyone: bool,
}

/// Finds `<@id>`, `<@!id>`, `<@&id>`, `@everyone` and `@here` in content.
fn parse_mentions(content: &str) -> ParsedMentions {
    let mut parsed = ParsedMentions {
        everyone: content.contains("@everyone") || content.contains("@here"),
        ..ParsedMentions::default()
    };
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let (is_role, tail) = match rest.as_bytes().first() {
            Some(b'&') => (true, &rest[1..]),
            Some(b'!') => (false, &rest[1..]),
            _ => (false, rest),
        };
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || tail.as_bytes().get(digits) != Some(&b'>') {
            continue;
        }
        let Ok(raw) = tail[..digits].parse::<u64>() else {
            continue;
        };
        if is_role {
            if let Some(id) = RoleId::new_checked(raw) {
                if !parsed.roles.contains(&id) {
                    parsed.roles.push(id);
                }
            }
        } else if let Some(id) = UserId::new_checked(raw) {
            if !parsed.users.contains(&id) && parsed.users.len() < MENTIONS_MAX {
                parsed.users.push(id);
            }
        }
    }
    parsed
}

/// Mentions that count, with the mentioned users as the message shows them.
#[derive(Debug)]
struct ResolvedMentions {
    users: Vec<User>,
    roles: Vec<RoleId>,
    everyone: bool,
}

impl ResolvedMentions {
    fn user_ids(&self) -> Vec<UserId> {
        self.users.iter().map(|u| u.id).collect()
    }
}

/// Keeps the mentions that count: guild members, roles of the guild, and `@everyone`/`@here`
/// only with MENTION_EVERYONE.
async fn resolve_mentions(
    state: &AppState,
    scope: &ChannelScope,
    content: &str,
) -> Result<ResolvedMentions> {
    let parsed = parse_mentions(content);
    let mut users = Vec::with_capacity(parsed.users.len());
    for user in parsed.users {
        let member = state
            .scopes
            .member(&*state.store, scope.guild_id(), user)
            .await?;
        if let Some(user) = member.and_then(|m| m.user.clone()) {
            users.push(user);
        }
    }
    let everyone_role: RoleId = scope.guild_id().cast();
    let roles = parsed
        .roles
        .into_iter()
        .filter(|id| *id != everyone_role && scope.guild.roles.iter().any(|(role, _)| role == id))
        .collect();
    let everyone = parsed.everyone && scope.permissions.contains(Permissions::MENTION_EVERYONE);
    Ok(ResolvedMentions {
        users,
        roles,
        everyone,
    })
}

fn check_content(errors: &mut FormErrors, content: &str) {
    validate::length(errors, &["content"], content, 0, CONTENT_MAX);
}

/// The nonce as stored (its JSON text), or a form error.
fn nonce_text(errors: &mut FormErrors, nonce: &Value) -> Option<String> {
    match nonce {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::String(s) if s.chars().count() <= NONCE_MAX => {
            Some(serde_json::to_string(s).unwrap_or_default())
        }
        Value::String(_) => {
            validate::length(errors, &["nonce"], &"x".repeat(NONCE_MAX + 1), 0, NONCE_MAX);
            None
        }
        Value::Null => None,
        _ => {
            errors.add(
                &["nonce"],
                code::INVALID,
                "Nonce must be an integer or a string.",
            );
            None
        }
    }
}

async fn list_messages(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ChannelPath>,
    AppQuery(query): AppQuery<HistoryQuery>,
) -> Result<Json<Vec<Message>>> {
    let limit = query.limit.unwrap_or(PAGE_DEFAULT);
    let mut errors = FormErrors::new();
    validate::range(&mut errors, &["limit"], limit, 1, PAGE_MAX);
    let page = match (query.before, query.after, query.around) {
        (None, None, None) => MessagePage::Latest,
        (Some(id), None, None) => MessagePage::Before(id.0),
        (None, Some(id), None) => MessagePage::After(id.0),
        (None, None, Some(id)) => MessagePage::Around(id.0),
        _ => {
            errors.add(
                &[],
                code::MUTUALLY_EXCLUSIVE,
                "Only one of before, after and around may be given.",
            );
            MessagePage::Latest
        }
    };
    errors.finish()?;

    let scope = ChannelScope::load_cached(&state, path.channel_id, auth.user_id).await?;
    if !scope
        .permissions
        .contains(Permissions::READ_MESSAGE_HISTORY)
    {
        return Ok(Json(Vec::new()));
    }
    Ok(Json(
        state
            .store
            .messages(scope.channel.id, page, limit, auth.user_id)
            .await?,
    ))
}

async fn get_message(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<MessagePath>,
) -> Result<Json<Message>> {
    let scope = ChannelScope::load_cached(&state, path.channel_id, auth.user_id).await?;
    scope.require(Permissions::READ_MESSAGE_HISTORY)?;
    let message = state
        .store
        .message(scope.channel.id, path.message_id, auth.user_id)
        .await?;
    message.map(Json).ok_or(error_code::UNKNOWN_MESSAGE.into())
}

async fn create_message(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ChannelPath>,
    AppJson(body): AppJson<CreateMessage>,
) -> Result<Json<Message>> {
    let content = body.content.unwrap_or_default();
    let mut errors = FormErrors::new();
    check_content(&mut errors, &content);
    let nonce = body.nonce.as_ref().and_then(|n| nonce_text(&mut errors, n));
    if let Some(reference) = &body.message_reference {
        if let Some(kind) = reference.kind {
            // Forwards (type 1) are not supported.
            validate::choice(&mut errors, &["message_reference", "type"], kind, &[0]);
        }
        if reference.message_id.is_none() {
            errors.add(
                &["message_reference", "message_id"],
                code::REQUIRED,
                REQUIRED_MESSAGE,
            );
        }
    }
    errors.finish()?;
    if content.trim().is_empty() {
        return Err(error_code::EMPTY_MESSAGE.into());
    }

    let scope = ChannelScope::load_cached(&state, path.channel_id, auth.user_id).await?;
    if !scope.channel.kind.accepts_messages() {
        return Err(error_code::NON_TEXT_CHANNEL.into());
    }
    scope.require(Permissions::SEND_MESSAGES)?;
    let tts =
        body.tts.unwrap_or(false) && scope.permissions.contains(Permissions::SEND_TTS_MESSAGES);

    let mut referenced = None;
    if let Some(reference) = &body.message_reference {
        if !scope
            .permissions
            .contains(Permissions::READ_MESSAGE_HISTORY)
        {
            return Err(error_code::REPLY_WITHOUT_HISTORY.into());
        }
        let same_channel = reference.channel_id.is_none_or(|c| c == scope.channel.id);
        let target = match reference.message_id {
            Some(id) if same_channel => {
                state
                    .store
                    .message(scope.channel.id, id, auth.user_id)
                    .await?
            }
            _ => None,
        };
        match target {
            Some(target) => referenced = Some(target),
            None if reference.fail_if_not_exists.unwrap_or(true) => {
                return Err(Error::field(
                    &["message_reference"],
                    code::UNKNOWN_MESSAGE_REFERENCE,
                    "Unknown message",
                ));
            }
            None => {}
        }
    }
    let mentions = resolve_mentions(&state, &scope, &content).await?;
    let author = match &scope.guild.member.user {
        Some(user) => user.clone(),
        None => state
            .store
            .users(&[auth.user_id])
            .await?
            .pop()
            .ok_or(Error::from(error_code::UNKNOWN_USER))?,
    };

    let id: MessageId = state.ids.next();
    let new = NewMessage {
        author_id: auth.user_id,
        channel_id: scope.channel.id,
        content,
        guild_id: Some(scope.guild_id()),
        id,
        kind: if referenced.is_some() { TYPE_REPLY } else { 0 },
        mention_everyone: mentions.everyone,
        mention_roles: mentions.roles.clone(),
        mentions: mentions.user_ids(),
        nonce,
        referenced_message_id: referenced.as_ref().map(|target| target.id),
        tts,
    };
    state.store.insert_message(&new).await?;
    let message = inserted_message(new, author, mentions.users, body.nonce, referenced);
    publish_message(&state, &scope, EventKind::MessageCreate, &message).await;
    Ok(Json(message))
}

/// The message just inserted, as the store would read it back (that read is a round trip per
/// post saved): nothing edited, pinned or reacted yet, the nonce echoed as sent, and a reply's
/// target without its own `referenced_message`, like every reply target the store returns.
fn inserted_message(
    new: NewMessage,
    author: User,
    mentions: Vec<User>,
    nonce: Option<Value>,
    referenced: Option<Message>,
) -> Message {
    let message_reference = referenced.as_ref().map(|target| MessageReference {
        channel_id: Some(new.channel_id),
        fail_if_not_exists: None,
        guild_id: new.guild_id,
        message_id: Some(target.id),
        kind: 0,
    });
    let referenced_message = referenced.map(|mut target| {
        target.referenced_message = None;
        Some(Box::new(target))
    });
    Message {
        attachments: Vec::new(),
        author,
        channel_id: new.channel_id,
        components: Vec::new(),
        content: new.content,
        edited_timestamp: None,
        embeds: Vec::new(),
        flags: 0,
        guild_id: new.guild_id,
        id: new.id,
        member: None,
        mention_everyone: new.mention_everyone,
        mention_roles: new.mention_roles,
        mentions,
        message_reference,
        // Stored only when valid; what is stored is this value's JSON text.
        nonce: nonce.filter(|_| new.nonce.is_some()),
        pinned: false,
        reactions: Vec::new(),
        referenced_message,
        timestamp: Timestamp::from_unix_ms(
            i64::try_from(new.id.timestamp_ms()).unwrap_or_default(),
        ),
        tts: new.tts,
        kind: new.kind,
    }
}

async fn edit_message(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<MessagePath>,
    AppJson(body): AppJson<EditMessage>,
) -> Result<Json<Message>> {
    let mut errors = FormErrors::new();
    if let Some(Some(content)) = &body.content {
        check_content(&mut errors, content);
    }
    errors.finish()?;

    let scope = ChannelScope::load_cached(&state, path.channel_id, auth.user_id).await?;
    let message = state
        .store
        .message(scope.channel.id, path.message_id, auth.user_id)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_MESSAGE))?;
    if message.author.id != auth.user_id {
        return Err(error_code::NOT_AUTHOR.into());
    }
    let Some(content) = body.content else {
        return Ok(Json(message));
    };
    let content = content.unwrap_or_default();
    if content.trim().is_empty() && message.attachments.is_empty() && message.embeds.is_empty() {
        return Err(error_code::EMPTY_MESSAGE.into());
    }
    let mentions = resolve_mentions(&state, &scope, &content).await?;
    let edited = state
        .store
        .edit_message(
            scope.channel.id,
            message.id,
            &content,
            &mentions.user_ids(),
            mentions.everyone,
            Timestamp::now(),
        )
        .await?;
    if !edited {
        return Err(error_code::UNKNOWN_MESSAGE.into());
    }
    let mut message = state
        .store
        .message(scope.channel.id, message.id, auth.user_id)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_MESSAGE))?;
    message.guild_id = Some(scope.guild_id());
    publish_message(&state, &scope, EventKind::MessageUpdate, &message).await;
    Ok(Json(message))
}

/// MESSAGE_CREATE/MESSAGE_UPDATE: the full message with `guild_id` and the author's member
/// (without user), a content-free copy for sessions lacking MESSAGE_CONTENT, and the author
/// and mentioned users exempt from that stripping.
async fn publish_message(
    state: &AppState,
    scope: &ChannelScope,
    kind: EventKind,
    message: &Message,
) {
    let mut payload = message.clone();
    payload.guild_id = Some(scope.guild_id());
    payload.member = Some(scope.guild.member.without_user());
    let mut dispatch = events::dispatch(kind, Some(scope.guild_id()), &payload);
    payload.content.clear();
    payload.embeds.clear();
    payload.attachments.clear();
    payload.components.clear();
    if let Some(Some(referenced)) = payload.referenced_message.as_mut() {
        referenced.content.clear();
        referenced.embeds.clear();
        referenced.attachments.clear();
        referenced.components.clear();
    }
    dispatch.data_without_content = Some(events::encode(&payload));
    dispatch.content_exempt = std::iter::once(message.author.id)
        .chain(message.mentions.iter().map(|u| u.id))
        .collect();
    dispatch.access = Some(scope.access(Permissions::VIEW_CHANNEL));
    events::to_guild(state, scope.guild_id(), dispatch).await;
}

async fn delete_message(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<MessagePath>,
) -> Result<StatusCode> {
    let scope = ChannelScope::load_cached(&state, path.channel_id, auth.user_id).await?;
    let message = state
        .store
        .message(scope.channel.id, path.message_id, auth.user_id)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_MESSAGE))?;
    if message.author.id != auth.user_id {
        scope.require(Permissions::MANAGE_MESSAGES)?;
    }
    if !state
        .store
        .delete_message(scope.channel.id, message.id)
        .await?
    {
        return Err(error_code::UNKNOWN_MESSAGE.into());
    }
    let deleted = MessageDeleted {
        id: message.id,
        channel_id: scope.channel.id,
        guild_id: scope.guild_id(),
    };
    let mut dispatch = events::dispatch(EventKind::MessageDelete, Some(scope.guild_id()), &deleted);
    dispatch.access = Some(scope.access(Permissions::VIEW_CHANNEL));
    events::to_guild(&state, scope.guild_id(), dispatch).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::id::Id;

    #[test]
    fn mentions_are_parsed_from_content() {
        let parsed = parse_mentions("hi <@12> and <@!12> <@&34> <@x> <@56 @here <@78>");
        assert_eq!(parsed.users, vec![Id::new(12), Id::new(78)]);
        assert_eq!(parsed.roles, vec![Id::new(34)]);
        assert!(parsed.everyone);
        assert_eq!(parse_mentions("plain"), ParsedMentions::default());
        assert!(parse_mentions("@everyone").everyone);
    }

    #[test]
    fn nonce_forms() {
        let mut errors = FormErrors::new();
        assert_eq!(
            nonce_text(&mut errors, &serde_json::json!(123)),
            Some("123".to_owned())
        );
        assert_eq!(
            nonce_text(&mut errors, &serde_json::json!("abc")),
            Some("\"abc\"".to_owned())
        );
        assert!(errors.is_empty());
        assert_eq!(
            nonce_text(&mut errors, &serde_json::json!("x".repeat(26))),
            None
        );
        assert_eq!(
            errors.as_map()["nonce"]["_errors"][0]["code"],
            code::MAX_LENGTH
        );
    }
}
