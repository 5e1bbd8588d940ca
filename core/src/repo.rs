//! Storage ports: one object-safe trait per aggregate, implemented by the storage crates.
//!
//! Methods return wire objects ready to send, so the API never assembles rows itself.

use async_trait::async_trait;

use crate::id::{ApplicationId, ChannelId, GuildId, MessageId, RoleId, UserId};
use crate::model::{Application, Channel, CurrentUser, Guild, Invite, Member, Message, User};
use crate::permissions::Permissions;
use crate::timestamp::Timestamp;

/// Storage failure.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A unique constraint was violated; holds the constraint's name (see [`constraint`]).
    #[error("unique constraint `{0}` violated")]
    Conflict(&'static str),
    /// Driver or connection failure.
    #[error("storage backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for storage calls.
pub type RepoResult<T> = Result<T, RepoError>;

/// Names of unique constraints callers translate into API errors.
pub mod constraint {
    /// `user.username` is taken.
    pub const USER_USERNAME: &str = "user_username_key";
    /// `user.email` is taken.
    pub const USER_EMAIL: &str = "user_email_key";
    /// Invite code collision.
    pub const INVITE_CODE: &str = "invite_pkey";
}

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Bot account.
    pub bot: bool,
    /// Discriminator (`"0"` users, 4 digits bots).
    pub discriminator: String,
    /// Email.
    pub email: Option<String>,
    /// User id.
    pub id: UserId,
    /// Argon2id PHC string; `None` for bots.
    pub password_hash: Option<String>,
    /// Unique name.
    pub username: String,
}

/// Changes to a user; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New avatar hash (inner `None` clears it).
    pub avatar: Option<Option<String>>,
    /// New display name (inner `None` clears it).
    pub global_name: Option<Option<String>>,
    /// New username.
    pub username: Option<String>,
}

/// User accounts and credentials.
#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Inserts a user.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] with [`constraint::USER_USERNAME`] or [`constraint::USER_EMAIL`].
    async fn insert_user(&self, user: &NewUser) -> RepoResult<()>;
    /// The user as its owner sees it.
    async fn current_user(&self, id: UserId) -> RepoResult<Option<CurrentUser>>;
    /// Public users by id, in no particular order; unknown ids are skipped.
    async fn users(&self, ids: &[UserId]) -> RepoResult<Vec<User>>;
    /// Id and password hash of the account whose username or email is `login` (not bots).
    async fn credentials(&self, login: &str) -> RepoResult<Option<(UserId, String)>>;
    /// Applies a patch; `None` when the user does not exist.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] on a taken username.
    async fn update_user(&self, id: UserId, patch: &UserPatch) -> RepoResult<Option<CurrentUser>>;
}

/// Issued tokens, for revocation.
#[async_trait]
pub trait TokenRepo: Send + Sync {
    /// Records a newly minted token.
    async fn insert_token(
        &self,
        token_id: u64,
        user: UserId,
        created_at: Timestamp,
    ) -> RepoResult<()>;
    /// Whether the token is still live for that user.
    async fn token_is_live(&self, token_id: u64, user: UserId) -> RepoResult<bool>;
    /// Revokes one token.
    async fn revoke_token(&self, token_id: u64) -> RepoResult<()>;
    /// Revokes every token of a user.
    async fn revoke_user_tokens(&self, user: UserId) -> RepoResult<()>;
}

/// An application to insert together with its bot user (bot id = application id).
#[derive(Debug, Clone)]
pub struct NewApplication {
    /// Bot user.
    pub bot: NewUser,
    /// Privileged-intent flags.
    pub flags: u64,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner_id: UserId,
    /// Hex verify key.
    pub verify_key: String,
}

/// Applications and their bots.
#[async_trait]
pub trait ApplicationRepo: Send + Sync {
    /// Inserts the bot user and the application in one transaction.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] when the bot's username is taken.
    async fn create_application(&self, app: &NewApplication) -> RepoResult<()>;
    /// Application with owner and bot users.
    async fn application(&self, id: ApplicationId) -> RepoResult<Option<Application>>;
}

/// A channel to create with a guild.
#[derive(Debug, Clone)]
pub struct NewGuild {
    /// Channels (category first, then children), all with `guild_id` set.
    pub channels: Vec<Channel>,
    /// `@everyone` permissions.
    pub everyone_permissions: Permissions,
    /// Guild id (also the `@everyone` role id).
    pub id: GuildId,
    /// Name.
    pub name: String,
    /// Owner (added as the first member).
    pub owner_id: UserId,
    /// System channel.
    pub system_channel_id: Option<ChannelId>,
    /// Creation and owner join time.
    pub created_at: Timestamp,
}

