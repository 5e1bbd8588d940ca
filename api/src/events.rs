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

/// Slots with sessions in the guild; every slot when the registry cannot be read, since interest
/// may be over-approximated but never missed (the write is committed: failing the request would
/// make the client repeat it, and publishing to nobody would lose the event).
pub(crate) async fn interested(state: &AppState, guild_id: GuildId) -> Vec<ShardId> {
    match state.topology.interested_slots(guild_id).await {
        Ok(slots) => slots,
        Err(error) => {
            metrics::counter!("concord_api_interest_errors_total").increment(1);
            tracing::warn!(guild = %guild_id, %error, "interest lookup failed; publishing to every slot");
            (0..state.topology.slot_count()).collect()
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
/// client would retry and duplicate it): a slot whose append failed gets the message from the
/// [`Backlog`], under the same event id (subscribers drop the copy if the failed append had in
/// fact landed), once the bus takes it again.
pub(crate) async fn to_slots(state: &AppState, slots: &[ShardId], message: BusMessage) {
    if slots.is_empty() {
        return;
    }
    let event: u64 = rand::random();
    // Behind anything still waiting, so that each slot keeps the order of its events.
    if !state.backlog.is_empty() {
        for slot in slots {
            state.backlog.push(event, *slot, message.clone());
        }
        return;
    }
    // Encoded once; only the slots whose append failed are retried.
    if let Err(failure) = state.bus.publish_event(event, slots, message.clone()).await {
        metrics::counter!("concord_api_publish_errors_total").increment(1);
        tracing::warn!(slots = ?failure.failed, error = %failure.error, "event append failed; kept for retry");
        for slot in failure.failed {
            state.backlog.push(event, slot, message.clone());
        }
    }
}

/// Events committed but not yet published, waiting for the bus, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    queue: std::sync::Mutex<std::collections::VecDeque<(u64, ShardId, BusMessage)>>,
    added: tokio::sync::Notify,
}

/// Events the backlog holds before writes are refused (about a minute at a busy API process).
pub(crate) const BACKLOG_LIMIT: usize = 100_000;

impl Backlog {
    fn push(&self, event: u64, slot: ShardId, message: BusMessage) {
        let len = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.push_back((event, slot, message));
            queue.len()
        };
        metrics::gauge!("concord_api_publish_backlog").set(len as f64);
        self.added.notify_one();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn front(&self) -> Option<(u64, ShardId, BusMessage)> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .front()
            .cloned()
    }

    fn pop(&self) {
        let len = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.pop_front();
            queue.len()
        };
        metrics::gauge!("concord_api_publish_backlog").set(len as f64);
    }
}

/// Publishes the backlog, oldest first, retrying every 250 ms while the bus refuses; runs for
/// the life of the process.
pub(crate) async fn drain_backlog(state: AppState) {
    loop {
        let Some((event, slot, message)) = state.backlog.front() else {
            state.backlog.added.notified().await;
            continue;
        };
        match state.bus.publish_event(event, &[slot], message).await {
            Ok(()) => state.backlog.pop(),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}
