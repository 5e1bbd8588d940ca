//! One gateway session's life: open, HELLO, Identify, READY and the GUILD_CREATE of each guild
//! READY lists as unavailable (a bot's; a user account's READY carries its guilds whole), hold with
//! heartbeats while recording deliveries, and — when the scenario allows — come back after a
//! lost socket with Resume (or a fresh Identify after op 9), within a reconnect window.
//!
//! What the session saw is kept in a [`SessionRecord`]: its guilds, the wall-clock windows in
//! which it was entitled to every message of those guilds, the windows it lost, and the ids
//! of the bench's messages it received.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::time::{sleep, sleep_until, Instant};

use super::payload::{self, Envelope, IdOnly, MessageCreate, Ready};
use super::shared::{drop_selected, Control, Outcome, SessionRecord, Shared, WorkerStats};
use super::socket::{self, Inbound, Socket};
use crate::clock::{micros_between, unix_nanos};
use crate::stats::{bump, Counter};
use crate::target::GatewayUrl;

/// Longest wait for HELLO after the upgrade.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for RESUMED after sending Resume.
const RESUME_TIMEOUT: Duration = Duration::from_secs(30);
/// First and longest pause between reconnect attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Close codes after which Discord clients do not reconnect.
const FATAL_CLOSE_CODES: [u16; 6] = [4004, 4010, 4011, 4012, 4013, 4014];
/// Sent when the bench leaves a socket it intends to resume (1000/1001 would end the session).
const CLOSE_FOR_RESUME: u16 = 4000;

/// Why a socket (or a wait on it) ended.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Closed(Option<u16>),
    Failed(&'static str),
    Zombie,
    Timeout,
    /// Op 7.
    Reconnect,
    /// Op 9 with its `d`.
    Invalid(bool),
    Dropped,
    Finish,
}

impl End {
    fn kind(&self) -> String {
        match self {
            Self::Closed(Some(code)) => format!("close_{code}"),
            Self::Closed(None) => "close_without_code".to_owned(),
            Self::Failed(kind) => (*kind).to_owned(),
            Self::Zombie => "no_heartbeat_ack".to_owned(),
            Self::Timeout => "timeout".to_owned(),
            Self::Reconnect => "op7_reconnect".to_owned(),
            Self::Invalid(_) => "op9_invalid_session".to_owned(),
            Self::Dropped => "dropped_by_bench".to_owned(),
            Self::Finish => "finished".to_owned(),
        }
    }

    fn fatal(&self) -> bool {
        matches!(self, Self::Closed(Some(code)) if FATAL_CLOSE_CODES.contains(code))
    }
}

/// What a payload meant for the session's flow.
enum Event {
    Nothing,
    Hello(Duration),
    Ready {
        session_id: String,
        resume_url: Option<String>,
        guilds: Vec<u64>,
        /// Guilds READY lists as unavailable: their GUILD_CREATE is still to come.
        unavailable: Vec<u64>,
    },
    GuildCreate(u64),
    Resumed,
    Reconnect,
    Invalid(bool),
}

enum Next {
    Payload(Vec<u8>),
    Ended(End),
}

/// How a session came back.
enum Rejoin {
    Resumed,
    Reidentified { ready_at: u64 },
}

#[derive(Debug)]
struct Heartbeat {
    interval: Duration,
    next: Instant,
    acked: bool,
}

struct Session {
    shared: Arc<Shared>,
    token: String,
    control: watch::Receiver<Control>,
    session_id: Option<String>,
    resume_url: Option<GatewayUrl>,
    last_seq: Option<u64>,
    heartbeat: Option<Heartbeat>,
    record: SessionRecord,
    resumes: u32,
    reidentifies: u32,
}

