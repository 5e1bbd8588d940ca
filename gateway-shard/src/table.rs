//! The shard's session table and its two indexes (by user, by guild).
//!
//! The maps are private; callers get cloned `Arc`s, never a map guard, so no guard can be held
//! across an `.await`. Guards are held only for the map operation itself; session locks may be
//! taken under them (session locks are innermost), never the other way round.

use std::collections::HashMap;
use std::sync::Arc;

use concord_core::id::{GuildId, UserId};
use dashmap::DashMap;

use crate::session::{Session, SessionId};

/// Sessions of one shard.
#[derive(Debug, Default)]
pub(crate) struct SessionTable {
    sessions: DashMap<SessionId, Arc<Session>>,
    users: DashMap<UserId, Vec<Arc<Session>>>,
    guilds: DashMap<GuildId, HashMap<SessionId, Arc<Session>>>,
}

impl SessionTable {
    /// Adds a session (without guild subscriptions).
    pub(crate) fn insert(&self, session: Arc<Session>) {
        self.users
            .entry(session.user_id)
            .or_default()
            .push(session.clone());
        self.sessions.insert(session.id, session);
    }

    /// Removes a session from the table and the user index; guild entries go with
    /// [`SessionTable::unsubscribe`].
    pub(crate) fn remove(&self, id: SessionId) -> Option<Arc<Session>> {
        let (_, session) = self.sessions.remove(&id)?;
        if let dashmap::Entry::Occupied(mut entry) = self.users.entry(session.user_id) {
            entry.get_mut().retain(|s| s.id != id);
            if entry.get().is_empty() {
                entry.remove();
            }
        }
        Some(session)
    }

    /// A session by id.
    pub(crate) fn get(&self, id: SessionId) -> Option<Arc<Session>> {
        self.sessions.get(&id).map(|s| s.clone())
    }

    /// Number of sessions.
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Every session.
    pub(crate) fn all(&self) -> Vec<Arc<Session>> {
        self.sessions.iter().map(|s| s.value().clone()).collect()
    }

    /// The user's sessions.
    pub(crate) fn user_sessions(&self, user: UserId) -> Vec<Arc<Session>> {
        self.users.get(&user).map(|s| s.clone()).unwrap_or_default()
    }

    /// Sessions subscribed to the guild.
    pub(crate) fn guild_sessions(&self, guild: GuildId) -> Vec<Arc<Session>> {
        self.guilds
            .get(&guild)
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Indexes the session under the guild.
    pub(crate) fn subscribe(&self, guild: GuildId, session: &Arc<Session>) {
        self.guilds
            .entry(guild)
            .or_default()
            .insert(session.id, session.clone());
    }

    /// Drops the session from the guild's index entry.
    pub(crate) fn unsubscribe(&self, guild: GuildId, id: SessionId) {
        if let dashmap::Entry::Occupied(mut entry) = self.guilds.entry(guild) {
            entry.get_mut().remove(&id);
            if entry.get().is_empty() {
                entry.remove();
            }
        }
    }

    /// Number of guilds with at least one local session.
    #[cfg(test)]
    pub(crate) fn guild_count(&self) -> usize {
        self.guilds.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::gateway::Intents;
    use concord_core::id::Id;

    #[test]
    fn indexes_follow_inserts_and_removals() {
        let table = SessionTable::default();
        let user: UserId = Id::new(1);
        let guild: GuildId = Id::new(2);
        let a = Arc::new(Session::new(
            SessionId::generate(0),
            user,
            Intents::all(),
            None,
            50,
            8,
        ));
        let b = Arc::new(Session::new(
            SessionId::generate(0),
            user,
            Intents::all(),
            None,
            50,
            8,
        ));
        table.insert(a.clone());
        table.insert(b.clone());
        table.subscribe(guild, &a);
        table.subscribe(guild, &b);
        assert_eq!(table.user_sessions(user).len(), 2);
        assert_eq!(table.guild_sessions(guild).len(), 2);

        table.unsubscribe(guild, a.id);
        assert!(table.remove(a.id).is_some());
        assert_eq!(table.user_sessions(user).len(), 1);
        assert_eq!(table.guild_sessions(guild).len(), 1);
        table.unsubscribe(guild, b.id);
        table.remove(b.id);
        assert_eq!((table.len(), table.guild_count()), (0, 0));
        assert!(table.user_sessions(user).is_empty());
        assert!(table.get(b.id).is_none());
    }
}
