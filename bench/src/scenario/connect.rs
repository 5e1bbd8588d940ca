//! `bench connect`: open sessions at a rate (Identify → READY → every GUILD_CREATE), hold them
//! with heartbeats for `--duration`, and report the connect rate, READY latencies, sessions
//! held, and failures by close code or error kind.

use std::time::Duration;

use tokio::time::Instant;

use super::fleet::Fleet;
use super::{gateway_urls, session_figures, session_specs, Ctx};
use crate::cli::ConnectArgs;
use crate::report::Report;

/// Runs the scenario.
///
/// # Errors
/// When the gateway URL cannot be had or a worker fails.
pub async fn run(ctx: &Ctx, args: &ConnectArgs) -> anyhow::Result<Report> {
    let opts = &args.session;
    let specs = session_specs(&ctx.fixture, opts.sessions, opts.with_bots, None)?;
    let requested = specs.len();
    let gateways = gateway_urls(ctx, opts).await?;
    let mut report = Report::new("connect", &ctx.target.base, serde_json::to_value(args)?);

    ctx.progress.phase("connecting");
    let started = Instant::now();
    let mut fleet = Fleet::launch(ctx, opts, gateways, specs, args.rate, None).await?;
    let ramp_limit = ramp_limit(requested, args.rate, opts.ready_timeout);
    if !fleet.wait_ramp(ramp_limit, ctx).await? {
        report
            .notes
            .push(format!("not every session settled within {ramp_limit:?}"));
    }
    let ramp_seconds = started.elapsed().as_secs_f64();

    ctx.progress.phase("holding");
    fleet
        .run_until(Instant::now() + ctx.global.duration, ctx, &String::new)
        .await?;
    ctx.progress.phase("closing");
    let result = fleet.finish(Vec::new(), ctx).await?;

    session_figures(&mut report, &result, requested);
    let ready = result.counter("ready");
    let connect_rate = ready as f64 / ramp_seconds.max(1e-9);
    report.real("ramp_seconds", ramp_seconds);
    report.real("connect_rate", connect_rate);
    report.real("rate", connect_rate);
    report.real("hold_seconds", ctx.global.duration.as_secs_f64());
    report.count(
        "failures",
        result.counter("connect_failures") + result.outcomes.get("lost").copied().unwrap_or(0),
    );
    report.primary_histogram = Some("ready".to_owned());
    Ok(report)
}

/// How long the ramp may take: the paced opening, then one ready timeout, plus a margin.
pub(super) fn ramp_limit(sessions: usize, rate: f64, ready_timeout: Duration) -> Duration {
    let pacing = if rate > 0.0 {
        Duration::from_secs_f64(sessions as f64 / rate)
    } else {
        Duration::ZERO
    };
    pacing + ready_timeout + Duration::from_secs(30)
}