/// Runs session `index` with `token` until the parent says finish; returns what it saw.
pub async fn run_session(shared: Arc<Shared>, index: u64, token: String) -> SessionRecord {
    let control = shared.control.clone();
    let mut session = Session {
        shared: shared.clone(),
        token,
        control,
        session_id: None,
        resume_url: None,
        last_seq: None,
        heartbeat: None,
        record: SessionRecord {
            index,
            ..SessionRecord::default()
        },
        resumes: 0,
        reidentifies: 0,
    };
    let stats = &shared.stats;
    stats.counters.incr(Counter::ConnectAttempts);
    let first = session
        .connect_and_identify(&shared.settings.gateway, true)
        .await;
    stats.settled.fetch_add(1, Ordering::Relaxed);
    let mut socket = match first {
        Ok((socket, ready_at)) => {
            stats.counters.incr(Counter::Ready);
            session.record.live.push((ready_at, u64::MAX));
            socket
        }
        Err(kind) => {
            stats.counters.incr(Counter::ConnectFailures);
            bump(&stats.failures, kind);
            return session.record;
        }
    };
    stats.open.fetch_add(1, Ordering::Relaxed);
    loop {
        let end = session.hold(&mut socket).await;
        if end == End::Finish {
            socket.close(1000).await;
            session.finish(unix_nanos());
            return session.record;
        }
        let away_at = unix_nanos();
        stats.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(live) = session.record.live.last_mut() {
            live.1 = away_at;
        }
        if end == End::Dropped {
            stats.counters.incr(Counter::Dropped);
            drop(socket);
        } else {
            stats.counters.incr(Counter::Disconnects);
            bump(&stats.disconnects, end.kind());
            if end == End::Reconnect {
                socket.close(CLOSE_FOR_RESUME).await;
            } else {
                drop(socket);
            }
        }
        if end.fatal() || shared.settings.reconnect_window.is_none() {
            session.lose(away_at);
            return session.record;
        }
        match session.come_back(&end).await {
            Some((new_socket, rejoin)) => {
                socket = new_socket;
                stats.open.fetch_add(1, Ordering::Relaxed);
                match rejoin {
                    Rejoin::Resumed => {
                        session.resumes += 1;
                        if let Some(live) = session.record.live.last_mut() {
                            live.1 = u64::MAX;
                        }
                    }
                    Rejoin::Reidentified { ready_at } => {
                        session.reidentifies += 1;
                        stats.counters.incr(Counter::Reidentified);
                        session.record.away.push((away_at, ready_at));
                        session.record.live.push((ready_at, u64::MAX));
                    }
                }
            }
            None => {
                session.lose(away_at);
                return session.record;
            }
        }
    }
}

impl Session {
    fn stats(&self) -> &WorkerStats {
        &self.shared.stats
    }

    fn finish(&mut self, at: u64) {
        self.stats().open.fetch_sub(1, Ordering::Relaxed);
        if let Some(live) = self.record.live.last_mut() {
            if live.1 == u64::MAX {
                live.1 = at;
            }
        }
        self.record.outcome = if self.reidentifies > 0 {
            Outcome::Reidentified
        } else if self.resumes > 0 {
            Outcome::Resumed
        } else {
            Outcome::Held
        };
    }

    fn lose(&mut self, at: u64) {
        self.stats().counters.incr(Counter::Lost);
        self.record.away.push((at, u64::MAX));
        self.record.outcome = Outcome::Lost;
    }

    /// Opens a socket to `url`, waits for HELLO, identifies and waits for every GUILD_CREATE.
    /// Returns the socket and when READY arrived (unix ns).
    async fn connect_and_identify(
        &mut self,
        url: &GatewayUrl,
        first: bool,
    ) -> Result<(Socket, u64), String> {
        let opened = Instant::now();
        let deadline = opened + self.shared.settings.ready_timeout;
        let mut socket = socket::open(
            url,
            self.shared.settings.dial(),
            self.stats().counters.clone(),
        )
        .await?;
        self.wait_hello(&mut socket, deadline).await?;
        let ready_at = self.identify(&mut socket, opened, deadline, first).await?;
        Ok((socket, ready_at))
    }

    async fn wait_hello(&mut self, socket: &mut Socket, deadline: Instant) -> Result<(), String> {
        self.heartbeat = None;
        let deadline = deadline.min(Instant::now() + HELLO_TIMEOUT);
        loop {
            match self.next(socket, Some(deadline), false).await {
                Next::Payload(bytes) => {
                    if let Event::Hello(interval) = self
                        .on_payload(socket, &bytes)
                        .await
                        .map_err(|e| e.kind())?
                    {
                        let jitter: f64 = rand::thread_rng().gen_range(0.0..1.0);
                        self.heartbeat = Some(Heartbeat {
                            interval,
                            next: Instant::now() + interval.mul_f64(jitter),
                            acked: true,
                        });
                        return Ok(());
                    }
                }
                Next::Ended(End::Timeout) => return Err("hello_timeout".to_owned()),
                Next::Ended(end) => return Err(end.kind()),
            }
        }
    }

