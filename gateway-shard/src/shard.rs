//! The shard: its session table, the bus consumer that fans dispatches out to local sessions,
//! guild subscription changes, and the reaper of expired sessions.

use std::future::Future;
use std::sync::Arc;

use concord_core::bus::{BusMessage, Dispatch, EventBus, ShardId, Subscription};
use concord_core::gateway::{EventKind, Intents};
use concord_core::id::{GuildId, RoleId, UserId};
use concord_core::repo::Store;
use concord_core::token::TokenKey;
use concord_core::topology::Topology;
use serde::Deserialize;
use tokio::time::{Duration, Instant};
use tracing::{debug, error, warn};

use crate::config::ShardConfig;
use crate::error::{Error, Result};
use crate::frame::EncodedEvent;
use crate::guild_create;
use crate::metrics;
use crate::session::{EncodeCache, Offer, Session, SessionId, SharedEncodings};
use crate::table::SessionTable;
use crate::task::AbortOnDrop;

/// Shortest and longest pause between reaper passes.
const REAP_PERIOD_BOUNDS: (Duration, Duration) =
    (Duration::from_millis(50), Duration::from_secs(5));

/// One gateway shard: the state machine of one slot, owning the sessions of the users that hash
/// to it.
pub struct Shard {
    id: ShardId,
    label: String,
    config: Arc<ShardConfig>,
    pub(crate) store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    topology: Arc<dyn Topology>,
    tokens: TokenKey,
    table: SessionTable,
    /// Serialises subscription changes so that each session's guild set, the guild index and
    /// the interest counts move together (interest is counted per session).
    membership: tokio::sync::Mutex<()>,
    /// How far the bus consumer has read, refreshed about once a second.
    position: std::sync::Mutex<Option<String>>,
    /// Encodings shared with the process's other shards.
    encodings: Arc<SharedEncodings>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("id", &self.id)
            .field("sessions", &self.table.len())
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// Creates the shard of slot `shard_id`. Nothing is consumed until [`Shard::run`] is spawned.
    pub(crate) fn new(
        shard_id: ShardId,
        config: Arc<ShardConfig>,
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        topology: Arc<dyn Topology>,
        tokens: TokenKey,
        encodings: Arc<SharedEncodings>,
    ) -> Arc<Self> {
        let shard = Arc::new(Self {
            id: shard_id,
            label: shard_id.to_string(),
            config,
            store,
            bus,
            topology,
            tokens,
            table: SessionTable::default(),
            membership: tokio::sync::Mutex::new(()),
            position: std::sync::Mutex::new(None),
            encodings,
        });
        shard.record_sessions();
        shard
    }

    /// Shard ordinal.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// Settings.
    pub fn config(&self) -> &Arc<ShardConfig> {
        &self.config
    }

    /// Key that verifies client tokens.
    pub fn token_key(&self) -> &TokenKey {
        &self.tokens
    }

    /// Number of live (connected or resumable) sessions.
    pub fn session_count(&self) -> usize {
        self.table.len()
    }

    /// Whether the shard holds the session.
    pub fn has_session(&self, id: SessionId) -> bool {
        self.table.get(id).is_some()
    }

    /// Subscribes to the slot's channel: events published after this returns reach
    /// [`Shard::run`]. Sessions must not be accepted before it has returned.
    ///
    /// # Errors
    /// When the bus cannot subscribe.
    pub async fn subscribe(&self) -> Result<Box<dyn Subscription>> {
        self.bus
            .subscribe(self.id)
            .await
            .map_err(|e| Error::Cluster(e.to_string()))
    }