/// Changes to a guild; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct GuildPatch {
    /// AFK channel.
    pub afk_channel_id: Option<Option<ChannelId>>,
    /// AFK timeout.
    pub afk_timeout: Option<u32>,
    /// Notification level.
    pub default_message_notifications: Option<u8>,
    /// Description.
    pub description: Option<Option<String>>,
    /// Content filter.
    pub explicit_content_filter: Option<u8>,
    /// Name.
    pub name: Option<String>,
    /// New owner.
    pub owner_id: Option<UserId>,
    /// Locale.
    pub preferred_locale: Option<String>,
    /// System channel.
    pub system_channel_id: Option<Option<ChannelId>>,
    /// Verification level.
    pub verification_level: Option<u8>,
}

/// Guilds.
#[async_trait]
pub trait GuildRepo: Send + Sync {
    /// Creates the guild, its `@everyone` role, its channels and the owner's membership atomically.
    async fn create_guild(&self, guild: &NewGuild) -> RepoResult<()>;
    /// Guild with roles.
    async fn guild(&self, id: GuildId) -> RepoResult<Option<Guild>>;
    /// Applies a patch; `None` when the guild does not exist.
    async fn update_guild(&self, id: GuildId, patch: &GuildPatch) -> RepoResult<Option<Guild>>;
    /// Deletes the guild and everything in it; false when it did not exist.
    async fn delete_guild(&self, id: GuildId) -> RepoResult<bool>;
    /// Guilds the user is a member of, ascending by id, after/before bounds exclusive.
    async fn user_guilds(
        &self,
        user: UserId,
        before: Option<GuildId>,
        after: Option<GuildId>,
        limit: u32,
    ) -> RepoResult<Vec<Guild>>;
    /// Ids of every guild the user is in (Identify).
    async fn user_guild_ids(&self, user: UserId) -> RepoResult<Vec<GuildId>>;
}

/// Guild memberships.
#[async_trait]
pub trait MemberRepo: Send + Sync {
    /// Adds a member; false when already a member.
    async fn add_member(
        &self,
        guild: GuildId,
        user: UserId,
        joined_at: Timestamp,
    ) -> RepoResult<bool>;
    /// Removes a member; false when not a member.
    async fn remove_member(&self, guild: GuildId, user: UserId) -> RepoResult<bool>;
    /// Member with user.
    async fn member(&self, guild: GuildId, user: UserId) -> RepoResult<Option<Member>>;
    /// Members with users, ascending by user id, after the given id.
    async fn members(
        &self,
        guild: GuildId,
        after: Option<UserId>,
        limit: u32,
    ) -> RepoResult<Vec<Member>>;
    /// Number of members.
    async fn member_count(&self, guild: GuildId) -> RepoResult<u64>;
    /// Role ids of a member (without `@everyone`); `None` when not a member.
    async fn member_roles(&self, guild: GuildId, user: UserId) -> RepoResult<Option<Vec<RoleId>>>;
}

/// Guild channels.
#[async_trait]
pub trait ChannelRepo: Send + Sync {
    /// Inserts a channel (its `guild_id` must be set).
    async fn insert_channel(&self, channel: &Channel) -> RepoResult<()>;
    /// Channel by id.
    async fn channel(&self, id: ChannelId) -> RepoResult<Option<Channel>>;
    /// Channels of a guild, by position then id.
    async fn guild_channels(&self, guild: GuildId) -> RepoResult<Vec<Channel>>;
    /// Stores the mutable fields of `channel`; false when it does not exist.
    async fn update_channel(&self, channel: &Channel) -> RepoResult<bool>;
    /// Deletes a channel and its messages; children of a category lose their parent.
    async fn delete_channel(&self, id: ChannelId) -> RepoResult<bool>;
}

/// A message to insert.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Author.
    pub author_id: UserId,
    /// Channel.
    pub channel_id: ChannelId,
    /// Content.
    pub content: String,
    /// Guild.
    pub guild_id: Option<GuildId>,
    /// Message id (its time is the creation time).
    pub id: MessageId,
    /// 0 default, 19 reply.
    pub kind: u8,
    /// `@everyone`/`@here`.
    pub mention_everyone: bool,
    /// Mentioned roles.
    pub mention_roles: Vec<RoleId>,
    /// Mentioned users.
    pub mentions: Vec<UserId>,
    /// Echoed nonce, as JSON text.
    pub nonce: Option<String>,
    /// Replied-to message.
    pub referenced_message_id: Option<MessageId>,
    /// Text to speech.
    pub tts: bool,
}

