//! HTTP rate limiting with Discord's headers.
//!
//! Two fixed windows guard each request: a global one per caller (user id from a correctly
//! signed token, else client IP) and a route bucket per (caller, method, route template,
//! top-level resource id). Every response carries the bucket's `X-RateLimit-*` headers; a
//! rejected request gets the full 429 contract client libraries rely on.
//!
//! The windows are counted in this process, or, once a [`SharedWindows`] backend is installed
//! (cluster mode: Redis), in that backend, so that A API processes do not multiply a bucket by
//! A. When the backend fails, the request is counted locally instead of being refused.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use concord_core::id::UserId;
use concord_core::token;
use dashmap::DashMap;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, RETRY_AFTER, VIA};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::config::RateLimitConfig;
use crate::error::Error;
use crate::http::RouteInfo;
use crate::state::AppState;

/// Requests between sweeps of expired windows.
const SWEEP_EVERY: u64 = 4096;

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const RESET_AFTER: HeaderName = HeaderName::from_static("x-ratelimit-reset-after");
const BUCKET: HeaderName = HeaderName::from_static("x-ratelimit-bucket");
const SCOPE: HeaderName = HeaderName::from_static("x-ratelimit-scope");
const GLOBAL: HeaderName = HeaderName::from_static("x-ratelimit-global");

/// Who a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Caller {
    /// A user or bot, from a token whose signature checks out.
    User(UserId),
    /// An unauthenticated client.
    Ip(IpAddr),
    /// No token and no peer address (in-process calls).
    Anonymous,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RouteKey {
    caller: Caller,
    bucket: u64,
    major: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    fn current(self, now: Instant, length: Duration) -> Self {
        if now >= self.started + length {
            Self {
                started: now,
                count: 0,
            }
        } else {
            self
        }
    }
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    /// Route bucket size.
    pub(crate) limit: u32,
    /// Requests left in the route bucket.
    pub(crate) remaining: u32,
    /// Time until the route bucket resets.
    pub(crate) reset_after: Duration,
    /// Opaque bucket name.
    pub(crate) bucket: String,
    /// Why the request was refused, if it was.
    pub(crate) refused: Option<Refusal>,
}

/// A refused request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Refusal {
    /// Seconds to wait.
    pub(crate) retry_after: Duration,
    /// The per-caller global limit (not the route bucket) was hit.
    pub(crate) global: bool,
}

/// Fixed windows counted outside the process, shared by every API process.
#[async_trait::async_trait]
pub trait SharedWindows: Send + Sync {
    /// Counts one hit on `key`, whose window of `window` starts at its first hit. Returns the
    /// hits in the window including this one (allowed while at most `limit`) and the time until
    /// the window resets.
    ///
    /// # Errors
    /// A short description of a backend failure.
    async fn hit(&self, key: &str, limit: u64, window: Duration)
        -> Result<(u64, Duration), String>;
}

