//! REST client for `/api/v10`: honours rate limits as a Discord client does (waits when a
//! bucket's `X-RateLimit-Remaining` reaches 0, sleeps `retry_after` on a 429 and retries), and
//! classifies failures by HTTP status, Discord error code (with the fields it names), or
//! transport error.

mod error_body;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Method;
use serde_json::Value;
use tokio::time::{sleep_until, Instant};

use crate::target::Target;

/// 429s honoured for one call before giving up and returning the last one.
const MAX_RATE_LIMIT_RETRIES: u32 = 20;
/// Longest a single request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One request to make.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// HTTP method.
    pub method: Method,
    /// Concrete path under `/api/v10`, e.g. `/channels/1/messages`.
    pub path: String,
    /// Route template, e.g. `/channels/{channel_id}/messages`, for messages and rate-limit keys.
    pub route: &'static str,
    /// `Authorization` value (bare user token, or `Bot …`).
    pub auth: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A call of `method` on `path` (template `route`).
    pub fn new(method: Method, route: &'static str, path: String, auth: Option<&'a str>) -> Self {
        Self {
            method,
            path,
            route,
            auth,
        }
    }

    fn major(&self) -> &str {
        let mut segments = self.path.trim_start_matches('/').split('/');
        match segments.next() {
            Some("channels" | "guilds" | "webhooks") => segments.next().unwrap_or(""),
            _ => "",
        }
    }
}

/// What the server answered.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status of the final attempt.
    pub status: u16,
    /// JSON body (`Null` when empty or not JSON).
    pub body: Value,
    /// Time of the final attempt, request to full body.
    pub latency: Duration,
    /// 429s received (and honoured) on the way.
    pub rate_limited: u32,
    /// Time spent waiting for rate limits, before and between attempts.
    pub waited: Duration,
}

impl Reply {
    /// Discord error code of an error body.
    pub fn discord_code(&self) -> Option<i64> {
        self.body.get("code").and_then(Value::as_i64)
    }

    /// The error body's message, or the body itself when it has none.
    pub fn message(&self) -> String {
        match self.body.get("message").and_then(Value::as_str) {
            Some(message) => message.to_owned(),
            None if self.body.is_null() => String::new(),
            None => self.body.to_string(),
        }
    }

    /// `path: CODE` for every field the error body's `errors` object names.
    pub fn field_errors(&self) -> Vec<String> {
        self.body
            .get("errors")
            .map(error_body::field_errors)
            .unwrap_or_default()
    }

    /// One line for a refused request: status, Discord code, message and fields, e.g.
    /// `HTTP 400, Discord code 50035: Invalid Form Body (content: BASE_TYPE_REQUIRED)`.
    pub fn summary(&self) -> String {
        let mut line = format!("HTTP {}", self.status);
        if let Some(code) = self.discord_code() {
            line.push_str(&format!(", Discord code {code}"));
        }
        let message = self.message();
        if !message.is_empty() {
            line.push_str(&format!(": {message}"));
        }
        let fields = self.field_errors();
        if !fields.is_empty() {
            line.push_str(&format!(" ({})", fields.join("; ")));
        }
        line
    }
}

