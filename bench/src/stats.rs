//! Latency histograms (HDR, microseconds) and named counters: how workers record them, how they
//! travel between processes (HDR V2 serialisation, base64), and how the parent merges them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency a histogram tracks, in microseconds (10 minutes); longer ones are clamped.
pub const MAX_MICROS: u64 = 600_000_000;
/// Significant digits kept by every histogram.
const SIGNIFICANT_DIGITS: u8 = 3;
/// Locks a [`SharedHist`] spreads its recorders over.
const HIST_SHARDS: usize = 8;

/// Counts keyed by a name (close code, error kind, status...).
pub type Tally = BTreeMap<String, u64>;

/// Adds every count of `from` to `into`.
pub fn merge_tally(into: &mut Tally, from: &Tally) {
    for (key, n) in from {
        *into.entry(key.clone()).or_default() += n;
    }
}

/// Adds one to `key` in `tally`.
pub fn bump(tally: &Mutex<Tally>, key: impl Into<String>) {
    let mut tally = tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *tally.entry(key.into()).or_default() += 1;
}

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Hist(Histogram<u64>);

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

impl Hist {
    /// An empty histogram covering 1 µs to [`MAX_MICROS`].
    pub fn new() -> Self {
        Self(
            Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS)
                .expect("constant bounds are valid"),
        )
    }

    /// Records one value, clamped to the tracked range.
    pub fn record(&mut self, micros: u64) {
        self.0.saturating_record(micros);
    }

    /// Adds every value of `other`.
    pub fn add(&mut self, other: &Hist) {
        // Both sides share the same bounds, so adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// Number of values recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Value at `quantile` (0..=1), 0 when empty.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.0.value_at_quantile(quantile)
        }
    }

    /// V2-serialised, base64-encoded.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut bytes)
            .expect("serialising into a Vec cannot fail");
        STANDARD.encode(bytes)
    }

    /// Reads what [`Hist::encode`] wrote.
    ///
    /// # Errors
    /// When the text is not base64 or not an HDR V2 histogram.
    pub fn decode(text: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD.decode(text).context("histogram is not base64")?;
        let decoded: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| anyhow::anyhow!("histogram does not decode: {e:?}"))?;
        let mut hist = Self::new();
        hist.0
            .add(&decoded)
            .map_err(|e| anyhow::anyhow!("histogram out of range: {e:?}"))?;
        Ok(hist)
    }

    /// Percentiles and the serialised data, for reports.
    pub fn summary(&self) -> HistSummary {
        let empty = self.is_empty();
        HistSummary {
            count: self.len(),
            min_us: if empty { 0 } else { self.0.min() },
            mean_us: if empty { 0.0 } else { self.0.mean() },
            p50_us: self.quantile(0.50),
            p90_us: self.quantile(0.90),
            p99_us: self.quantile(0.99),
            p999_us: self.quantile(0.999),
            max_us: if empty { 0 } else { self.0.max() },
            hdr_v2_base64: self.encode(),
        }
    }
}

/// What a report shows of one histogram; values in microseconds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistSummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest value.
    pub min_us: u64,
    /// Mean value.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest value.
    pub max_us: u64,
    /// The whole histogram, HDR V2 serialised then base64-encoded.
    pub hdr_v2_base64: String,
}

/// A histogram many tasks record into: a few locks instead of one, plus an interval copy that
/// the once-a-second tick takes away.
#[derive(Debug)]
pub struct SharedHist {
    shards: Box<[Mutex<(Hist, Hist)>]>,
}

impl Default for SharedHist {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedHist {
    /// Empty.
    pub fn new() -> Self {
        Self {
            shards: (0..HIST_SHARDS)
                .map(|_| Mutex::new((Hist::new(), Hist::new())))
                .collect(),
        }
    }

