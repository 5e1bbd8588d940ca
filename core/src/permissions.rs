//! Discord permission bits and the single function that computes a member's effective permissions.
//!
//! Every REST permission check and every gateway dispatch filter goes through [`compute`].

use std::fmt;

use bitflags::bitflags;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{GuildId, RoleId, UserId};
use crate::model::channel::{ChannelType, OverwriteType, PermissionOverwrite};

bitflags! {
    /// Permission bits with Discord's values; see Discord Docs/Permissions.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Permissions: u64 {
        /// Create instant invite.
        const CREATE_INSTANT_INVITE = 1 << 0;
        /// Kick members.
        const KICK_MEMBERS = 1 << 1;
        /// Ban members.
        const BAN_MEMBERS = 1 << 2;
        /// Administrator.
        const ADMINISTRATOR = 1 << 3;
        /// Manage channels.
        const MANAGE_CHANNELS = 1 << 4;
        /// Manage guild.
        const MANAGE_GUILD = 1 << 5;
        /// Add reactions.
        const ADD_REACTIONS = 1 << 6;
        /// View audit log.
        const VIEW_AUDIT_LOG = 1 << 7;
        /// Priority speaker.
        const PRIORITY_SPEAKER = 1 << 8;
        /// Stream.
        const STREAM = 1 << 9;
        /// View channel.
        const VIEW_CHANNEL = 1 << 10;
        /// Send messages.
        const SEND_MESSAGES = 1 << 11;
        /// Send tts messages.
        const SEND_TTS_MESSAGES = 1 << 12;
        /// Manage messages.
        const MANAGE_MESSAGES = 1 << 13;
        /// Embed links.
        const EMBED_LINKS = 1 << 14;
        /// Attach files.
        const ATTACH_FILES = 1 << 15;
        /// Read message history.
        const READ_MESSAGE_HISTORY = 1 << 16;
        /// Mention everyone.
        const MENTION_EVERYONE = 1 << 17;
        /// Use external emojis.
        const USE_EXTERNAL_EMOJIS = 1 << 18;
        /// View guild insights.
        const VIEW_GUILD_INSIGHTS = 1 << 19;
        /// Connect.
        const CONNECT = 1 << 20;
        /// Speak.
        const SPEAK = 1 << 21;
        /// Mute members.
        const MUTE_MEMBERS = 1 << 22;
        /// Deafen members.
        const DEAFEN_MEMBERS = 1 << 23;
        /// Move members.
        const MOVE_MEMBERS = 1 << 24;
        /// Use vad.
        const USE_VAD = 1 << 25;
        /// Change nickname.
        const CHANGE_NICKNAME = 1 << 26;
        /// Manage nicknames.
        const MANAGE_NICKNAMES = 1 << 27;
        /// Manage roles.
        const MANAGE_ROLES = 1 << 28;
        /// Manage webhooks.
        const MANAGE_WEBHOOKS = 1 << 29;
        /// Manage guild expressions.
        const MANAGE_GUILD_EXPRESSIONS = 1 << 30;
        /// Use application commands.
        const USE_APPLICATION_COMMANDS = 1 << 31;
        /// Request to speak.
        const REQUEST_TO_SPEAK = 1 << 32;
        /// Manage events.
        const MANAGE_EVENTS = 1 << 33;
        /// Manage threads.
        const MANAGE_THREADS = 1 << 34;
        /// Create public threads.
        const CREATE_PUBLIC_THREADS = 1 << 35;
        /// Create private threads.
        const CREATE_PRIVATE_THREADS = 1 << 36;
        /// Use external stickers.
        const USE_EXTERNAL_STICKERS = 1 << 37;
        /// Send messages in threads.
        const SEND_MESSAGES_IN_THREADS = 1 << 38;
        /// Use embedded activities.
        const USE_EMBEDDED_ACTIVITIES = 1 << 39;
        /// Moderate members.
        const MODERATE_MEMBERS = 1 << 40;
        /// View creator monetization analytics.
        const VIEW_CREATOR_MONETIZATION_ANALYTICS = 1 << 41;
        /// Use soundboard.
        const USE_SOUNDBOARD = 1 << 42;
        /// Create guild expressions.
        const CREATE_GUILD_EXPRESSIONS = 1 << 43;
        /// Create events.
        const CREATE_EVENTS = 1 << 44;
        /// Use external sounds.
        const USE_EXTERNAL_SOUNDS = 1 << 45;
        /// Send voice messages.
        const SEND_VOICE_MESSAGES = 1 << 46;
        /// Set voice channel status.
        const SET_VOICE_CHANNEL_STATUS = 1 << 48;
        /// Send polls.
        const SEND_POLLS = 1 << 49;
        /// Use external apps.
        const USE_EXTERNAL_APPS = 1 << 50;
        /// Pin messages.
        const PIN_MESSAGES = 1 << 51;
        /// Bypass slowmode.
        const BYPASS_SLOWMODE = 1 << 52;
    }
}

