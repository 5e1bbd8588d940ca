//! Row shapes read from the database and their conversion into wire objects.
//!
//! Rows derive `sqlx::FromRow` generically, so the same types decode on SQLite and PostgreSQL;
//! only the statements module is instantiated per backend.

use concord_core::id::Id;
use concord_core::model::application::Application;
use concord_core::model::channel::{Channel, ChannelType, PermissionOverwrite};
use concord_core::model::guild::Guild;
use concord_core::model::invite::{Invite, InviteChannel, InviteGuild, InviteMetadata};
use concord_core::model::member::Member;
use concord_core::model::message::{Emoji, Message, MessageReference};
use concord_core::model::role::{Role, RoleColors};
use concord_core::model::user::{CurrentUser, User};
use concord_core::permissions::Permissions;
use concord_core::timestamp::Timestamp;

use crate::error::Error;

/// Defaults Discord sends for limits Concord does not enforce per guild.
const MAX_MEMBERS: u32 = 500_000;
const MAX_VIDEO_CHANNEL_USERS: u32 = 25;
const MAX_STAGE_VIDEO_CHANNEL_USERS: u32 = 50;

/// Snowflake read from a column the schema keeps non-zero.
pub(crate) fn id<M>(value: i64) -> Id<M> {
    Id::from_i64(value)
}

/// Optional snowflake column.
pub(crate) fn opt_id<M>(value: Option<i64>) -> Option<Id<M>> {
    value.map(Id::from_i64)
}

/// Narrows a column written from a smaller unsigned type; such values always fit, so the
/// fallback is never taken for rows this crate wrote.
fn small<T: TryFrom<i64> + Default>(value: i64) -> T {
    T::try_from(value).unwrap_or_default()
}

/// u64 bit sets are stored bit-for-bit in BIGINT.
pub(crate) const fn bits_to_db(bits: u64) -> i64 {
    bits as i64
}

/// Inverse of [`bits_to_db`].
pub(crate) const fn bits_from_db(value: i64) -> u64 {
    value as u64
}

/// Public user columns; every query reading a [`UserRow`] selects these from alias `u`.
macro_rules! user_columns {
    () => {
        "u.user_id, u.username, u.discriminator, u.global_name, u.avatar, u.banner, u.bot, u.public_flags"
    };
}
pub(crate) use user_columns;

/// A user as others see it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    pub(crate) user_id: i64,
    username: String,
    discriminator: String,
    global_name: Option<String>,
    avatar: Option<String>,
    banner: Option<String>,
    bot: bool,
    public_flags: i64,
}

impl UserRow {
    pub(crate) fn into_user(self) -> User {
        User {
            avatar: self.avatar,
            banner: self.banner,
            bot: self.bot,
            discriminator: self.discriminator,
            // Others see only the public flags; the owner's view replaces them.
            flags: bits_from_db(self.public_flags),
            global_name: self.global_name,
            id: id(self.user_id),
            primary_guild: None,
            public_flags: bits_from_db(self.public_flags),
            username: self.username,
        }
    }
}

/// The owner's view of a user.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CurrentUserRow {
    #[sqlx(flatten)]
    user: UserRow,
    email: Option<String>,
    flags: i64,
    locale: String,
    verified: bool,
}

impl CurrentUserRow {
    pub(crate) fn into_current_user(self) -> CurrentUser {
        let mut user = self.user.into_user();
        user.flags = bits_from_db(self.flags);
        CurrentUser {
            user,
            email: self.email,
            locale: self.locale,
            mfa_enabled: false,
            verified: self.verified,
        }
    }
}

/// A guild without its roles.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct GuildRow {
    pub(crate) guild_id: i64,
    name: String,
    owner_id: i64,
    icon: Option<String>,
    banner: Option<String>,
    splash: Option<String>,
    discovery_splash: Option<String>,
    description: Option<String>,
    afk_channel_id: Option<i64>,
    afk_timeout: i64,
    system_channel_id: Option<i64>,
    system_channel_flags: i64,
    rules_channel_id: Option<i64>,
    public_updates_channel_id: Option<i64>,
    safety_alerts_channel_id: Option<i64>,
    verification_level: i64,
    default_message_notifications: i64,
    explicit_content_filter: i64,
    mfa_level: i64,
    nsfw_level: i64,
    preferred_locale: String,
    premium_progress_bar_enabled: bool,
    vanity_url_code: Option<String>,
    features: String,
}

