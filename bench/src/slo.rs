//! Service-level objectives (`--slo 'p99<50ms,missing=0'`): parsing, and judging a report.
//!
//! A metric is either a latency statistic — `p50`, `p99.9`, `max`, `mean`, `min` — of the
//! scenario's primary histogram, or of a named one as `NAME.p99` (`last_recipient.p99`), whose
//! threshold takes a unit (`us`, `ms`, `s`; bare numbers are milliseconds); or any figure of the
//! report by name (`missing`, `duplicates`, `rate`...), compared as a plain number.
//!
//! A run whose sessions or requests failed is itself a failed objective: unless `--slo` names
//! a failure figure, `failures=0` is implied (see [`with_implied`]).

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::report::Report;

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    fn holds(self, actual: f64, threshold: f64) -> bool {
        match self {
            Self::Lt => actual < threshold,
            Self::Le => actual <= threshold,
            Self::Gt => actual > threshold,
            Self::Ge => actual >= threshold,
            Self::Eq => (actual - threshold).abs() < f64::EPSILON,
        }
    }
}

/// Which statistic of a histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stat {
    Quantile(f64),
    Max,
    Mean,
    Min,
}

#[derive(Debug, Clone, PartialEq)]
enum Metric {
    /// A histogram statistic, in microseconds; `None` = the primary histogram.
    Latency(Option<String>, Stat),
    /// A figure by name.
    Figure(String),
}

/// One objective, e.g. `p99<50ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    text: String,
    metric: Metric,
    op: Op,
    /// Microseconds for latencies, the figure's own unit otherwise.
    threshold: f64,
}

/// Whether an objective held.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// The objective as written.
    pub objective: String,
    /// Measured value (microseconds for latencies).
    pub actual: f64,
    /// Measured value as shown to people.
    pub actual_text: String,
    /// Whether the objective held.
    pub ok: bool,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = if self.ok { "ok  " } else { "FAIL" };
        write!(
            f,
            "{status} {} (actual {})",
            self.objective, self.actual_text
        )
    }
}

/// Parses a comma-separated list of objectives.
///
/// # Errors
/// Names the objective that does not parse.
pub fn parse(spec: &str) -> anyhow::Result<Vec<Objective>> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|text| parse_one(text).with_context(|| format!("objective `{text}`")))
        .collect()
}

fn parse_one(text: &str) -> anyhow::Result<Objective> {
    let (at, op, len) = ["<=", ">=", "==", "<", ">", "="]
        .iter()
        .filter_map(|token| text.find(token).map(|at| (at, *token)))
        .min_by_key(|(at, token)| (*at, usize::MAX - token.len()))
        .map(|(at, token)| {
            let op = match token {
                "<=" => Op::Le,
                ">=" => Op::Ge,
                "<" => Op::Lt,
                ">" => Op::Gt,
                _ => Op::Eq,
            };
            (at, op, token.len())
        })
        .context("no comparison (<, <=, >, >=, =)")?;
    let name = text[..at].trim();
    let value = text[at + len..].trim();
    if name.is_empty() || value.is_empty() {
        bail!("expected NAME<op>VALUE");
    }
    let metric = metric(name);
    let threshold = match metric {
        Metric::Latency(..) => latency_micros(value)?,
        Metric::Figure(_) => value
            .parse::<f64>()
            .with_context(|| format!("`{value}` is not a number"))?,
    };
    Ok(Objective {
        text: text.to_owned(),
        metric,
        op,
        threshold,
    })
}

fn metric(name: &str) -> Metric {
    if let Some(stat) = stat(name) {
        return Metric::Latency(None, stat);
    }
    if let Some((hist, rest)) = name.split_once('.') {
        if let Some(stat) = stat(rest) {
            return Metric::Latency(Some(hist.to_owned()), stat);
        }
    }
    Metric::Figure(name.to_owned())
}

fn stat(name: &str) -> Option<Stat> {
    match name {
        "max" => Some(Stat::Max),
        "mean" => Some(Stat::Mean),
        "min" => Some(Stat::Min),
        _ => {
            let percent: f64 = name.strip_prefix('p')?.parse().ok()?;
            (0.0..=100.0)
                .contains(&percent)
                .then_some(Stat::Quantile(percent / 100.0))
        }
    }
}

fn latency_micros(value: &str) -> anyhow::Result<f64> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let number: f64 = value[..split]
        .parse()
        .with_context(|| format!("`{value}` is not a duration"))?;
    let scale = match value[split..].trim() {
        "us" | "µs" => 1.0,
        "" | "ms" => 1_000.0,
        "s" => 1_000_000.0,
        unit => bail!("unknown unit `{unit}` (us, ms, s)"),
    };
    Ok(number * scale)
}

/// How the implied objective is shown.
pub const IMPLIED_FAILURES: &str = "failures=0 (implied)";

