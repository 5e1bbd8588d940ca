//! Router assembly: every resource's routes under `/api/v10` and `/api/v9`, Discord's answers
//! for unknown routes, wrong methods and retired versions, and the tracing, metrics and
//! rate-limit layers around all of it.

use axum::extract::{MatchedPath, Request};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Router;
use concord_core::error_code;
use tower_http::trace::TraceLayer;

use crate::error::Error;
use crate::state::AppState;
use crate::{
    applications, auth, channels, gateway, guilds, invites, messages, ratelimit, reactions,
    telemetry, users,
};

/// API versions served, both by the same handlers.
const VERSIONS: [&str; 2] = ["/api/v10", "/api/v9"];

/// Template label for requests no route matched.
const UNMATCHED: &str = "unmatched";

/// The REST router with its state installed.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(applications::router())
        .merge(users::router())
        .merge(gateway::router())
        .merge(guilds::router())
        .merge(channels::router())
        .merge(messages::router())
        .merge(reactions::router())
        .merge(invites::router());
    let mut root = Router::new();
    for version in VERSIONS {
        root = root.nest(version, api.clone());
    }
    root.method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_writes_without_bus,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            ratelimit::limit,
        ))
        .layer(middleware::from_fn(telemetry::record))
        .layer(TraceLayer::new_for_http().make_span_with(telemetry::span))
        .with_state(state)
}

/// While the event bus is down, a write would commit an event nobody can be told of: it is
/// refused with 503 (Discord's body) before it reaches its handler. Reads go on.
async fn refuse_writes_without_bus(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: middleware::Next,
) -> Response {
    let read = matches!(
        *req.method(),
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    );
    if !read && !state.accepts_writes() {
        return Error::Cluster("event bus unavailable".to_owned()).into_response();
    }
    next.run(req).await
}

async fn method_not_allowed() -> Response {
    Error::from(error_code::METHOD_NOT_ALLOWED).into_response()
}

/// Unknown route: 400 / 50041 under a version we do not serve, else 404.
async fn not_found(req: Request) -> Response {
    let retired_version = req
        .uri()
        .path()
        .strip_prefix("/api/v")
        .map(|rest| rest.split('/').next().unwrap_or_default())
        .is_some_and(|v| {
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && v != "9" && v != "10"
        });
    let row = if retired_version {
        error_code::INVALID_API_VERSION
    } else {
        error_code::NOT_FOUND
    };
    Error::from(row).into_response()
}

/// The matched route of a request, without its version prefix, and its top-level resource id.
#[derive(Debug, Clone)]
pub(crate) struct RouteInfo<'a> {
    template: Option<&'a str>,
    path: &'a str,
}

impl<'a> RouteInfo<'a> {
    pub(crate) fn of<B>(req: &'a http::Request<B>) -> Self {
        let template = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| strip_version(m.as_str()));
        Self {
            template,
            path: strip_version(req.uri().path()),
        }
    }

    /// Route template such as `/channels/{channel_id}/messages`; a fixed label when unmatched.
    pub(crate) fn template(&self) -> &'a str {
        self.template.unwrap_or(UNMATCHED)
    }

    /// Id of the channel, guild or webhook the route is under (Discord's "major parameter").
    pub(crate) fn major_id(&self) -> Option<u64> {
        let template = self.template?;
        template
            .split('/')
            .zip(self.path.split('/'))
            .find(|(t, _)| matches!(*t, "{channel_id}" | "{guild_id}" | "{webhook_id}"))
            .and_then(|(_, value)| value.parse().ok())
    }
}

fn strip_version(path: &str) -> &str {
    VERSIONS
        .iter()
        .find_map(|v| path.strip_prefix(v))
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .unwrap_or(path)
}