impl GuildRow {
    pub(crate) fn into_guild(self, roles: Vec<Role>) -> Result<Guild, Error> {
        Ok(Guild {
            afk_channel_id: opt_id(self.afk_channel_id),
            afk_timeout: small(self.afk_timeout),
            application_id: None,
            banner: self.banner,
            default_message_notifications: small(self.default_message_notifications),
            description: self.description,
            discovery_splash: self.discovery_splash,
            emojis: Vec::new(),
            explicit_content_filter: small(self.explicit_content_filter),
            features: serde_json::from_str(&self.features)?,
            home_header: None,
            icon: self.icon,
            id: id(self.guild_id),
            incidents_data: None,
            max_members: MAX_MEMBERS,
            max_presences: None,
            max_stage_video_channel_users: MAX_STAGE_VIDEO_CHANNEL_USERS,
            max_video_channel_users: MAX_VIDEO_CHANNEL_USERS,
            mfa_level: small(self.mfa_level),
            name: self.name,
            nsfw: false,
            nsfw_level: small(self.nsfw_level),
            owner_id: id(self.owner_id),
            preferred_locale: self.preferred_locale,
            premium_progress_bar_enabled: self.premium_progress_bar_enabled,
            premium_subscription_count: 0,
            premium_tier: 0,
            public_updates_channel_id: opt_id(self.public_updates_channel_id),
            region: "deprecated".to_owned(),
            roles,
            rules_channel_id: opt_id(self.rules_channel_id),
            safety_alerts_channel_id: opt_id(self.safety_alerts_channel_id),
            splash: self.splash,
            stickers: Vec::new(),
            system_channel_id: opt_id(self.system_channel_id),
            system_channel_flags: bits_from_db(self.system_channel_flags),
            vanity_url_code: self.vanity_url_code,
            verification_level: small(self.verification_level),
            widget_channel_id: None,
            widget_enabled: false,
        })
    }
}

/// A guild role.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RoleRow {
    pub(crate) guild_id: i64,
    role_id: i64,
    name: String,
    permissions: i64,
    position: i64,
    color: i64,
    hoist: bool,
    mentionable: bool,
    icon: Option<String>,
    unicode_emoji: Option<String>,
    flags: i64,
}

impl RoleRow {
    pub(crate) fn into_role(self) -> Role {
        let color = small(self.color);
        Role {
            color,
            colors: RoleColors {
                primary_color: color,
                secondary_color: None,
                tertiary_color: None,
            },
            flags: bits_from_db(self.flags),
            hoist: self.hoist,
            icon: self.icon,
            id: id(self.role_id),
            managed: false,
            mentionable: self.mentionable,
            name: self.name,
            permissions: Permissions::from_bits_retain(bits_from_db(self.permissions)),
            position: self.position,
            unicode_emoji: self.unicode_emoji,
        }
    }
}

/// A guild membership with its user.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct MemberRow {
    nick: Option<String>,
    member_avatar: Option<String>,
    joined_at: i64,
    premium_since: Option<i64>,
    communication_disabled_until: Option<i64>,
    deaf: bool,
    mute: bool,
    pending: bool,
    member_flags: i64,
    #[sqlx(flatten)]
    pub(crate) user: UserRow,
}

impl MemberRow {
    pub(crate) fn into_member(self, roles: Vec<concord_core::id::RoleId>) -> Member {
        Member {
            avatar: self.member_avatar,
            banner: None,
            communication_disabled_until: self
                .communication_disabled_until
                .map(Timestamp::from_unix_micros),
            deaf: self.deaf,
            flags: bits_from_db(self.member_flags),
            joined_at: Some(Timestamp::from_unix_micros(self.joined_at)),
            mute: self.mute,
            nick: self.nick,
            pending: self.pending,
            premium_since: self.premium_since.map(Timestamp::from_unix_micros),
            roles,
            user: Some(self.user.into_user()),
        }
    }
}

/// A channel.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ChannelRow {
    channel_id: i64,
    guild_id: Option<i64>,
    kind: i64,
    name: String,
    topic: Option<String>,
    position: i64,
    nsfw: bool,
    parent_id: Option<i64>,
    rate_limit_per_user: i64,
    flags: i64,
    last_message_id: Option<i64>,
    permission_overwrites: String,
}

