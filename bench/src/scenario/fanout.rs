//! `bench fanout` and `bench resume`: sessions held by the workers while senders POST at
//! `--rate`; every receiving session checks each MESSAGE_CREATE against what was sent.
//!
//! Senders run in the parent and put the send time into each message; receivers (on the same
//! machine, hence the same clock) take POST→delivery latency from it. After the senders stop
//! and deliveries drain, the parent hands every worker the list of accepted messages and each
//! worker finds, per session, the missing, duplicated and lost ones.
//!
//! `resume` adds a disruption at `--at`: a shell command (restart the server...) and/or cutting
//! a share of the sockets; sessions then resume, identify again, or are lost.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::bail;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{interval, Instant, MissedTickBehavior};

use super::connect::ramp_limit;
use super::fleet::{Fleet, FleetResult};
use super::posting::{post_message, Destinations, PostStats};
use super::{gateway_urls, session_figures, session_specs, Ctx};
use crate::cli::{FanoutArgs, ResumeArgs};
use crate::delivery::Posted;
use crate::report::Report;
use crate::rest::Rest;
use crate::worker::WorkerCommand;

/// Deliveries are always waited for this long after the last POST.
const DRAIN: Duration = Duration::from_secs(2);

/// Runs `bench fanout`.
///
/// # Errors
/// When the fixture has no guild, the gateway URL cannot be had, or a worker fails.
pub async fn run(ctx: &Ctx, args: &FanoutArgs) -> anyhow::Result<Report> {
    let report = Report::new("fanout", &ctx.target.base, serde_json::to_value(args)?);
    drive(ctx, args, None, report).await
}

/// Runs `bench resume`.
///
/// # Errors
/// As [`run`]; also when `--drop-fraction` is outside 0..=1.
pub async fn resume(ctx: &Ctx, args: &ResumeArgs) -> anyhow::Result<Report> {
    if !(0.0..=1.0).contains(&args.drop_fraction) {
        bail!("--drop-fraction must be between 0 and 1");
    }
    let report = Report::new("resume", &ctx.target.base, serde_json::to_value(args)?);
    drive(ctx, &args.fanout, Some(args), report).await
}

/// The senders: one scheduler starting a POST task per message at the rate.
struct Senders {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    posted: Arc<Mutex<Vec<Posted>>>,
    stats: Arc<PostStats>,
}

impl Senders {
    fn start(
        rest: Arc<Rest>,
        destinations: Destinations,
        rate: f64,
        max_in_flight: usize,
        run_id: String,
    ) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let posted = Arc::new(Mutex::new(Vec::new()));
        let stats = Arc::new(PostStats::default());
        let destinations = Arc::new(destinations);
        let max_in_flight = max_in_flight.max(1);
        let in_flight = Arc::new(Semaphore::new(max_in_flight));
        let task = {
            let (posted, stats) = (posted.clone(), stats.clone());
            tokio::spawn(async move {
                if rate > 0.0 {
                    let mut pace = interval(Duration::from_secs_f64(1.0 / rate));
                    pace.set_missed_tick_behavior(MissedTickBehavior::Burst);
                    let mut seq = 0u64;
                    loop {
                        tokio::select! {
                            biased;
                            _ = stopped.changed() => break,
                            _ = pace.tick() => {}
                        }
                        let Ok(permit) = in_flight.clone().acquire_owned().await else {
                            break;
                        };
                        let (rest, stats, posted, destinations, run_id) = (
                            rest.clone(),
                            stats.clone(),
                            posted.clone(),
                            destinations.clone(),
                            run_id.clone(),
                        );
                        let k = seq;
                        seq += 1;
                        tokio::spawn(async move {
                            let message =
                                post_message(&rest, &stats, &run_id, destinations.pick(k), k).await;
                            if let Some(message) = message {
                                posted
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(message);
                            }
                            drop(permit);
                        });
                    }
                }
                // Every POST still in flight finishes before the list is final.
                let _ = in_flight.acquire_many(max_in_flight as u32).await;
            })
        };
        Self {
            stop,
            task,
            posted,
            stats,
        }
    }

    fn status(&self) -> String {
        format!(
            " | posts {} ok, {} failed, {} × 429",
            self.stats.ok(),
            self.stats.failed(),
            self.stats.rate_limited()
        )
    }

    async fn stop(self) -> (Vec<Posted>, Arc<PostStats>) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let posted = std::mem::take(&mut *self.posted.lock().unwrap_or_else(|e| e.into_inner()));
        (posted, self.stats)
    }
}

/// A command's exit and duration.
struct CommandRun {
    code: Option<i32>,
    seconds: f64,
}

fn spawn_command(command: String) -> JoinHandle<CommandRun> {
    tokio::spawn(async move {
        let started = Instant::now();
        // Its output goes to stderr so that stdout keeps only the report.
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::null())
            .stdout(std::io::stderr())
            .stderr(Stdio::inherit())
            .status()
            .await;
        CommandRun {
            code: match status {
                Ok(status) => status.code(),
                Err(error) => {
                    eprintln!("bench: could not run `{command}`: {error}");
                    None
                }
            },
            seconds: started.elapsed().as_secs_f64(),
        }
    })
}

