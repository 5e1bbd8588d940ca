//! `concord-bench`: load tests for any Discord-compatible server (Concord or a peer), through
//! the public REST API and Gateway v10 only.
//!
//! `bench setup` creates accounts, bots, guilds and memberships and writes a fixture (or
//! `bench fixture import` builds one from tokens made by hand); the scenarios (`connect`,
//! `fanout`, `post`, `resume`) reuse it. Gateway sessions live in worker
//! processes (the same binary, `bench worker`) bound to their own loopback source addresses,
//! so one machine can hold far more sessions than one process's open-file limit allows.
//!
//! - [`cli`]: flags and subcommands;
//! - [`setup`], [`fixture`]: creating and storing the accounts;
//! - [`scenario`]: the scenarios, the worker fleet and the poster;
//! - [`worker`]: the worker process and its line protocol;
//! - [`gateway`]: the gateway client (sockets, decompression, session state machine);
//! - [`rest`]: the REST client with Discord-style rate-limit handling;
//! - [`delivery`]: the missing / duplicate / lost check;
//! - [`stats`], [`report`], [`slo`], [`sampler`], [`progress`]: figures and their output;
//! - [`target`], [`clock`]: where the bench may connect, and the shared wall clock.

pub mod cli;
pub mod clock;
pub mod delivery;
pub mod fixture;
pub mod gateway;
pub mod progress;
pub mod report;
pub mod rest;
pub mod sampler;
pub mod scenario;
pub mod setup;
pub mod slo;
pub mod stats;
pub mod target;
pub mod worker;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use rand::distributions::Alphanumeric;
use rand::Rng;
use tokio::time::Instant;

use crate::cli::{Cli, Command, FixtureCommand};
use crate::fixture::Fixture;
use crate::progress::Progress;
use crate::report::Report;
use crate::rest::Rest;
use crate::sampler::Sampler;
use crate::scenario::Ctx;
use crate::target::Target;

/// Exit code when an objective failed.
pub const EXIT_SLO: u8 = 1;
/// Exit code when the run itself failed.
pub const EXIT_ERROR: u8 = 2;

/// Characters of a run id; message nonces carry it and must stay within Discord's 25.
const RUN_ID_LEN: usize = 10;

/// Idle connections the REST client keeps to the target.
const REST_POOL: usize = 512;

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench: cannot start the runtime: {error}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    runtime.block_on(run(cli))
}

/// Runs one command; the exit code says whether the objectives held (0), failed (1), or the
/// run did not complete (2).
pub async fn run(cli: Cli) -> ExitCode {
    if matches!(cli.command, Command::Worker) {
        return match worker::serve().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("bench worker: {error:#}");
                ExitCode::from(EXIT_ERROR)
            }
        };
    }
    match execute(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global.clone();
    let objectives = match global.slo.as_deref() {
        Some(spec) => slo::parse(spec).context("--slo")?,
        None => Vec::new(),
    };
    worker::raise_open_file_limit();
    let started = Instant::now();
    let sampler = global.server_pid.map(Sampler::start).transpose()?;
    let user_agent = global.user_agent();
    let mut report = match &cli.command {
        Command::Setup(args) => {
            let raw = global.target.as_deref().context("setup needs --target")?;
            let target = Target::resolve(raw).await?;
            let progress = Progress::new(global.quiet);
            let report = setup::run(
                &target,
                args,
                &global.fixture,
                &progress,
                user_agent.as_deref(),
            )
            .await;
            progress.finish();
            report?
        }
        Command::Fixture(FixtureCommand::Import(args)) => {
            let progress = Progress::new(global.quiet);
            let report = fixture::import(
                global.target.as_deref(),
                args,
                &global.fixture,
                &progress,
                user_agent.as_deref(),
            )
            .await;
            progress.finish();
            report?
        }
        scenario => {
            let fixture = Fixture::load(&global.fixture)?;
            let raw = global
                .target
                .clone()
                .unwrap_or_else(|| fixture.target.clone());
            let target = Target::resolve(&raw).await?;
            let rest = Arc::new(Rest::new(&target, REST_POOL, user_agent.as_deref())?);
            let ctx = Ctx {
                target,
                fixture,
                global: global.clone(),
                run_id: rand::thread_rng()
                    .sample_iter(&Alphanumeric)
                    .take(RUN_ID_LEN)
                    .map(char::from)
                    .collect(),
                progress: Progress::new(global.quiet),
                rest,
            };
            let report = match scenario {
                Command::Connect(args) => scenario::connect(&ctx, args).await,
                Command::Fanout(args) => scenario::fanout(&ctx, args).await,
                Command::Post(args) => scenario::post(&ctx, args).await,
                Command::Resume(args) => scenario::resume(&ctx, args).await,
                Command::Setup(_) | Command::Fixture(_) | Command::Worker => {
                    unreachable!("handled above")
                }
            };
            ctx.progress.finish();
            report?
        }
    };
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    if let Some(sampler) = sampler {
        report.server = Some(sampler.finish().await?);
    }
    let verdicts = slo::evaluate(&slo::with_implied(&objectives, &report), &report);
    if let Ok(verdicts) = &verdicts {
        report.slo.clone_from(verdicts);
    }
    print!("{}", report.table());
    if let Some(path) = &global.json {
        report.write_json(path)?;
    }
    verdicts.context("--slo")?;
    Ok(exit_for(&report))
}

/// 2 when sessions were asked for and none got ready (nothing was measured), 1 when an
/// objective failed, 0 otherwise; the reason goes to stderr.
fn exit_for(report: &Report) -> ExitCode {
    let asked = report.figure("sessions").unwrap_or(0.0);
    if asked > 0.0 && report.figure("ready") == Some(0.0) {
        eprintln!("bench: no session became ready");
        for reason in report.failure_reasons() {
            eprintln!("bench: {reason}");
        }
        return ExitCode::from(EXIT_ERROR);
    }
    let failed: Vec<&str> = report
        .slo
        .iter()
        .filter(|v| !v.ok)
        .map(|v| v.objective.as_str())
        .collect();
    if failed.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("bench: objectives not met: {}", failed.join(", "));
    for reason in report.failure_reasons() {
        eprintln!("bench: {reason}");
    }
    ExitCode::from(EXIT_SLO)
}
