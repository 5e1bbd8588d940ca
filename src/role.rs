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
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use concord_api::config::{ApiConfig, RateLimitConfig};
use concord_api::invalidation::{Invalidation, InvalidationSink};
use concord_api::AppState;
use concord_bus_redis::{IdentifyGate, RateWindow, Redis, RedisBus, RedisTopology, SnowflakeLease};
use concord_core::bus::EventBus;
use concord_core::repo::Store;
use concord_core::snowflake::SnowflakeGenerator;
use concord_core::token::TokenKey;
use concord_core::topology::Topology;
use concord_gateway_shard::identify_queue::IDENTIFY_INTERVAL;
use concord_gateway_shard::{
    serve_links, ConnectionContext, IdentifyQueue, IdentifyQueueHandle, LinkTickets, NodeConfig,
    ShardConfig, ShardNode,
};
use concord_router::{GatewayRouter, RouterParts};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin::{self, AdminState, Readiness};
use crate::config::{ClusterAction, Config, Role};
use crate::telemetry;

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

/// Runs `concord cluster init|status`, printing to standard output.
///
/// # Errors
/// When Redis cannot be reached.
pub async fn cluster_command(config: &Config, action: ClusterAction) -> anyhow::Result<()> {
    let (redis, topology, _) = connect_redis(config).await?;
    match action {
        ClusterAction::Init => {
            let cluster = RedisTopology::cluster_config(&redis)
                .await?
                .context("cluster settings missing after init")?;
            println!(
                "cluster at {}: {} slots (created at {} ms)",
                redis.redacted_url(),
                cluster.slots,
                cluster.created_ms
            );
        }
        ClusterAction::Status => {
            let table = topology.table().await?;
            println!("cluster at {}", redis.redacted_url());
            println!("members ({}):", table.members.len());
            for member in &table.members {
                let held = table
                    .owners
                    .iter()
                    .flatten()
                    .filter(|l| l.node == member.node);
                println!(
                    "  node {:>3}  {:?}  {}  slots held: {}",
                    member.node,
                    member.state,
                    member.advertise,
                    held.count()
                );
            }
            let logs = log_states(&redis, &table).await;
            println!("slots ({}):", table.owners.len());
            for (slot, owner) in table.owners.iter().enumerate() {
                let owner = owner.map_or_else(
                    || "unowned".to_owned(),
                    |l| format!("node {} (epoch {})", l.node, l.epoch),
                );
                let log = logs.get(slot).cloned().unwrap_or_default();
                let lag = match log.lag_ms {
                    Some(ms) => format!("lag {ms} ms"),
                    None => "lag unknown".to_owned(),
                };
                println!(
                    "  slot {slot:>4}  {owner}  log length {}  {lag}",
                    log.length
                );
            }
        }
    }
    Ok(())
}

/// A slot log as `cluster status` shows it.
#[derive(Debug, Clone, Default)]
struct LogState {
    /// Entries kept.
    length: u64,
    /// How far behind the newest entry the owner's last reported read is, in milliseconds of
    /// entry time (stream ids start with their append time); `None` without a report.
    lag_ms: Option<u64>,
}

