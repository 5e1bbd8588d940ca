//! The cluster roles: `concord api`, `concord router`, `concord shard` and `concord cluster`.
//!
//! Each role composes the same components the all-in-one [`crate::Server`] runs, wired to
//! PostgreSQL (or any `--database-url`) and Redis instead of the in-process adapters:
//! [`RedisBus`] carries events (one stream per slot), [`RedisTopology`] holds membership, slot
//! leases and guild interest.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use concord_api::config::{ApiConfig, RateLimitConfig};
use concord_api::AppState;
use concord_bus_redis::{IdentifyGate, RateWindow, Redis, RedisBus, RedisTopology, SnowflakeLease};
use concord_core::bus::EventBus;
use concord_core::repo::Store;
use concord_core::snowflake::SnowflakeGenerator;
use concord_core::token::TokenKey;
use concord_core::topology::Topology;
use concord_gateway_shard::{
    serve_links, ConnectionContext, IdentifyQueueHandle, LinkTickets, NodeConfig, ShardConfig,
    ShardNode,
};
use concord_router::{GatewayRouter, RouterParts};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin::{self, AdminState, Readiness};
use crate::config::{Config, Role};
use crate::server::{serve_http, until_stopped, wait_for_stop, wants_websocket};
use crate::telemetry;

mod adapters;
mod status;

pub use status::cluster_command;

use adapters::{
    apply_invalidations, probe_bus, send_invalidations, NodeReady, NoticeSink, RedisIdentifyQueue,
    RedisReady, RedisWindows, RouterReady,
};

/// Key prefix of every Concord key in Redis.
pub const KEY_PREFIX: &str = "cc";
/// How long in-flight HTTP requests get to finish on shutdown.
const HTTP_DRAIN: Duration = Duration::from_secs(10);
/// Snowflake node-id lease of an API process, and how often it is renewed.
const SNOWFLAKE_LEASE: Duration = Duration::from_secs(30);
const SNOWFLAKE_RENEW: Duration = Duration::from_secs(10);

/// A running cluster-role process.
pub struct RoleServer {
    addr: Option<SocketAddr>,
    admin_addr: SocketAddr,
    gateway: Option<Arc<GatewayRouter>>,
    node: Option<Arc<ShardNode>>,
    ready: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// Held so that linked sessions never see a shutdown signal (see the shard role).
    _link_shutdown: Option<watch::Sender<bool>>,
}

/// Connects to Redis and checks the cluster's slot count against `--slots`.
///
/// # Errors
/// When Redis cannot be reached (the message names the URL, credentials redacted) or the
/// cluster was initialised with another slot count.
pub async fn connect_redis(config: &Config) -> anyhow::Result<(Redis, RedisTopology, RedisBus)> {
    let url = config
        .redis_url
        .as_ref()
        .context("CONCORD_REDIS_URL / --redis-url is required")?;
    let redis = Redis::connect(&url.0, KEY_PREFIX)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let cluster = RedisTopology::init_cluster(&redis, config.slots)
        .await
        .with_context(|| format!("reading the cluster settings from {}", redis.redacted_url()))?;
    if cluster.slots != config.slots {
        bail!(
            "the cluster at {} has {} slots but CONCORD_SLOTS / --slots is {}",
            redis.redacted_url(),
            cluster.slots,
            config.slots
        );
    }
    let topology = RedisTopology::new(redis.clone(), cluster.slots)?;
    let bus = RedisBus::new(redis.clone(), cluster.slots)?;
    Ok((redis, topology, bus))
}

impl RoleServer {
    /// Starts the role named in `config`.
    ///
    /// # Errors
    /// When the configuration is invalid or a dependency (database, Redis, a port) is missing.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let role = config.role.clone().context("no cluster role given")?;
        let (redis, topology, bus) = connect_redis(&config).await?;
        let topology: Arc<dyn Topology> = Arc::new(topology);
        let bus = Arc::new(bus);
        let admin_listener = TcpListener::bind(config.admin_listen)
            .await
            .with_context(|| format!("binding {}", config.admin_listen))?;
        let admin_addr = admin_listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let ready = Arc::new(AtomicBool::new(false));
        let mut checks: Vec<Arc<dyn Readiness>> = vec![Arc::new(RedisReady(redis.clone()))];
        let tokens = TokenKey::new(&config.token_secret()?);

