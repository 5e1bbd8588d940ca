//! Samples a server process's memory and CPU once a second (`--server-pid`), from
//! `/proc/PID/stat` (utime + stime) and `/proc/PID/status` (VmRSS).

use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Time between samples.
const PERIOD: Duration = Duration::from_secs(1);

/// One reading.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since sampling started.
    pub t_seconds: f64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
    /// CPU use since the previous sample, percent of one core.
    pub cpu_percent: f64,
}

/// What the samples add up to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerUsage {
    /// Process sampled.
    pub pid: u32,
    /// RSS at the first sample, KiB.
    pub rss_start_kib: u64,
    /// Largest RSS seen, KiB.
    pub rss_peak_kib: u64,
    /// RSS at the last sample, KiB.
    pub rss_end_kib: u64,
    /// CPU time (user + system) used between the first and the last sample.
    pub cpu_seconds: f64,
    /// `cpu_seconds` over the sampled wall time, percent of one core.
    pub cpu_percent_mean: f64,
    /// Highest one-second CPU use, percent of one core.
    pub cpu_percent_peak: f64,
    /// Whether the process went away during the run.
    pub exited: bool,
    /// Every reading.
    pub samples: Vec<Sample>,
}

impl ServerUsage {
    /// One line for the human table.
    pub fn line(&self) -> String {
        let mib = |kib: u64| kib as f64 / 1024.0;
        format!(
            "server pid {}: RSS start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB; CPU {:.2} s ({:.0} % mean, {:.0} % peak){}",
            self.pid,
            mib(self.rss_start_kib),
            mib(self.rss_peak_kib),
            mib(self.rss_end_kib),
            self.cpu_seconds,
            self.cpu_percent_mean,
            self.cpu_percent_peak,
            if self.exited { "; the process exited during the run" } else { "" }
        )
    }
}

/// A running sampler.
#[derive(Debug)]
pub struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<ServerUsage>,
}

impl Sampler {
    /// Starts sampling `pid`.
    ///
    /// # Errors
    /// When the process cannot be read.
    pub fn start(pid: u32) -> anyhow::Result<Self> {
        let ticks = rustix::param::clock_ticks_per_second();
        if ticks == 0 {
            bail!("the clock tick rate is unknown");
        }
        let first = read(pid).with_context(|| format!("reading /proc/{pid}"))?;
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut usage = ServerUsage {
                pid,
                rss_start_kib: first.rss_kib,
                rss_peak_kib: first.rss_kib,
                rss_end_kib: first.rss_kib,
                cpu_seconds: 0.0,
                cpu_percent_mean: 0.0,
                cpu_percent_peak: 0.0,
                exited: false,
                samples: vec![Sample {
                    t_seconds: 0.0,
                    rss_kib: first.rss_kib,
                    cpu_percent: 0.0,
                }],
            };
            let mut previous = (started, first.cpu_ticks);
            let mut interval = tokio::time::interval_at(started + PERIOD, PERIOD);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    now = interval.tick() => {
                        let Ok(reading) = read(pid) else {
                            usage.exited = true;
                            break;
                        };
                        let wall = now.duration_since(previous.0).as_secs_f64();
                        let cpu = reading.cpu_ticks.saturating_sub(previous.1) as f64 / ticks as f64;
                        let percent = if wall > 0.0 { cpu / wall * 100.0 } else { 0.0 };
                        previous = (now, reading.cpu_ticks);
                        usage.rss_peak_kib = usage.rss_peak_kib.max(reading.rss_kib);
                        usage.rss_end_kib = reading.rss_kib;
                        usage.cpu_seconds =
                            reading.cpu_ticks.saturating_sub(first.cpu_ticks) as f64 / ticks as f64;
                        usage.cpu_percent_peak = usage.cpu_percent_peak.max(percent);
                        usage.samples.push(Sample {
                            t_seconds: now.duration_since(started).as_secs_f64(),
                            rss_kib: reading.rss_kib,
                            cpu_percent: percent,
                        });
                    }
                }
            }
            let sampled = previous.0.duration_since(started).as_secs_f64();
            if sampled > 0.0 {
                usage.cpu_percent_mean = usage.cpu_seconds / sampled * 100.0;
            }
            usage
        });
        Ok(Self { stop, task })
    }

    /// Stops sampling and returns what was seen.
    ///
    /// # Errors
    /// When the sampling task panicked.
    pub async fn finish(self) -> anyhow::Result<ServerUsage> {
        let _ = self.stop.send(());
        self.task.await.context("sampler task")
    }
}

struct Reading {
    cpu_ticks: u64,
    rss_kib: u64,
}

fn read(pid: u32) -> anyhow::Result<Reading> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(Reading {
        cpu_ticks: cpu_ticks(&stat).context("unexpected /proc/PID/stat")?,
        rss_kib: rss_kib(&status).unwrap_or(0),
    })
}

/// utime + stime: fields 14 and 15, counted after the command name, which may hold spaces
/// and parentheses and so ends at the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_formats() {
        let stat = "42 (a (weird) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 \
                    100 1000 200 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(rss_kib("Name:\tx\nVmRSS:\t  5120 kB\n"), Some(5120));
    }

    #[tokio::test]
    async fn samples_this_process() {
        let sampler = Sampler::start(std::process::id()).unwrap();
        let usage = sampler.finish().await.unwrap();
        assert!(usage.rss_start_kib > 0);
        assert!(!usage.exited);
    }
}
