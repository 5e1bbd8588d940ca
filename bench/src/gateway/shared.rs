//! What the sessions of one worker share: their settings, the parent's commands, the
//! statistics they record into, and what each session hands back at the end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::decode::Compress;
use crate::stats::{bump, Counters, SharedHist, Tally};
use crate::target::GatewayUrl;

/// Locks the last-recipient table is spread over.
const LAST_RECIPIENT_SHARDS: usize = 16;

/// What the parent tells every session.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Keep going.
    Run,
    /// Cut the sockets of a `fraction` of the ready sessions without a close frame; `round`
    /// tells successive drops apart.
    Drop { fraction: f64, round: u32 },
    /// Close with 1000 and report.
    Finish,
}

/// Whether session `index` is among the `fraction` cut in drop `round` (the same choice in
/// every worker, without coordination).
pub fn drop_selected(index: u64, round: u32, fraction: f64) -> bool {
    let mixed = (index ^ (u64::from(round) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mixed >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

/// How a session ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Never got ready.
    #[default]
    NeverReady,
    /// Connected from READY to the end without a break.
    Held,
    /// Lost its socket and resumed every time.
    Resumed,
    /// Had to identify again at least once.
    Reidentified,
    /// Gone at the end.
    Lost,
}

impl Outcome {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::NeverReady => "never_ready",
            Self::Held => "held",
            Self::Resumed => "resumed",
            Self::Reidentified => "reidentified",
            Self::Lost => "lost",
        }
    }
}

/// What one session saw, for the delivery check.
#[derive(Debug, Clone, Default)]
pub struct SessionRecord {
    /// Global session index.
    pub index: u64,
    /// How it ended up.
    pub outcome: Outcome,
    /// Guild ids from its (latest) READY.
    pub guilds: Vec<u64>,
    /// Wall-clock windows (unix ns) in which it should receive every message of its guilds.
    pub live: Vec<(u64, u64)>,
    /// Windows it was away and not entitled to a replay (re-identified, or lost until the end).
    pub away: Vec<(u64, u64)>,
    /// Ids of the bench's messages received, in arrival order.
    pub received: Vec<u64>,
    /// Dispatches whose `s` did not follow the previous one.
    pub seq_gaps: u64,
}

/// Per message id, the largest delivery latency seen by this worker.
#[derive(Debug)]
pub struct LastRecipient(Box<[Mutex<HashMap<u64, u64>>]>);

impl LastRecipient {
    fn new() -> Self {
        Self(
            (0..LAST_RECIPIENT_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
        )
    }

    pub(crate) fn record(&self, id: u64, micros: u64) {
        let shard = (id as usize) % self.0.len();
        let mut map = self.0[shard].lock().unwrap_or_else(|e| e.into_inner());
        let slot = map.entry(id).or_insert(0);
        *slot = (*slot).max(micros);
    }

    /// Every (message id, largest latency).
    pub fn drain(&self) -> Vec<(u64, u64)> {
        self.0
            .iter()
            .flat_map(|m| {
                std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner())).into_iter()
            })
            .collect()
    }
}

/// Everything a worker's sessions record into.
#[derive(Debug)]
pub struct WorkerStats {
    /// Named counters.
    pub counters: Arc<Counters>,
    /// Sessions that never got ready, by reason.
    pub failures: Mutex<Tally>,
    /// Close codes the server sent.
    pub closes: Mutex<Tally>,
    /// Why ready sessions lost their socket.
    pub disconnects: Mutex<Tally>,
    /// Socket open → READY.
    pub ready: SharedHist,
    /// Socket open → last GUILD_CREATE.
    pub guilds: SharedHist,
    /// POST → MESSAGE_CREATE received.
    pub delivery: SharedHist,
    /// Socket lost → RESUMED.
    pub resume: SharedHist,
    /// Per message, the slowest recipient.
    pub last_recipient: LastRecipient,
    /// Sessions ready and connected right now.
    pub open: AtomicI64,
    /// Sessions whose first attempt ended (ready or failed).
    pub settled: AtomicUsize,
}

impl Default for WorkerStats {
    fn default() -> Self {
        Self {
            counters: Arc::new(Counters::new()),
            failures: Mutex::default(),
            closes: Mutex::default(),
            disconnects: Mutex::default(),
            ready: SharedHist::new(),
            guilds: SharedHist::new(),
            delivery: SharedHist::new(),
            resume: SharedHist::new(),
            last_recipient: LastRecipient::new(),
            open: AtomicI64::new(0),
            settled: AtomicUsize::new(0),
        }
    }
}

/// A worker's session settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to identify.
    pub gateway: GatewayUrl,
    /// The target's addresses: a `resume_gateway_url` elsewhere is not followed.
    pub allowed: Vec<IpAddr>,
    /// Local address to bind sockets to.
    pub source: Option<IpAddr>,
    /// Transport compression.
    pub compress: Compress,
    /// Identify intents.
    pub intents: u64,
    /// Longest wait from socket open to the last GUILD_CREATE.
    pub ready_timeout: Duration,
    /// How long to keep trying to come back after a lost socket; `None` = do not.
    pub reconnect_window: Option<Duration>,
    /// `bench <run_id> `: content prefix of this run's messages.
    pub content_prefix: String,
    /// `User-Agent` of every upgrade request.
    pub user_agent: Option<String>,
}

impl Settings {
    /// How this worker's sockets are opened.
    pub(crate) fn dial(&self) -> super::socket::Dial<'_> {
        super::socket::Dial {
            source: self.source,
            compress: self.compress,
            user_agent: self.user_agent.as_deref(),
        }
    }
}

/// What every session of a worker shares.
#[derive(Debug)]
pub struct Shared {
    /// Settings.
    pub settings: Settings,
    /// Where sessions record.
    pub stats: WorkerStats,
    /// Parent commands.
    pub control: watch::Receiver<Control>,
    resume_urls: Mutex<HashMap<String, Option<GatewayUrl>>>,
}

impl Shared {
    /// Bundles a worker's settings with fresh statistics.
    pub fn new(settings: Settings, control: watch::Receiver<Control>) -> Self {
        Self {
            settings,
            stats: WorkerStats::default(),
            control,
            resume_urls: Mutex::default(),
        }
    }

    /// The READY `resume_gateway_url`, when it points at the target.
    pub(crate) async fn resume_url(&self, raw: &str) -> Option<GatewayUrl> {
        if let Some(known) = self
            .resume_urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(raw)
        {
            return known.clone();
        }
        let resolved = GatewayUrl::resolve(raw, &self.settings.allowed).await.ok();
        if resolved.is_none() {
            bump(&self.stats.failures, "resume_url_not_target");
        }
        self.resume_urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(raw.to_owned(), resolved.clone());
        resolved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_pick_about_the_fraction_asked() {
        let picked = (0..10_000u64).filter(|i| drop_selected(*i, 1, 0.5)).count();
        assert!((4_500..5_500).contains(&picked), "{picked}");
        assert_eq!(
            (0..1000u64).filter(|i| drop_selected(*i, 1, 0.0)).count(),
            0
        );
        assert_eq!(
            (0..1000u64).filter(|i| drop_selected(*i, 1, 1.0)).count(),
            1000
        );
        // Another round picks another half.
        let again = (0..10_000u64)
            .filter(|i| drop_selected(*i, 1, 0.5) && drop_selected(*i, 2, 0.5))
            .count();
        assert!((2_000..3_000).contains(&again), "{again}");
    }
}
