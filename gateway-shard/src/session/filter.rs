//! Which sessions receive a dispatch, and in which encoding: the pure per-recipient rules.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use concord_core::bus::Dispatch;
use concord_core::gateway::{EventKind, Intents};
use concord_core::id::{GuildId, RoleId, UserId};
use concord_core::shard_math::client_shard_of_guild;

use crate::frame::EncodedEvent;

/// Which encoding of `d` a recipient gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// `data`.
    Full,
    /// `data_without_content`.
    WithoutContent,
}

/// What the rules need to know about a recipient.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recipient<'a> {
    pub(crate) user_id: UserId,
    pub(crate) intents: Intents,
    pub(crate) client_shard: Option<[u32; 2]>,
    /// Subscribed guilds with the member's roles in each.
    pub(crate) guilds: &'a HashMap<GuildId, Vec<RoleId>>,
}

/// Whether a session identified with `client_shard` handles events of `guild` (`None` = DMs and
/// other guild-less events, which Discord sends to client shard 0 only).
pub(crate) fn client_shard_wants(client_shard: Option<[u32; 2]>, guild: Option<GuildId>) -> bool {
    match (client_shard, guild) {
        (None, _) => true,
        (Some([id, count]), Some(guild)) => client_shard_of_guild(guild, count) == id,
        (Some([id, _]), None) => id == 0,
    }
}

/// Intent gating a guild-less (direct message) event.
fn direct_intent(kind: EventKind) -> Option<Intents> {
    match kind {
        EventKind::MessageCreate | EventKind::MessageUpdate | EventKind::MessageDelete => {
            Some(Intents::DIRECT_MESSAGES)
        }
        EventKind::MessageReactionAdd | EventKind::MessageReactionRemove => {
            Some(Intents::DIRECT_MESSAGE_REACTIONS)
        }
        EventKind::TypingStart => Some(Intents::DIRECT_MESSAGE_TYPING),
        _ => None,
    }
}

/// The encoding `recipient` gets, or `None` when it must not receive the event.
///
/// `subject` is the member a GUILD_MEMBER_UPDATE is about: Discord sends a user their own
/// member updates even without GUILD_MEMBERS.
pub(crate) fn select(
    recipient: &Recipient<'_>,
    dispatch: &Dispatch,
    subject: Option<UserId>,
) -> Option<Variant> {
    if let Some(target) = dispatch.user_id {
        if target != recipient.user_id {
            return None;
        }
    }
    if let Some(guild) = dispatch.guild_id {
        // Guild-wide events reach only subscribed sessions; the index can lag a leave.
        if dispatch.user_id.is_none() && !recipient.guilds.contains_key(&guild) {
            return None;
        }
    }
    if !client_shard_wants(recipient.client_shard, dispatch.guild_id) {
        return None;
    }
    let needed = match dispatch.guild_id {
        Some(_) => dispatch.kind.guild_intent(),
        None => direct_intent(dispatch.kind),
    };
    let own_member_update =
        dispatch.kind == EventKind::GuildMemberUpdate && subject == Some(recipient.user_id);
    if let Some(needed) = needed {
        if !recipient.intents.contains(needed) && !own_member_update {
            return None;
        }
    }
    if let (Some(access), Some(guild)) = (&dispatch.access, dispatch.guild_id) {
        // Roles are unknown only for user-targeted events outside the session's guilds; judge
        // those as a member with no roles.
        let roles = recipient.guilds.get(&guild).map_or(&[][..], Vec::as_slice);
        if !access.allows(guild, recipient.user_id, roles) {
            return None;
        }
    }
    let strip = dispatch.kind.carries_content()
        && dispatch.data_without_content.is_some()
        && !recipient.intents.contains(Intents::MESSAGE_CONTENT)
        && !dispatch.content_exempt.contains(&recipient.user_id);
    Some(if strip {
        Variant::WithoutContent
    } else {
        Variant::Full
    })
}

/// The (at most two) encodings of one dispatch, built on first use and shared by every
/// recipient on the shard (and, through [`SharedEncodings`], by the process's other shards).
pub(crate) struct EncodeCache<'d> {
    dispatch: &'d Arc<Dispatch>,
    shared: Option<&'d SharedEncodings>,
    full: Option<Arc<EncodedEvent>>,
    stripped: Option<Arc<EncodedEvent>>,
}

