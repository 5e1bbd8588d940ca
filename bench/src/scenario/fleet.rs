//! The parent's view of its worker processes: starts them with their slice of sessions,
//! follows their ticks for the status line, relays commands, and merges their final reports.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use anyhow::bail;
use tokio::time::{sleep_until, Instant};

use super::{Ctx, Gateways};
use crate::cli::SessionOpts;
use crate::delivery::{DeliveryCheck, Posted};
use crate::stats::{merge_tally, Hist, Tally};
use crate::target::source_addrs;
use crate::worker::{
    merge_hist, Plan, Pool, SessionSpec, Tick, WorkerCommand, WorkerEvent, WorkerResult,
};

/// Time between status line updates.
const STATUS_EVERY: Duration = Duration::from_millis(500);
/// Span the status line's rates are measured over (ticks come once a second).
const RATE_WINDOW: Duration = Duration::from_secs(3);
/// Longest wait for the workers' final reports after `finish`.
const FINISH_TIMEOUT: Duration = Duration::from_secs(120);

/// Every worker's final figures, merged.
#[derive(Debug)]
pub struct FleetResult {
    /// Counters by name.
    pub counters: Tally,
    /// Sessions that never got ready, by reason.
    pub failures: Tally,
    /// Close codes received.
    pub closes: Tally,
    /// Why ready sessions lost their socket.
    pub disconnects: Tally,
    /// Sessions by outcome.
    pub outcomes: Tally,
    /// `ready`, `guilds`, `delivery`, `resume` and `last_recipient`.
    pub hists: BTreeMap<String, Hist>,
    /// Delivery check.
    pub check: DeliveryCheck,
    /// Worker processes used.
    pub workers: usize,
}

impl FleetResult {
    /// A counter's total.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// Worker processes holding sessions.
#[derive(Debug)]
pub struct Fleet {
    pool: Pool,
    ticks: Vec<Tick>,
    last_delivery: Vec<Hist>,
    ramp_done: Vec<bool>,
    finals: Vec<Option<WorkerResult>>,
    sessions: usize,
    /// (when, ready, deliveries) over the last [`RATE_WINDOW`].
    rate_window: VecDeque<(Instant, u64, u64)>,
}

impl Fleet {
    /// Starts the workers, splitting `specs` round-robin between them; worker k connects to
    /// gateway URL k mod n.
    ///
    /// # Errors
    /// When the source addresses are invalid or a worker cannot start.
    pub async fn launch(
        ctx: &Ctx,
        opts: &SessionOpts,
        gateways: Gateways,
        specs: Vec<SessionSpec>,
        connect_rate: f64,
        reconnect_window: Option<Duration>,
    ) -> anyhow::Result<Self> {
        let sessions = specs.len();
        let workers = ctx.workers_for(sessions);
        let sources = source_addrs(opts.source_addrs.as_deref(), &ctx.target, workers)?;
        let mut slices: Vec<Vec<SessionSpec>> = (0..workers).map(|_| Vec::new()).collect();
        for (i, spec) in specs.into_iter().enumerate() {
            slices[i % workers].push(spec);
        }
        let plans = slices
            .into_iter()
            .enumerate()
            .map(|(k, sessions)| Plan {
                worker: k,
                run_id: ctx.run_id.clone(),
                gateway: gateways.urls[k % gateways.urls.len().max(1)].clone(),
                allowed: gateways.allowed.clone(),
                source: sources[k],
                compress: opts.compress,
                intents: opts.intents,
                connect_rate: connect_rate / workers as f64,
                ready_timeout_ms: opts.ready_timeout.as_millis() as u64,
                reconnect_window_ms: reconnect_window.map(|w| w.as_millis() as u64),
                user_agent: ctx.global.user_agent(),
                sessions,
            })
            .collect();
        let pool = Pool::spawn(plans).await?;
        Ok(Self {
            pool,
            ticks: vec![Tick::default(); workers],
            last_delivery: vec![Hist::new(); workers],
            ramp_done: vec![false; workers],
            finals: (0..workers).map(|_| None).collect(),
            sessions,
            rate_window: VecDeque::new(),
        })
    }

    /// A counter summed over the workers' latest ticks.
    pub fn counter(&self, name: &str) -> u64 {
        self.ticks
            .iter()
            .map(|t| t.counters.get(name).copied().unwrap_or(0))
            .sum()
    }

    /// Sessions ready and connected now.
    pub fn open(&self) -> i64 {
        self.ticks.iter().map(|t| t.open).sum()
    }

    fn handle(&mut self, worker: usize, event: Option<WorkerEvent>) -> anyhow::Result<()> {
        match event {
            Some(WorkerEvent::Tick(tick)) => {
                if let Ok(hist) = Hist::decode(&tick.delivery) {
                    self.last_delivery[worker] = hist;
                }
                self.ticks[worker] = tick;
            }
            Some(WorkerEvent::RampDone) => self.ramp_done[worker] = true,
            Some(WorkerEvent::Final(result)) => self.finals[worker] = Some(*result),
            None => {
                if self.finals[worker].is_none() {
                    bail!("worker {worker} ended without a report (see its messages above)");
                }
            }
        }
        Ok(())
    }

