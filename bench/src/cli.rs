//! Command-line interface: global flags, one subcommand per scenario, and the value parsers
//! (durations, rates, intents).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::gateway::{Compress, DEFAULT_INTENTS};

/// Default fixture file.
pub const DEFAULT_FIXTURE: &str = "bench-fixture.json";

/// Load tests for Discord-compatible servers, through the public REST API and Gateway v10.
#[derive(Debug, Parser)]
#[command(name = "bench", version, about)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: Global,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args, Serialize)]
pub struct Global {
    /// Server under test, `http://HOST:PORT`; scenarios default to the fixture's. The bench
    /// connects to this address (and to `--gateway` URLs) and nothing else.
    #[arg(long, global = true)]
    pub target: Option<String>,

    /// Fixture file written by `setup` and read by the scenarios.
    #[arg(long, global = true, default_value = DEFAULT_FIXTURE)]
    pub fixture: PathBuf,

    /// Also write the report, with HDR histogram data, to this JSON file.
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,

    /// Objectives, e.g. `p99<50ms,missing=0`; exit code 1 when one fails.
    #[arg(long, global = true)]
    pub slo: Option<String>,

    /// Sample this process's RSS and CPU once a second during the run.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,

    /// Worker processes for gateway sessions (default: one per 15 000 sessions).
    #[arg(long, global = true)]
    pub workers: Option<usize>,

    /// Length of the measured phase (after the sessions are up): 10s, 500ms, 2m.
    #[arg(long, global = true, value_parser = parse_duration, default_value = "10s")]
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,

    /// No progress output.
    #[arg(long, global = true)]
    pub quiet: bool,

    /// `User-Agent` of every HTTP request and gateway upgrade (default:
    /// `DiscordBot (URL, VERSION)`, as Discord's client libraries send); empty to send none.
    #[arg(long, global = true)]
    pub user_agent: Option<String>,
}

impl Global {
    /// The `User-Agent` to send, `None` when `--user-agent` is empty.
    pub fn user_agent(&self) -> Option<String> {
        match &self.user_agent {
            Some(given) if given.is_empty() => None,
            Some(given) => Some(given.clone()),
            None => Some(default_user_agent()),
        }
    }
}

/// `DiscordBot (URL, VERSION)`, the form Discord asks bots to send; the URL is the package's
/// repository when the manifest names one.
pub fn default_user_agent() -> String {
    let url = match env!("CARGO_PKG_REPOSITORY") {
        "" => env!("CARGO_PKG_NAME"),
        url => url,
    };
    format!("DiscordBot ({url}, {})", env!("CARGO_PKG_VERSION"))
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create accounts, bots, guilds and memberships through the REST API; write the fixture.
    Setup(SetupArgs),
    /// Open identified sessions at a rate and hold them with heartbeats.
    Connect(ConnectArgs),
    /// Sessions plus senders: check every MESSAGE_CREATE and its POST→delivery latency.
    Fanout(FanoutArgs),
    /// REST message POSTs at a concurrency: throughput, latency, errors, 429s.
    Post(PostArgs),
    /// Fan-out while a command runs (or sockets drop): who resumed, re-identified, was lost.
    Resume(ResumeArgs),
    /// Fixture files made by other means than `setup`.
    #[command(subcommand)]
    Fixture(FixtureCommand),
    /// Runs a slice of sessions for a parent bench process (internal).
    #[command(hide = true)]
    Worker,
}

/// `bench setup`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SetupArgs {
    /// Accounts to register.
    #[arg(long)]
    pub users: usize,
    /// Guilds to create.
    #[arg(long, default_value_t = 1)]
    pub guilds: usize,
    /// Members per guild, owner included (default: every user).
    #[arg(long)]
    pub members_per_guild: Option<usize>,
    /// Applications (bots) to create, owned by the first users.
    #[arg(long, default_value_t = 0)]
    pub bots: usize,
    /// Requests in flight (registration hashes passwords, so keep it modest).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Prefix of every name created (default: random).
    #[arg(long)]
    pub prefix: Option<String>,
    /// JSON object merged into every registration body, for servers that ask more than
    /// `username` and `password` (e.g. `{"consent":true,"date_of_birth":"2000-01-01"}`);
    /// `{username}` in a string value becomes the account's username.
    #[arg(long, value_parser = parse_json_object)]
    pub register_extra: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `bench fixture ...`.