/// A request that got no HTTP answer.
#[derive(Debug)]
pub struct TransportError {
    /// `connect`, `timeout`, `body` or `io`.
    pub kind: &'static str,
    /// The client's error.
    pub source: reqwest::Error,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client's error follows as the source.
        write!(f, "{} error", self.kind)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// An answer other than the one expected.
#[derive(Debug)]
pub struct ApiError {
    /// Method called.
    pub method: Method,
    /// Route template called.
    pub route: &'static str,
    /// Status received.
    pub status: u16,
    /// Discord error code, if the body had one.
    pub code: Option<i64>,
    /// Error message from the body, or the body itself.
    pub message: String,
    /// `path: CODE` for every field the body's `errors` object names.
    pub fields: Vec<String>,
}

impl ApiError {
    /// Whether the server lacks the route: 404 or 405 without a Discord error code (a missing
    /// resource on an existing route has one, e.g. 10003 Unknown Channel).
    pub fn missing_route(&self) -> bool {
        matches!(self.status, 404 | 405) && self.code.unwrap_or(0) == 0
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.missing_route() {
            write!(
                f,
                "the server does not implement {} /api/v10{} (HTTP {}); the bench needs this route",
                self.method, self.route, self.status
            )?;
            if self.route == "/auth/register" {
                write!(
                    f,
                    " (without it, make the accounts by hand and use `bench fixture import`)"
                )?;
            }
            return Ok(());
        }
        write!(
            f,
            "{} /api/v10{}: HTTP {}",
            self.method, self.route, self.status
        )?;
        if let Some(code) = self.code {
            write!(f, ", Discord code {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if !self.fields.is_empty() {
            write!(f, " ({})", self.fields.join("; "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    remaining: u32,
    limit: u32,
    reset_at: Instant,
}

#[derive(Debug, Default)]
struct Limits {
    /// By (token, method + route + major parameter).
    buckets: HashMap<(u64, String), Bucket>,
    /// Per token: no request before this instant (a global 429).
    global: HashMap<u64, Instant>,
}

/// The REST client, shared by every task of a process.
#[derive(Debug)]
pub struct Rest {
    http: reqwest::Client,
    api: String,
    limits: Mutex<Limits>,
}

impl Rest {
    /// A client for `target`, keeping up to `pool` idle connections.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(target: &Target, pool: usize, user_agent: Option<&str>) -> anyhow::Result<Self> {
        let mut http = reqwest::Client::builder()
            // Proxies from the environment would send traffic somewhere else than the target.
            .no_proxy()
            .pool_max_idle_per_host(pool)
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true);
        if let Some(agent) = user_agent {
            http = http.user_agent(agent);
        }
        let http = http.build().context("building the HTTP client")?;
        Ok(Self {
            http,
            api: target.api(),
            limits: Mutex::new(Limits::default()),
        })
    }

    /// Sends `call`, with the JSON `body` built afresh for each attempt (so a timestamp in it
    /// is taken after any rate-limit wait), honouring rate limits.
    ///
    /// # Errors
    /// When no HTTP answer came back.
    pub async fn send(
        &self,
        call: &Call<'_>,
        body: Option<&(dyn Fn() -> Value + Sync)>,
    ) -> Result<Reply, TransportError> {
        let token = call.auth.map_or(0, |auth| {
            let mut h = DefaultHasher::new();
            auth.hash(&mut h);
            h.finish()
        });
        let key = (
            token,
            format!("{} {} {}", call.method, call.route, call.major()),
        );
        let mut waited = Duration::ZERO;
        let mut rate_limited = 0;
        loop {
            waited += self.acquire(&key).await;
            let mut request = self
                .http
                .request(call.method.clone(), format!("{}{}", self.api, call.path));
            if let Some(auth) = call.auth {
                request = request.header("Authorization", auth);
            }
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(&body()).unwrap_or_default());
            }
            let started = Instant::now();
            let response = request.send().await.map_err(transport)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(transport)?;
            let latency = started.elapsed();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let now = Instant::now();
            if status == 429 && rate_limited < MAX_RATE_LIMIT_RETRIES {
                rate_limited += 1;
                self.note_429(&key, &headers, &body, now);
                continue;
            }
            self.note_headers(&key, &headers, now);
            return Ok(Reply {
                status,
                body,
                latency,
                rate_limited,
                waited,
            });
        }
    }

    /// Sends `call` and returns the body of a 2xx answer.
    ///
    /// # Errors
    /// An [`ApiError`] for another status (naming a missing route as such), or a transport
    /// error.
    pub async fn expect_success(
        &self,
        call: &Call<'_>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let make = body.map(|b| move || b.clone());
        let reply = self
            .send(
                call,
                make.as_ref().map(|f| f as &(dyn Fn() -> Value + Sync)),
            )
            .await
            .with_context(|| format!("{} {}{}", call.method, self.api, call.path))?;
        if (200..300).contains(&reply.status) {
            return Ok(reply.body);
        }
        Err(ApiError {
            method: call.method.clone(),
            route: call.route,
            status: reply.status,
            code: reply.discord_code(),
            message: reply.message(),
            fields: reply.field_errors(),
        }
        .into())
    }

    /// Waits until the token and bucket may send, reserving one request of the bucket.
    async fn acquire(&self, key: &(u64, String)) -> Duration {
        let mut waited = Duration::ZERO;
        loop {
            let until = {
                let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                match limits.global.get(&key.0) {
                    Some(until) if *until > now => Some(*until),
                    _ => match limits.buckets.get_mut(key) {
                        Some(bucket) if bucket.reset_at <= now => {
                            bucket.remaining = bucket.limit.saturating_sub(1);
                            bucket.reset_at = now + Duration::from_secs(1);
                            None
                        }
                        Some(bucket) if bucket.remaining == 0 => Some(bucket.reset_at),
                        Some(bucket) => {
                            bucket.remaining -= 1;
                            None
                        }
                        None => None,
                    },
                }
            };
            match until {
                Some(until) => {
                    let start = Instant::now();
                    sleep_until(until).await;
                    waited += start.elapsed();
                }
                None => return waited,
            }
        }
    }

    fn note_headers(&self, key: &(u64, String), headers: &HeaderMap, now: Instant) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<f64>().ok())
        };
        let (Some(remaining), Some(reset_after)) = (
            number("x-ratelimit-remaining"),
            number("x-ratelimit-reset-after"),
        ) else {
            return;
        };
        let limit = number("x-ratelimit-limit").unwrap_or(remaining + 1.0);
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        limits.buckets.insert(
            key.clone(),
            Bucket {
                remaining: remaining.max(0.0) as u32,
                limit: limit.max(1.0) as u32,
                reset_at: now + seconds(reset_after),
            },
        );
    }

    fn note_429(&self, key: &(u64, String), headers: &HeaderMap, body: &Value, now: Instant) {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let retry_after = body
            .get("retry_after")
            .and_then(Value::as_f64)
            .or_else(|| header("retry-after").and_then(|v| v.parse().ok()))
            .unwrap_or(1.0);
        let global = body.get("global").and_then(Value::as_bool) == Some(true)
            || header("x-ratelimit-global") == Some("true");
        let until = now + seconds(retry_after);
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        if global {
            limits.global.insert(key.0, until);
        } else {
            let bucket = limits.buckets.entry(key.clone()).or_insert(Bucket {
                remaining: 0,
                limit: 1,
                reset_at: until,
            });
            bucket.remaining = 0;
            bucket.reset_at = until;
        }
    }
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.clamp(0.0, 3600.0)).unwrap_or(Duration::ZERO)
}