/// Each slot log's length and its owner's lag.
async fn log_states(redis: &Redis, table: &concord_core::topology::SlotTable) -> Vec<LogState> {
    let keys = concord_bus_redis::Keys::new(redis.prefix(), table.owners.len() as u16);
    let mut states = Vec::with_capacity(table.owners.len());
    for slot in 0..table.owners.len() as u16 {
        let length: u64 = redis
            .query(redis::cmd("XLEN").arg(keys.log(slot)))
            .await
            .unwrap_or_default();
        let newest: redis::Value = redis
            .query(
                redis::cmd("XREVRANGE")
                    .arg(keys.log(slot))
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await
            .unwrap_or(redis::Value::Nil);
        let tail = newest_id(&newest);
        let applied: Option<String> = redis
            .query(redis::cmd("GET").arg(keys.applied(slot)))
            .await
            .unwrap_or_default();
        let ms = |id: &str| id.split('-').next().and_then(|t| t.parse::<u64>().ok());
        let lag_ms = match (tail, applied) {
            (None, Some(_)) => Some(0),
            (Some(tail), Some(read)) => match (ms(&tail), ms(&read)) {
                (Some(tail), Some(read)) => Some(tail.saturating_sub(read)),
                _ => None,
            },
            _ => None,
        };
        states.push(LogState { length, lag_ms });
    }
    states
}

/// The id of the entry in an `XREVRANGE … COUNT 1` reply.
fn newest_id(reply: &redis::Value) -> Option<String> {
    let redis::Value::Array(entries) = reply else {
        return None;
    };
    let redis::Value::Array(entry) = entries.first()? else {
        return None;
    };
    match entry.first()? {
        redis::Value::BulkString(id) => String::from_utf8(id.clone()).ok(),
        redis::Value::SimpleString(id) => Some(id.clone()),
        _ => None,
    }
}

/// Readiness of a process that needs Redis.
struct RedisReady(Redis);

#[async_trait::async_trait]
impl Readiness for RedisReady {
    async fn check(&self) -> Result<(), String> {
        self.0
            .query::<String>(&redis::cmd("PING"))
            .await
            .map(|_| ())
            .map_err(|_| "redis unavailable".to_owned())
    }
}

/// Readiness of a router: it has read the slot table recently.
struct RouterReady(Arc<GatewayRouter>);

#[async_trait::async_trait]
impl Readiness for RouterReady {
    async fn check(&self) -> Result<(), String> {
        if self.0.is_ready() {
            Ok(())
        } else {
            Err("slot table stale or draining".to_owned())
        }
    }
}

/// Readiness of a shard process: it is a ready member.
struct NodeReady(Arc<ShardNode>);

#[async_trait::async_trait]
impl Readiness for NodeReady {
    async fn check(&self) -> Result<(), String> {
        if self.0.is_ready() {
            Ok(())
        } else {
            Err("shard node draining".to_owned())
        }
    }
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
                // Sessions stay resumable when their link drops; a shard process's own
                // shutdown hands its slots back instead of sending op 7 (routers do that).
                let (_never, shutdown) = watch::channel(false);
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
                // Keeps the watch sender alive as long as the links run.
                tasks.spawn(async move {
                    let _keep = _never;
                    wait_for_stop(stopped.clone()).await;
                });
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

async fn serve_http(listener: TcpListener, app: axum::Router, stopped: watch::Receiver<bool>) {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(wait_for_stop(stopped));
    if let Err(error) = serve.await {
        tracing::error!(%error, "public listener failed");
    }
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

/// How often an API process checks that Redis takes writes.
const BUS_PROBE: Duration = Duration::from_millis(250);

/// Keeps the API's write gate in step with Redis: closed while a PING fails or times out.
async fn probe_bus(redis: Redis, state: AppState) {
    let mut tick = tokio::time::interval(BUS_PROBE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was = true;
    loop {
        tick.tick().await;
        let ping = tokio::time::timeout(
            Duration::from_secs(1),
            redis.query::<String>(&redis::cmd("PING")),
        )
        .await;
        let up = matches!(ping, Ok(Ok(_)));
        if up != was {
            if up {
                tracing::info!("redis reachable again; accepting writes");
            } else {
                tracing::error!("redis unreachable; refusing writes until it returns");
            }
            was = up;
        }
        state.set_bus_available(up);
    }
}

/// Identify buckets in Redis, shared by every shard process.
struct RedisIdentifyQueue(IdentifyGate);

#[async_trait::async_trait]
impl IdentifyQueue for RedisIdentifyQueue {
    async fn try_take(&self, app: u64, bucket: u32) -> Result<Option<Duration>, String> {
        self.0
            .try_take(app, bucket, IDENTIFY_INTERVAL)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Rate-limit windows in Redis, shared by every API process.
struct RedisWindows(RateWindow);

#[async_trait::async_trait]
impl concord_api::SharedWindows for RedisWindows {
    async fn hit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> Result<(u64, Duration), String> {
        self.0
            .hit(key, limit, window)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Queues this process's cache evictions for [`send_invalidations`].
struct NoticeSink(tokio::sync::mpsc::UnboundedSender<Invalidation>);

impl InvalidationSink for NoticeSink {
    fn send(&self, invalidation: &Invalidation) {
        let _ = self.0.send(invalidation.clone());
    }
}

/// Appends queued evictions to the notices stream, each prefixed with this process's origin.
async fn send_invalidations(
    bus: Arc<RedisBus>,
    origin: [u8; 16],
    mut outbox: tokio::sync::mpsc::UnboundedReceiver<Invalidation>,
) {
    while let Some(invalidation) = outbox.recv().await {
        let mut notice = origin.to_vec();
        notice.extend_from_slice(&serde_json::to_vec(&invalidation).unwrap_or_default());
        if let Err(error) = bus.append_notice(&notice).await {
            // The other processes' caches then expire by TTL (at most 10 s for tokens).
            metrics::counter!("concord_api_invalidation_errors_total").increment(1);
            tracing::warn!(%error, "cache invalidation not sent");
        }
    }
}

/// Applies other API processes' evictions to this process's caches.
async fn apply_invalidations(
    state: AppState,
    origin: [u8; 16],
    mut notices: concord_bus_redis::NoticeSubscription,
) {
    loop {
        let notice = notices.next().await;
        let Some((from, body)) = notice.split_first_chunk::<16>() else {
            continue;
        };
        if *from == origin {
            continue;
        }
        match serde_json::from_slice::<Invalidation>(body) {
            Ok(invalidation) => state.apply_invalidation(&invalidation),
            Err(error) => tracing::warn!(%error, "undecodable cache invalidation"),
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

fn wants_websocket(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

async fn until_stopped(
    task: impl std::future::Future<Output = ()>,
    stopped: watch::Receiver<bool>,
) {
    tokio::select! {
        () = task => {}
        () = wait_for_stop(stopped) => {}
    }
}
