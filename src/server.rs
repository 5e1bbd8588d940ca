//! Composition of the all-in-one server: the same router, shards and API the cluster mode runs as
//! separate processes, wired here to the in-process bus and one listener.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::serve::ListenerExt;
use concord_api::config::{ApiConfig, RateLimitConfig};
use concord_api::AppState;
use concord_bus_local::{LocalBus, LocalTopology};
use concord_core::bus::EventBus;
use concord_core::snowflake::SnowflakeGenerator;
use concord_core::token::TokenKey;
use concord_core::topology::Topology;
use concord_gateway_shard::{NodeConfig, ShardConfig, ShardNode};
use concord_router::{GatewayRouter, RouterParts};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::telemetry;

/// How long in-flight HTTP requests get to finish on shutdown.
const HTTP_DRAIN: Duration = Duration::from_secs(10);

/// A running server.
pub struct Server {
    addr: SocketAddr,
    admin_addr: SocketAddr,
    gateway: Arc<GatewayRouter>,
    ready: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Server {
    /// Opens the database (migrating it), binds both listeners and starts every component.
    ///
    /// # Errors
    /// When the configuration is invalid, the database cannot be opened or a port cannot be bound.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let database_url = config.database_url();
        let store = concord_store_sql::connect(&database_url)
            .await
            .with_context(|| {
                format!(
                    "opening database {}",
                    concord_store_sql::redacted(&database_url)
                )
            })?;
        let tokens = TokenKey::new(&config.token_secret()?);
        let ids = Arc::new(SnowflakeGenerator::new(
            config.snowflake_worker,
            config.snowflake_process,
        ));

        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let admin_listener = TcpListener::bind(config.admin_listen)
            .await
            .with_context(|| format!("binding {}", config.admin_listen))?;
        let addr = listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        let gateway_url = config.gateway_url(addr);

        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();

        // One node over the in-process topology holds every slot: the same membership and
        // slot code the cluster runs, with nobody to share the slots with.
        let bus_port: Arc<dyn EventBus> = LocalBus::new(config.shards);
        let topology: Arc<dyn Topology> = Arc::new(LocalTopology::new(config.shards));
        let shard_config = ShardConfig {
            heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms),
            resume_gateway_url: gateway_url.clone(),
            zlib_window_bits: config.zlib_window_bits,
            zstd_window_log: config.zstd_window_log,
            max_concurrency: config.max_concurrency,
            ..ShardConfig::default()
        };
        shard_config
            .validate()
            .context("gateway shard configuration")?;
        let shard_config = Arc::new(shard_config);
        let node = ShardNode::start(
            NodeConfig::local(),
            shard_config.clone(),
            store.clone(),
            bus_port.clone(),
            topology.clone(),
            tokens.clone(),
        )
        .await
        .context("starting the gateway shards")?;
        tasks.spawn(Arc::clone(&node).run(wait_for_stop(stopped.clone())));
        let gateway = Arc::new(GatewayRouter::new(RouterParts {
            config: shard_config,
            tokens: tokens.clone(),
            topology: topology.clone(),
            local: Some(node),
            tickets: None,
        }));

        let api_config = ApiConfig {
            privileged_intents_by_default: config.privileged_intents_default,
            rate_limits: RateLimitConfig {
                route_limit: config.rate_limit_route,
                route_window: Duration::from_millis(config.rate_limit_route_window_ms),
                global_per_second: config.rate_limit_global,
            },
            max_concurrency: config.max_concurrency,
            ..ApiConfig::new(gateway_url)
        };
        let state = AppState::new(store.clone(), bus_port, topology, tokens, ids, api_config)
            .context("api configuration")?;
        tasks.spawn(until_stopped(state.clone().run_backlog(), stopped.clone()));
        let app = concord_api::router(state).layer(middleware::from_fn_with_state(
            Arc::clone(&gateway),
            route_upgrades_to_gateway,
        ));

        let ready = Arc::new(AtomicBool::new(false));
        let metrics = telemetry::metrics_handle();
        tasks.spawn(until_stopped(
            admin::run_metrics_upkeep(metrics.clone()),
            stopped.clone(),
        ));
        let admin_app = admin::router(AdminState {
            metrics,
            store: Some(store),
            checks: Vec::new(),
            ready: Arc::clone(&ready),
        });
        let admin_stop = wait_for_stop(stopped.clone());
        tasks.spawn(async move {
            if let Err(error) = axum::serve(admin_listener, admin_app)
                .with_graceful_shutdown(admin_stop)
                .await
            {
                tracing::error!(%error, "admin listener failed");
            }
        });
        tasks.spawn(serve_http(listener, app, stopped.clone()));
        ready.store(true, Ordering::Release);
        Ok(Self {
            addr,
            admin_addr,
            gateway,
            ready,
            stop,
            tasks,
        })
    }

    /// Address of the public listener.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Address of the admin listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Drains: readiness off, gateway sessions told to reconnect (op 7) and closed, listeners
    /// stopped, in-flight requests given [`HTTP_DRAIN`] to finish.
    pub async fn shutdown(mut self) {
        self.ready.store(false, Ordering::Release);
        self.gateway.shutdown().await;
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(HTTP_DRAIN, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown grace period over; aborting remaining tasks");
            self.tasks.abort_all();
        }
    }
}

/// Any request asking for a WebSocket upgrade, on any path, is a gateway connection.
async fn route_upgrades_to_gateway(
    State(gateway): State<Arc<GatewayRouter>>,
    req: Request,
    next: Next,
) -> Response {
    if wants_websocket(&req) {
        concord_router::serve_upgrade(gateway, req).await
    } else {
        next.run(req).await
    }
}

/// Serves `app` on the public listener until the stop signal, with each peer's address
/// available to handlers (rate limits by IP).
pub(crate) async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    stopped: watch::Receiver<bool>,
) {
    // Gateway frames are written as they are ready; Nagle's algorithm would hold a frame that
    // follows another until the client's delayed ACK (~40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
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

/// Whether `req` asks for a WebSocket upgrade (on any path: that is a gateway connection).
pub(crate) fn wants_websocket(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Resolves once the stop signal is `true`.
pub(crate) async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// Runs `task` until the stop signal.
pub(crate) async fn until_stopped(
    task: impl std::future::Future<Output = ()>,
    stopped: watch::Receiver<bool>,
) {
    tokio::select! {
        () = task => {}
        () = wait_for_stop(stopped) => {}
    }
}
