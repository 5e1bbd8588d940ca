//! Publishing dispatch events: `d` is encoded once, wrapped in one `Arc<Dispatch>`, and that
//! same allocation goes to every interested shard.

use std::sync::Arc;

use bytes::Bytes;
use concord_core::bus::{BusMessage, Dispatch, ShardId};
use concord_core::gateway::EventKind;
use concord_core::id::{GuildId, UserId};
use concord_core::json;
use serde::Serialize;

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

/// Sends a guild event to every shard with sessions in the guild.
pub(crate) async fn to_guild(state: &AppState, guild_id: GuildId, dispatch: Dispatch) {
    let shards = state.bus.guild_shards(guild_id).await;
    to_shards(state, &shards, BusMessage::Dispatch(Arc::new(dispatch))).await;
}

/// Sends an event to one user's sessions.
pub(crate) async fn to_user(state: &AppState, user_id: UserId, mut dispatch: Dispatch) {
    dispatch.user_id = Some(user_id);
    send(
        state,
        state.bus.user_shard(user_id),
        BusMessage::Dispatch(Arc::new(dispatch)),
    )
    .await;
}

/// Sends a control message to the shard owning a user's sessions.
pub(crate) async fn to_user_shard(state: &AppState, user_id: UserId, message: BusMessage) {
    send(state, state.bus.user_shard(user_id), message).await;
}

/// Announces that `user_id` joined `guild_id` to the shard owning the user's sessions.
///
/// Interest is held for that shard before the announcement goes out (the shard releases it when
/// it has handled the join): otherwise a message posted between the join and the shard's own
/// subscription would be published only to the other shards and never reach the new member.
pub(crate) async fn announce_join(state: &AppState, guild_id: GuildId, user_id: UserId) {
    let shard = state.bus.user_shard(user_id);
    state.bus.add_interest(shard, guild_id).await;
    send(state, shard, BusMessage::GuildJoined { guild_id, user_id }).await;
}

/// Sends the same message to each shard.
pub(crate) async fn to_shards(state: &AppState, shards: &[ShardId], message: BusMessage) {
    for shard in shards {
        send(state, *shard, message.clone()).await;
    }
}

/// The write is committed before publishing, so a bus failure must not fail the request (the
/// client would retry and duplicate it); it is logged for the operator instead.
async fn send(state: &AppState, shard: ShardId, message: BusMessage) {
    if let Err(error) = state.bus.publish(shard, message).await {
        tracing::error!(shard, %error, "event publish failed");
    }
}
