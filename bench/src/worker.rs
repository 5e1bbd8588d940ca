//! Worker processes: the parent re-executes its own binary as `bench worker` once per slice of
//! sessions, so that sessions spread over several processes (each with its own open-file
//! limit) and source addresses.
//!
//! Protocol, one JSON object per line: the parent writes a [`Plan`] then [`WorkerCommand`]s on
//! the worker's stdin; the worker writes [`WorkerEvent`]s on its stdout — a [`Tick`] every
//! second (cumulative counters, the last second's histograms), `ramp_done` once every session
//! got ready or failed, and a [`WorkerResult`] after `finish`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{interval, Instant, MissedTickBehavior};

use crate::delivery::{self, DeliveryCheck, Posted};
use crate::gateway::{run_session, Compress, Control, SessionRecord, Settings, Shared};
use crate::stats::{Hist, Tally};
use crate::target::GatewayUrl;

/// Time between ticks.
const TICK: Duration = Duration::from_secs(1);
/// How often a worker checks whether its ramp is over.
const RAMP_POLL: Duration = Duration::from_millis(100);

/// One session to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionSpec {
    /// Global index (the session's identity in reports).
    pub index: u64,
    /// Identify token.
    pub token: String,
}

/// What a worker runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Worker number.
    pub worker: usize,
    /// Run id: this run's messages start with `bench <run_id> `.
    pub run_id: String,
    /// Where to identify.
    pub gateway: GatewayUrl,
    /// The target's addresses.
    pub allowed: Vec<IpAddr>,
    /// Local address for this worker's sockets.
    pub source: Option<IpAddr>,
    /// Transport compression.
    pub compress: Compress,
    /// Identify intents.
    pub intents: u64,
    /// Sessions opened per second by this worker (0 = all at once).
    pub connect_rate: f64,
    /// Longest wait from socket open to the last GUILD_CREATE, ms.
    pub ready_timeout_ms: u64,
    /// Reconnect window after a lost socket, ms; `None` = lost sockets stay lost.
    pub reconnect_window_ms: Option<u64>,
    /// `User-Agent` of every upgrade request.
    pub user_agent: Option<String>,
    /// The sessions.
    pub sessions: Vec<SessionSpec>,
}

/// A command from the parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum WorkerCommand {
    /// Cut a fraction of the ready sessions' sockets.
    Drop {
        /// Share of sessions, 0..=1.
        fraction: f64,
        /// Distinguishes successive drops.
        round: u32,
    },
    /// Close every session, check deliveries against `posted`, report.
    Finish {
        /// Every message the parent posted successfully.
        posted: Vec<Posted>,
    },
}

/// Once-a-second progress.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tick {
    /// Counters so far.
    pub counters: Tally,
    /// Sessions ready and connected now.
    pub open: i64,
    /// Sessions whose first attempt ended.
    pub settled: u64,
    /// Delivery latencies of the last second.
    pub delivery: String,
    /// READY latencies of the last second.
    pub ready: String,
}

/// A worker's final figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    /// Counters.
    pub counters: Tally,
    /// Sessions that never got ready, by reason.
    pub failures: Tally,
    /// Close codes received.
    pub closes: Tally,
    /// Why ready sessions lost their socket.
    pub disconnects: Tally,
    /// Sessions by outcome.
    pub outcomes: Tally,
    /// Histograms (HDR V2, base64) by name.
    pub histograms: BTreeMap<String, String>,
    /// (message id, slowest latency here in µs).
    pub last_recipient: Vec<(u64, u64)>,
    /// Delivery check.
    pub check: DeliveryCheck,
}

/// What a worker writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// Progress.
    Tick(Tick),
    /// Every session got ready or failed.
    RampDone,
    /// The end.
    Final(Box<WorkerResult>),
}

/// Raises this process's open-file soft limit to its hard limit.
pub fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        let _ = setrlimit(Resource::Nofile, raised);
    }
}