impl<'d> EncodeCache<'d> {
    /// Encodings of `dispatch` for one shard's recipients.
    pub(crate) fn new(dispatch: &'d Arc<Dispatch>) -> Self {
        Self {
            dispatch,
            shared: None,
            full: None,
            stripped: None,
        }
    }

    /// The same, reusing what the process's other shards encoded for the same dispatch.
    pub(crate) fn shared(dispatch: &'d Arc<Dispatch>, shared: &'d SharedEncodings) -> Self {
        Self {
            shared: Some(shared),
            ..Self::new(dispatch)
        }
    }

    /// The encoding for `variant`.
    pub(crate) fn get(&mut self, variant: Variant) -> Arc<EncodedEvent> {
        let dispatch = self.dispatch;
        let stripped = matches!(
            (variant, &dispatch.data_without_content),
            (Variant::WithoutContent, Some(_))
        );
        let local = if stripped {
            &mut self.stripped
        } else {
            &mut self.full
        };
        if let Some(event) = local {
            return event.clone();
        }
        let encode = || {
            let data = match (stripped, &dispatch.data_without_content) {
                (true, Some(data)) => data,
                _ => &dispatch.data,
            };
            EncodedEvent::new(dispatch.kind, data)
        };
        let event = match self.shared {
            Some(shared) => shared.get_or_encode(dispatch, stripped, encode),
            None => encode(),
        };
        local.insert(event).clone()
    }
}

/// Encodings of recent dispatches, shared by the shards of one process: each slot consumes
/// its own channel, but an event published to several slots arrives as one dispatch (the bus
/// decodes it once), so it is encoded once per process, and a link sends its body once.
#[derive(Debug, Default)]
pub(crate) struct SharedEncodings {
    recent: Mutex<VecDeque<SharedEntry>>,
}

/// A dispatch (held, so its address cannot be reused while it is a key) and its encodings.
#[derive(Debug)]
struct SharedEntry {
    dispatch: Arc<Dispatch>,
    full: Option<Arc<EncodedEvent>>,
    stripped: Option<Arc<EncodedEvent>>,
}

/// Dispatches [`SharedEncodings`] remembers: the slots of a process read the same events
/// within moments of each other.
const SHARED_ENCODINGS: usize = 256;

impl SharedEncodings {
    fn get_or_encode(
        &self,
        dispatch: &Arc<Dispatch>,
        stripped: bool,
        encode: impl FnOnce() -> Arc<EncodedEvent>,
    ) -> Arc<EncodedEvent> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let position = recent
            .iter()
            .rposition(|entry| Arc::ptr_eq(&entry.dispatch, dispatch));
        let entry = match position {
            Some(position) => &mut recent[position],
            None => {
                if recent.len() >= SHARED_ENCODINGS {
                    recent.pop_front();
                }
                recent.push_back(SharedEntry {
                    dispatch: dispatch.clone(),
                    full: None,
                    stripped: None,
                });
                recent.back_mut().expect("just pushed")
            }
        };
        let slot = if stripped {
            &mut entry.stripped
        } else {
            &mut entry.full
        };
        slot.get_or_insert_with(encode).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use concord_core::bus::ChannelAccess;
    use concord_core::id::{GenericId, Id};
    use concord_core::model::{ChannelType, OverwriteType, PermissionOverwrite};
    use concord_core::permissions::Permissions;

    const GUILD: GuildId = Id::new(1 << 22);
    const OWNER: UserId = Id::new(100);
    const ALICE: UserId = Id::new(200);
    const SECRET_ROLE: RoleId = Id::new(300);

