//! Publishing dispatch events: `d` is encoded once, wrapped in one `Arc<Dispatch>`, and that
//! same message is published once per interested slot.

use std::sync::Arc;

use bytes::Bytes;
use concord_core::bus::{BusMessage, Dispatch, ShardId};
use concord_core::gateway::EventKind;
use concord_core::id::{GuildId, UserId};
use concord_core::json;
use concord_core::topology;
use serde::Serialize;

use crate::error::Error;
use crate::state::AppState;

/// A dispatch with `d` encoded once; no channel filter, no user target, no content variant.
pub(crate) fn dispatch<T: Serialize + ?Sized>(
    kind: EventKind,
    guild_id: Option<GuildId>,
    data: &T,
) -> Dispatch {
    Dispatch {
        access: None,
        content_exempt: Vec::new(),
        data: encode(data),
        data_without_content: None,
        guild_id,
        kind,
        user_id: None,
    }
}

/// Encodes a payload once.
pub(crate) fn encode<T: Serialize + ?Sized>(data: &T) -> Bytes {
    Bytes::from(json::to_vec(data))
}

/// Sends a guild event to every slot with sessions in the guild.
pub(crate) async fn to_guild(state: &AppState, guild_id: GuildId, dispatch: Dispatch) {
    let slots = interested(state, guild_id).await;
    to_slots(state, &slots, BusMessage::Dispatch(Arc::new(dispatch))).await;
}

/// Slots with sessions in the guild; none when the registry cannot be read (logged: the
/// write is committed, so failing the request would make the client repeat it).
pub(crate) async fn interested(state: &AppState, guild_id: GuildId) -> Vec<ShardId> {
    match state.topology.interested_slots(guild_id).await {
        Ok(slots) => slots,
        Err(error) => {
            metrics::counter!("concord_api_publish_errors_total").increment(1);
            tracing::error!(guild = %guild_id, %error, "interest lookup failed");
            Vec::new()
        }
    }
}

/// Sends an event to one user's sessions.
pub(crate) async fn to_user(state: &AppState, user_id: UserId, mut dispatch: Dispatch) {
    dispatch.user_id = Some(user_id);
    to_user_slot(state, user_id, BusMessage::Dispatch(Arc::new(dispatch))).await;
}

/// Sends a control message to the slot holding a user's sessions.
pub(crate) async fn to_user_slot(state: &AppState, user_id: UserId, message: BusMessage) {
    to_slots(state, &[user_slot(state, user_id)], message).await;
}

/// The slot of a user's sessions.
fn user_slot(state: &AppState, user_id: UserId) -> ShardId {
    topology::user_slot(user_id, state.topology.slot_count())
}

/// Interest held for a joining user's slot from before the membership commits until the
/// slot's shard has handled the join.
///
/// Without it, a message posted between the commit and the shard's own subscription would be
/// published only to the other slots and never reach the new member.
#[must_use = "announce or release the hold"]
pub(crate) struct JoinHold {
    guild_id: GuildId,
    slot: ShardId,
    user_id: UserId,
}

/// Takes a [`JoinHold`] before a membership is written.
///
/// # Errors
/// [`Error::Cluster`] when the interest registry cannot be written: the join must not happen
/// then, since the member would miss events.
pub(crate) async fn hold_join(
    state: &AppState,
    guild_id: GuildId,
    user_id: UserId,
) -> Result<JoinHold, Error> {
    let slot = user_slot(state, user_id);
    state
        .topology
        .change_interest(slot, &[(guild_id, 1)])
        .await
        .map_err(|e| Error::Cluster(e.to_string()))?;
    Ok(JoinHold {
        guild_id,
        slot,
        user_id,
    })
}

impl JoinHold {
    /// The membership committed: the user's shard subscribes their sessions, sends them
    /// GUILD_CREATE and then releases the hold.
    pub(crate) async fn announce(self, state: &AppState) {
        let message = BusMessage::GuildJoined {
            guild_id: self.guild_id,
            user_id: self.user_id,
        };
        to_slots(state, &[self.slot], message).await;
    }

    /// Nothing was joined: gives the hold back.
    pub(crate) async fn release(self, state: &AppState) {
        let change = [(self.guild_id, -1)];
        if let Err(error) = state.topology.change_interest(self.slot, &change).await {
            tracing::warn!(guild = %self.guild_id, %error, "join hold not released");
        }
    }
}

/// Publishes the same message once to each slot.
///
/// The write is committed before publishing, so a bus failure must not fail the request (the
/// client would retry and duplicate it); it is logged and counted for the operator instead.
pub(crate) async fn to_slots(state: &AppState, slots: &[ShardId], message: BusMessage) {
    if slots.is_empty() {
        return;
    }
    if let Err(error) = state.bus.publish(slots, message).await {
        metrics::counter!("concord_api_publish_errors_total").increment(1);
        tracing::error!(?slots, %error, "event publish failed");
    }
}