    /// Sends Identify and waits for READY and the GUILD_CREATE of each guild it lists as
    /// unavailable; returns READY's arrival.
    async fn identify(
        &mut self,
        socket: &mut Socket,
        opened: Instant,
        deadline: Instant,
        first: bool,
    ) -> Result<u64, String> {
        self.last_seq = None;
        socket
            .send_text(payload::identify(&self.token, self.shared.settings.intents))
            .await
            .map_err(|()| "write_failed".to_owned())?;
        let mut pending: Option<HashSet<u64>> = None;
        let mut ready_at = 0;
        let key = self.record.index as usize;
        loop {
            let bytes = match self.next(socket, Some(deadline), false).await {
                Next::Payload(bytes) => bytes,
                Next::Ended(End::Timeout) => {
                    return Err(if pending.is_some() {
                        "guild_create_timeout".to_owned()
                    } else {
                        "ready_timeout".to_owned()
                    })
                }
                Next::Ended(end) => return Err(end.kind()),
            };
            match self
                .on_payload(socket, &bytes)
                .await
                .map_err(|e| e.kind())?
            {
                Event::Ready {
                    session_id,
                    resume_url,
                    guilds,
                    unavailable,
                } => {
                    ready_at = unix_nanos();
                    if first {
                        self.stats()
                            .ready
                            .record(key, opened.elapsed().as_micros() as u64);
                    }
                    self.session_id = Some(session_id);
                    self.resume_url = match resume_url {
                        Some(raw) => self.shared.resume_url(&raw).await,
                        None => None,
                    };
                    self.record.guilds = guilds;
                    // A complete guild in READY needs no GUILD_CREATE (Discord sends a user
                    // account's guilds that way); an unavailable one does.
                    pending = Some(unavailable.into_iter().collect());
                }
                Event::GuildCreate(id) => {
                    if let Some(pending) = pending.as_mut() {
                        pending.remove(&id);
                    }
                }
                Event::Invalid(_) => return Err("op9_invalid_session".to_owned()),
                Event::Reconnect => return Err("op7_reconnect".to_owned()),
                _ => {}
            }
            if pending.as_ref().is_some_and(HashSet::is_empty) {
                if first {
                    self.stats()
                        .guilds
                        .record(key, opened.elapsed().as_micros() as u64);
                }
                return Ok(ready_at);
            }
        }
    }

    /// Serves a ready session until its socket ends or the parent says finish.
    async fn hold(&mut self, socket: &mut Socket) -> End {
        loop {
            match self.next(socket, None, true).await {
                Next::Payload(bytes) => match self.on_payload(socket, &bytes).await {
                    Ok(Event::Reconnect) => {
                        self.stats().counters.incr(Counter::ServerReconnects);
                        return End::Reconnect;
                    }
                    Ok(Event::Invalid(resumable)) => return End::Invalid(resumable),
                    Ok(_) => {}
                    Err(end) => return end,
                },
                Next::Ended(end) => return end,
            }
        }
    }

