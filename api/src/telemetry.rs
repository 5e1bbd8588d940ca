//! Per-request span and metrics, labelled by route template (never by raw ids).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;
use tracing::Span;

use crate::http::RouteInfo;

/// Span for one request, carrying the matched route template.
pub(crate) fn span<B>(req: &http::Request<B>) -> Span {
    let route = RouteInfo::of(req);
    tracing::info_span!("request", method = %req.method(), route = route.template())
}

/// Middleware: `concord_api_requests_total{route,method,status}` and
/// `concord_api_request_duration_seconds{route,method}`.
pub(crate) async fn record(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = RouteInfo::of(&req).template().to_owned();
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "concord_api_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status
    )
    .increment(1);
    metrics::histogram!("concord_api_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Method label from a fixed set: clients may send any extension method, and each one must not
/// mint a new series.
fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