fn transport(source: reqwest::Error) -> TransportError {
    let kind = if source.is_connect() {
        "connect"
    } else if source.is_timeout() {
        "timeout"
    } else if source.is_body() || source.is_decode() {
        "body"
    } else {
        "io"
    };
    TransportError { kind, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_routes_are_told_apart_from_missing_resources() {
        let err = |status, code| ApiError {
            method: Method::POST,
            route: "/auth/register",
            status,
            code,
            message: String::new(),
            fields: Vec::new(),
        };
        assert!(err(404, None).missing_route());
        assert!(err(404, Some(0)).missing_route());
        assert!(err(405, None).missing_route());
        assert!(!err(404, Some(10003)).missing_route());
        assert!(!err(400, None).missing_route());
        assert!(err(404, None)
            .to_string()
            .contains("does not implement POST /api/v10/auth/register"));
        assert!(err(404, None).to_string().contains("bench fixture import"));
        let refused = ApiError {
            message: "Invalid Form Body".to_owned(),
            fields: vec!["username: BASE_TYPE_REQUIRED".to_owned()],
            ..err(400, Some(50035))
        };
        assert_eq!(
            refused.to_string(),
            "POST /api/v10/auth/register: HTTP 400, Discord code 50035: Invalid Form Body \
             (username: BASE_TYPE_REQUIRED)"
        );
    }

    /// A server whose first answer is a 429 and whose later ones empty the bucket.
    async fn limited_server() -> Target {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Arc;

        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::post;
        use axum::{Json, Router};

        let seen = Arc::new(AtomicU32::new(0));
        let app = Router::new().route(
            "/api/v10/channels/{id}/messages",
            post(move || {
                let seen = seen.clone();
                async move {
                    let mut headers = HeaderMap::new();
                    if seen.fetch_add(1, Ordering::Relaxed) == 0 {
                        let body = serde_json::json!({"message": "slow down", "retry_after": 0.2, "global": false, "code": 0});
                        return (StatusCode::TOO_MANY_REQUESTS, headers, Json(body));
                    }
                    headers.insert("x-ratelimit-limit", "1".parse().unwrap());
                    headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
                    headers.insert("x-ratelimit-reset-after", "0.3".parse().unwrap());
                    (StatusCode::OK, headers, Json(serde_json::json!({"id": "1"})))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Target::resolve(&format!("http://{addr}")).await.unwrap()
    }

    #[tokio::test]
    async fn honours_429s_and_empty_buckets() {
        let rest = Rest::new(&limited_server().await, 4, None).unwrap();
        let call = |channel: &str| {
            Call::new(
                Method::POST,
                "/channels/{channel_id}/messages",
                format!("/channels/{channel}/messages"),
                Some("token"),
            )
        };
        let body = || serde_json::json!({"content": "x"});
        let first = rest.send(&call("1"), Some(&body)).await.unwrap();
        assert_eq!((first.status, first.rate_limited), (200, 1));
        assert!(
            first.waited >= Duration::from_millis(190),
            "{:?}",
            first.waited
        );
        // Remaining 0: the next request on the bucket waits for the reset.
        let second = rest.send(&call("1"), Some(&body)).await.unwrap();
        assert_eq!((second.status, second.rate_limited), (200, 0));
        assert!(
            second.waited >= Duration::from_millis(250),
            "{:?}",
            second.waited
        );
        // Another channel is another bucket.
        let other = rest.send(&call("2"), Some(&body)).await.unwrap();
        assert_eq!(other.waited, Duration::ZERO);
        assert!(rest.expect_success(&call("3"), None).await.is_ok());
    }

    #[test]
    fn buckets_are_keyed_by_major_parameter() {
        let a = Call::new(
            Method::POST,
            "/channels/{id}/messages",
            "/channels/1/messages".to_owned(),
            None,
        );
        assert_eq!(a.major(), "1");
        let b = Call::new(
            Method::POST,
            "/auth/register",
            "/auth/register".to_owned(),
            None,
        );
        assert_eq!(b.major(), "");
    }
}