/// Which page of a channel's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagePage {
    /// Newest messages.
    Latest,
    /// Older than the id.
    Before(MessageId),
    /// Newer than the id.
    After(MessageId),
    /// Around the id (inclusive), half on each side.
    Around(MessageId),
}

/// Messages and reactions.
#[async_trait]
pub trait MessageRepo: Send + Sync {
    /// Inserts a message and bumps the channel's `last_message_id`.
    async fn insert_message(&self, message: &NewMessage) -> RepoResult<()>;
    /// Full message with author, mentions, reply target and reactions (`me` for `viewer`).
    async fn message(
        &self,
        channel: ChannelId,
        id: MessageId,
        viewer: UserId,
    ) -> RepoResult<Option<Message>>;
    /// A page of messages, newest first.
    async fn messages(
        &self,
        channel: ChannelId,
        page: MessagePage,
        limit: u32,
        viewer: UserId,
    ) -> RepoResult<Vec<Message>>;
    /// Replaces content and derived mentions, sets `edited_timestamp`; false when gone.
    async fn edit_message(
        &self,
        channel: ChannelId,
        id: MessageId,
        content: &str,
        mentions: &[UserId],
        mention_everyone: bool,
        edited_at: Timestamp,
    ) -> RepoResult<bool>;
    /// Deletes a message and its reactions; false when gone.
    async fn delete_message(&self, channel: ChannelId, id: MessageId) -> RepoResult<bool>;
    /// Adds a reaction; false when the user had already reacted with that emoji.
    async fn add_reaction(&self, message: MessageId, user: UserId, emoji: &str)
        -> RepoResult<bool>;
    /// Removes a reaction; false when there was none.
    async fn remove_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
    ) -> RepoResult<bool>;
    /// Distinct emoji on a message.
    async fn reaction_emoji_count(&self, message: MessageId) -> RepoResult<u64>;
    /// Users who reacted with `emoji`, ascending by id after `after`.
    async fn reactors(
        &self,
        message: MessageId,
        emoji: &str,
        after: Option<UserId>,
        limit: u32,
    ) -> RepoResult<Vec<User>>;
}

/// An invite to insert.
#[derive(Debug, Clone)]
pub struct NewInvite {
    /// Channel.
    pub channel_id: ChannelId,
    /// Code.
    pub code: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Guild.
    pub guild_id: GuildId,
    /// Creator.
    pub inviter_id: UserId,
    /// Lifetime seconds, 0 = forever.
    pub max_age: u32,
    /// Use cap, 0 = unlimited.
    pub max_uses: u32,
    /// Temporary membership.
    pub temporary: bool,
}

/// Invites.
#[async_trait]
pub trait InviteRepo: Send + Sync {
    /// Inserts an invite.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] with [`constraint::INVITE_CODE`] on a code collision.
    async fn insert_invite(&self, invite: &NewInvite) -> RepoResult<()>;
    /// Invite with guild, channel, inviter and metadata.
    async fn invite(&self, code: &str) -> RepoResult<Option<Invite>>;
    /// Joins `user` to the invite's guild and counts the use in one transaction: either both
    /// happen or neither does, so an existing member never burns a use and a failed join never
    /// leaves one counted. An invite older than its `max_age` at `now` is unavailable.
    async fn accept_invite(
        &self,
        code: &str,
        user: UserId,
        now: Timestamp,
    ) -> RepoResult<InviteAcceptance>;
}

/// Outcome of [`InviteRepo::accept_invite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteAcceptance {
    /// The user joined the guild and the use was counted.
    Joined(GuildId),
    /// The user was already a member; nothing changed.
    AlreadyMember(GuildId),
    /// The invite is unknown, expired or used up; nothing changed.
    Unavailable,
}

/// Every repository, as one object the services hold.
#[async_trait]
pub trait Store:
    UserRepo
    + TokenRepo
    + ApplicationRepo
    + GuildRepo
    + MemberRepo
    + ChannelRepo
    + MessageRepo
    + InviteRepo
{
    /// Cheap round trip, for readiness.
    async fn ping(&self) -> RepoResult<()>;
}