/// `objectives` plus `failures=0` when the report counts failures (failed connects, lost
/// sessions, failed requests) and no objective on `failures` says how many are allowed.
pub fn with_implied(objectives: &[Objective], report: &Report) -> Vec<Objective> {
    let mut all = objectives.to_vec();
    let allowed = objectives
        .iter()
        .any(|o| matches!(&o.metric, Metric::Figure(name) if name == "failures"));
    if !allowed && report.figure("failures").is_some() {
        all.push(Objective {
            text: IMPLIED_FAILURES.to_owned(),
            metric: Metric::Figure("failures".to_owned()),
            op: Op::Eq,
            threshold: 0.0,
        });
    }
    all
}

/// Judges every objective against `report`.
///
/// # Errors
/// When an objective names a histogram or figure the report does not have.
pub fn evaluate(objectives: &[Objective], report: &Report) -> anyhow::Result<Vec<Verdict>> {
    objectives
        .iter()
        .map(|objective| {
            let (actual, actual_text) = match &objective.metric {
                Metric::Latency(name, stat) => {
                    let name = name
                        .clone()
                        .or_else(|| report.primary_histogram.clone())
                        .context("this scenario has no latency histogram")?;
                    let h = report.histograms.get(&name).with_context(|| {
                        format!(
                            "no histogram `{name}`; this run has: {}",
                            report
                                .histograms
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?;
                    let hist = crate::stats::Hist::decode(&h.hdr_v2_base64)?;
                    let micros = match stat {
                        Stat::Quantile(q) => hist.quantile(*q) as f64,
                        Stat::Max => h.max_us as f64,
                        Stat::Min => h.min_us as f64,
                        Stat::Mean => h.mean_us,
                    };
                    (micros, format!("{:.3} ms", micros / 1000.0))
                }
                Metric::Figure(name) => {
                    let value = report.figure(name).with_context(|| {
                        format!(
                            "no figure `{name}`; this run has: {}",
                            report
                                .figures
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?;
                    (value, format!("{}", report.figures[name]))
                }
            };
            Ok(Verdict {
                objective: objective.text.clone(),
                actual,
                actual_text,
                ok: objective.op.holds(actual, objective.threshold),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Hist;

    #[test]
    fn parses_latencies_figures_and_operators() {
        let objectives =
            parse("p99<50ms, p99.9<=1s,last_recipient.p50<200us,missing=0,rate>1000").unwrap();
        assert_eq!(objectives.len(), 5);
        assert_eq!(
            objectives[0].metric,
            Metric::Latency(None, Stat::Quantile(0.99))
        );
        assert_eq!(objectives[0].threshold, 50_000.0);
        assert_eq!(objectives[1].op, Op::Le);
        assert_eq!(objectives[1].threshold, 1_000_000.0);
        assert_eq!(
            objectives[2].metric,
            Metric::Latency(Some("last_recipient".to_owned()), Stat::Quantile(0.5))
        );
        assert_eq!(objectives[3].metric, Metric::Figure("missing".to_owned()));
        assert_eq!(objectives[4].op, Op::Gt);
        assert!(parse("p99").is_err());
        assert!(parse("p99<5parsecs").is_err());
        assert!(parse("missing=lots").is_err());
    }

    #[test]
    fn judges_a_report() {
        let mut report = Report::new("fanout", "http://127.0.0.1:1", serde_json::json!({}));
        let mut h = Hist::new();
        for v in 1..=100 {
            h.record(v * 1000);
        }
        report.hist("delivery", &h);
        report.primary_histogram = Some("delivery".to_owned());
        report.count("missing", 0);
        report.count("duplicates", 2);
        let verdicts = evaluate(
            &parse("p50<60ms,p99<10ms,missing=0,duplicates=0").unwrap(),
            &report,
        )
        .unwrap();
        let ok: Vec<bool> = verdicts.iter().map(|v| v.ok).collect();
        assert_eq!(ok, [true, false, true, false]);
        assert!(evaluate(&parse("nonsense=0").unwrap(), &report).is_err());
        assert!(evaluate(&parse("other.p99<1ms").unwrap(), &report).is_err());
    }

    #[test]
    fn failures_fail_the_run_unless_an_objective_allows_them() {
        let mut report = Report::new("connect", "http://127.0.0.1:1", serde_json::json!({}));
        // No failure figure (setup): nothing implied.
        assert!(with_implied(&[], &report).is_empty());
        report.count("failures", 3);
        let implied = evaluate(&with_implied(&[], &report), &report).unwrap();
        assert_eq!(implied.len(), 1);
        assert_eq!(implied[0].objective, IMPLIED_FAILURES);
        assert!(!implied[0].ok);
        let allowed = with_implied(&parse("failures<5").unwrap(), &report);
        assert_eq!(allowed.len(), 1);
        assert!(evaluate(&allowed, &report).unwrap()[0].ok);
        // An objective on one kind of failure says nothing about the others.
        let other = with_implied(&parse("p99<1s,lost=0").unwrap(), &report);
        assert_eq!(other.len(), 3);
        report.count("failures", 0);
        assert!(evaluate(&with_implied(&[], &report), &report).unwrap()[0].ok);
    }
}
