//! Why a request could not become a gateway connection, mapped to HTTP in one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Result alias with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A request that cannot be upgraded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Missing or bad WebSocket handshake headers.
    #[error("websocket upgrade: {0}")]
    Upgrade(#[from] fastwebsockets::WebSocketError),
    /// The gateway is draining.
    #[error("gateway shutting down")]
    ShuttingDown,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match self {
            Self::Upgrade(_) => StatusCode::BAD_REQUEST,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, self.to_string()).into_response()
    }
}
