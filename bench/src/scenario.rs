//! The scenarios and what they share: the run context, the worker fleet that holds gateway
//! sessions, and the message poster.
//!
//! - `connect`: open sessions at a rate and hold them;
//! - `fanout`: sessions plus senders, every delivery checked (also drives `resume`);
//! - `post`: REST message POSTs at a concurrency;
//! - `fleet`: the parent's view of its worker processes;
//! - `posting`: one message POST and its figures.

mod connect;
mod fanout;
mod fleet;
mod post;
mod posting;

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use reqwest::Method;

use crate::cli::{Global, SessionOpts};
use crate::fixture::Fixture;
use crate::progress::Progress;
use crate::report::Report;
use crate::rest::{Call, Rest};
use crate::target::{GatewayUrl, Target};
use crate::worker::SessionSpec;

pub use connect::run as connect;
pub use fanout::{resume, run as fanout};
pub use post::run as post;

/// Sessions one worker process holds by default.
pub const SESSIONS_PER_WORKER: usize = 15_000;

/// What every scenario runs with.
#[derive(Debug)]
pub struct Ctx {
    /// The server under test.
    pub target: Target,
    /// Accounts and guilds from `bench setup`.
    pub fixture: Fixture,
    /// Global options.
    pub global: Global,
    /// This run's id (in every message it posts).
    pub run_id: String,
    /// Live status.
    pub progress: Progress,
    /// REST client.
    pub rest: Arc<Rest>,
}

impl Ctx {
    /// Workers for `sessions` sessions: `--workers`, else one per [`SESSIONS_PER_WORKER`].
    pub fn workers_for(&self, sessions: usize) -> usize {
        self.global
            .workers
            .unwrap_or_else(|| sessions.div_ceil(SESSIONS_PER_WORKER))
            .clamp(1, sessions.max(1))
    }
}

/// Where sessions connect, and every address they may connect to.
#[derive(Debug, Clone)]
pub struct Gateways {
    /// Gateway URLs; worker k uses URL k mod n.
    pub urls: Vec<GatewayUrl>,
    /// The target's addresses and those of the `--gateway` URLs: a `resume_gateway_url`
    /// elsewhere is not followed.
    pub allowed: Vec<IpAddr>,
}

/// The gateway URLs: `--gateway` (comma-separated, e.g. every router of a cluster, or a
/// gateway on another address than the REST API), else `GET /gateway`, whose answer must
/// point at the target.
///
/// # Errors
/// When the server lacks `/gateway` or its URL points elsewhere.
pub async fn gateway_urls(ctx: &Ctx, opts: &SessionOpts) -> anyhow::Result<Gateways> {
    let mut allowed = ctx.target.addrs.clone();
    let mut urls = Vec::new();
    if let Some(given) = &opts.gateway {
        for raw in given.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let (url, addrs) = GatewayUrl::given(raw).await?;
            urls.push(url);
            for addr in addrs {
                if !allowed.contains(&addr) {
                    allowed.push(addr);
                }
            }
        }
        anyhow::ensure!(!urls.is_empty(), "--gateway names no URL");
        return Ok(Gateways { urls, allowed });
    }
    let call = Call::new(Method::GET, "/gateway", "/gateway".to_owned(), None);
    let body = ctx
        .rest
        .expect_success(&call, None)
        .await
        .context("asking for the gateway URL")?;
    let raw = body
        .get("url")
        .and_then(|u| u.as_str())
        .context("GET /gateway answered without `url`")?;
    urls.push(GatewayUrl::resolve(raw, &allowed).await?);
    Ok(Gateways { urls, allowed })
}

/// The sessions to open: `sessions` of them (default one per token), cycling over the tokens
/// of `members` (default every user) and, with `with_bots`, the bots.
///
/// # Errors
/// When there is no token to use.
pub fn session_specs(
    fixture: &Fixture,
    sessions: Option<usize>,
    with_bots: bool,
    members: Option<&[usize]>,
) -> anyhow::Result<Vec<SessionSpec>> {
    let mut tokens: Vec<&str> = match members {
        Some(members) => members
            .iter()
            .map(|i| fixture.users[*i].token.as_str())
            .collect(),
        None => fixture.users.iter().map(|u| u.token.as_str()).collect(),
    };
    if with_bots {
        tokens.extend(fixture.bots.iter().map(|b| b.token.as_str()));
    }
    if tokens.is_empty() {
        bail!("the fixture has no accounts to open sessions with");
    }
    let count = sessions.unwrap_or(tokens.len());
    Ok((0..count)
        .map(|i| SessionSpec {
            index: i as u64,
            token: tokens[i % tokens.len()].to_owned(),
        })
        .collect())
}

/// Adds the figures every gateway scenario reports.
fn session_figures(report: &mut Report, result: &fleet::FleetResult, requested: usize) {
    report.count("sessions", requested as u64);
    for name in [
        "ready",
        "connect_failures",
        "disconnects",
        "heartbeats_sent",
        "heartbeat_acks",
        "zombie_connections",
        "bytes_in",
        "dispatches",
        "foreign_messages",
        "sequence_gaps",
        "server_reconnects",
    ] {
        report.count(name, result.counter(name));
    }
    for outcome in ["held", "resumed", "reidentified", "lost"] {
        report.count(
            &format!("sessions_{outcome}"),
            result.outcomes.get(outcome).copied().unwrap_or(0),
        );
    }
    report.count("lost", result.outcomes.get("lost").copied().unwrap_or(0));
    report.count(
        "sessions_with_gaps",
        result.check.total().sessions_with_gaps,
    );
    report.count("workers", result.workers as u64);
    report.hist("ready", &result.hists["ready"]);
    report.hist("guilds", &result.hists["guilds"]);
    report.breakdown("connect_failures", result.failures.clone());
    report.breakdown("close_codes", result.closes.clone());
    report.breakdown("disconnects", result.disconnects.clone());
    report.breakdown("outcomes", result.outcomes.clone());
}