        let mut server = Self {
            addr: None,
            admin_addr,
            gateway: None,
            node: None,
            ready: ready.clone(),
            stop,
            tasks: JoinSet::new(),
            _link_shutdown: None,
        };
        let store = match role {
            Role::Api => {
                let store = open_store(&config).await?;
                let lease = SnowflakeLease::new(redis.clone());
                let instance = format!("{:032x}", rand::random::<u128>());
                let node_id = lease
                    .lease_node_id(&instance, SNOWFLAKE_LEASE)
                    .await
                    .context("leasing a snowflake node id")?;
                tracing::info!(node_id, "snowflake node id leased");
                tasks.spawn(until_stopped(
                    renew_snowflake(lease, node_id, instance),
                    stopped.clone(),
                ));
                let ids = Arc::new(SnowflakeGenerator::new(
                    (node_id >> 5) as u8,
                    (node_id & 31) as u8,
                ));
                let listener = bind(config.listen).await?;
                server.addr = Some(listener.local_addr()?);
                let api_config = ApiConfig {
                    privileged_intents_by_default: config.privileged_intents_default,
                    rate_limits: RateLimitConfig {
                        route_limit: config.rate_limit_route,
                        route_window: Duration::from_millis(config.rate_limit_route_window_ms),
                        global_per_second: config.rate_limit_global,
                    },
                    max_concurrency: config.max_concurrency,
                    ..ApiConfig::new(config.gateway_url(listener.local_addr()?))
                };
                let bus_port: Arc<dyn EventBus> = bus.clone();
                let state = AppState::new(
                    store.clone(),
                    bus_port,
                    topology.clone(),
                    tokens,
                    ids,
                    api_config,
                )
                .context("api configuration")?;
                state.share_rate_limits(Arc::new(RedisWindows(RateWindow::new(redis.clone()))));
                // Cache evictions go to every other API process over the notices stream.
                let origin: [u8; 16] = rand::random();
                let (sink, outbox) = tokio::sync::mpsc::unbounded_channel();
                state.set_invalidation_sink(Arc::new(NoticeSink(sink)));
                tasks.spawn(until_stopped(
                    send_invalidations(bus.clone(), origin, outbox),
                    stopped.clone(),
                ));
                let notices = bus
                    .subscribe_notices()
                    .await
                    .context("subscribing to cache invalidations")?;
                tasks.spawn(until_stopped(
                    apply_invalidations(state.clone(), origin, notices),
                    stopped.clone(),
                ));
                tasks.spawn(until_stopped(
                    probe_bus(redis.clone(), state.clone()),
                    stopped.clone(),
                ));
                tasks.spawn(until_stopped(state.clone().run_backlog(), stopped.clone()));
                let app = concord_api::router(state)
                    .layer(middleware::from_fn(refuse_upgrades))
                    .layer(tower_http::trace::TraceLayer::new_for_http());
                tasks.spawn(serve_http(listener, app, stopped.clone()));
                Some(store)
            }
            Role::Router => {
                let listener = bind(config.listen).await?;
                server.addr = Some(listener.local_addr()?);
                let gateway = Arc::new(GatewayRouter::new(RouterParts {
                    config: Arc::new(shard_config(&config, listener.local_addr()?)?),
                    tokens,
                    topology: topology.clone(),
                    local: None,
                    tickets: Some(Arc::new(LinkTickets::new(&config.token_secret()?))),
                }));
                gateway
                    .refresh()
                    .await
                    .context("reading the slot table from Redis")?;
                tasks.spawn(Arc::clone(&gateway).run(wait_for_stop(stopped.clone())));
                checks.push(Arc::new(RouterReady(gateway.clone())));
                let app = axum::Router::new()
                    .fallback(gateway_only)
                    .with_state(gateway.clone());
                tasks.spawn(serve_http(listener, app, stopped.clone()));
                server.gateway = Some(gateway);
                None
            }
            Role::Shard => {
                let store = open_store(&config).await?;
                let node_id = config.node_id()?;
                let link_listener = TcpListener::bind(config.link_listen)
                    .await
                    .with_context(|| format!("binding {}", config.link_listen))?;
                let advertise = config.advertise_addr.clone().unwrap_or_else(|| {
                    link_listener
                        .local_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                });
                let mut shard_config = shard_config(&config, config.listen)?;
                shard_config.identify_queue = IdentifyQueueHandle(Some(Arc::new(
                    RedisIdentifyQueue(IdentifyGate::new(redis.clone())),
                )));
                let shard_config = Arc::new(shard_config);
                let lease_ttl = Duration::from_millis(config.lease_ttl_ms);
                let node = ShardNode::start(
                    NodeConfig {
                        node: node_id,
                        advertise,
                        lease_ttl,
                        tick: (lease_ttl / 5).max(Duration::from_millis(200)),
                    },
                    shard_config.clone(),
                    store.clone(),
                    bus.clone(),
                    topology.clone(),
                    tokens.clone(),
                )
                .await
                .with_context(|| format!("joining the cluster as node {node_id}"))?;
                tracing::info!(node = node_id, slots = ?node.owned_slots(), "shard node joined");
                tasks.spawn(Arc::clone(&node).run(wait_for_stop(stopped.clone())));
                // A shard process never sends op 7 itself (routers do, to their clients): on
                // shutdown it gives its slots up, which closes their sessions resumably.
                let (never, shutdown) = watch::channel(false);
                server._link_shutdown = Some(never);
                let context = ConnectionContext {
                    router: node.clone(),
                    config: shard_config,
                    tokens,
                    shutdown,
                };
                tasks.spawn(serve_links(
                    link_listener,
                    node_id,
                    Arc::new(LinkTickets::new(&config.token_secret()?)),
                    context,
                    wait_for_stop(stopped.clone()),
                ));
                checks.push(Arc::new(NodeReady(node.clone())));
                server.node = Some(node);
                Some(store)
            }
            Role::Cluster { .. } => bail!("`concord cluster` is a command, not a server role"),
        };