    /// Comes back after losing the socket: Resume when there is a session to resume, else (or
    /// after op 9) Identify again; retries with backoff within the reconnect window.
    async fn come_back(&mut self, why: &End) -> Option<(Socket, Rejoin)> {
        let window = self.shared.settings.reconnect_window?;
        let deadline = Instant::now() + window;
        let lost_at = Instant::now();
        let mut resumable = self.session_id.is_some()
            && !matches!(why, End::Invalid(false) | End::Closed(Some(4007 | 4009)));
        let mut backoff = BACKOFF_MIN;
        let mut attempt = 0u32;
        let key = self.record.index as usize;
        while Instant::now() < deadline {
            if attempt > 0 {
                let pause = backoff.mul_f64(rand::thread_rng().gen_range(0.5..1.0));
                if self.pause(pause).await {
                    return None;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            attempt += 1;
            if *self.control.borrow() == Control::Finish {
                return None;
            }
            if !resumable {
                let gateway = self.shared.settings.gateway.clone();
                match self.connect_and_identify(&gateway, false).await {
                    Ok((socket, ready_at)) => {
                        return Some((socket, Rejoin::Reidentified { ready_at }))
                    }
                    Err(kind) if kind == "finished" => return None,
                    Err(_) => continue,
                }
            }
            let url = self
                .resume_url
                .clone()
                .unwrap_or_else(|| self.shared.settings.gateway.clone());
            let Ok(mut socket) = socket::open(
                &url,
                self.shared.settings.dial(),
                self.stats().counters.clone(),
            )
            .await
            else {
                continue;
            };
            if self
                .wait_hello(&mut socket, Instant::now() + HELLO_TIMEOUT)
                .await
                .is_err()
            {
                continue;
            }
            let session_id = self.session_id.clone().unwrap_or_default();
            self.stats().counters.incr(Counter::ResumeAttempts);
            if socket
                .send_text(payload::resume(&self.token, &session_id, self.last_seq))
                .await
                .is_err()
            {
                continue;
            }
            let resume_deadline = Instant::now() + RESUME_TIMEOUT;
            loop {
                let bytes = match self.next(&mut socket, Some(resume_deadline), false).await {
                    Next::Payload(bytes) => bytes,
                    Next::Ended(End::Finish) => return None,
                    Next::Ended(End::Closed(Some(4007 | 4009))) => {
                        resumable = false;
                        break;
                    }
                    Next::Ended(_) => break,
                };
                match self.on_payload(&mut socket, &bytes).await {
                    Ok(Event::Resumed) => {
                        self.stats().counters.incr(Counter::Resumed);
                        self.stats()
                            .resume
                            .record(key, lost_at.elapsed().as_micros() as u64);
                        return Some((socket, Rejoin::Resumed));
                    }
                    Ok(Event::Invalid(_)) => {
                        // Discord asks for a 1–5 s pause before identifying again.
                        resumable = false;
                        let pause = Duration::from_millis(rand::thread_rng().gen_range(1000..5000));
                        match self.idle(&mut socket, pause).await {
                            Ok(()) => {}
                            Err(End::Finish) => return None,
                            Err(_) => break,
                        }
                        let opened = Instant::now();
                        match self
                            .identify(
                                &mut socket,
                                opened,
                                opened + self.shared.settings.ready_timeout,
                                false,
                            )
                            .await
                        {
                            Ok(ready_at) => {
                                return Some((socket, Rejoin::Reidentified { ready_at }))
                            }
                            Err(kind) if kind == "finished" => return None,
                            Err(_) => break,
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        None
    }

    /// Keeps `socket` alive (heartbeats, replies) for `pause` without identifying.
    async fn idle(&mut self, socket: &mut Socket, pause: Duration) -> Result<(), End> {
        let until = Instant::now() + pause;
        loop {
            match self.next(socket, Some(until), false).await {
                Next::Payload(bytes) => {
                    self.on_payload(socket, &bytes).await?;
                }
                Next::Ended(End::Timeout) => return Ok(()),
                Next::Ended(end) => return Err(end),
            }
        }
    }

    /// Sleeps for `pause`; true when the parent said finish meanwhile.
    async fn pause(&mut self, pause: Duration) -> bool {
        let until = sleep(pause);
        tokio::pin!(until);
        loop {
            tokio::select! {
                () = &mut until => return false,
                changed = self.control.changed() => {
                    if changed.is_err() || *self.control.borrow_and_update() == Control::Finish {
                        return true;
                    }
                }
            }
        }
    }

    /// The next payload, serving heartbeats, protocol replies and parent commands meanwhile.
    async fn next(
        &mut self,
        socket: &mut Socket,
        deadline: Option<Instant>,
        droppable: bool,
    ) -> Next {
        loop {
            let beat_at = self.heartbeat.as_ref().map(|h| h.next);
            tokio::select! {
                biased;
                changed = self.control.changed() => {
                    if changed.is_err() {
                        return Next::Ended(End::Finish);
                    }
                    let control = self.control.borrow_and_update().clone();
                    match control {
                        Control::Finish => return Next::Ended(End::Finish),
                        Control::Drop { fraction, round }
                            if droppable && drop_selected(self.record.index, round, fraction) =>
                        {
                            return Next::Ended(End::Dropped);
                        }
                        _ => {}
                    }
                }
                inbound = socket.inbound.recv() => match inbound {
                    Some(Inbound::Payload(bytes)) => return Next::Payload(bytes),
                    Some(Inbound::Reply(opcode, data)) => {
                        let _ = socket.send(opcode, data).await;
                    }
                    Some(Inbound::Closed(code)) => {
                        bump(
                            &self.stats().closes,
                            code.map_or_else(|| "none".to_owned(), |c| c.to_string()),
                        );
                        return Next::Ended(End::Closed(code));
                    }
                    Some(Inbound::Failed(kind)) => return Next::Ended(End::Failed(kind)),
                    None => return Next::Ended(End::Failed("reader_gone")),
                },
                () = sleep_or_never(beat_at) => {
                    if let Some(end) = self.beat(socket).await {
                        return Next::Ended(end);
                    }
                }
                () = sleep_or_never(deadline) => return Next::Ended(End::Timeout),
            }
        }
    }

    /// Sends the due heartbeat; a zombie connection (previous beat not acknowledged) ends.
    async fn beat(&mut self, socket: &mut Socket) -> Option<End> {
        let heartbeat = self.heartbeat.as_mut()?;
        if !heartbeat.acked {
            self.shared.stats.counters.incr(Counter::Zombies);
            return Some(End::Zombie);
        }
        heartbeat.acked = false;
        heartbeat.next = Instant::now() + heartbeat.interval;
        self.shared.stats.counters.incr(Counter::HeartbeatsSent);
        socket
            .send_text(payload::heartbeat(self.last_seq))
            .await
            .err()
            .map(|()| End::Failed("write_failed"))
    }

    async fn on_payload(&mut self, socket: &mut Socket, bytes: &[u8]) -> Result<Event, End> {
        let envelope: Envelope<'_> =
            serde_json::from_slice(bytes).map_err(|_| End::Failed("bad_json"))?;
        let counters = &self.shared.stats.counters;
        match envelope.op {
            payload::OP_DISPATCH => {
                counters.incr(Counter::Dispatches);
                if let Some(s) = envelope.s {
                    if self.last_seq.is_some_and(|last| s != last + 1) {
                        counters.incr(Counter::SequenceGaps);
                        self.record.seq_gaps += 1;
                    }
                    self.last_seq = Some(s);
                }
                let data = envelope.d;
                Ok(match envelope.t.as_deref() {
                    Some("MESSAGE_CREATE") => {
                        if let Some(data) = data {
                            self.on_message(data);
                        }
                        Event::Nothing
                    }
                    Some("GUILD_CREATE") => match data.and_then(parse::<IdOnly<'_>>) {
                        Some(guild) => Event::GuildCreate(guild.id.parse().unwrap_or(0)),
                        None => Event::Nothing,
                    },
                    Some("READY") => {
                        let ready: Ready<'_> =
                            data.and_then(parse).ok_or(End::Failed("bad_ready"))?;
                        let id = |g: &payload::ReadyGuild<'_>| g.id.parse().ok();
                        Event::Ready {
                            session_id: ready.session_id,
                            resume_url: ready.resume_gateway_url,
                            guilds: ready.guilds.iter().filter_map(id).collect(),
                            unavailable: ready
                                .guilds
                                .iter()
                                .filter(|g| g.unavailable)
                                .filter_map(id)
                                .collect(),
                        }
                    }
                    Some("RESUMED") => Event::Resumed,
                    _ => Event::Nothing,
                })
            }
            payload::OP_HEARTBEAT => {
                // The server asks for a beat now; it does not change the schedule.
                counters.incr(Counter::HeartbeatsSent);
                if socket
                    .send_text(payload::heartbeat(self.last_seq))
                    .await
                    .is_err()
                {
                    return Err(End::Failed("write_failed"));
                }
                Ok(Event::Nothing)
            }
            payload::OP_HEARTBEAT_ACK => {
                counters.incr(Counter::HeartbeatAcks);
                if let Some(heartbeat) = self.heartbeat.as_mut() {
                    heartbeat.acked = true;
                }
                Ok(Event::Nothing)
            }
            payload::OP_HELLO => {
                let hello: payload::Hello =
                    envelope.d.and_then(parse).ok_or(End::Failed("bad_hello"))?;
                Ok(Event::Hello(Duration::from_millis(
                    hello.heartbeat_interval.max(1),
                )))
            }
            payload::OP_RECONNECT => Ok(Event::Reconnect),
            payload::OP_INVALID_SESSION => {
                counters.incr(Counter::InvalidSessions);
                let resumable = envelope.d.is_some_and(|d| d.get() == "true");
                Ok(Event::Invalid(resumable))
            }
            _ => Ok(Event::Nothing),
        }
    }

    fn on_message(&mut self, data: &RawValue) {
        let received_at = unix_nanos();
        let stats = &self.shared.stats;
        let Some(message) = parse::<MessageCreate<'_>>(data) else {
            return;
        };
        let Some((_, _, sent_at)) =
            payload::parse_content(&message.content, &self.shared.settings.content_prefix)
        else {
            stats.counters.incr(Counter::Foreign);
            return;
        };
        let Ok(id) = message.id.parse::<u64>() else {
            return;
        };
        let latency = micros_between(sent_at, received_at);
        stats.counters.incr(Counter::Deliveries);
        stats.delivery.record(self.record.index as usize, latency);
        stats.last_recipient.record(id, latency);
        self.record.received.push(id);
    }
}

fn parse<'a, T: Deserialize<'a>>(data: &'a RawValue) -> Option<T> {
    serde_json::from_str(data.get()).ok()
}

async fn sleep_or_never(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_close_codes_stop_reconnects() {
        assert!(End::Closed(Some(4004)).fatal());
        assert!(!End::Closed(Some(4000)).fatal());
        assert!(!End::Failed("eof").fatal());
        assert_eq!(End::Closed(Some(4009)).kind(), "close_4009");
    }
}