    fn shard(&self, key: usize) -> std::sync::MutexGuard<'_, (Hist, Hist)> {
        self.shards[key % self.shards.len()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `micros`; `key` (a session index) picks the lock.
    pub fn record(&self, key: usize, micros: u64) {
        let mut shard = self.shard(key);
        shard.0.record(micros);
        shard.1.record(micros);
    }

    /// What was recorded since the previous call.
    pub fn take_interval(&self) -> Hist {
        let mut out = Hist::new();
        for key in 0..self.shards.len() {
            let mut shard = self.shard(key);
            out.add(&shard.1);
            shard.1 = Hist::new();
        }
        out
    }

    /// Everything recorded.
    pub fn total(&self) -> Hist {
        let mut out = Hist::new();
        for key in 0..self.shards.len() {
            out.add(&self.shard(key).0);
        }
        out
    }
}

/// Declares the counters a worker keeps, with their report names.
macro_rules! counters {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// A named counter of a worker.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Counter {
            $(#[doc = $doc] $variant,)*
        }

        impl Counter {
            /// Every counter, in declaration order.
            pub const ALL: &'static [Counter] = &[$(Counter::$variant,)*];

            /// Name in reports.
            pub fn name(self) -> &'static str {
                match self {
                    $(Counter::$variant => $name,)*
                }
            }
        }
    };
}

counters! {
    ConnectAttempts => "connect_attempts", "Sockets opened (first connections, not reconnects).";
    Ready => "ready", "Sessions that got READY and every GUILD_CREATE.";
    ConnectFailures => "connect_failures", "Sessions that never got ready.";
    Deliveries => "deliveries", "MESSAGE_CREATEs of this run received.";
    Foreign => "foreign_messages", "MESSAGE_CREATEs not sent by this run.";
    Dispatches => "dispatches", "Dispatches (op 0) received.";
    BytesIn => "bytes_in", "WebSocket payload bytes received, before decompression.";
    HeartbeatsSent => "heartbeats_sent", "Heartbeats (op 1) sent.";
    HeartbeatAcks => "heartbeat_acks", "Heartbeat ACKs (op 11) received.";
    Zombies => "zombie_connections", "Connections closed for a missing heartbeat ACK.";
    Disconnects => "disconnects", "Unplanned ends of a ready session's socket.";
    Dropped => "dropped_by_bench", "Sockets the bench cut on purpose (resume --drop-fraction).";
    ServerReconnects => "server_reconnects", "Op 7 RECONNECT received.";
    ResumeAttempts => "resume_attempts", "Op 6 RESUME sent.";
    Resumed => "resumed", "RESUMED received.";
    InvalidSessions => "invalid_sessions", "Op 9 INVALID_SESSION received.";
    Reidentified => "reidentified", "Sessions identified again after losing theirs.";
    Lost => "lost", "Sessions that were ready and are gone at the end.";
    SequenceGaps => "sequence_gaps", "Dispatches whose `s` is not the previous one plus one.";
}

/// The worker's counters, updated from every session task.
#[derive(Debug)]
pub struct Counters(Box<[AtomicU64]>);

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters {
    /// All zero.
    pub fn new() -> Self {
        Self(Counter::ALL.iter().map(|_| AtomicU64::new(0)).collect())
    }

    /// Adds `n` to `counter`.
    pub fn add(&self, counter: Counter, n: u64) {
        self.0[counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub fn incr(&self, counter: Counter) {
        self.add(counter, 1);
    }

    /// Current value.
    pub fn get(&self, counter: Counter) -> u64 {
        self.0[counter as usize].load(Ordering::Relaxed)
    }

    /// Every counter by name.
    pub fn snapshot(&self) -> Tally {
        Counter::ALL
            .iter()
            .map(|c| (c.name().to_owned(), self.get(*c)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_survive_the_wire_and_merge() {
        let mut a = Hist::new();
        for v in 1..=1000 {
            a.record(v);
        }
        let decoded = Hist::decode(&a.encode()).unwrap();
        assert_eq!(decoded.len(), 1000);
        assert_eq!(decoded.quantile(0.5), a.quantile(0.5));
        let mut b = Hist::new();
        b.record(MAX_MICROS * 10);
        b.add(&decoded);
        assert_eq!(b.len(), 1001);
        assert!(b.summary().max_us >= MAX_MICROS);
        assert!(Hist::decode("not base64!").is_err());
    }

    #[test]
    fn shared_histograms_hand_out_intervals_once() {
        let shared = SharedHist::new();
        for key in 0..100 {
            shared.record(key, 5);
        }
        assert_eq!(shared.take_interval().len(), 100);
        assert_eq!(shared.take_interval().len(), 0);
        shared.record(3, 7);
        assert_eq!(shared.total().len(), 101);
    }

    #[test]
    fn counters_are_named_once() {
        let names: std::collections::BTreeSet<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Counter::ALL.len());
        let counters = Counters::new();
        counters.add(Counter::Deliveries, 3);
        assert_eq!(counters.snapshot()["deliveries"], 3);
    }
}