        let metrics = telemetry::metrics_handle();
        let admin_app = admin::router(AdminState {
            metrics: metrics.clone(),
            store,
            checks,
            ready: ready.clone(),
        });
        let stopped = server.stop.subscribe();
        tasks.spawn(until_stopped(
            admin::run_metrics_upkeep(metrics),
            stopped.clone(),
        ));
        tasks.spawn(async move {
            let serve = axum::serve(admin_listener, admin_app)
                .with_graceful_shutdown(wait_for_stop(stopped));
            if let Err(error) = serve.await {
                tracing::error!(%error, "admin listener failed");
            }
        });
        server.tasks = tasks;
        ready.store(true, Ordering::Release);
        Ok(server)
    }

    /// Address of the public listener (api and router roles).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Address of the admin listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Drains: readiness off; a router sends op 7 and waits for its connections; a shard
    /// process gives its slots up; then every listener stops.
    pub async fn shutdown(mut self) {
        self.ready.store(false, Ordering::Release);
        if let Some(gateway) = &self.gateway {
            gateway.shutdown().await;
        }
        if let Some(node) = &self.node {
            node.drain().await;
        }
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(HTTP_DRAIN, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}

fn shard_config(config: &Config, listen: SocketAddr) -> anyhow::Result<ShardConfig> {
    let shard_config = ShardConfig {
        heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms),
        resume_gateway_url: config.gateway_url(listen),
        zlib_window_bits: config.zlib_window_bits,
        zstd_window_log: config.zstd_window_log,
        reconnect_grace: Duration::from_millis(config.drain_ms),
        max_concurrency: config.max_concurrency,
        ..ShardConfig::default()
    };
    shard_config
        .validate()
        .context("gateway shard configuration")?;
    Ok(shard_config)
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config
        .database_url
        .clone()
        .context("CONCORD_DATABASE_URL / --database-url is required by the cluster roles")?;
    concord_store_sql::connect(&url)
        .await
        .with_context(|| format!("opening database {}", concord_store_sql::redacted(&url)))
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

async fn renew_snowflake(lease: SnowflakeLease, node_id: u16, instance: String) {
    let mut tick = tokio::time::interval(SNOWFLAKE_RENEW);
    loop {
        tick.tick().await;
        match lease.renew(node_id, &instance, SNOWFLAKE_LEASE).await {
            Ok(true) => {}
            Ok(false) => {
                // Another process may mint with this id now: stopping is the only safe answer.
                tracing::error!(node_id, "snowflake node id lease lost; exiting");
                std::process::exit(3);
            }
            Err(error) => tracing::warn!(node_id, %error, "snowflake lease renewal failed"),
        }
    }
}

/// The API role serves REST only: a WebSocket upgrade belongs to a router.
async fn refuse_upgrades(req: Request, next: Next) -> Response {
    if wants_websocket(&req) {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "code": 0,
                "message": "the gateway is served by the routers, not the API",
            })),
        )
            .into_response();
    }
    next.run(req).await
}

/// The router role serves the gateway only.
async fn gateway_only(State(gateway): State<Arc<GatewayRouter>>, req: Request) -> Response {
    if wants_websocket(&req) {
        return concord_router::serve_upgrade(gateway, req).await;
    }
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"code": 0, "message": "404: Not Found"})),
    )
        .into_response()
}
