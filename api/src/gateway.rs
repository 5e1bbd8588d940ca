//! Where clients find the WebSocket gateway.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::extract::AuthUser;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/gateway", get(get_gateway))
        .route("/gateway/bot", get(get_gateway_bot))
}

/// Identifies allowed per window. Concord does not limit identifies per day; the numbers keep
/// clients that refuse to start when `remaining` is below their shard count happy.
const SESSION_START_TOTAL: u32 = 1000;

#[derive(Debug, Serialize)]
struct Gateway {
    url: String,
}

#[derive(Debug, Serialize)]
struct GatewayBot {
    url: String,
    shards: u32,
    session_start_limit: SessionStartLimit,
}

#[derive(Debug, Serialize)]
struct SessionStartLimit {
    total: u32,
    remaining: u32,
    reset_after: u64,
    max_concurrency: u32,
}

async fn get_gateway(State(state): State<AppState>) -> Json<Gateway> {
    Json(Gateway {
        url: state.config.gateway_url.clone(),
    })
}

async fn get_gateway_bot(State(state): State<AppState>, _auth: AuthUser) -> Json<GatewayBot> {
    Json(GatewayBot {
        url: state.config.gateway_url.clone(),
        shards: state.config.shard_count.max(1),
        session_start_limit: SessionStartLimit {
            total: SESSION_START_TOTAL,
            remaining: SESSION_START_TOTAL,
            reset_after: 0,
            max_concurrency: state.config.max_concurrency.max(1),
        },
    })
}
