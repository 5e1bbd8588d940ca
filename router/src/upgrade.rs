//! The axum entry point: upgrade, parse the query, spawn the connection.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tracing::debug;

use crate::error::Error;
use crate::query::connect_params;
use crate::router::GatewayRouter;

/// Upgrades `req` (any path, any query) to a gateway connection served on its own task.
///
/// Only WebSocket upgrade requests should be routed here; others get 400. While the router
/// is shutting down, upgrades get 503.
pub async fn serve_upgrade(router: Arc<GatewayRouter>, mut req: Request) -> Response {
    if router.is_shutting_down() {
        return Error::ShuttingDown.into_response();
    }
    let params = connect_params(req.uri().query());
    let (response, upgrade) = match fastwebsockets::upgrade::upgrade(&mut req) {
        Ok(upgraded) => upgraded,
        Err(error) => return Error::from(error).into_response(),
    };
    let (context, guard) = router.connect();
    tokio::spawn(async move {
        let _guard = guard;
        match upgrade.await {
            Ok(ws) => concord_gateway_shard::serve(ws, params, context).await,
            Err(error) => debug!(%error, "websocket upgrade did not complete"),
        }
    });
    response.map(Body::new)
}
