//! The admin listener: Prometheus `/metrics`, liveness `/healthz`, readiness `/readyz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use concord_core::repo::Store;
use metrics_exporter_prometheus::PrometheusHandle;

/// A dependency `/readyz` checks besides the database (Redis, the slot table).
#[async_trait::async_trait]
pub trait Readiness: Send + Sync {
    /// `Err` with a short, secret-free reason when the process cannot serve.
    async fn check(&self) -> Result<(), String>;
}

/// What the admin endpoints look at.
#[derive(Clone)]
pub struct AdminState {
    /// Metrics renderer.
    pub metrics: PrometheusHandle,
    /// Storage, pinged for readiness (a router has none).
    pub store: Option<Arc<dyn Store>>,
    /// Further readiness checks.
    pub checks: Vec<Arc<dyn Readiness>>,
    /// False until the public listener serves and after shutdown begins.
    pub ready: Arc<AtomicBool>,
}

/// Routes of the admin listener.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Keeps histogram buckets bounded; the exporter needs a periodic upkeep call.
pub async fn run_metrics_upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

async fn metrics(State(state): State<AdminState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if !state.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting or draining").into_response();
    }
    if let Some(store) = &state.store {
        if let Err(error) = store.ping().await {
            tracing::warn!(%error, "readiness check failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
        }
    }
    for check in &state.checks {
        if let Err(why) = check.check().await {
            tracing::warn!(reason = %why, "readiness check failed");
            return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
        }
    }
    (StatusCode::OK, "ready").into_response()
}
