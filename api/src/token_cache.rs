//! Which token ids are known live, so a request does not cost a store round trip to prove its
//! token was not revoked.
//!
//! Only the revocation lookup is cached: the HMAC signature is checked on every request. A
//! token revoked by this process is evicted synchronously (see [`TokenCache::revoked`] and
//! [`TokenCache::user_revoked`]), so its very next request fails. A token revoked by another
//! API process keeps working here until its entry expires: [`TOKEN_TTL`] bounds that. Only
//! positive answers are cached, so a freshly minted token works at once and a dead one is
//! looked up each time (and refused each time).

use std::time::Duration;

use concord_core::id::UserId;
use concord_core::repo::{RepoResult, Store};

use crate::invalidation::Invalidation;
use crate::scope_cache::Peers;
use crate::ttl_map::TtlMap;

/// How long a token stays known live without asking the store: the longest a token revoked
/// through another API process keeps working in this one.
pub(crate) const TOKEN_TTL: Duration = Duration::from_secs(10);
/// Live tokens remembered at most (~100 bytes each).
const TOKEN_CAPACITY: usize = 100_000;

/// Token ids known live, with the user each acts for.
#[derive(Debug)]
pub(crate) struct TokenCache {
    live: TtlMap<u64, UserId>,
    /// Other API processes, told of every revocation seen here.
    pub(crate) peers: Peers,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(TOKEN_TTL, TOKEN_CAPACITY)
    }
}

impl TokenCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            live: TtlMap::new(ttl, capacity),
            peers: Peers::default(),
        }
    }

    /// Whether the token is live for `user`, from memory or else from the store.
    pub(crate) async fn is_live(
        &self,
        store: &dyn Store,
        token_id: u64,
        user: UserId,
    ) -> RepoResult<bool> {
        if self.live.get(&token_id) == Some(user) {
            return Ok(true);
        }
        let fill = self.live.fill();
        let live = store.token_is_live(token_id, user).await?;
        if live {
            self.live.insert(fill, token_id, user);
        }
        Ok(live)
    }

    /// Call after revoking one token in the store.
    pub(crate) fn revoked(&self, token_id: u64) {
        self.apply(&Invalidation::Token { token_id });
        self.peers.send(&Invalidation::Token { token_id });
    }

    /// Call after revoking every token of `user` in the store.
    pub(crate) fn user_revoked(&self, user: UserId) {
        self.apply(&Invalidation::UserTokens { user });
        self.peers.send(&Invalidation::UserTokens { user });
    }

    /// Evicts what `invalidation` names from this process only.
    pub(crate) fn apply(&self, invalidation: &Invalidation) {
        match *invalidation {
            Invalidation::Token { token_id } => self.live.invalidate(&token_id),
            // A scan, but revoking all of a user's tokens is rare (bot token reset).
            Invalidation::UserTokens { user } => {
                self.live.invalidate_where(|_, owner| *owner == user);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use concord_core::id::Id;
    use concord_core::timestamp::Timestamp;

    use super::*;

    async fn store() -> Arc<dyn Store> {
        concord_store_sql::connect(&concord_store_sql::test_util::scratch_sqlite_url())
            .await
            .expect("store")
    }

    async fn user(store: &dyn Store, id: u64) -> UserId {
        let id = Id::new(id);
        store
            .insert_user(&concord_core::repo::NewUser {
                bot: false,
                discriminator: "0".to_owned(),
                email: None,
                id,
                password_hash: None,
                username: format!("u{id}"),
            })
            .await
            .expect("user");
        id
    }

    #[tokio::test]
    async fn revocation_in_process_applies_at_once() {
        let store = store().await;
        let alice = user(&*store, 1).await;
        let bob = user(&*store, 2).await;
        for token in [10, 11, 20] {
            let owner = if token < 20 { alice } else { bob };
            store
                .insert_token(token, owner, Timestamp::now())
                .await
                .unwrap();
        }
        let cache = TokenCache::default();
        for (token, owner) in [(10, alice), (11, alice), (20, bob)] {
            assert!(cache.is_live(&*store, token, owner).await.unwrap());
        }
        assert!(
            !cache.is_live(&*store, 10, bob).await.unwrap(),
            "a token is live only for its own user"
        );

        store.revoke_token(10).await.unwrap();
        assert!(
            cache.is_live(&*store, 10, alice).await.unwrap(),
            "unseen revocations are served from memory until the entry expires"
        );
        cache.revoked(10);
        assert!(!cache.is_live(&*store, 10, alice).await.unwrap());
        assert!(cache.is_live(&*store, 11, alice).await.unwrap());

        store.revoke_user_tokens(alice).await.unwrap();
        cache.user_revoked(alice);
        assert!(!cache.is_live(&*store, 11, alice).await.unwrap());
        assert!(cache.is_live(&*store, 20, bob).await.unwrap());
    }

    #[tokio::test]
    async fn entries_expire_and_dead_tokens_are_not_remembered() {
        let store = store().await;
        let alice = user(&*store, 1).await;
        // Real time, short TTL: a paused clock would also fire the pool's acquire timeouts.
        let ttl = Duration::from_millis(200);
        let cache = TokenCache::new(ttl, 100);
        assert!(
            !cache.is_live(&*store, 10, alice).await.unwrap(),
            "not issued yet"
        );
        store
            .insert_token(10, alice, Timestamp::now())
            .await
            .unwrap();
        assert!(
            cache.is_live(&*store, 10, alice).await.unwrap(),
            "a negative answer is not cached, so a new token works at once"
        );
        // Revoked elsewhere: served from memory until the entry expires.
        store.revoke_token(10).await.unwrap();
        assert!(cache.is_live(&*store, 10, alice).await.unwrap());
        tokio::time::sleep(ttl).await;
        assert!(!cache.is_live(&*store, 10, alice).await.unwrap());
    }
}
