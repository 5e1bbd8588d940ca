//! `bench post`: message POSTs from `--concurrency` loops for `--duration`, optionally capped
//! at `--rate`; throughput, latency percentiles, errors by status and Discord code, and the
//! 429s honoured on the way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use super::posting::{post_message, Destinations, PostStats};
use super::Ctx;
use crate::cli::PostArgs;
use crate::report::Report;

/// Time between status line updates.
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// Runs the scenario.
///
/// # Errors
/// When the fixture has nowhere to post.
pub async fn run(ctx: &Ctx, args: &PostArgs) -> anyhow::Result<Report> {
    let guilds: Vec<usize> = (0..ctx.fixture.guilds.len()).collect();
    let destinations = Arc::new(Destinations::new(&ctx.fixture, &guilds));
    if destinations.is_empty() {
        bail!("the fixture has no guild to post in; run setup with --guilds");
    }
    let mut report = Report::new("post", &ctx.target.base, serde_json::to_value(args)?);
    let stats = Arc::new(PostStats::default());
    let next = Arc::new(AtomicU64::new(0));
    // Paces all loops together: each request takes the next free slot.
    let slots = args.rate.filter(|r| *r > 0.0).map(|rate| {
        (
            Duration::from_secs_f64(1.0 / rate),
            Arc::new(Mutex::new(Instant::now())),
        )
    });
    ctx.progress.phase("posting");
    let started = Instant::now();
    let end = started + ctx.global.duration;
    let mut loops = JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (rest, stats, next, destinations) = (
            ctx.rest.clone(),
            stats.clone(),
            next.clone(),
            destinations.clone(),
        );
        let slots = slots.clone();
        let run_id = ctx.run_id.clone();
        loops.spawn(async move {
            loop {
                if let Some((gap, slot)) = &slots {
                    let at = {
                        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                        let at = (*slot).max(Instant::now());
                        *slot = at + *gap;
                        at
                    };
                    sleep_until(at).await;
                }
                if Instant::now() >= end {
                    return;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                post_message(&rest, &stats, &run_id, destinations.pick(k), k).await;
            }
        });
    }
    let mut status = tokio::time::interval(STATUS_EVERY);
    let mut last = (Instant::now(), 0u64);
    while !loops.is_empty() {
        tokio::select! {
            _ = loops.join_next() => {}
            _ = status.tick() => {
                let now = Instant::now();
                let done = stats.ok() + stats.failed();
                let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
                last = (now, done);
                ctx.progress.status(format!(
                    "{} ok, {} failed, {} × 429 | {rate:.0} req/s",
                    stats.ok(), stats.failed(), stats.rate_limited()
                ));
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    stats.fill(&mut report, "posts_", seconds);
    report.count("requests", stats.ok() + stats.failed());
    report.count("errors", stats.failed());
    report.count("failures", stats.failed());
    report.real("rate", report.figure("posts_per_second").unwrap_or(0.0));
    report.real("seconds", seconds);
    report.primary_histogram = Some("post".to_owned());
    Ok(report)
}
