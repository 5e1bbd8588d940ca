//! Shared state handed to every handler.

use std::sync::Arc;

use concord_core::bus::EventBus;
use concord_core::repo::Store;
use concord_core::snowflake::SnowflakeGenerator;
use concord_core::token::TokenKey;
use concord_core::topology::Topology;

use crate::config::ApiConfig;
use crate::error::Error;
use crate::events::Backlog;
use crate::invalidation::{Invalidation, InvalidationSink};
use crate::password::Passwords;
use crate::ratelimit::{RateLimiter, SharedWindows};
use crate::scope_cache::ScopeCache;
use crate::token_cache::TokenCache;

/// Everything the handlers share: storage, the event bus, token keys, the id generator,
/// configuration, the password hasher, the rate limiter and the caches in front of the store.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Event bus to the gateway shards' slots.
    pub bus: Arc<dyn EventBus>,
    /// Slot count and the guild interest registry.
    pub topology: Arc<dyn Topology>,
    /// Token signing key.
    pub tokens: TokenKey,
    /// Snowflake generator of this process.
    pub ids: Arc<SnowflakeGenerator>,
    /// Configuration.
    pub config: Arc<ApiConfig>,
    pub(crate) passwords: Passwords,
    pub(crate) limiter: Arc<RateLimiter>,
    /// False while events cannot be published: writes are then refused before they commit.
    pub(crate) bus_available: Arc<std::sync::atomic::AtomicBool>,
    /// Committed events waiting for the bus.
    pub(crate) backlog: Arc<Backlog>,
    /// Token ids known live; revocations must go through it.
    pub(crate) live_tokens: Arc<TokenCache>,
    /// Channels, guilds and memberships read by permission checks; their changes must go
    /// through it.
    pub(crate) scopes: Arc<ScopeCache>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Sends every cache eviction of this process to `sink` from now on (cluster mode).
    pub fn set_invalidation_sink(&self, sink: Arc<dyn InvalidationSink>) {
        self.scopes.peers.install(sink.clone());
        self.live_tokens.peers.install(sink);
    }

    /// Records whether the event bus can take publishes (a probe's verdict, in cluster mode).
    /// While it cannot, every write is refused with 503 before anything is committed, since its
    /// event could not be delivered.
    pub fn set_bus_available(&self, available: bool) {
        self.bus_available
            .store(available, std::sync::atomic::Ordering::Release);
    }

    /// Whether writes are accepted: the bus answers its probe, and the events committed but not
    /// yet published stay under [`crate::events::BACKLOG_LIMIT`].
    pub fn accepts_writes(&self) -> bool {
        self.bus_available
            .load(std::sync::atomic::Ordering::Acquire)
            && self.backlog.len() < crate::events::BACKLOG_LIMIT
    }

    /// Publishes events that were committed while the bus was away, in order, as soon as it
    /// takes them again. Spawn once per process; it never returns.
    pub async fn run_backlog(self) {
        crate::events::drain_backlog(self).await;
    }

    /// Counts rate-limit windows in `shared` (every API process of a cluster) from now on.
    pub fn share_rate_limits(&self, shared: Arc<dyn SharedWindows>) {
        self.limiter.share(shared);
    }

    /// Applies an eviction made by another process to this process's caches.
    pub fn apply_invalidation(&self, invalidation: &Invalidation) {
        self.scopes.apply(invalidation);
        self.live_tokens.apply(invalidation);
    }

    /// Assembles the state; builds the password hasher, the rate limiter and the caches once.
    ///
    /// # Errors
    /// [`Error::Config`] when the Argon2 parameters are out of bounds.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        topology: Arc<dyn Topology>,
        tokens: TokenKey,
        ids: Arc<SnowflakeGenerator>,
        config: ApiConfig,
    ) -> Result<Self, Error> {
        let passwords = Passwords::new(config.argon2).map_err(Error::Config)?;
        let limiter = Arc::new(RateLimiter::new(config.rate_limits));
        Ok(Self {
            store,
            bus,
            topology,
            tokens,
            ids,
            config: Arc::new(config),
            passwords,
            limiter,
            bus_available: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            backlog: Arc::default(),
            live_tokens: Arc::default(),
            scopes: Arc::default(),
        })
    }
}
