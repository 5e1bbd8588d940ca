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

/// What the admin endpoints look at.
#[derive(Clone)]
pub struct AdminState {
    /// Metrics renderer.
    pub metrics: PrometheusHandle,
    /// Storage, pinged for readiness.
    pub store: Arc<dyn Store>,
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
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}
