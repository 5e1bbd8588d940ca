//! The Redis-backed adapters the cluster roles plug into the components: readiness checks, the
//! API's write gate probe, shared rate windows, the identify queue and cache invalidation.

use std::sync::Arc;
use std::time::Duration;

use concord_api::invalidation::{Invalidation, InvalidationSink};
use concord_api::AppState;
use concord_bus_redis::{IdentifyGate, RateWindow, Redis, RedisBus};
use concord_gateway_shard::identify_queue::IDENTIFY_INTERVAL;
use concord_gateway_shard::{IdentifyQueue, ShardNode};
use concord_router::GatewayRouter;

use crate::admin::Readiness;

/// Readiness of a process that needs Redis.
pub(super) struct RedisReady(pub(super) Redis);

#[async_trait::async_trait]
impl Readiness for RedisReady {
    async fn check(&self) -> Result<(), String> {
        self.0
            .query::<String>(&redis::cmd("PING"))
            .await
            .map(|_| ())
            .map_err(|_| "redis unavailable".to_owned())
    }
}

/// Readiness of a router: it has read the slot table recently.
pub(super) struct RouterReady(pub(super) Arc<GatewayRouter>);

#[async_trait::async_trait]
impl Readiness for RouterReady {
    async fn check(&self) -> Result<(), String> {
        if self.0.is_ready() {
            Ok(())
        } else {
            Err("slot table stale or draining".to_owned())
        }
    }
}

/// Readiness of a shard process: it is a ready member.
pub(super) struct NodeReady(pub(super) Arc<ShardNode>);

#[async_trait::async_trait]
impl Readiness for NodeReady {
    async fn check(&self) -> Result<(), String> {
        if self.0.is_ready() {
            Ok(())
        } else {
            Err("shard node draining".to_owned())
        }
    }
}

/// How often an API process checks that Redis takes writes.
const BUS_PROBE: Duration = Duration::from_millis(250);

/// Failed probes in a row after which writes are refused: one slow answer on a saturated machine
/// is not an outage, and a refused write costs the client a retry.
const BUS_PROBE_FAILURES: u32 = 3;

/// Keeps the API's write gate in step with Redis: closed after [`BUS_PROBE_FAILURES`] failed or
/// timed-out PINGs in a row, open again at the first answer.
pub(super) async fn probe_bus(redis: Redis, state: AppState) {
    let mut tick = tokio::time::interval(BUS_PROBE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u32;
    let mut was = true;
    loop {
        tick.tick().await;
        let ping = tokio::time::timeout(
            Duration::from_secs(2),
            redis.query::<String>(&redis::cmd("PING")),
        )
        .await;
        failures = if matches!(ping, Ok(Ok(_))) {
            0
        } else {
            failures.saturating_add(1)
        };
        let up = failures < BUS_PROBE_FAILURES;
        if up != was {
            if up {
                tracing::info!("redis reachable again; accepting writes");
            } else {
                tracing::error!("redis unreachable; refusing writes until it returns");
            }
            was = up;
        }
        state.set_bus_available(up);
    }
}

/// Identify buckets in Redis, shared by every shard process.
pub(super) struct RedisIdentifyQueue(pub(super) IdentifyGate);

#[async_trait::async_trait]
impl IdentifyQueue for RedisIdentifyQueue {
    async fn try_take(&self, app: u64, bucket: u32) -> Result<Option<Duration>, String> {
        self.0
            .try_take(app, bucket, IDENTIFY_INTERVAL)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Rate-limit windows in Redis, shared by every API process.
pub(super) struct RedisWindows(pub(super) RateWindow);

#[async_trait::async_trait]
impl concord_api::SharedWindows for RedisWindows {
    async fn hit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> Result<(u64, Duration), String> {
        self.0
            .hit(key, limit, window)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Queues this process's cache evictions for [`send_invalidations`].
pub(super) struct NoticeSink(pub(super) tokio::sync::mpsc::UnboundedSender<Invalidation>);

impl InvalidationSink for NoticeSink {
    fn send(&self, invalidation: &Invalidation) {
        let _ = self.0.send(invalidation.clone());
    }
}

/// Appends queued evictions to the notices stream, each prefixed with this process's origin.
pub(super) async fn send_invalidations(
    bus: Arc<RedisBus>,
    origin: [u8; 16],
    mut outbox: tokio::sync::mpsc::UnboundedReceiver<Invalidation>,
) {
    while let Some(invalidation) = outbox.recv().await {
        let mut notice = origin.to_vec();
        notice.extend_from_slice(&serde_json::to_vec(&invalidation).unwrap_or_default());
        if let Err(error) = bus.append_notice(&notice).await {
            // The other processes' caches then expire by TTL (at most 10 s for tokens).
            metrics::counter!("concord_api_invalidation_errors_total").increment(1);
            tracing::warn!(%error, "cache invalidation not sent");
        }
    }
}

/// Applies other API processes' evictions to this process's caches.
pub(super) async fn apply_invalidations(
    state: AppState,
    origin: [u8; 16],
    mut notices: concord_bus_redis::NoticeSubscription,
) {
    loop {
        let notice = notices.next().await;
        let Some((from, body)) = notice.split_first_chunk::<16>() else {
            continue;
        };
        if *from == origin {
            continue;
        }
        match serde_json::from_slice::<Invalidation>(body) {
            Ok(invalidation) => state.apply_invalidation(&invalidation),
            Err(error) => tracing::warn!(%error, "undecodable cache invalidation"),
        }
    }
}