impl ChannelRow {
    pub(crate) fn into_channel(self) -> Result<Channel, Error> {
        let overwrites: Vec<PermissionOverwrite> =
            serde_json::from_str(&self.permission_overwrites)?;
        Ok(Channel {
            flags: bits_from_db(self.flags),
            guild_id: opt_id(self.guild_id),
            id: id(self.channel_id),
            kind: ChannelType::from(small::<u8>(self.kind)),
            last_message_id: opt_id(self.last_message_id),
            name: self.name,
            nsfw: self.nsfw,
            parent_id: opt_id(self.parent_id),
            permission_overwrites: overwrites,
            position: self.position,
            rate_limit_per_user: small(self.rate_limit_per_user),
            topic: self.topic,
        })
    }
}

/// A message with its author; mentions, reactions and the reply target are read separately.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct MessageRow {
    pub(crate) message_id: i64,
    channel_id: i64,
    guild_id: Option<i64>,
    content: String,
    kind: i64,
    tts: bool,
    mention_everyone: bool,
    nonce: Option<String>,
    pub(crate) referenced_message_id: Option<i64>,
    pinned: bool,
    message_flags: i64,
    edited_at: Option<i64>,
    #[sqlx(flatten)]
    author: UserRow,
}

/// What a message needs besides its own row.
#[derive(Debug, Default)]
pub(crate) struct MessageExtras {
    pub(crate) mentions: Vec<User>,
    pub(crate) mention_roles: Vec<concord_core::id::RoleId>,
    pub(crate) reactions: Vec<concord_core::model::message::Reaction>,
}

impl MessageRow {
    /// Builds the message; `referenced_message` is left `None` for the caller to fill.
    pub(crate) fn into_message(self, extras: MessageExtras) -> Result<Message, Error> {
        let message_id: concord_core::id::MessageId = id(self.message_id);
        let channel_id = id(self.channel_id);
        let guild_id = opt_id(self.guild_id);
        let nonce = match self.nonce {
            Some(text) => Some(serde_json::from_str(&text)?),
            None => None,
        };
        // Replies stay in their channel, so the reference reuses the reply's channel and guild;
        // that keeps it complete even when the target is gone.
        let message_reference = self.referenced_message_id.map(|target| MessageReference {
            channel_id: Some(channel_id),
            fail_if_not_exists: None,
            guild_id,
            message_id: Some(id(target)),
            kind: 0,
        });
        Ok(Message {
            attachments: Vec::new(),
            author: self.author.into_user(),
            channel_id,
            components: Vec::new(),
            content: self.content,
            edited_timestamp: self.edited_at.map(Timestamp::from_unix_micros),
            embeds: Vec::new(),
            flags: bits_from_db(self.message_flags),
            guild_id,
            id: message_id,
            member: None,
            mention_everyone: self.mention_everyone,
            mention_roles: extras.mention_roles,
            mentions: extras.mentions,
            message_reference,
            nonce,
            pinned: self.pinned,
            reactions: extras.reactions,
            referenced_message: None,
            timestamp: Timestamp::from_unix_ms(
                i64::try_from(message_id.timestamp_ms()).unwrap_or_default(),
            ),
            tts: self.tts,
            kind: small(self.kind),
        })
    }
}

/// A mentioned user of some message.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct MentionRow {
    pub(crate) message_id: i64,
    #[sqlx(flatten)]
    pub(crate) user: UserRow,
}

/// One emoji's reactions on some message, in first-reacted order.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ReactionCountRow {
    pub(crate) message_id: i64,
    pub(crate) emoji: String,
    pub(crate) count: i64,
    /// 1 when the viewer is among the reactors.
    pub(crate) me: i64,
}

impl ReactionCountRow {
    pub(crate) fn into_reaction(self) -> concord_core::model::message::Reaction {
        use concord_core::model::message::{Reaction, ReactionCountDetails};
        let count = small::<u64>(self.count);
        Reaction {
            burst_colors: Vec::new(),
            count,
            count_details: ReactionCountDetails {
                burst: 0,
                normal: count,
            },
            emoji: parse_emoji_key(&self.emoji),
            me: self.me != 0,
            me_burst: false,
        }
    }
}