    /// The fleet's part of the status line, with rates over the last few seconds.
    fn status(&mut self) -> String {
        let now = Instant::now();
        let ready = self.counter("ready");
        let deliveries = self.counter("deliveries");
        self.rate_window.push_back((now, ready, deliveries));
        while self
            .rate_window
            .front()
            .is_some_and(|(at, ..)| now.duration_since(*at) > RATE_WINDOW)
        {
            self.rate_window.pop_front();
        }
        let (at, ready_before, deliveries_before) = self.rate_window[0];
        let elapsed = now.duration_since(at).as_secs_f64().max(1e-3);
        let mut last = Hist::new();
        for hist in &self.last_delivery {
            last.add(hist);
        }
        let mut line = format!(
            "sessions {ready}/{} ready, {} open, {} failed | {:.0} conn/s",
            self.sessions,
            self.open(),
            self.counter("connect_failures"),
            ready.saturating_sub(ready_before) as f64 / elapsed,
        );
        if deliveries > 0 {
            line.push_str(&format!(
                " | {:.0} deliveries/s, p99 {:.1} ms",
                deliveries.saturating_sub(deliveries_before) as f64 / elapsed,
                last.quantile(0.99) as f64 / 1000.0
            ));
        }
        line
    }

    /// Follows the workers until `until`, updating the status line (plus `extra`).
    ///
    /// # Errors
    /// When a worker dies.
    pub async fn run_until(
        &mut self,
        until: Instant,
        ctx: &Ctx,
        extra: &dyn Fn() -> String,
    ) -> anyhow::Result<()> {
        self.run_while(until, ctx, extra, |_| true).await
    }

    /// Follows the workers until `until` or until `go_on` says stop.
    async fn run_while(
        &mut self,
        until: Instant,
        ctx: &Ctx,
        extra: &dyn Fn() -> String,
        go_on: impl Fn(&Self) -> bool,
    ) -> anyhow::Result<()> {
        let mut next_status = Instant::now();
        while go_on(self) {
            tokio::select! {
                event = self.pool.next() => match event {
                    Some((worker, event)) => self.handle(worker, event)?,
                    None => bail!("every worker went away"),
                },
                () = sleep_until(next_status) => {
                    next_status += STATUS_EVERY;
                    let line = format!("{}{}", self.status(), extra());
                    ctx.progress.status(line);
                }
                () = sleep_until(until) => return Ok(()),
            }
        }
        Ok(())
    }

    /// Waits until every session got ready or failed (at most `timeout`); returns whether
    /// they all settled.
    ///
    /// # Errors
    /// When a worker dies.
    pub async fn wait_ramp(&mut self, timeout: Duration, ctx: &Ctx) -> anyhow::Result<bool> {
        self.run_while(Instant::now() + timeout, ctx, &String::new, |fleet| {
            !fleet.ramp_done.iter().all(|done| *done)
        })
        .await?;
        Ok(self.ramp_done.iter().all(|done| *done))
    }

    /// Waits until no session is between a lost socket and its return (at most until
    /// `until`): every ready session is open again or lost for good.
    ///
    /// # Errors
    /// When a worker dies.
    pub async fn wait_reconnected(&mut self, until: Instant, ctx: &Ctx) -> anyhow::Result<()> {
        // Ticks lag by up to a second: let the last disruption show in them first.
        self.run_until(
            Instant::now() + Duration::from_millis(1500),
            ctx,
            &String::new,
        )
        .await?;
        self.run_while(until, ctx, &String::new, |fleet| {
            let settled = fleet.open() + fleet.counter("lost") as i64;
            settled < fleet.counter("ready") as i64
        })
        .await
    }

    /// Sends a command to every worker.
    ///
    /// # Errors
    /// When a worker's stdin is gone.
    pub async fn broadcast(&mut self, command: &WorkerCommand) -> anyhow::Result<()> {
        self.pool.broadcast(command).await
    }

    /// Tells the workers to finish, checking deliveries against `posted`, and merges their
    /// reports.
    ///
    /// # Errors
    /// When a worker dies or does not report in time.
    pub async fn finish(mut self, posted: Vec<Posted>, ctx: &Ctx) -> anyhow::Result<FleetResult> {
        self.pool
            .broadcast(&WorkerCommand::Finish { posted })
            .await?;
        let deadline = Instant::now() + FINISH_TIMEOUT;
        self.run_while(deadline, ctx, &String::new, |fleet| {
            fleet.finals.iter().any(Option::is_none)
        })
        .await?;
        if self.finals.iter().any(Option::is_none) {
            bail!("workers did not report within {FINISH_TIMEOUT:?}");
        }
        let workers = self.pool.len();
        let finals: Vec<WorkerResult> = self.finals.drain(..).flatten().collect();
        self.pool.wait().await?;

        let mut result = FleetResult {
            counters: Tally::new(),
            failures: Tally::new(),
            closes: Tally::new(),
            disconnects: Tally::new(),
            outcomes: Tally::new(),
            hists: BTreeMap::new(),
            check: DeliveryCheck::default(),
            workers,
        };
        for name in ["ready", "guilds", "delivery", "resume"] {
            result
                .hists
                .insert(name.to_owned(), merge_hist(&finals, name)?);
        }
        let mut slowest: HashMap<u64, u64> = HashMap::new();
        for worker in finals {
            merge_tally(&mut result.counters, &worker.counters);
            merge_tally(&mut result.failures, &worker.failures);
            merge_tally(&mut result.closes, &worker.closes);
            merge_tally(&mut result.disconnects, &worker.disconnects);
            merge_tally(&mut result.outcomes, &worker.outcomes);
            for (id, micros) in worker.last_recipient {
                let slot = slowest.entry(id).or_insert(0);
                *slot = (*slot).max(micros);
            }
            result.check.merge(worker.check);
        }
        let mut last = Hist::new();
        for micros in slowest.values() {
            last.record(*micros);
        }
        result.hists.insert("last_recipient".to_owned(), last);
        Ok(result)
    }
}
