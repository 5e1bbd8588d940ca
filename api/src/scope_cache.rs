//! Short-lived copies of what a permission check in a channel reads: the channel (type and
//! overwrites), the guild (owner and roles) and the caller's membership (roles, timeout).
//!
//! Posting a message would otherwise cost three store reads before the insert. Used only by
//! routes that read these rows to decide and to address events (`access::ChannelScope::
//! load_cached`); routes that change them or return them read the store.
//!
//! Every route of this process that changes a cached row invalidates it right after its store
//! write (the `*_changed`/`*_deleted` methods), so a permission revoked here applies to the very
//! next request. A change made through another API process is seen within [`SCOPE_TTL`].
//! A channel's `last_message_id` is deliberately not kept current (every post bumps it; evicting
//! on each post would defeat the cache), which is why cached channels are never sent to clients.

use std::sync::Arc;

use crate::invalidation::{Invalidation, InvalidationSink};
use std::time::Duration;

use concord_core::id::{ChannelId, GuildId, UserId};
use concord_core::model::{Channel, Guild, Member};
use concord_core::repo::{RepoResult, Store};

use crate::ttl_map::TtlMap;

/// How long a copy is used without asking the store: the longest a change made through another
/// API process (a revoked permission, a removed member) can go unnoticed in this one.
pub(crate) const SCOPE_TTL: Duration = Duration::from_secs(2);
/// Channels remembered at most.
const CHANNEL_CAPACITY: usize = 20_000;
/// Guilds remembered at most (a guild carries all its roles, so these are the largest entries).
const GUILD_CAPACITY: usize = 2_000;
/// Memberships remembered at most (each with its user).
const MEMBER_CAPACITY: usize = 50_000;

/// Cached channels, guilds and memberships.
#[derive(Debug)]
pub(crate) struct ScopeCache {
    channels: TtlMap<ChannelId, Arc<Channel>>,
    guilds: TtlMap<GuildId, Arc<Guild>>,
    members: TtlMap<(GuildId, UserId), Arc<Member>>,
    /// Other API processes, told of every eviction made here.
    pub(crate) peers: Peers,
}

impl Default for ScopeCache {
    fn default() -> Self {
        Self::new(SCOPE_TTL)
    }
}

impl ScopeCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            channels: TtlMap::new(ttl, CHANNEL_CAPACITY),
            guilds: TtlMap::new(ttl, GUILD_CAPACITY),
            members: TtlMap::new(ttl, MEMBER_CAPACITY),
            peers: Peers::default(),
        }
    }

    /// Channel by id (its `last_message_id` may be stale).
    pub(crate) async fn channel(
        &self,
        store: &dyn Store,
        id: ChannelId,
    ) -> RepoResult<Option<Arc<Channel>>> {
        self.channels
            .get_or_load(id, || async { Ok(store.channel(id).await?.map(Arc::new)) })
            .await
    }

    /// Guild with roles.
    pub(crate) async fn guild(
        &self,
        store: &dyn Store,
        id: GuildId,
    ) -> RepoResult<Option<Arc<Guild>>> {
        self.guilds
            .get_or_load(id, || async { Ok(store.guild(id).await?.map(Arc::new)) })
            .await
    }

    /// Membership with user.
    pub(crate) async fn member(
        &self,
        store: &dyn Store,
        guild: GuildId,
        user: UserId,
    ) -> RepoResult<Option<Arc<Member>>> {
        self.members
            .get_or_load((guild, user), || async {
                Ok(store.member(guild, user).await?.map(Arc::new))
            })
            .await
    }

    /// Call after a channel was updated or deleted.
    pub(crate) fn channel_changed(&self, id: ChannelId) {
        self.apply(&Invalidation::Channel { id });
        self.peers.send(&Invalidation::Channel { id });
    }

    /// Call after a guild's settings (owner, roles) changed.
    pub(crate) fn guild_changed(&self, id: GuildId) {
        self.apply(&Invalidation::Guild { id });
        self.peers.send(&Invalidation::Guild { id });
    }

    /// Call after a guild was deleted with its channels and memberships.
    pub(crate) fn guild_deleted(&self, id: GuildId) {
        self.apply(&Invalidation::GuildDeleted { id });
        self.peers.send(&Invalidation::GuildDeleted { id });
    }

    /// Call after a user joined or left a guild, or their membership changed.
    pub(crate) fn member_changed(&self, guild: GuildId, user: UserId) {
        self.apply(&Invalidation::Member { guild, user });
        self.peers.send(&Invalidation::Member { guild, user });
    }

    /// Call after a user's profile changed: every cached membership embeds it.
    pub(crate) fn user_changed(&self, user: UserId) {
        self.apply(&Invalidation::User { user });
        self.peers.send(&Invalidation::User { user });
    }

    /// Evicts what `invalidation` names from this process only.
    pub(crate) fn apply(&self, invalidation: &Invalidation) {
        match *invalidation {
            Invalidation::Channel { id } => self.channels.invalidate(&id),
            Invalidation::Guild { id } => self.guilds.invalidate(&id),
            Invalidation::GuildDeleted { id } => self.evict_guild(id),
            Invalidation::Member { guild, user } => self.members.invalidate(&(guild, user)),
            Invalidation::User { user } => self
                .members
                .invalidate_where(|(_, member), _| *member == user),
            Invalidation::Token { .. } | Invalidation::UserTokens { .. } => {}
        }
    }

    fn evict_guild(&self, id: GuildId) {
        self.guilds.invalidate(&id);
        // Scans, but deleting a guild is rare; dropping the guild alone would already refuse
        // its channels, this only frees the memory at once.
        self.channels
            .invalidate_where(|_, channel| channel.guild_id == Some(id));
        self.members.invalidate_where(|(guild, _), _| *guild == id);
    }
}

