//! Op 8 Request Guild Members → GUILD_MEMBERS_CHUNK dispatches.

use concord_core::gateway::payload::incoming::{RequestGuildMembers, UserIds};
use concord_core::gateway::payload::outgoing::GuildMembersChunk;
use concord_core::gateway::{EventKind, Intents};
use concord_core::id::{GuildId, UserId};
use concord_core::model::Member;
use concord_core::repo::{RepoResult, Store};

use crate::error::Result;
use crate::frame::EncodedEvent;
use crate::metrics;
use crate::session::{Offer, Session};
use crate::shard::Shard;

/// Members per GUILD_MEMBERS_CHUNK.
const CHUNK_SIZE: usize = 1000;
/// Most members a query or id list returns.
const QUERY_LIMIT: usize = 100;
/// Longest nonce echoed; longer ones are ignored, as Discord does.
const MAX_NONCE_BYTES: usize = 32;
/// Store page size while scanning a guild's members.
const PAGE: u32 = 1000;

impl Shard {
    /// Answers op 8 with one or more GUILD_MEMBERS_CHUNK dispatches on the session.
    ///
    /// Requests for a guild the session is not in, or for the whole list without the
    /// GUILD_MEMBERS intent, get one empty chunk so that clients waiting on the nonce finish.
    pub(crate) async fn request_guild_members(
        &self,
        session: &Session,
        request: RequestGuildMembers,
    ) -> Result<()> {
        let guild = request.guild_id;
        let nonce = request.nonce.filter(|n| n.len() <= MAX_NONCE_BYTES);
        let store = &*self.store;
        let mut members = Vec::new();
        let mut not_found = Vec::new();
        let member_of = session.in_guild(guild);
        if let Some(ids) = request.user_ids {
            let ids = match ids {
                UserIds::One(id) => vec![id],
                UserIds::Many(ids) => ids,
            };
            for id in ids.into_iter().take(QUERY_LIMIT) {
                let found = if member_of {
                    store.member(guild, id).await?
                } else {
                    None
                };
                match found {
                    Some(member) => members.push(member),
                    None => not_found.push(id.to_string()),
                }
            }
        } else if member_of {
            let query = request.query.unwrap_or_default();
            let limit = request.limit.unwrap_or(0) as usize;
            if query.is_empty() && limit == 0 {
                if session.intents.contains(Intents::GUILD_MEMBERS) {
                    members = scan(store, guild, usize::MAX, |_| true).await?;
                }
            } else {
                let cap = if limit == 0 {
                    QUERY_LIMIT
                } else {
                    limit.min(QUERY_LIMIT)
                };
                let prefix = query.to_lowercase();
                members = scan(store, guild, cap, |m| matches_prefix(m, &prefix)).await?;
            }
        }

        let chunks: Vec<Vec<Member>> = if members.is_empty() {
            vec![Vec::new()]
        } else {
            members.chunks(CHUNK_SIZE).map(<[Member]>::to_vec).collect()
        };
        let chunk_count = chunks.len() as u32;
        let mut sequenced = 0;
        for (index, members) in chunks.into_iter().enumerate() {
            let chunk = GuildMembersChunk {
                chunk_count,
                chunk_index: index as u32,
                guild_id: guild,
                members,
                nonce: nonce.clone(),
                not_found: if index == 0 {
                    std::mem::take(&mut not_found)
                } else {
                    Vec::new()
                },
            };
            if session.push_event(EncodedEvent::encode(EventKind::GuildMembersChunk, &chunk))
                == Offer::Sequenced
            {
                sequenced += 1;
            }
        }
        metrics::dispatched(EventKind::GuildMembersChunk, sequenced);
        Ok(())
    }
}

/// Case-insensitive prefix match on username or nickname.
fn matches_prefix(member: &Member, prefix: &str) -> bool {
    let starts = |name: &str| name.to_lowercase().starts_with(prefix);
    member.user.as_ref().is_some_and(|u| starts(&u.username))
        || member.nick.as_deref().is_some_and(starts)
}

/// Pages through the guild's members keeping those that match, up to `cap`.
async fn scan(
    store: &dyn Store,
    guild: GuildId,
    cap: usize,
    keep: impl Fn(&Member) -> bool,
) -> RepoResult<Vec<Member>> {
    let mut found = Vec::new();
    let mut after: Option<UserId> = None;
    loop {
        let page = store.members(guild, after, PAGE).await?;
        let full = page.len() == PAGE as usize;
        after = page.last().and_then(|m| m.user.as_ref()).map(|u| u.id);
        for member in page {
            if keep(&member) {
                found.push(member);
                if found.len() >= cap {
                    return Ok(found);
                }
            }
        }
        if !full || after.is_none() {
            return Ok(found);
        }
    }
}