/// `bench worker`: reads a plan on stdin, runs it, reports on stdout.
///
/// # Errors
/// When the plan is missing or malformed, or stdout goes away.
pub async fn serve() -> anyhow::Result<()> {
    raise_open_file_limit();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let first = lines
        .next_line()
        .await?
        .context("no plan on stdin (`bench worker` is started by the other subcommands)")?;
    let plan: Plan = serde_json::from_str(&first).context("malformed plan")?;
    let (control_tx, control) = watch::channel(Control::Run);
    let settings = Settings {
        gateway: plan.gateway.clone(),
        allowed: plan.allowed.clone(),
        source: plan.source,
        compress: plan.compress,
        intents: plan.intents,
        ready_timeout: Duration::from_millis(plan.ready_timeout_ms),
        reconnect_window: plan.reconnect_window_ms.map(Duration::from_millis),
        content_prefix: format!("bench {} ", plan.run_id),
        user_agent: plan.user_agent.clone(),
    };
    let shared = Arc::new(Shared::new(settings, control.clone()));
    let (events, outbox) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_events(outbox));
    let total = plan.sessions.len();
    let ramp = tokio::spawn(ramp(
        shared.clone(),
        plan.sessions,
        plan.connect_rate,
        control,
    ));
    let ticker = tokio::spawn(tick(shared.clone(), events.clone(), total));

    let mut posted = Vec::new();
    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str::<WorkerCommand>(&line).context("malformed command")? {
            WorkerCommand::Drop { fraction, round } => {
                let _ = control_tx.send(Control::Drop { fraction, round });
            }
            WorkerCommand::Finish { posted: list } => {
                posted = list;
                break;
            }
        }
    }
    let _ = control_tx.send(Control::Finish);
    let sessions = ramp.await.context("ramp task")?;
    let mut records: Vec<SessionRecord> = Vec::with_capacity(sessions.len());
    for session in sessions {
        records.push(session.await.context("session task")?);
    }
    ticker.abort();
    let stats = &shared.stats;
    let mut outcomes = Tally::new();
    for record in &records {
        *outcomes
            .entry(record.outcome.name().to_owned())
            .or_default() += 1;
    }
    let histograms = [
        ("ready", &stats.ready),
        ("guilds", &stats.guilds),
        ("delivery", &stats.delivery),
        ("resume", &stats.resume),
    ]
    .into_iter()
    .map(|(name, hist)| (name.to_owned(), hist.total().encode()))
    .collect();
    let lock = |m: &std::sync::Mutex<Tally>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let result = WorkerResult {
        counters: stats.counters.snapshot(),
        failures: lock(&stats.failures),
        closes: lock(&stats.closes),
        disconnects: lock(&stats.disconnects),
        outcomes,
        histograms,
        last_recipient: stats.last_recipient.drain(),
        check: delivery::check(&records, &posted),
    };
    let _ = events.send(WorkerEvent::Final(Box::new(result)));
    drop(events);
    writer.await.context("stdout writer")??;
    Ok(())
}