/// Emoji from its storage key: `name:id` for a custom emoji, anything else is unicode.
pub(crate) fn parse_emoji_key(key: &str) -> Emoji {
    if let Some((name, raw_id)) = key.rsplit_once(':') {
        if let Some(custom) = raw_id.parse::<u64>().ok().and_then(Id::new_checked) {
            return Emoji {
                id: Some(custom),
                name: Some(name.to_owned()),
            };
        }
    }
    Emoji {
        id: None,
        name: Some(key.to_owned()),
    }
}

/// An application without its users.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ApplicationRow {
    pub(crate) application_id: i64,
    pub(crate) owner_id: i64,
    name: String,
    flags: i64,
    verify_key: String,
    description: String,
    icon: Option<String>,
    guild_count: i64,
}

impl ApplicationRow {
    pub(crate) fn into_application(self, owner: User, bot: Option<User>) -> Application {
        let flags = bits_from_db(self.flags);
        Application {
            approximate_guild_count: u64::try_from(self.guild_count).unwrap_or(0),
            approximate_user_authorization_count: 0,
            approximate_user_install_count: 0,
            bot,
            bot_public: true,
            bot_require_code_grant: false,
            description: self.description,
            eligible_oauth2_scopes: Vec::new(),
            explicit_content_filter: 0,
            flags,
            flags_new: flags.to_string(),
            icon: self.icon,
            id: id(self.application_id),
            interactions_endpoint_url: None,
            kind: None,
            name: self.name,
            owner,
            redirect_uris: Vec::new(),
            role_connections_verification_url: None,
            summary: String::new(),
            team: None,
            verify_key: self.verify_key,
        }
    }
}

/// An invite with the guild and channel parts it embeds.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct InviteRow {
    code: String,
    guild_id: i64,
    channel_id: i64,
    pub(crate) inviter_id: Option<i64>,
    uses: i64,
    max_uses: i64,
    max_age: i64,
    temporary: bool,
    created_at: i64,
    guild_name: String,
    guild_icon: Option<String>,
    guild_banner: Option<String>,
    guild_splash: Option<String>,
    guild_description: Option<String>,
    guild_features: String,
    guild_nsfw_level: i64,
    guild_vanity_url_code: Option<String>,
    guild_verification_level: i64,
    channel_name: String,
    channel_kind: i64,
}

impl InviteRow {
    pub(crate) fn into_invite(self, inviter: Option<User>) -> Result<Invite, Error> {
        let max_age: u32 = small(self.max_age);
        let expires_at = (max_age > 0)
            .then(|| Timestamp::from_unix_micros(self.created_at + i64::from(max_age) * 1_000_000));
        Ok(Invite {
            approximate_member_count: None,
            approximate_presence_count: None,
            channel: InviteChannel {
                id: id(self.channel_id),
                name: self.channel_name,
                kind: ChannelType::from(small::<u8>(self.channel_kind)),
            },
            code: self.code,
            expires_at,
            guild: InviteGuild {
                banner: self.guild_banner,
                description: self.guild_description,
                features: serde_json::from_str(&self.guild_features)?,
                icon: self.guild_icon,
                id: id(self.guild_id),
                name: self.guild_name,
                nsfw: false,
                nsfw_level: small(self.guild_nsfw_level),
                premium_subscription_count: 0,
                splash: self.guild_splash,
                vanity_url_code: self.guild_vanity_url_code,
                verification_level: small(self.guild_verification_level),
            },
            guild_id: id(self.guild_id),
            inviter,
            metadata: Some(InviteMetadata {
                created_at: Timestamp::from_unix_micros(self.created_at),
                max_age,
                max_uses: small(self.max_uses),
                temporary: self.temporary,
                uses: small(self.uses),
            }),
            kind: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_keys() {
        let custom = parse_emoji_key("blob:123456");
        assert_eq!(custom.id.map(Id::get), Some(123456));
        assert_eq!(custom.name.as_deref(), Some("blob"));
        let unicode = parse_emoji_key("👍");
        assert_eq!(
            unicode,
            Emoji {
                id: None,
                name: Some("👍".to_owned())
            }
        );
        // A colon without a numeric id is not a custom emoji.
        assert_eq!(parse_emoji_key("a:b").id, None);
        assert_eq!(parse_emoji_key("a:0").id, None);
    }

    #[test]
    fn bits_round_trip() {
        for bits in [0, 1, u64::MAX, 1 << 63, 1 << 50] {
            assert_eq!(bits_from_db(bits_to_db(bits)), bits);
        }
    }
}