/// Window counters, evicted once expired.
pub(crate) struct RateLimiter {
    config: RateLimitConfig,
    routes: DashMap<RouteKey, Window>,
    global: DashMap<Caller, Window>,
    seen: AtomicU64,
    shared: std::sync::OnceLock<std::sync::Arc<dyn SharedWindows>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.config)
            .field("shared", &self.shared.get().is_some())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        Self {
            config,
            routes: DashMap::new(),
            global: DashMap::new(),
            seen: AtomicU64::new(0),
            shared: std::sync::OnceLock::new(),
        }
    }

    /// Counts windows in `shared` from now on; later calls are ignored.
    pub(crate) fn share(&self, shared: std::sync::Arc<dyn SharedWindows>) {
        let _ = self.shared.set(shared);
    }

    /// Like [`RateLimiter::check`], in the shared backend when one is installed.
    pub(crate) async fn check_shared(
        &self,
        caller: Caller,
        method: &str,
        template: &str,
        major: Option<u64>,
    ) -> Decision {
        let Some(shared) = self.shared.get() else {
            return self.check(caller, method, template, major);
        };
        let (bucket_hash, bucket) = bucket_of(method, template);
        let route_limit = self.config.route_limit.max(1);
        let route_window = self.config.route_window.max(Duration::from_millis(1));
        let global_limit = self.config.global_per_second.max(1);
        let who = match caller {
            Caller::User(id) => format!("u{id}"),
            Caller::Ip(ip) => format!("i{ip}"),
            Caller::Anonymous => "a".to_owned(),
        };
        let global_key = format!("g:{who}");
        let route_key = format!("r:{who}:{bucket_hash:x}:{}", major.unwrap_or(0));
        let (global, route) = tokio::join!(
            shared.hit(&global_key, u64::from(global_limit), Duration::from_secs(1)),
            shared.hit(&route_key, u64::from(route_limit), route_window),
        );
        let (Ok((global_used, global_reset)), Ok((route_used, route_reset))) = (global, route)
        else {
            metrics::counter!("concord_api_shared_rate_limit_errors_total").increment(1);
            return self.check(caller, method, template, major);
        };
        let refused = if global_used > u64::from(global_limit) {
            Some(Refusal {
                retry_after: global_reset,
                global: true,
            })
        } else if route_used > u64::from(route_limit) {
            Some(Refusal {
                retry_after: route_reset,
                global: false,
            })
        } else {
            None
        };
        let used = u32::try_from(route_used.min(u64::from(route_limit))).unwrap_or(route_limit);
        Decision {
            limit: route_limit,
            remaining: route_limit - used,
            reset_after: route_reset,
            bucket,
            refused,
        }
    }

    /// Counts one request of `caller` on the bucket `(method, template, major)`.
    pub(crate) fn check(
        &self,
        caller: Caller,
        method: &str,
        template: &str,
        major: Option<u64>,
    ) -> Decision {
        let now = Instant::now();
        if self.seen.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(now);
        }
        let (bucket_hash, bucket) = bucket_of(method, template);
        let route_limit = self.config.route_limit.max(1);
        let route_window = self.config.route_window.max(Duration::from_millis(1));

        let global_refusal = {
            let second = Duration::from_secs(1);
            let mut entry = self.global.entry(caller).or_insert(Window {
                started: now,
                count: 0,
            });
            let window = entry.current(now, second);
            if window.count >= self.config.global_per_second.max(1) {
                *entry = window;
                Some(Refusal {
                    retry_after: window.started + second - now,
                    global: true,
                })
            } else {
                *entry = Window {
                    count: window.count + 1,
                    ..window
                };
                None
            }
        };

        let key = RouteKey {
            caller,
            bucket: bucket_hash,
            major,
        };
        let mut entry = self.routes.entry(key).or_insert(Window {
            started: now,
            count: 0,
        });
        let mut window = entry.current(now, route_window);
        let reset_after = window.started + route_window - now;
        let refused = match global_refusal {
            Some(refusal) => Some(refusal),
            None if window.count >= route_limit => Some(Refusal {
                retry_after: reset_after,
                global: false,
            }),
            None => {
                window.count += 1;
                None
            }
        };
        *entry = window;
        Decision {
            limit: route_limit,
            remaining: route_limit - window.count,
            reset_after,
            bucket,
            refused,
        }
    }

    fn sweep(&self, now: Instant) {
        let route_window = self.config.route_window;
        self.routes.retain(|_, w| now < w.started + route_window);
        self.global
            .retain(|_, w| now < w.started + Duration::from_secs(1));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.routes.len() + self.global.len()
    }
}

/// Bucket identity: a hash for the key and an opaque hex name for `X-RateLimit-Bucket`.
fn bucket_of(method: &str, template: &str) -> (u64, String) {
    let digest = Sha256::new()
        .chain_update(method)
        .chain_update(b" ")
        .chain_update(template)
        .finalize();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    digest.hash(&mut hasher);
    let name = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    (hasher.finish(), name)
}

fn caller_of(req: &Request, state: &AppState) -> Caller {
    let from_token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|raw| state.tokens.verify(token::strip_scheme(raw)).ok());
    if let Some(claims) = from_token {
        return Caller::User(claims.user_id);
    }
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => Caller::Ip(addr.ip()),
        None => Caller::Anonymous,
    }
}