    fn message(access: Option<ChannelAccess>) -> Dispatch {
        Dispatch {
            access,
            content_exempt: vec![OWNER],
            data: Bytes::from_static(br#"{"content":"hi"}"#),
            data_without_content: Some(Bytes::from_static(br#"{"content":""}"#)),
            guild_id: Some(GUILD),
            kind: EventKind::MessageCreate,
            user_id: None,
        }
    }

    fn private_channel() -> ChannelAccess {
        let everyone: GenericId = GUILD.cast();
        ChannelAccess {
            kind: ChannelType::GuildText,
            owner_id: OWNER,
            overwrites: vec![
                PermissionOverwrite {
                    allow: Permissions::empty(),
                    deny: Permissions::VIEW_CHANNEL,
                    id: everyone,
                    kind: OverwriteType::Role,
                },
                PermissionOverwrite {
                    allow: Permissions::VIEW_CHANNEL,
                    deny: Permissions::empty(),
                    id: SECRET_ROLE.cast(),
                    kind: OverwriteType::Role,
                },
            ],
            required: Permissions::VIEW_CHANNEL,
            roles: vec![
                (GUILD.cast(), Permissions::DEFAULT_EVERYONE),
                (SECRET_ROLE, Permissions::empty()),
            ],
        }
    }

    fn recipient(
        user_id: UserId,
        intents: Intents,
        guilds: &HashMap<GuildId, Vec<RoleId>>,
    ) -> Recipient<'_> {
        Recipient {
            user_id,
            intents,
            client_shard: None,
            guilds,
        }
    }

    #[test]
    fn intents_gate_guild_events() {
        let guilds = HashMap::from([(GUILD, vec![])]);
        let with = recipient(
            ALICE,
            Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
            &guilds,
        );
        let without = recipient(ALICE, Intents::GUILDS, &guilds);
        assert_eq!(select(&with, &message(None), None), Some(Variant::Full));
        assert_eq!(select(&without, &message(None), None), None);
    }

    #[test]
    fn content_is_stripped_unless_intended_or_exempt() {
        let guilds = HashMap::from([(GUILD, vec![])]);
        let alice = recipient(ALICE, Intents::GUILD_MESSAGES, &guilds);
        let owner = recipient(OWNER, Intents::GUILD_MESSAGES, &guilds);
        assert_eq!(
            select(&alice, &message(None), None),
            Some(Variant::WithoutContent)
        );
        assert_eq!(select(&owner, &message(None), None), Some(Variant::Full));
    }

    #[test]
    fn view_channel_is_checked_with_the_members_roles() {
        let plain = HashMap::from([(GUILD, vec![])]);
        let secret = HashMap::from([(GUILD, vec![SECRET_ROLE])]);
        let intents = Intents::GUILD_MESSAGES;
        let event = message(Some(private_channel()));
        assert_eq!(
            select(&recipient(ALICE, intents, &plain), &event, None),
            None
        );
        assert!(select(&recipient(ALICE, intents, &secret), &event, None).is_some());
        assert!(select(&recipient(OWNER, intents, &plain), &event, None).is_some());
    }

    #[test]
    fn guild_membership_user_targets_and_client_shards() {
        let none = HashMap::new();
        let guilds = HashMap::from([(GUILD, vec![])]);
        let intents = Intents::all();
        assert_eq!(
            select(&recipient(ALICE, intents, &none), &message(None), None),
            None
        );
        let mut targeted = message(None);
        targeted.user_id = Some(ALICE);
        assert!(select(&recipient(ALICE, intents, &none), &targeted, None).is_some());
        assert_eq!(
            select(&recipient(OWNER, intents, &guilds), &targeted, None),
            None
        );

        let mut sharded = recipient(ALICE, intents, &guilds);
        sharded.client_shard = Some([1, 2]);
        assert!(
            select(&sharded, &message(None), None).is_some(),
            "guild 1<<22 is on client shard 1 of 2"
        );
        sharded.client_shard = Some([0, 2]);
        assert_eq!(select(&sharded, &message(None), None), None);
    }

    #[test]
    fn own_member_update_needs_no_members_intent() {
        let guilds = HashMap::from([(GUILD, vec![])]);
        let update = Dispatch {
            kind: EventKind::GuildMemberUpdate,
            ..message(None)
        };
        let alice = recipient(ALICE, Intents::GUILDS, &guilds);
        assert!(select(&alice, &update, Some(ALICE)).is_some());
        assert_eq!(select(&alice, &update, Some(OWNER)), None);
    }

    #[test]
    fn encodings_are_built_once() {
        let event = Arc::new(message(None));
        let mut cache = EncodeCache::new(&event);
        let a = cache.get(Variant::Full);
        let b = cache.get(Variant::Full);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &cache.get(Variant::WithoutContent)));

        // Another shard of the process gets the same encodings for the same dispatch.
        let shared = SharedEncodings::default();
        let first = EncodeCache::shared(&event, &shared).get(Variant::Full);
        let second = EncodeCache::shared(&event, &shared).get(Variant::Full);
        assert!(Arc::ptr_eq(&first, &second));
        let stripped = EncodeCache::shared(&event, &shared).get(Variant::WithoutContent);
        assert!(!Arc::ptr_eq(&first, &stripped));
        // An equal but distinct dispatch is encoded on its own.
        let other = Arc::new(message(None));
        assert!(!Arc::ptr_eq(
            &first,
            &EncodeCache::shared(&other, &shared).get(Variant::Full)
        ));
    }
}