async fn drive(
    ctx: &Ctx,
    args: &FanoutArgs,
    resume: Option<&ResumeArgs>,
    mut report: Report,
) -> anyhow::Result<Report> {
    let fixture = &ctx.fixture;
    let large = args.large_guild || fixture.guilds.len() == 1;
    let guilds: Vec<usize> = if large {
        fixture.largest_guild().into_iter().collect()
    } else {
        (0..fixture.guilds.len()).collect()
    };
    if guilds.is_empty() {
        bail!("the fixture has no guild; run setup with --guilds");
    }
    let opts = &args.session;
    let members = large.then(|| fixture.guilds[guilds[0]].members.clone());
    let specs = session_specs(fixture, opts.sessions, opts.with_bots, members.as_deref())?;
    let requested = specs.len();
    let destinations = Destinations::new(fixture, &guilds);
    let gateways = gateway_urls(ctx, opts).await?;

    ctx.progress.phase("connecting");
    let mut fleet = Fleet::launch(
        ctx,
        opts,
        gateways,
        specs,
        args.connect_rate,
        resume.map(|r| r.reconnect_window),
    )
    .await?;
    let limit = ramp_limit(requested, args.connect_rate, opts.ready_timeout);
    if !fleet.wait_ramp(limit, ctx).await? {
        report
            .notes
            .push(format!("not every session settled within {limit:?}"));
    }

    ctx.progress.phase("sending");
    let senders = Senders::start(
        ctx.rest.clone(),
        destinations,
        args.rate,
        args.max_in_flight,
        ctx.run_id.clone(),
    );
    let started = Instant::now();
    let end = started + ctx.global.duration;
    let mut command = None;
    if let Some(resume) = resume {
        let at = started + resume.at.min(ctx.global.duration);
        fleet.run_until(at, ctx, &|| senders.status()).await?;
        ctx.progress.phase("disrupting");
        if let Some(text) = &resume.command {
            command = Some(spawn_command(text.clone()));
        }
        if resume.drop_fraction > 0.0 {
            fleet
                .broadcast(&WorkerCommand::Drop {
                    fraction: resume.drop_fraction,
                    round: 1,
                })
                .await?;
        }
        ctx.progress.phase("sending");
    }
    fleet.run_until(end, ctx, &|| senders.status()).await?;
    let (posted, post_stats) = senders.stop().await;
    let send_seconds = started.elapsed().as_secs_f64();

    let mut command_run = None;
    if let Some(resume) = resume {
        ctx.progress.phase("waiting for reconnects");
        if let Some(command) = command.take() {
            command_run = command.await.ok();
        }
        fleet
            .wait_reconnected(Instant::now() + resume.reconnect_window, ctx)
            .await?;
    }
    ctx.progress.phase("draining");
    fleet
        .run_until(Instant::now() + DRAIN + args.drain, ctx, &String::new)
        .await?;
    ctx.progress.phase("checking");
    let messages = posted.len() as u64;
    let result = fleet.finish(posted, ctx).await?;

    session_figures(&mut report, &result, requested);
    post_stats.fill(&mut report, "posts_", send_seconds);
    delivery_figures(&mut report, &result, messages, send_seconds);
    report.count("large_guild", u64::from(large));
    report.count(
        "failures",
        result.counter("connect_failures")
            + result.outcomes.get("lost").copied().unwrap_or(0)
            + post_stats.failed(),
    );
    report.hist("delivery", &result.hists["delivery"]);
    report.hist("last_recipient", &result.hists["last_recipient"]);
    report.primary_histogram = Some(if large { "last_recipient" } else { "delivery" }.to_owned());
    if resume.is_some() {
        resume_figures(&mut report, &result, command_run);
    }
    report.notes.push(
        "delivery latency = receiver clock − sender clock; both run on this machine".to_owned(),
    );
    Ok(report)
}

fn delivery_figures(report: &mut Report, result: &FleetResult, messages: u64, seconds: f64) {
    let total = result.check.total();
    let deliveries = result.counter("deliveries");
    let per_second = deliveries as f64 / seconds.max(1e-9);
    report.count("messages_posted", messages);
    report.count("deliveries", deliveries);
    report.real("deliveries_per_second", per_second);
    report.real("rate", per_second);
    report.real("send_seconds", seconds);
    report.count("expected", total.expected);
    report.count("missing", total.missing);
    report.count("duplicates", total.duplicates);
    report.count("lost_events", total.lost_events);
    report.count("gaps", total.seq_gaps);
    report.add_events(result.check.events.clone(), result.check.events_not_listed);
    report.breakdown(
        "sequence_gaps_by_session",
        result.check.gaps_by_session.clone(),
    );
}

fn resume_figures(report: &mut Report, result: &FleetResult, command: Option<CommandRun>) {
    for (outcome, tallies) in &result.check.by_outcome {
        report.count(&format!("{outcome}.expected"), tallies.expected);
        report.count(&format!("{outcome}.missing"), tallies.missing);
        report.count(&format!("{outcome}.duplicates"), tallies.duplicates);
        report.count(&format!("{outcome}.lost_events"), tallies.lost_events);
    }
    for name in [
        "resume_attempts",
        "resumed",
        "invalid_sessions",
        "reidentified",
        "dropped_by_bench",
    ] {
        report.count(name, result.counter(name));
    }
    report.hist("resume", &result.hists["resume"]);
    if let Some(command) = command {
        report.real("command_seconds", command.seconds);
        match command.code {
            Some(code) => {
                report.count("command_exit_code", u64::try_from(code).unwrap_or(u64::MAX))
            }
            None => report
                .notes
                .push("the command did not exit normally (signal or spawn failure)".to_owned()),
        }
    }
}