#[derive(Debug, Subcommand)]
pub enum FixtureCommand {
    /// Completes a hand-written file of tokens (see bench/README.md) from the server's answers
    /// (`/users/@me`, `/users/@me/guilds`, guild channels) and writes the fixture.
    Import(ImportArgs),
}

/// `bench fixture import`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ImportArgs {
    /// The hand-written file.
    pub file: PathBuf,
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// Session options shared by the gateway scenarios.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SessionOpts {
    /// Sessions to open (default: one per fixture user); users are reused round-robin when
    /// there are more sessions than users.
    #[arg(long)]
    pub sessions: Option<usize>,
    /// Transport compression.
    #[arg(long, value_enum, default_value_t = Compress::None)]
    pub compress: Compress,
    /// Identify intents: a number or names, e.g. `GUILDS,GUILD_MESSAGES,MESSAGE_CONTENT`.
    #[arg(long, value_parser = parse_intents, default_value_t = DEFAULT_INTENTS)]
    pub intents: u64,
    /// Source addresses for the workers' sockets, comma-separated (default: 127.0.0.(k+1)
    /// for worker k when the target is loopback).
    #[arg(long)]
    pub source_addrs: Option<String>,
    /// Gateway URL(s) to use instead of asking `GET /gateway`, comma-separated (worker k uses
    /// URL k mod n, e.g. one per router of a cluster); each must point at the target.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Longest wait from socket open to the last GUILD_CREATE.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    #[serde(serialize_with = "seconds")]
    pub ready_timeout: Duration,
    /// Also identify the fixture's bots (round-robin with the users).
    #[arg(long)]
    pub with_bots: bool,
}

/// `bench connect`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ConnectArgs {
    /// Session options.
    #[command(flatten)]
    pub session: SessionOpts,
    /// Sessions opened per second, over all workers (0 = as fast as possible).
    #[arg(long, value_parser = parse_rate, default_value = "500")]
    pub rate: f64,
}

/// `bench fanout`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct FanoutArgs {
    /// Session options.
    #[command(flatten)]
    pub session: SessionOpts,
    /// Sessions opened per second, over all workers (0 = as fast as possible).
    #[arg(long, value_parser = parse_rate, default_value = "500")]
    pub connect_rate: f64,
    /// Messages posted per second, over all senders.
    #[arg(long, value_parser = parse_rate, default_value = "20")]
    pub rate: f64,
    /// POSTs in flight at most.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// One guild (the fixture's largest), every session a member: report the latency of each
    /// message's last recipient. Implied when the fixture has one guild.
    #[arg(long)]
    pub large_guild: bool,
    /// Extra wait for deliveries after the last POST (2 s are always waited).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    #[serde(serialize_with = "seconds")]
    pub drain: Duration,
}

/// `bench post`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct PostArgs {
    /// Concurrent request loops.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Cap on requests per second over all loops (default: none).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
}

/// `bench resume`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ResumeArgs {
    /// Fan-out options.
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// When, after the senders start, to run the command and drop sockets.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    #[serde(serialize_with = "seconds")]
    pub at: Duration,
    /// Shell command run once at `--at` (with `sh -c`), e.g. to kill or restart the server.
    #[arg(long)]
    pub command: Option<String>,
    /// Share of ready sessions whose sockets the bench cuts at `--at` without a close frame,
    /// as a network drop would (0..=1).
    #[arg(long, default_value_t = 0.0)]
    pub drop_fraction: f64,
    /// How long a session keeps trying to resume (or identify again) after losing its socket.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    #[serde(serialize_with = "seconds")]
    pub reconnect_window: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Parses `10s`, `500ms`, `2m`, `1h`, `250us`; a bare number is seconds.
///
/// # Errors
/// When the text is not a non-negative number with one of those units.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..split]
        .parse()
        .with_context(|| format!("`{text}` is not a duration"))?;
    let scale = match &text[split..] {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" => 60.0,
        "h" => 3600.0,
        unit => bail!("unknown unit `{unit}` in `{text}` (us, ms, s, m, h)"),
    };
    Duration::try_from_secs_f64(number * scale).with_context(|| format!("`{text}` is out of range"))
}

/// Parses `100` or `100/s`.
///
/// # Errors
/// When the text is not a non-negative number.
pub fn parse_rate(text: &str) -> anyhow::Result<f64> {
    let number = text.trim().trim_end_matches("/s");
    let rate: f64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a rate"))?;
    if !rate.is_finite() || rate < 0.0 {
        bail!("`{text}` is not a rate");
    }
    Ok(rate)
}