/// Starts the sessions at `rate` per second; stops starting them on finish.
async fn ramp(
    shared: Arc<Shared>,
    sessions: Vec<SessionSpec>,
    rate: f64,
    control: watch::Receiver<Control>,
) -> Vec<JoinHandle<SessionRecord>> {
    let mut handles = Vec::with_capacity(sessions.len());
    let mut pace = (rate > 0.0).then(|| {
        let mut pace = interval(Duration::from_secs_f64(1.0 / rate));
        pace.set_missed_tick_behavior(MissedTickBehavior::Burst);
        pace
    });
    for spec in sessions {
        if *control.borrow() == Control::Finish {
            // Unstarted sessions still settle, so the parent's ramp wait ends.
            shared.stats.settled.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if let Some(pace) = pace.as_mut() {
            pace.tick().await;
        }
        handles.push(tokio::spawn(run_session(
            shared.clone(),
            spec.index,
            spec.token,
        )));
    }
    handles
}

async fn tick(shared: Arc<Shared>, events: mpsc::UnboundedSender<WorkerEvent>, total: usize) {
    let stats = &shared.stats;
    let mut poll = interval(RAMP_POLL);
    let mut next_tick = Instant::now() + TICK;
    let mut ramp_done = false;
    loop {
        poll.tick().await;
        let settled = stats.settled.load(Ordering::Relaxed);
        let ramp_over = !ramp_done && settled >= total;
        // The ramp's last tick goes out with its end, so the parent's figures are current.
        if ramp_over || Instant::now() >= next_tick {
            next_tick = Instant::now() + TICK;
            let tick = Tick {
                counters: stats.counters.snapshot(),
                open: stats.open.load(Ordering::Relaxed),
                settled: settled as u64,
                delivery: stats.delivery.take_interval().encode(),
                ready: stats.ready.take_interval().encode(),
            };
            if events.send(WorkerEvent::Tick(tick)).is_err() {
                return;
            }
        }
        if ramp_over {
            ramp_done = true;
            let _ = events.send(WorkerEvent::RampDone);
        }
    }
}

async fn write_events(mut outbox: mpsc::UnboundedReceiver<WorkerEvent>) -> anyhow::Result<()> {
    let mut stdout = tokio::io::stdout();
    while let Some(event) = outbox.recv().await {
        let mut line = serde_json::to_vec(&event)?;
        line.push(b'\n');
        stdout.write_all(&line).await?;
        stdout.flush().await?;
    }
    Ok(())
}

/// The parent's handle on its workers.
#[derive(Debug)]
pub struct Pool {
    stdins: Vec<ChildStdin>,
    children: Vec<Child>,
    events: mpsc::UnboundedReceiver<(usize, Option<WorkerEvent>)>,
}

impl Pool {
    /// Starts one worker per plan.
    ///
    /// # Errors
    /// When the binary cannot be re-executed or given its plan.
    pub async fn spawn(plans: Vec<Plan>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the bench binary")?;
        let (tx, events) = mpsc::unbounded_channel();
        let mut stdins = Vec::new();
        let mut children = Vec::new();
        for (k, plan) in plans.into_iter().enumerate() {
            let mut child = Command::new(&exe)
                .arg("worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("starting worker {k}"))?;
            let mut stdin = child.stdin.take().context("worker stdin")?;
            let stdout = child.stdout.take().context("worker stdout")?;
            let mut line = serde_json::to_vec(&plan)?;
            line.push(b'\n');
            stdin
                .write_all(&line)
                .await
                .with_context(|| format!("handing worker {k} its plan"))?;
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<WorkerEvent>(&line) {
                        Ok(event) => {
                            let _ = tx.send((k, Some(event)));
                        }
                        Err(error) => {
                            eprintln!("bench: worker {k} wrote an unreadable line: {error}")
                        }
                    }
                }
                let _ = tx.send((k, None));
            });
            stdins.push(stdin);
            children.push(child);
        }
        Ok(Self {
            stdins,
            children,
            events,
        })
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.stdins.len()
    }

    /// Whether there are no workers.
    pub fn is_empty(&self) -> bool {
        self.stdins.is_empty()
    }

    /// Sends `command` to every worker.
    ///
    /// # Errors
    /// When a worker's stdin is closed.
    pub async fn broadcast(&mut self, command: &WorkerCommand) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(command)?;
        line.push(b'\n');
        for (k, stdin) in self.stdins.iter_mut().enumerate() {
            stdin
                .write_all(&line)
                .await
                .with_context(|| format!("writing to worker {k}"))?;
            stdin.flush().await?;
        }
        Ok(())
    }

    /// The next event of any worker: `(worker, None)` when its output ended.
    pub async fn next(&mut self) -> Option<(usize, Option<WorkerEvent>)> {
        self.events.recv().await
    }

    /// Waits for every worker to exit.
    ///
    /// # Errors
    /// When a worker exited with a failure.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        drop(std::mem::take(&mut self.stdins));
        for (k, child) in self.children.iter_mut().enumerate() {
            let status = child.wait().await?;
            if !status.success() {
                bail!("worker {k} exited with {status}");
            }
        }
        Ok(())
    }
}

/// Merges workers' histograms of one name.
pub fn merge_hist(results: &[WorkerResult], name: &str) -> anyhow::Result<Hist> {
    let mut merged = Hist::new();
    for result in results {
        if let Some(text) = result.histograms.get(name) {
            merged.add(&Hist::decode(text)?);
        }
    }
    Ok(merged)
}
