//! The event-bus port: how the API hands events to the shards that have interested sessions.
//!
//! The API encodes each event's `d` once and publishes one [`BusMessage`] per interested shard;
//! each shard filters per session (intents, VIEW_CHANNEL, MESSAGE_CONTENT) and frames per session.

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::gateway::close_code::CloseCode;
use crate::gateway::event::EventKind;
use crate::id::{GuildId, RoleId, UserId};
use crate::model::channel::{ChannelType, PermissionOverwrite};
use crate::permissions::{self, ChannelContext, GuildContext, MemberContext, Permissions};

/// A slot: the unit of session ownership, whose state machine is a gateway `Shard`.
pub type ShardId = crate::topology::SlotId;

/// What a recipient must be allowed to see for a channel-scoped event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelAccess {
    /// Channel type.
    pub kind: ChannelType,
    /// Guild owner.
    pub owner_id: UserId,
    /// Channel overwrites.
    pub overwrites: Vec<PermissionOverwrite>,
    /// Bits the recipient needs in the channel (VIEW_CHANNEL at least).
    pub required: Permissions,
    /// Every guild role with its permissions.
    pub roles: Vec<(RoleId, Permissions)>,
}

impl ChannelAccess {
    /// Whether a member holding `member_roles` may receive the event.
    pub fn allows(&self, guild_id: GuildId, user_id: UserId, member_roles: &[RoleId]) -> bool {
        let guild = GuildContext {
            guild_id,
            owner_id: self.owner_id,
            roles: &self.roles,
        };
        let member = MemberContext {
            user_id,
            roles: member_roles,
            timed_out: false,
        };
        let channel = ChannelContext {
            kind: self.kind,
            overwrites: &self.overwrites,
        };
        permissions::compute(&guild, &member, Some(&channel)).contains(self.required)
    }
}

/// One dispatch event, encoded once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    /// Channel permission filter, for channel-scoped events.
    pub access: Option<ChannelAccess>,
    /// Users who see content even without MESSAGE_CONTENT (author, mentioned users).
    pub content_exempt: Vec<UserId>,
    /// Encoded `d`.
    pub data: Bytes,
    /// Encoded `d` with content fields emptied, for sessions without MESSAGE_CONTENT.
    pub data_without_content: Option<Bytes>,
    /// Guild the event belongs to.
    pub guild_id: Option<GuildId>,
    /// Event kind.
    pub kind: EventKind,
    /// Only this user's sessions receive it.
    pub user_id: Option<UserId>,
}

/// A message on a shard's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BusMessage {
    /// Deliver to interested local sessions.
    Dispatch(std::sync::Arc<Dispatch>),
    /// The user joined a guild: subscribe their sessions and send GUILD_CREATE.
    ///
    /// The publisher first adds one interest count for the receiving shard, so events published
    /// for the guild after the join reach that shard even before it has subscribed anyone; the
    /// shard releases that count once it has handled the message, whatever the outcome.
    GuildJoined {
        /// Guild joined.
        guild_id: GuildId,
        /// Joining user.
        user_id: UserId,
    },
    /// The user left or lost a guild: unsubscribe their sessions (GUILD_DELETE is a dispatch).
    GuildLeft {
        /// Guild left.
        guild_id: GuildId,
        /// Leaving user.
        user_id: UserId,
    },
    /// The guild was deleted: unsubscribe every session.
    GuildRemoved {
        /// Deleted guild.
        guild_id: GuildId,
    },
    /// Close every session of the user (token reset) with the given code.
    CloseUserSessions {
        /// Close code.
        code: CloseCodeWire,
        /// User.
        user_id: UserId,
    },
    /// A token was revoked (logout): close the sessions identified with it (4004).
    TokenRevoked {
        /// Revoked token's id.
        token_id: u64,
        /// Its user.
        user_id: UserId,
    },
}

/// Close code as carried on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseCodeWire(pub u16);

impl From<CloseCode> for CloseCodeWire {
    fn from(c: CloseCode) -> Self {
        Self(c.code())
    }
}

/// Bus failure.
#[derive(Debug, thiserror::Error)]
#[error("event bus: {0}")]
pub struct BusError(pub String);

/// A publish that did not reach every slot: the slots whose append failed (the others have it),
/// and the first failure.
#[derive(Debug, thiserror::Error)]
#[error("{error} (slots {failed:?})")]
pub struct PublishError {
    /// Slots whose append failed.
    pub failed: Vec<ShardId>,
    /// First failure met.
    pub error: BusError,
}

/// A slot's subscription.
#[async_trait]
pub trait Subscription: Send {
    /// Next message, in publish order; `None` when the bus is shut down. Transport failures are
    /// retried inside the subscription, which resumes where it stopped.
    async fn next(&mut self) -> Option<BusMessage>;

    /// Where the subscription stands in a durable log (a Redis stream entry id), if it reads one.
    fn position(&self) -> Option<String> {
        None
    }
}

/// The event bus: an ordered, back-pressured channel per slot. Who is interested in what lives
/// in [`crate::topology::Topology`].
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes `message` once to each of `slots`, awaiting every append.
    ///
    /// # Errors
    /// When the transport fails for any slot (the others may have been appended).
    async fn publish(&self, slots: &[ShardId], message: BusMessage) -> Result<(), BusError>;
    /// Like [`EventBus::publish`], under the publisher's `event` id: an append retried with
    /// the same id (after a timeout that may have hidden a success) reaches each subscriber
    /// once. Buses that never duplicate may ignore the id.
    ///
    /// # Errors
    /// [`PublishError`] naming the slots whose append failed, so that only those are retried.
    /// This default, for buses that cannot tell, names every slot.
    async fn publish_event(
        &self,
        event: u64,
        slots: &[ShardId],
        message: BusMessage,
    ) -> Result<(), PublishError> {
        let _ = event;
        self.publish(slots, message)
            .await
            .map_err(|error| PublishError {
                failed: slots.to_vec(),
                error,
            })
    }
    /// Subscribes to a slot's channel from its current end: messages published after this call
    /// returns are delivered, in order.
    async fn subscribe(&self, slot: ShardId) -> Result<Box<dyn Subscription>, BusError>;
}