/// Middleware: counts the request, refuses it with a 429 when over a limit, and stamps the
/// bucket headers on every response.
pub(crate) async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = RouteInfo::of(&req);
    let caller = caller_of(&req, &state);
    let decision = state
        .limiter
        .check_shared(
            caller,
            req.method().as_str(),
            route.template(),
            route.major_id(),
        )
        .await;
    let mut response = match decision.refused {
        None => next.run(req).await,
        Some(refusal) => {
            tracing::debug!(global = refusal.global, bucket = %decision.bucket, "rate limited");
            Error::RateLimited {
                retry_after: round_ms(refusal.retry_after),
                global: refusal.global,
            }
            .into_response()
        }
    };
    stamp(&mut response, &decision);
    response
}

fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).ceil() / 1000.0
}

fn stamp(response: &mut Response, decision: &Decision) {
    let reset_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + decision.reset_after;
    let headers = response.headers_mut();
    let mut put = |name: HeaderName, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put(LIMIT, decision.limit.to_string());
    put(RESET, format!("{:.3}", round_ms(reset_at)));
    put(
        RESET_AFTER,
        format!("{:.3}", round_ms(decision.reset_after)),
    );
    put(BUCKET, decision.bucket.clone());
    match decision.refused {
        None => {
            put(REMAINING, decision.remaining.to_string());
            put(SCOPE, "user".to_owned());
        }
        Some(refusal) => {
            put(REMAINING, "0".to_owned());
            put(
                SCOPE,
                if refusal.global { "global" } else { "user" }.to_owned(),
            );
            // Retry-After is whole seconds, rounded up so a client never retries early.
            put(
                RETRY_AFTER,
                refusal
                    .retry_after
                    .as_secs_f64()
                    .ceil()
                    .max(1.0)
                    .to_string(),
            );
            put(VIA, "1.1 concord".to_owned());
            if refusal.global {
                put(GLOBAL, "true".to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::id::Id;

    fn limiter(route_limit: u32, global: u32) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            route_limit,
            route_window: Duration::from_secs(5),
            global_per_second: global,
        })
    }

    #[tokio::test]
    async fn route_bucket_counts_down_then_refuses() {
        let l = limiter(2, 100);
        let alice = Caller::User(Id::new(1));
        let a = l.check(alice, "GET", "/channels/{channel_id}", Some(7));
        assert_eq!((a.limit, a.remaining, a.refused), (2, 1, None));
        let b = l.check(alice, "GET", "/channels/{channel_id}", Some(7));
        assert_eq!(b.remaining, 0);
        let c = l.check(alice, "GET", "/channels/{channel_id}", Some(7));
        let refusal = c.refused.expect("third request is over the limit");
        assert!(!refusal.global && refusal.retry_after <= Duration::from_secs(5));
        assert_eq!(a.bucket, c.bucket);
        // Another channel, another caller, another method: independent buckets.
        assert!(l
            .check(alice, "GET", "/channels/{channel_id}", Some(8))
            .refused
            .is_none());
        assert!(l
            .check(
                Caller::User(Id::new(2)),
                "GET",
                "/channels/{channel_id}",
                Some(7)
            )
            .refused
            .is_none());
        let other = l.check(alice, "PATCH", "/channels/{channel_id}", Some(7));
        assert!(other.refused.is_none());
        assert_ne!(other.bucket, a.bucket);
    }

    #[tokio::test]
    async fn global_limit_spans_routes() {
        let l = limiter(100, 2);
        let caller = Caller::Anonymous;
        assert!(l.check(caller, "GET", "/a", None).refused.is_none());
        assert!(l.check(caller, "GET", "/b", None).refused.is_none());
        let refused = l
            .check(caller, "GET", "/c", None)
            .refused
            .expect("global limit");
        assert!(refused.global);
    }

    #[tokio::test(start_paused = true)]
    async fn windows_reset_and_are_swept() {
        let l = limiter(1, 100);
        let caller = Caller::Anonymous;
        assert!(l.check(caller, "GET", "/a", None).refused.is_none());
        assert!(l.check(caller, "GET", "/a", None).refused.is_some());
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(l.check(caller, "GET", "/a", None).refused.is_none());
        tokio::time::advance(Duration::from_secs(6)).await;
        l.sweep(Instant::now());
        assert_eq!(l.len(), 0);
    }
}