impl Permissions {
    /// What `@everyone` gets in a new guild: Discord's default set.
    pub const DEFAULT_EVERYONE: Self = Self::from_bits_truncate(
        Self::CREATE_INSTANT_INVITE.bits()
            | Self::ADD_REACTIONS.bits()
            | Self::STREAM.bits()
            | Self::VIEW_CHANNEL.bits()
            | Self::SEND_MESSAGES.bits()
            | Self::SEND_TTS_MESSAGES.bits()
            | Self::EMBED_LINKS.bits()
            | Self::ATTACH_FILES.bits()
            | Self::READ_MESSAGE_HISTORY.bits()
            | Self::MENTION_EVERYONE.bits()
            | Self::USE_EXTERNAL_EMOJIS.bits()
            | Self::CONNECT.bits()
            | Self::SPEAK.bits()
            | Self::USE_VAD.bits()
            | Self::CHANGE_NICKNAME.bits()
            | Self::USE_APPLICATION_COMMANDS.bits()
            | Self::REQUEST_TO_SPEAK.bits()
            | Self::CREATE_PUBLIC_THREADS.bits()
            | Self::CREATE_PRIVATE_THREADS.bits()
            | Self::USE_EXTERNAL_STICKERS.bits()
            | Self::SEND_MESSAGES_IN_THREADS.bits()
            | Self::USE_EMBEDDED_ACTIVITIES.bits()
            | Self::SEND_VOICE_MESSAGES.bits()
            | Self::SEND_POLLS.bits()
            | Self::USE_EXTERNAL_APPS.bits(),
    );

    /// Bits that depend on being able to send messages.
    const NEEDS_SEND: Self = Self::from_bits_truncate(
        Self::MENTION_EVERYONE.bits()
            | Self::SEND_TTS_MESSAGES.bits()
            | Self::ATTACH_FILES.bits()
            | Self::EMBED_LINKS.bits(),
    );

    /// Bits a timed-out member keeps.
    const TIMEOUT_KEEPS: Self =
        Self::from_bits_truncate(Self::VIEW_CHANNEL.bits() | Self::READ_MESSAGE_HISTORY.bits());

    /// Parses a decimal string, dropping undefined bits (Discord ignores them).
    pub fn parse_decimal(text: &str) -> Option<Self> {
        text.parse::<u64>().ok().map(Self::from_bits_truncate)
    }
}

impl Serialize for Permissions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.bits())
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PermVisitor;
        impl Visitor<'_> for PermVisitor {
            type Value = Permissions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("permissions as a decimal string or integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Permissions::from_bits_truncate(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(Permissions::from_bits_truncate)
                    .map_err(|_| E::custom("permissions are non-negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Permissions::parse_decimal(v)
                    .ok_or_else(|| E::custom("permissions must be a decimal integer"))
            }
        }
        deserializer.deserialize_any(PermVisitor)
    }
}

/// What [`compute`] needs to know about a guild.
#[derive(Debug, Clone, Copy)]
pub struct GuildContext<'a> {
    /// Guild id (also the `@everyone` role id).
    pub guild_id: GuildId,
    /// Guild owner.
    pub owner_id: UserId,
    /// Every role of the guild with its permissions, `@everyone` included.
    pub roles: &'a [(RoleId, Permissions)],
}

/// What [`compute`] needs to know about the member.
#[derive(Debug, Clone, Copy)]
pub struct MemberContext<'a> {
    /// User id of the member.
    pub user_id: UserId,
    /// Role ids the member holds (without `@everyone`).
    pub roles: &'a [RoleId],
    /// Whether a timeout is in force right now.
    pub timed_out: bool,
}

/// What [`compute`] needs to know about a channel.
#[derive(Debug, Clone, Copy)]
pub struct ChannelContext<'a> {
    /// Channel type, for the implicit text/voice rules.
    pub kind: ChannelType,
    /// Overwrites stored on the channel.
    pub overwrites: &'a [PermissionOverwrite],
}

