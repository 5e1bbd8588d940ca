//! Identify concurrency: how many bot sessions may start at once, cluster-wide.
//!
//! Discord lets a bot identify once per 5 seconds per bucket, where the bucket of a session is
//! `shard_id % max_concurrency` (`GET /gateway/bot` reports `max_concurrency`). Libraries pace
//! their own Identifies by it; the server enforces it so that a mass reconnect cannot flatten the
//! database. A session whose bucket is taken waits its turn (at most [`MAX_WAIT`]) instead of
//! being refused: a refusal would only make the client retry sooner.
//! See Discord Docs/Topics/Gateway#session-start-limit.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// How long a bucket stays taken after an Identify.
pub const IDENTIFY_INTERVAL: Duration = Duration::from_secs(5);
/// Longest an Identify waits for its bucket before it proceeds anyway (the gate then fails open
/// rather than keeping a client waiting past its own timeout).
pub const MAX_WAIT: Duration = Duration::from_secs(15);

/// Buckets shared by every process of a cluster.
#[async_trait]
pub trait IdentifyQueue: Send + Sync {
    /// Takes `bucket` of application `app` for [`IDENTIFY_INTERVAL`]; `Ok(None)` when taken
    /// now, `Ok(Some(wait))` when another Identify holds it for `wait` more.
    ///
    /// # Errors
    /// A short description of a backend failure (the Identify then proceeds).
    async fn try_take(&self, app: u64, bucket: u32) -> Result<Option<Duration>, String>;
}

/// An optional [`IdentifyQueue`] that configuration can carry.
#[derive(Clone, Default)]
pub struct IdentifyQueueHandle(pub Option<Arc<dyn IdentifyQueue>>);

impl std::fmt::Debug for IdentifyQueueHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "IdentifyQueue(shared)"
        } else {
            "IdentifyQueue(none)"
        })
    }
}

impl IdentifyQueueHandle {
    /// Waits until this Identify may proceed: its bucket taken, [`MAX_WAIT`] spent, or the
    /// backend failing. Returns the time waited.
    pub(crate) async fn wait_turn(&self, app: u64, bucket: u32) -> Duration {
        let Some(queue) = &self.0 else {
            return Duration::ZERO;
        };
        let started = tokio::time::Instant::now();
        loop {
            match queue.try_take(app, bucket).await {
                Ok(None) => return started.elapsed(),
                Ok(Some(wait)) if started.elapsed() + wait <= MAX_WAIT => {
                    tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
                }
                Ok(Some(_)) => {
                    tracing::warn!(app, bucket, "identify bucket still taken; proceeding");
                    return started.elapsed();
                }
                Err(error) => {
                    tracing::warn!(app, bucket, %error, "identify queue unavailable; proceeding");
                    return started.elapsed();
                }
            }
        }
    }
}
