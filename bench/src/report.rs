//! The run's results: every figure, breakdown and histogram, printed as a human table and
//! written as JSON (`--json FILE`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::sampler::ServerUsage;
use crate::slo::Verdict;
use crate::stats::{Hist, HistSummary, Tally};

/// Most lost, missing or duplicated events listed one by one; the rest are only counted.
pub const MAX_LISTED_EVENTS: usize = 10_000;

/// One figure: a count or a measured quantity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Figure {
    /// An exact count.
    Count(u64),
    /// A rate, a duration in seconds or a ratio.
    Real(f64),
}

impl Figure {
    /// As a float, for comparisons.
    pub fn value(self) -> f64 {
        match self {
            Self::Count(n) => n as f64,
            Self::Real(x) => x,
        }
    }
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Real(x) if x.abs() >= 100.0 => write!(f, "{x:.0}"),
            Self::Real(x) => write!(f, "{x:.2}"),
        }
    }
}

/// A delivery that went wrong for one session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventIssue {
    /// `missing` (expected, never received), `duplicate` (received twice) or `lost` (posted
    /// while the session was away and not replayed to it).
    pub kind: String,
    /// Session index (fixture order, counting every worker's sessions).
    pub session: u64,
    /// What happened to the session: `held`, `resumed`, `reidentified` or `lost`.
    pub outcome: String,
    /// Message id.
    pub message_id: u64,
    /// Channel the message was posted in.
    pub channel_id: u64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Version of the bench that ran.
    pub bench_version: String,
    /// Subcommand.
    pub scenario: String,
    /// `--target`.
    pub target: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// Start, unix milliseconds.
    pub started_unix_ms: u64,
    /// Wall time of the whole run, seconds.
    pub elapsed_seconds: f64,
    /// The options the run was given.
    pub params: serde_json::Value,
    /// Every figure by name; `--slo` refers to these names.
    pub figures: BTreeMap<String, Figure>,
    /// Counts by kind (close codes, error kinds, HTTP statuses, Discord codes...).
    pub breakdowns: BTreeMap<String, Tally>,
    /// Latency histograms by name.
    pub histograms: BTreeMap<String, HistSummary>,
    /// Histogram that `p99` and friends in `--slo` refer to.
    pub primary_histogram: Option<String>,
    /// Lost, missing and duplicated events, at most [`MAX_LISTED_EVENTS`].
    pub events: Vec<EventIssue>,
    /// Events beyond the listed ones.
    pub events_not_listed: u64,
    /// The server's resource use (`--server-pid`).
    pub server: Option<ServerUsage>,
    /// Objectives (`--slo`) and whether they held.
    pub slo: Vec<Verdict>,
    /// Remarks on how to read the figures.
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report for `scenario` against `target`, started now.
    pub fn new(scenario: &str, target: &str, params: serde_json::Value) -> Self {
        let now = time::OffsetDateTime::now_utc();
        let started_at = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Self {
            bench_version: env!("CARGO_PKG_VERSION").to_owned(),
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            started_at,
            started_unix_ms: u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
            elapsed_seconds: 0.0,
            params,
            figures: BTreeMap::new(),
            breakdowns: BTreeMap::new(),
            histograms: BTreeMap::new(),
            primary_histogram: None,
            events: Vec::new(),
            events_not_listed: 0,
            server: None,
            slo: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Sets a count.
    pub fn count(&mut self, name: &str, n: u64) {
        self.figures.insert(name.to_owned(), Figure::Count(n));
    }

    /// Sets a real-valued figure.
    pub fn real(&mut self, name: &str, x: f64) {
        let x = if x.is_finite() { x } else { 0.0 };
        self.figures.insert(name.to_owned(), Figure::Real(x));
    }

    /// A figure's value, if set.
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures.get(name).map(|f| f.value())
    }

    /// Adds a histogram (kept even when empty, so that readers find every name).
    pub fn hist(&mut self, name: &str, hist: &Hist) {
        self.histograms.insert(name.to_owned(), hist.summary());
    }

    /// Adds a breakdown, skipping empty ones.
    pub fn breakdown(&mut self, name: &str, tally: Tally) {
        if !tally.is_empty() {
            self.breakdowns.insert(name.to_owned(), tally);
        }
    }

    /// Adds issues, listing at most [`MAX_LISTED_EVENTS`] in all.
    pub fn add_events(&mut self, events: Vec<EventIssue>, not_listed: u64) {
        self.events_not_listed += not_listed;
        for event in events {
            if self.events.len() < MAX_LISTED_EVENTS {
                self.events.push(event);
            } else {
                self.events_not_listed += 1;
            }
        }
    }

    /// Why sessions or requests failed, one line per kind of failure, from the breakdowns:
    /// sessions that never got ready, sessions lost, failed POSTs.
    pub fn failure_reasons(&self) -> Vec<String> {
        let list = |name: &str| {
            self.breakdowns.get(name).map(|tally| {
                let mut items: Vec<(&String, &u64)> = tally.iter().collect();
                items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                items
                    .iter()
                    .map(|(kind, n)| format!("{kind} × {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        };
        let mut reasons = Vec::new();
        let never_ready = self.figure("connect_failures").unwrap_or(0.0);
        if never_ready > 0.0 {
            reasons.push(format!(
                "{never_ready} sessions never got ready: {}",
                list("connect_failures").unwrap_or_default()
            ));
        }
        let lost = self.figure("lost").unwrap_or(0.0);
        if lost > 0.0 {
            reasons.push(format!(
                "{lost} sessions lost: {}",
                list("disconnects").unwrap_or_default()
            ));
        }
        let posts_failed = self
            .figure("posts_failed")
            .unwrap_or(0.0)
            .max(self.figure("errors").unwrap_or(0.0));
        if posts_failed > 0.0 {
            reasons.push(format!(
                "{posts_failed} POSTs failed: {}",
                list("post_errors").unwrap_or_default()
            ));
        }
        reasons
    }

    /// Writes the JSON form to `path`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(self).context("encoding the report")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nconcord-bench {} · {} · {} · {:.1} s",
            self.bench_version, self.scenario, self.target, self.elapsed_seconds
        );
        let width = self
            .figures
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(6);
        let _ = writeln!(out, "\n{:width$}  value", "figure");
        for (name, figure) in &self.figures {
            let _ = writeln!(out, "{name:width$}  {figure}");
        }
        if !self.histograms.is_empty() {
            let width = self.histograms.keys().map(String::len).max().unwrap_or(0);
            let width = width.max(12);
            let _ = writeln!(
                out,
                "\n{:width$}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}",
                "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
            );
            for (name, h) in &self.histograms {
                let primary = if self.primary_histogram.as_deref() == Some(name) {
                    "*"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "{:width$}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}",
                    format!("{name}{primary}"),
                    h.count,
                    ms(h.p50_us),
                    ms(h.p90_us),
                    ms(h.p99_us),
                    ms(h.p999_us),
                    ms(h.max_us)
                );
            }
        }
        for (name, tally) in &self.breakdowns {
            let items: Vec<String> = tally.iter().map(|(k, n)| format!("{k}={n}")).collect();
            let _ = writeln!(out, "\n{name}: {}", items.join(", "));
        }
        if !self.events.is_empty() {
            let _ = writeln!(
                out,
                "\nevents ({} listed{}):",
                self.events.len(),
                if self.events_not_listed > 0 {
                    format!(", {} more", self.events_not_listed)
                } else {
                    String::new()
                }
            );
            for e in self.events.iter().take(20) {
                let _ = writeln!(
                    out,
                    "  {} message {} in channel {} for session {} ({})",
                    e.kind, e.message_id, e.channel_id, e.session, e.outcome
                );
            }
            if self.events.len() > 20 {
                let _ = writeln!(out, "  … see --json for the rest");
            }
        }
        if let Some(server) = &self.server {
            let _ = writeln!(out, "\n{}", server.line());
        }
        for note in &self.notes {
            let _ = writeln!(out, "\nnote: {note}");
        }
        if !self.slo.is_empty() {
            let _ = writeln!(out, "\nobjectives:");
            for verdict in &self.slo {
                let _ = writeln!(out, "  {verdict}");
            }
        }
        out
    }
}

/// Microseconds as milliseconds with three decimals.
fn ms(micros: u64) -> String {
    format!("{:.3}", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_keep_counts_integral_in_json() {
        let mut report = Report::new("connect", "http://127.0.0.1:1", serde_json::json!({}));
        report.count("missing", 0);
        report.real("rate", 12.5);
        let mut h = Hist::new();
        h.record(1500);
        report.hist("ready", &h);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["figures"]["missing"], 0);
        assert_eq!(json["figures"]["rate"], 12.5);
        assert_eq!(json["histograms"]["ready"]["count"], 1);
        let table = report.table();
        assert!(table.contains("missing"));
        assert!(table.contains("1.500"), "{table}");
    }
}