/// Guild-level permissions (Discord's step 1): owner → all, `@everyone` | roles, admin → all.
pub fn guild_permissions(guild: &GuildContext<'_>, member: &MemberContext<'_>) -> Permissions {
    if member.user_id == guild.owner_id {
        return Permissions::all();
    }
    let everyone_id: RoleId = guild.guild_id.cast();
    let mut perms = Permissions::empty();
    for (role_id, role_perms) in guild.roles {
        if *role_id == everyone_id || member.roles.contains(role_id) {
            perms |= *role_perms;
        }
    }
    if perms.contains(Permissions::ADMINISTRATOR) {
        return Permissions::all();
    }
    if member.timed_out {
        perms &= Permissions::TIMEOUT_KEEPS;
    }
    perms
}

/// Effective permissions of a member, in a channel when one is given.
///
/// Implements Discord's algorithm: base permissions, then overwrites in the order `@everyone`,
/// all member roles together, the member; then the implicit rules (no VIEW_CHANNEL voids
/// everything channel-scoped, no SEND_MESSAGES voids its dependants, no CONNECT voids voice bits,
/// timeouts keep only viewing and history).
pub fn compute(
    guild: &GuildContext<'_>,
    member: &MemberContext<'_>,
    channel: Option<&ChannelContext<'_>>,
) -> Permissions {
    let base = guild_permissions(guild, member);
    let Some(channel) = channel else {
        return base;
    };
    if base.contains(Permissions::ADMINISTRATOR) {
        return Permissions::all();
    }
    let mut perms = base;
    let everyone_target = guild.guild_id.get();
    if let Some(ow) = channel
        .overwrites
        .iter()
        .find(|o| o.id.get() == everyone_target)
    {
        perms &= !ow.deny;
        perms |= ow.allow;
    }
    let (mut allow, mut deny) = (Permissions::empty(), Permissions::empty());
    for ow in channel
        .overwrites
        .iter()
        .filter(|o| o.kind == OverwriteType::Role)
    {
        if ow.id.get() != everyone_target && member.roles.iter().any(|r| r.get() == ow.id.get()) {
            allow |= ow.allow;
            deny |= ow.deny;
        }
    }
    perms &= !deny;
    perms |= allow;
    if let Some(ow) = channel
        .overwrites
        .iter()
        .find(|o| o.kind == OverwriteType::Member && o.id.get() == member.user_id.get())
    {
        perms &= !ow.deny;
        perms |= ow.allow;
    }
    if member.timed_out {
        perms &= Permissions::TIMEOUT_KEEPS;
    }
    if !perms.contains(Permissions::VIEW_CHANNEL) {
        return Permissions::empty();
    }
    if channel.kind.is_text_like() && !perms.contains(Permissions::SEND_MESSAGES) {
        perms &= !Permissions::NEEDS_SEND;
    }
    if channel.kind.is_voice_like() && !perms.contains(Permissions::CONNECT) {
        perms &= Permissions::VIEW_CHANNEL | Permissions::READ_MESSAGE_HISTORY;
    }
    perms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;

    #[test]
    fn bits_pinned_to_discord_values() {
        let pinned: &[(Permissions, u64)] = &[
            (Permissions::CREATE_INSTANT_INVITE, 1),
            (Permissions::KICK_MEMBERS, 2),
            (Permissions::BAN_MEMBERS, 4),
            (Permissions::ADMINISTRATOR, 8),
            (Permissions::MANAGE_CHANNELS, 16),
            (Permissions::MANAGE_GUILD, 32),
            (Permissions::ADD_REACTIONS, 64),
            (Permissions::VIEW_AUDIT_LOG, 128),
            (Permissions::PRIORITY_SPEAKER, 256),
            (Permissions::STREAM, 512),
            (Permissions::VIEW_CHANNEL, 1024),
            (Permissions::SEND_MESSAGES, 2048),
            (Permissions::SEND_TTS_MESSAGES, 4096),
            (Permissions::MANAGE_MESSAGES, 8192),
            (Permissions::EMBED_LINKS, 16384),
            (Permissions::ATTACH_FILES, 32768),
            (Permissions::READ_MESSAGE_HISTORY, 65536),
            (Permissions::MENTION_EVERYONE, 131072),
            (Permissions::USE_EXTERNAL_EMOJIS, 262144),
            (Permissions::VIEW_GUILD_INSIGHTS, 524288),
            (Permissions::CONNECT, 1048576),
            (Permissions::SPEAK, 2097152),
            (Permissions::MUTE_MEMBERS, 4194304),
            (Permissions::DEAFEN_MEMBERS, 8388608),
            (Permissions::MOVE_MEMBERS, 16777216),
            (Permissions::USE_VAD, 33554432),
            (Permissions::CHANGE_NICKNAME, 67108864),
            (Permissions::MANAGE_NICKNAMES, 134217728),
            (Permissions::MANAGE_ROLES, 268435456),
            (Permissions::MANAGE_WEBHOOKS, 536870912),
            (Permissions::MANAGE_GUILD_EXPRESSIONS, 1073741824),
            (Permissions::USE_APPLICATION_COMMANDS, 2147483648),
            (Permissions::REQUEST_TO_SPEAK, 4294967296),
            (Permissions::MANAGE_EVENTS, 8589934592),
            (Permissions::MANAGE_THREADS, 17179869184),
            (Permissions::CREATE_PUBLIC_THREADS, 34359738368),
            (Permissions::CREATE_PRIVATE_THREADS, 68719476736),
            (Permissions::USE_EXTERNAL_STICKERS, 137438953472),
            (Permissions::SEND_MESSAGES_IN_THREADS, 274877906944),
            (Permissions::USE_EMBEDDED_ACTIVITIES, 549755813888),
            (Permissions::MODERATE_MEMBERS, 1099511627776),
            (
                Permissions::VIEW_CREATOR_MONETIZATION_ANALYTICS,
                2199023255552,
            ),
            (Permissions::USE_SOUNDBOARD, 4398046511104),
            (Permissions::CREATE_GUILD_EXPRESSIONS, 8796093022208),
            (Permissions::CREATE_EVENTS, 17592186044416),
            (Permissions::USE_EXTERNAL_SOUNDS, 35184372088832),
            (Permissions::SEND_VOICE_MESSAGES, 70368744177664),
            (Permissions::SET_VOICE_CHANNEL_STATUS, 281474976710656),
            (Permissions::SEND_POLLS, 562949953421312),
            (Permissions::USE_EXTERNAL_APPS, 1125899906842624),
            (Permissions::PIN_MESSAGES, 2251799813685248),
            (Permissions::BYPASS_SLOWMODE, 4503599627370496),
        ];
        for (flag, value) in pinned {
            assert_eq!(flag.bits(), *value, "{flag:?}");
        }
        assert_eq!(Permissions::all().bits(), 8866461766385663);
    }

    #[test]
    fn wire_is_decimal_string() {
        let p = Permissions::VIEW_CHANNEL | Permissions::SEND_MESSAGES;
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"3072\"");
        assert_eq!(serde_json::from_str::<Permissions>("\"3072\"").unwrap(), p);
        assert_eq!(serde_json::from_str::<Permissions>("3072").unwrap(), p);
        assert!(serde_json::from_str::<Permissions>("\"x\"").is_err());
    }

    const GUILD: u64 = 100;
    const OWNER: u64 = 1;
    const ALICE: u64 = 2;
    const MODS: u64 = 10;
    const MUTED: u64 = 11;

    fn roles() -> Vec<(RoleId, Permissions)> {
        vec![
            (
                Id::new(GUILD),
                Permissions::VIEW_CHANNEL | Permissions::SEND_MESSAGES | Permissions::EMBED_LINKS,
            ),
            (Id::new(MODS), Permissions::MANAGE_MESSAGES),
            (Id::new(MUTED), Permissions::empty()),
        ]
    }

    fn ow(
        id: u64,
        kind: OverwriteType,
        allow: Permissions,
        deny: Permissions,
    ) -> PermissionOverwrite {
        PermissionOverwrite {
            id: Id::new(id),
            kind,
            allow,
            deny,
        }
    }

    fn perms_of(
        user: u64,
        member_roles: &[u64],
        overwrites: &[PermissionOverwrite],
    ) -> Permissions {
        let roles = roles();
        let guild = GuildContext {
            guild_id: Id::new(GUILD),
            owner_id: Id::new(OWNER),
            roles: &roles,
        };
        let member_roles: Vec<RoleId> = member_roles.iter().map(|r| Id::new(*r)).collect();
        let member = MemberContext {
            user_id: Id::new(user),
            roles: &member_roles,
            timed_out: false,
        };
        let channel = ChannelContext {
            kind: ChannelType::GuildText,
            overwrites,
        };
        compute(&guild, &member, Some(&channel))
    }

    #[test]
    fn owner_gets_everything_even_when_denied() {
        let deny_all = [ow(
            GUILD,
            OverwriteType::Role,
            Permissions::empty(),
            Permissions::all(),
        )];
        assert_eq!(perms_of(OWNER, &[], &deny_all), Permissions::all());
    }

    #[test]
    fn administrator_ignores_overwrites() {
        let roles = vec![(Id::new(GUILD), Permissions::ADMINISTRATOR)];
        let guild = GuildContext {
            guild_id: Id::new(GUILD),
            owner_id: Id::new(OWNER),
            roles: &roles,
        };
        let member = MemberContext {
            user_id: Id::new(ALICE),
            roles: &[],
            timed_out: false,
        };
        let overwrites = [ow(
            ALICE,
            OverwriteType::Member,
            Permissions::empty(),
            Permissions::VIEW_CHANNEL,
        )];
        let channel = ChannelContext {
            kind: ChannelType::GuildText,
            overwrites: &overwrites,
        };
        assert_eq!(compute(&guild, &member, Some(&channel)), Permissions::all());
    }

    #[test]
    fn overwrite_order_everyone_then_roles_then_member() {
        // @everyone denies send, a role allows it back, the member overwrite denies it again.
        let overwrites = [
            ow(
                GUILD,
                OverwriteType::Role,
                Permissions::empty(),
                Permissions::SEND_MESSAGES,
            ),
            ow(
                MODS,
                OverwriteType::Role,
                Permissions::SEND_MESSAGES,
                Permissions::empty(),
            ),
            ow(
                ALICE,
                OverwriteType::Member,
                Permissions::empty(),
                Permissions::SEND_MESSAGES,
            ),
        ];
        assert!(!perms_of(ALICE, &[MODS], &overwrites).contains(Permissions::SEND_MESSAGES));
        assert!(perms_of(ALICE, &[MODS], &overwrites[..2]).contains(Permissions::SEND_MESSAGES));
        assert!(!perms_of(ALICE, &[], &overwrites[..2]).contains(Permissions::SEND_MESSAGES));
    }

    #[test]
    fn role_allow_beats_other_role_deny() {
        let overwrites = [
            ow(
                MUTED,
                OverwriteType::Role,
                Permissions::empty(),
                Permissions::SEND_MESSAGES,
            ),
            ow(
                MODS,
                OverwriteType::Role,
                Permissions::SEND_MESSAGES,
                Permissions::empty(),
            ),
        ];
        assert!(perms_of(ALICE, &[MODS, MUTED], &overwrites).contains(Permissions::SEND_MESSAGES));
    }

    #[test]
    fn no_view_channel_voids_everything() {
        let overwrites = [ow(
            GUILD,
            OverwriteType::Role,
            Permissions::MANAGE_MESSAGES,
            Permissions::VIEW_CHANNEL,
        )];
        assert_eq!(perms_of(ALICE, &[], &overwrites), Permissions::empty());
    }

    #[test]
    fn no_send_voids_embed_links() {
        let overwrites = [ow(
            GUILD,
            OverwriteType::Role,
            Permissions::empty(),
            Permissions::SEND_MESSAGES,
        )];
        let p = perms_of(ALICE, &[], &overwrites);
        assert!(p.contains(Permissions::VIEW_CHANNEL));
        assert!(!p.contains(Permissions::EMBED_LINKS));
    }

    #[test]
    fn timeout_keeps_only_view_and_history() {
        let roles = roles();
        let guild = GuildContext {
            guild_id: Id::new(GUILD),
            owner_id: Id::new(OWNER),
            roles: &roles,
        };
        let member = MemberContext {
            user_id: Id::new(ALICE),
            roles: &[],
            timed_out: true,
        };
        let channel = ChannelContext {
            kind: ChannelType::GuildText,
            overwrites: &[],
        };
        assert_eq!(
            compute(&guild, &member, Some(&channel)),
            Permissions::VIEW_CHANNEL
        );
    }

    #[test]
    fn guild_level_ignores_overwrites() {
        let roles = roles();
        let guild = GuildContext {
            guild_id: Id::new(GUILD),
            owner_id: Id::new(OWNER),
            roles: &roles,
        };
        let member = MemberContext {
            user_id: Id::new(ALICE),
            roles: &[Id::new(MODS)],
            timed_out: false,
        };
        let p = compute(&guild, &member, None);
        assert!(p.contains(Permissions::MANAGE_MESSAGES | Permissions::SEND_MESSAGES));
    }
}