/// The other API processes, once a sink is installed (cluster mode).
#[derive(Default)]
pub(crate) struct Peers(std::sync::OnceLock<Arc<dyn InvalidationSink>>);

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Peers")
    }
}

impl Peers {
    /// Installs the sink; later calls are ignored.
    pub(crate) fn install(&self, sink: Arc<dyn InvalidationSink>) {
        let _ = self.0.set(sink);
    }

    pub(crate) fn send(&self, invalidation: &Invalidation) {
        if let Some(sink) = self.0.get() {
            sink.send(invalidation);
        }
    }
}

#[cfg(test)]
mod tests {
    use concord_core::id::Id;
    use concord_core::model::ChannelType;
    use concord_core::permissions::Permissions;
    use concord_core::repo::{NewGuild, NewUser, UserPatch};
    use concord_core::timestamp::Timestamp;

    use super::*;

    struct Fixture {
        store: Arc<dyn Store>,
        guild: GuildId,
        channel: ChannelId,
        owner: UserId,
        member: UserId,
    }

    async fn fixture() -> Fixture {
        let store = concord_store_sql::connect(&concord_store_sql::test_util::scratch_sqlite_url())
            .await
            .expect("store");
        let (owner, member) = (Id::new(1), Id::new(2));
        for id in [owner, member] {
            store
                .insert_user(&NewUser {
                    bot: false,
                    discriminator: "0".to_owned(),
                    email: None,
                    id,
                    password_hash: None,
                    username: format!("u{id}"),
                })
                .await
                .expect("user");
        }
        let (guild, channel) = (Id::new(10), Id::new(11));
        store
            .create_guild(&NewGuild {
                channels: vec![Channel {
                    flags: 0,
                    guild_id: Some(guild),
                    id: channel,
                    kind: ChannelType::GuildText,
                    last_message_id: None,
                    name: "general".to_owned(),
                    nsfw: false,
                    parent_id: None,
                    permission_overwrites: Vec::new(),
                    position: 0,
                    rate_limit_per_user: 0,
                    topic: None,
                }],
                everyone_permissions: Permissions::DEFAULT_EVERYONE,
                id: guild,
                name: "g".to_owned(),
                owner_id: owner,
                system_channel_id: None,
                created_at: Timestamp::now(),
            })
            .await
            .expect("guild");
        store
            .add_member(guild, member, Timestamp::now())
            .await
            .expect("member");
        Fixture {
            store,
            guild,
            channel,
            owner,
            member,
        }
    }

    #[tokio::test]
    async fn invalidation_applies_at_once_and_misses_are_not_remembered() {
        let f = fixture().await;
        let store = &*f.store;
        let cache = ScopeCache::default();
        assert!(cache
            .member(store, f.guild, f.member)
            .await
            .unwrap()
            .is_some());
        assert!(cache.channel(store, f.channel).await.unwrap().is_some());
        assert!(cache.guild(store, f.guild).await.unwrap().is_some());

        // Removed without telling the cache: the copy is still served.
        store.remove_member(f.guild, f.member).await.unwrap();
        assert!(cache
            .member(store, f.guild, f.member)
            .await
            .unwrap()
            .is_some());
        cache.member_changed(f.guild, f.member);
        assert!(cache
            .member(store, f.guild, f.member)
            .await
            .unwrap()
            .is_none());
        // Absence is not remembered: a rejoin is seen at once.
        store
            .add_member(f.guild, f.member, Timestamp::now())
            .await
            .unwrap();
        assert!(cache
            .member(store, f.guild, f.member)
            .await
            .unwrap()
            .is_some());

        store
            .update_user(
                f.member,
                &UserPatch {
                    username: Some("renamed".to_owned()),
                    ..UserPatch::default()
                },
            )
            .await
            .unwrap();
        cache.user_changed(f.member);
        let member = cache
            .member(store, f.guild, f.member)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(member.user.as_ref().unwrap().username, "renamed");

        assert!(cache
            .member(store, f.guild, f.owner)
            .await
            .unwrap()
            .is_some());
        store.delete_guild(f.guild).await.unwrap();
        cache.guild_deleted(f.guild);
        assert!(cache.guild(store, f.guild).await.unwrap().is_none());
        assert!(cache.channel(store, f.channel).await.unwrap().is_none());
        assert!(cache
            .member(store, f.guild, f.owner)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn copies_expire_after_the_ttl() {
        let f = fixture().await;
        let store = &*f.store;
        // Real time, short TTL: a paused clock would also fire the pool's acquire timeouts.
        let ttl = Duration::from_millis(200);
        let cache = ScopeCache::new(ttl);
        let channel = cache.channel(store, f.channel).await.unwrap().unwrap();
        let mut renamed = (*channel).clone();
        renamed.name = "renamed".to_owned();
        store.update_channel(&renamed).await.unwrap();
        assert_eq!(
            cache.channel(store, f.channel).await.unwrap().unwrap().name,
            "general"
        );
        tokio::time::sleep(ttl).await;
        assert_eq!(
            cache.channel(store, f.channel).await.unwrap().unwrap().name,
            "renamed"
        );
        cache.guild(store, f.guild).await.unwrap();
        store.delete_guild(f.guild).await.unwrap();
        cache.channel_changed(f.channel);
        cache.guild_changed(f.guild);
        assert!(cache.channel(store, f.channel).await.unwrap().is_none());
        assert!(cache.guild(store, f.guild).await.unwrap().is_none());
    }
}
