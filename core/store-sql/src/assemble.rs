//! Backend-independent assembly of wire objects from rows read by several statements.

use std::collections::HashMap;

use concord_core::id::RoleId;
use concord_core::model::guild::Guild;
use concord_core::model::member::Member;
use concord_core::model::message::Message;
use concord_core::model::role::Role;

use crate::error::Error;
use crate::row::{
    self, GuildRow, MemberRow, MentionRow, MessageExtras, MessageRow, ReactionCountRow, RoleRow,
};

/// Attaches roles (already ordered by guild, position, id) to their guilds.
pub(crate) fn guilds_with_roles(
    guilds: Vec<GuildRow>,
    roles: Vec<RoleRow>,
) -> Result<Vec<Guild>, Error> {
    let mut by_guild: HashMap<i64, Vec<Role>> = HashMap::new();
    for role in roles {
        by_guild
            .entry(role.guild_id)
            .or_default()
            .push(role.into_role());
    }
    guilds
        .into_iter()
        .map(|guild| {
            let roles = by_guild.remove(&guild.guild_id).unwrap_or_default();
            guild.into_guild(roles)
        })
        .collect()
}

/// Attaches `(user_id, role_id)` pairs to members.
pub(crate) fn members_with_roles(members: Vec<MemberRow>, pairs: Vec<(i64, i64)>) -> Vec<Member> {
    let mut by_user: HashMap<i64, Vec<RoleId>> = HashMap::new();
    for (user_id, role_id) in pairs {
        by_user.entry(user_id).or_default().push(row::id(role_id));
    }
    members
        .into_iter()
        .map(|member| {
            let roles = by_user.remove(&member.user.user_id).unwrap_or_default();
            member.into_member(roles)
        })
        .collect()
}

/// Groups mentions, role mentions and reaction counts (each ordered within a message) by message.
pub(crate) fn message_extras(
    mentions: Vec<MentionRow>,
    mention_roles: Vec<(i64, i64)>,
    reactions: Vec<ReactionCountRow>,
) -> HashMap<i64, MessageExtras> {
    let mut extras: HashMap<i64, MessageExtras> = HashMap::new();
    for mention in mentions {
        extras
            .entry(mention.message_id)
            .or_default()
            .mentions
            .push(mention.user.into_user());
    }
    for (message_id, role_id) in mention_roles {
        extras
            .entry(message_id)
            .or_default()
            .mention_roles
            .push(row::id(role_id));
    }
    for reaction in reactions {
        extras
            .entry(reaction.message_id)
            .or_default()
            .reactions
            .push(reaction.into_reaction());
    }
    extras
}

/// Builds `page` (in its order) with reply targets filled from `page` itself or `targets`.
///
/// A target appears without its own `referenced_message`, like Discord; a reply whose target is
/// gone gets `Some(None)`.
pub(crate) fn messages(
    page: Vec<MessageRow>,
    targets: Vec<MessageRow>,
    mut extras: HashMap<i64, MessageExtras>,
) -> Result<Vec<Message>, Error> {
    let mut build = |row: MessageRow| {
        let message_extras = extras.remove(&row.message_id).unwrap_or_default();
        row.into_message(message_extras)
    };
    let mut built = page
        .into_iter()
        .map(&mut build)
        .collect::<Result<Vec<_>, _>>()?;
    let targets = targets
        .into_iter()
        .map(&mut build)
        .collect::<Result<Vec<_>, _>>()?;

    let replies: Vec<Option<Option<Box<Message>>>> = {
        let lookup: HashMap<_, &Message> = built
            .iter()
            .chain(targets.iter())
            .map(|m| (m.id, m))
            .collect();
        built
            .iter()
            .map(|message| {
                let target = message.message_reference.as_ref()?.message_id?;
                Some(lookup.get(&target).map(|found| Box::new((*found).clone())))
            })
            .collect()
    };
    for (message, reply) in built.iter_mut().zip(replies) {
        message.referenced_message = reply;
    }
    Ok(built)
}

/// Reply targets of `page` that `page` does not already hold.
pub(crate) fn missing_targets(page: &[MessageRow]) -> Vec<i64> {
    let mut missing: Vec<i64> = page
        .iter()
        .filter_map(|m| m.referenced_message_id)
        .filter(|target| !page.iter().any(|m| m.message_id == *target))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    missing
}