/// Parses a JSON object.
///
/// # Errors
/// When the text is not JSON or not an object.
pub fn parse_json_object(text: &str) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(text).with_context(|| format!("`{text}` is not JSON"))? {
        serde_json::Value::Object(map) => Ok(map),
        _ => bail!("`{text}` is not a JSON object"),
    }
}

/// Gateway intent names and their bits.
const INTENTS: [(&str, u32); 21] = [
    ("GUILDS", 0),
    ("GUILD_MEMBERS", 1),
    ("GUILD_MODERATION", 2),
    ("GUILD_EXPRESSIONS", 3),
    ("GUILD_INTEGRATIONS", 4),
    ("GUILD_WEBHOOKS", 5),
    ("GUILD_INVITES", 6),
    ("GUILD_VOICE_STATES", 7),
    ("GUILD_PRESENCES", 8),
    ("GUILD_MESSAGES", 9),
    ("GUILD_MESSAGE_REACTIONS", 10),
    ("GUILD_MESSAGE_TYPING", 11),
    ("DIRECT_MESSAGES", 12),
    ("DIRECT_MESSAGE_REACTIONS", 13),
    ("DIRECT_MESSAGE_TYPING", 14),
    ("MESSAGE_CONTENT", 15),
    ("GUILD_SCHEDULED_EVENTS", 16),
    ("AUTO_MODERATION_CONFIGURATION", 20),
    ("AUTO_MODERATION_EXECUTION", 21),
    ("GUILD_MESSAGE_POLLS", 24),
    ("DIRECT_MESSAGE_POLLS", 25),
];

/// Parses intents as a number or as names joined by `,` or `|`.
///
/// # Errors
/// Names an unknown intent.
pub fn parse_intents(text: &str) -> anyhow::Result<u64> {
    if let Ok(bits) = text.trim().parse::<u64>() {
        return Ok(bits);
    }
    text.split([',', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .try_fold(0u64, |bits, name| {
            let upper = name.to_ascii_uppercase();
            let (_, bit) = INTENTS
                .iter()
                .find(|(known, _)| *known == upper)
                .with_context(|| format!("unknown intent `{name}`"))?;
            Ok(bits | (1 << bit))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn value_parsers() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert_eq!(parse_rate("100/s").unwrap(), 100.0);
        assert!(parse_rate("-1").is_err());
        assert_eq!(
            parse_intents("GUILDS,GUILD_MESSAGES,MESSAGE_CONTENT").unwrap(),
            DEFAULT_INTENTS
        );
        assert_eq!(parse_intents("513").unwrap(), 513);
        assert!(parse_intents("GUILDS|NOPE").is_err());
        assert_eq!(
            parse_json_object(r#"{"consent": true}"#).unwrap()["consent"],
            true
        );
        assert!(parse_json_object("[1]").is_err());
        assert!(parse_json_object("{").is_err());
    }

    #[test]
    fn user_agent_defaults_to_the_discord_form() {
        let cli = Cli::try_parse_from(["bench", "connect"]).unwrap();
        let agent = cli.global.user_agent().unwrap();
        assert!(
            agent.starts_with("DiscordBot (") && agent.ends_with(')'),
            "{agent}"
        );
        assert!(agent.contains(env!("CARGO_PKG_VERSION")));
        let cli = Cli::try_parse_from(["bench", "connect", "--user-agent", ""]).unwrap();
        assert_eq!(cli.global.user_agent(), None);
        let cli = Cli::try_parse_from([
            "bench",
            "fixture",
            "import",
            "f.json",
            "--user-agent",
            "x/1",
        ])
        .unwrap();
        assert_eq!(cli.global.user_agent().as_deref(), Some("x/1"));
        assert!(matches!(
            cli.command,
            Command::Fixture(FixtureCommand::Import(_))
        ));
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "bench",
            "fanout",
            "--target",
            "http://127.0.0.1:1",
            "--rate",
            "5/s",
            "--duration",
            "3s",
            "--slo",
            "missing=0",
        ])
        .unwrap();
        assert_eq!(cli.global.duration, Duration::from_secs(3));
        let Command::Fanout(args) = cli.command else {
            panic!("fanout")
        };
        assert_eq!(args.rate, 5.0);
    }
}