    /// Consumes the slot's channel until `shutdown` resolves or the bus closes, and reaps
    /// sessions whose resume window has passed.
    pub async fn run(
        self: Arc<Self>,
        mut subscription: Box<dyn Subscription>,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        // The reaper ends with this loop, however the loop's future ends.
        let _reaper = AbortOnDrop(tokio::spawn(self.clone().reap_forever()));
        tokio::pin!(shutdown);
        let mut report = tokio::time::interval(Duration::from_secs(1));
        report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = report.tick() => {
                    *self.position.lock().unwrap_or_else(|e| e.into_inner()) =
                        subscription.position();
                }
                message = subscription.next() => match message {
                    Some(message) => self.handle(message).await,
                    None => {
                        warn!(shard = self.id, "event bus closed");
                        break;
                    }
                },
            }
        }
    }

    async fn reap_forever(self: Arc<Self>) {
        let (min, max) = REAP_PERIOD_BOUNDS;
        let mut tick = tokio::time::interval((self.config.resume_window / 4).clamp(min, max));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.reap(Instant::now()).await;
        }
    }

    /// Drops every session whose socket has been gone for the whole resume window.
    pub(crate) async fn reap(&self, now: Instant) {
        for session in self.table.all() {
            if let Some(guilds) = session.close_if_expired(now, self.config.resume_window) {
                debug!(shard = self.id, session = %session.id, "session expired");
                self.forget(session.id, guilds).await;
            }
        }
    }

    async fn handle(&self, message: BusMessage) {
        match message {
            BusMessage::Dispatch(dispatch) => self.deliver(&dispatch),
            BusMessage::GuildJoined { guild_id, user_id } => {
                if let Err(error) = self.guild_joined(guild_id, user_id).await {
                    warn!(shard = self.id, guild = %guild_id, %error, "could not load joined guild");
                }
                // The publisher held interest for this slot until the join was handled; the
                // sessions subscribed above now hold their own.
                self.change_interest(&[(guild_id, -1)]).await;
            }
            BusMessage::GuildLeft { guild_id, user_id } => {
                let sessions = self.table.user_sessions(user_id);
                self.unsubscribe_all(guild_id, &sessions).await;
            }
            BusMessage::GuildRemoved { guild_id } => {
                let sessions = self.table.guild_sessions(guild_id);
                self.unsubscribe_all(guild_id, &sessions).await;
            }
            BusMessage::TokenRevoked { token_id, user_id } => {
                let code = concord_core::gateway::CloseCode::AuthenticationFailed.code();
                for session in self.table.user_sessions(user_id) {
                    if session.token_id != token_id {
                        continue;
                    }
                    let (guilds, link) = session.close(Some(code));
                    self.forget(session.id, guilds).await;
                    if let Some(link) = link {
                        link.close(Error::ClosedByServer(code));
                    }
                }
            }
            BusMessage::CloseUserSessions { code, user_id } => {
                for session in self.table.user_sessions(user_id) {
                    let (guilds, link) = session.close(Some(code.0));
                    self.forget(session.id, guilds).await;
                    if let Some(link) = link {
                        link.close(Error::ClosedByServer(code.0));
                    }
                }
            }
        }
    }

    /// Fans a dispatch out to the local sessions it concerns.
    fn deliver(&self, dispatch: &Arc<Dispatch>) {
        let update = (dispatch.kind == EventKind::GuildMemberUpdate)
            .then(|| serde_json::from_slice::<MemberUpdate>(&dispatch.data).ok())
            .flatten();
        if let (Some(update), Some(guild)) = (&update, dispatch.guild_id) {
            // Roles first, so this and later events are judged with the new roles.
            for session in self.table.user_sessions(update.user.id) {
                session.set_roles(guild, &update.roles);
            }
        }
        let subject = update.map(|u| u.user.id);
        let targets = match (dispatch.user_id, dispatch.guild_id) {
            (Some(user), _) => self.table.user_sessions(user),
            (None, Some(guild)) => self.table.guild_sessions(guild),
            (None, None) => self.table.all(),
        };
        let mut cache = EncodeCache::shared(dispatch, &self.encodings);
        let mut sequenced = 0;
        for session in targets {
            if session.offer(dispatch, subject, &mut cache) == Offer::Sequenced {
                sequenced += 1;
            }
        }
        metrics::dispatched(dispatch.kind, sequenced);
    }

    async fn guild_joined(&self, guild: GuildId, user: UserId) -> Result<()> {
        let candidates: Vec<_> = self
            .table
            .user_sessions(user)
            .into_iter()
            .filter(|s| s.wants_guild(guild))
            .collect();
        // Only sessions this join subscribes get a GUILD_CREATE: one already in the guild (its
        // Identify listed it, or the join was announced twice) has had its GUILD_CREATE.
        let mut sessions = Vec::with_capacity(candidates.len());
        {
            let _membership = self.membership.lock().await;
            for session in candidates {
                if session.add_guild(guild, Vec::new()) {
                    self.table.subscribe(guild, &session);
                    sessions.push(session);
                }
            }
            let delta = i64::try_from(sessions.len()).unwrap_or(i64::MAX);
            if delta > 0 {
                self.change_interest(&[(guild, delta)]).await;
            }
        }
        if sessions.is_empty() {
            return Ok(());
        }
        // Subscribed before loading, so whatever is published after the snapshot still arrives
        // (it waits behind this message in the shard's channel).
        match self.send_joined_guild(guild, user, &sessions).await {
            Ok(true) => Ok(()),
            // Gone again, or not loadable: no GUILD_CREATE went out, so no guild events may follow.
            Ok(false) => {
                self.unsubscribe_all(guild, &sessions).await;
                Ok(())
            }
            Err(error) => {
                self.unsubscribe_all(guild, &sessions).await;
                Err(error)
            }
        }
    }

    /// Loads and sequences the joined guild's GUILD_CREATE for each newly subscribed session;
    /// false when the user is no longer in the guild.
    async fn send_joined_guild(
        &self,
        guild: GuildId,
        user: UserId,
        sessions: &[Arc<Session>],
    ) -> Result<bool> {
        // Sessions of one user differ only in how many members they get and the threshold.
        let mut built: Vec<(ViewKey, JoinedView)> = Vec::new();
        let mut sequenced = 0;
        for session in sessions {
            let key = (
                session.intents.contains(Intents::GUILD_PRESENCES),
                session.large_threshold,
            );
            let (event, roles) = match built.iter().find(|(k, _)| *k == key) {
                Some((_, view)) => view.clone(),
                None => {
                    let Some(view) =
                        guild_create::load(&*self.store, guild, user, key.0, key.1).await?
                    else {
                        return Ok(false);
                    };
                    let view = (
                        EncodedEvent::encode(EventKind::GuildCreate, &view.create),
                        view.roles,
                    );
                    built.push((key, view.clone()));
                    view
                }
            };
            session.set_roles(guild, &roles);
            if session.intents.contains(Intents::GUILDS)
                && session.push_event(event) == Offer::Sequenced
            {
                sequenced += 1;
            }
        }
        metrics::dispatched(EventKind::GuildCreate, sequenced);
        Ok(true)
    }

    async fn unsubscribe_all(&self, guild: GuildId, sessions: &[Arc<Session>]) {
        let _membership = self.membership.lock().await;
        let mut removed = 0i64;
        for session in sessions {
            if session.remove_guild(guild) {
                self.table.unsubscribe(guild, session.id);
                removed += 1;
            }
        }
        if removed > 0 {
            self.change_interest(&[(guild, -removed)]).await;
        }
    }

    /// Applies interest changes for this slot. A failure is logged and counted: the counts
    /// then over- or under-state this slot until it is taken again (which resets them).
    async fn change_interest(&self, changes: &[(GuildId, i64)]) {
        if let Err(failure) = self.topology.change_interest(self.id, changes).await {
            ::metrics::counter!(metrics::INTEREST_ERRORS).increment(1);
            error!(shard = self.id, error = %failure, "interest registry update failed");
        }
    }

    /// Adds a new session, without guilds yet, so that a GuildJoined handled from now on
    /// already finds it.
    pub(crate) async fn register(&self, session: &Arc<Session>) {
        let _membership = self.membership.lock().await;
        self.table.insert(session.clone());
        self.record_sessions();
    }

    /// Subscribes a session to its guilds (registering bus interest) before they are loaded,
    /// so events published meanwhile wait in the session. Returns the guilds this call
    /// subscribed; the others were subscribed by a GuildJoined, which sends their GUILD_CREATE.
    pub(crate) async fn subscribe_new(
        &self,
        session: &Arc<Session>,
        guilds: &[GuildId],
    ) -> Vec<GuildId> {
        let _membership = self.membership.lock().await;
        let mut added = Vec::with_capacity(guilds.len());
        for guild in guilds {
            if session.add_guild(*guild, Vec::new()) {
                self.table.subscribe(*guild, session);
                added.push(*guild);
            }
        }
        let changes: Vec<_> = added.iter().map(|g| (*g, 1)).collect();
        if !changes.is_empty() {
            self.change_interest(&changes).await;
        }
        added
    }

    /// Drops one guild subscription of a session.
    pub(crate) async fn unsubscribe(&self, session: &Arc<Session>, guild: GuildId) {
        self.unsubscribe_all(guild, std::slice::from_ref(session))
            .await;
    }

    /// Removes a closed session from the table and releases its guild interest.
    pub(crate) async fn forget(&self, id: SessionId, guilds: Vec<GuildId>) {
        let _membership = self.membership.lock().await;
        self.table.remove(id);
        for guild in &guilds {
            self.table.unsubscribe(*guild, id);
        }
        let changes: Vec<_> = guilds.iter().map(|g| (*g, -1)).collect();
        if !changes.is_empty() {
            self.change_interest(&changes).await;
        }
        self.record_sessions();
    }

    /// Called when connection `conn` of `session` ends: the session stays for the resume
    /// window when `keep`, else it is dropped (unless another connection took it over).
    pub(crate) async fn release(&self, session: &Arc<Session>, conn: u64, keep: bool) {
        if keep {
            session.detach(conn, Instant::now());
        } else if let Some(guilds) = session.close_if_linked(conn) {
            self.forget(session.id, guilds).await;
        }
    }

    /// Closes every session with a resumable close (the slot is moving to another process, or
    /// this one is stopping), so that clients reconnect through the router.
    pub async fn close_all(&self) {
        for session in self.table.all() {
            let (guilds, link) = session.close(None);
            self.forget(session.id, guilds).await;
            if let Some(link) = link {
                link.close(Error::Reconnect);
            }
        }
    }

    /// How far the slot's bus consumer had read at its last report (about once a second).
    pub fn position(&self) -> Option<String> {
        self.position
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Looks a session up.
    pub(crate) fn session(&self, id: SessionId) -> Option<Arc<Session>> {
        self.table.get(id)
    }

    fn record_sessions(&self) {
        ::metrics::gauge!(metrics::SESSIONS, "shard" => self.label.clone())
            .set(self.table.len() as f64);
    }
}

/// What a joined guild's GUILD_CREATE depends on: all members wanted, large threshold.
type ViewKey = (bool, u32);
/// A joined guild's encoded GUILD_CREATE and the member's roles in it.
type JoinedView = (Arc<EncodedEvent>, Vec<RoleId>);

/// The parts of GUILD_MEMBER_UPDATE the shard tracks.
#[derive(Deserialize)]
struct MemberUpdate {
    roles: Vec<RoleId>,
    user: MemberUpdateUser,
}

#[derive(Deserialize)]
struct MemberUpdateUser {
    id: UserId,
}
