//! One task per socket: HELLO, heartbeats, the command budget, Identify/Resume routing, and
//! writing the session's frames through the connection's compression context.
//!
//! The task `select!`s over the next client message (read from the socket in the same task; see
//! `reader`), the session's close signal, its outgoing frames, the heartbeat deadline, the idle
//! timer and shutdown.

mod frames;
mod rate_limit;
mod reader;

use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use concord_core::gateway::payload::incoming::{ClientFrame, RequestGuildMembers};
use concord_core::gateway::{OpCode, MAX_CLIENT_PAYLOAD};
use concord_core::json;
use concord_core::token::TokenKey;
use fastwebsockets::{Frame, OpCode as WsOpCode, Payload, Role, WebSocket, WebSocketWrite};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, timeout, Duration, Instant, Sleep};
use tracing::{debug, field, info_span, Instrument};

use crate::compression::{Compression, Transport, IDLE_RELEASE};
use crate::config::ShardConfig;
use crate::error::{close_reason, Error, Result};
use crate::frame::{self, OutFrame};
use crate::link::{LinkClient, Opened, ToShard};
use crate::metrics;
use crate::op::{authorize_identify_data, authorize_resume_data};
use crate::routing::{SessionHost, SessionRouter};
use crate::session::{Control, Link, Session};
use crate::shard::Shard;
use rate_limit::CommandBudget;
use reader::{Inbound, MessageReader};

/// Frames written per wake-up before flushing, so a busy session coalesces its writes.
const WRITE_BATCH: usize = 64;
/// Largest frame copied into the writer's buffer rather than written with writev.
const WRITE_COPY_LIMIT: usize = 256;
/// How long to wait for the client's close frame after sending ours.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// How long a shard process may take to answer a linked Identify or Resume: a bot's Identify
/// may wait up to 15 s for its concurrency bucket, then loads its guilds.
const LINKED_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// A connection number unique in this process (connections and linked sessions share them).
pub(crate) fn next_connection_id() -> u64 {
    NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed)
}

/// What the client asked for in the connection URL's query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectParams {
    /// `v`, when present.
    pub version: Option<String>,
    /// `encoding`, when present (`json` is the only one served).
    pub encoding: Option<String>,
    /// `compress`.
    pub compression: Compression,
}

/// What every connection shares: how to find shards, the settings, the token key and the
/// shutdown signal (`true` = tell clients to reconnect).
#[derive(Clone)]
pub struct ConnectionContext {
    /// Finds the shard for Identify and Resume.
    pub router: Arc<dyn SessionRouter>,
    /// Heartbeat, compression and queue settings.
    pub config: Arc<ShardConfig>,
    /// Verifies client tokens before routing.
    pub tokens: TokenKey,
    /// Flips to `true` when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for ConnectionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionContext")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Serves one upgraded WebSocket until it closes.
pub async fn serve<S>(ws: WebSocket<S>, params: ConnectParams, context: ConnectionContext)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = next_connection_id();
    let span = info_span!(
        "gateway_session",
        conn = id,
        shard = field::Empty,
        session = field::Empty,
        user = field::Empty
    );
    async move {
        ::metrics::gauge!(metrics::CONNECTIONS).increment(1.0);
        let (read, write) = tokio::io::split(ws.into_inner());
        // fastwebsockets writes; reading is `frames`' job (see there for why). The read half
        // this makes is dropped at once.
        let (_, mut write) =
            fastwebsockets::after_handshake_split(tokio::io::empty(), write, Role::Server);
        // Frames above this go out with writev instead of through a copy buffer that would
        // keep the size of the largest small frame for the connection's life.
        write.set_writev_threshold(WRITE_COPY_LIMIT);
        let transport = Transport::new(params.compression, &context.config);
        let now = Instant::now();
        let mut connection = Connection {
            id,
            heartbeat: Box::pin(sleep_until(now + context.config.heartbeat_timeout())),
            budget: CommandBudget::new(now),
            context,
            writer: write,
            transport: Transport::Plain,
            json: Vec::new(),
            reader: MessageReader::new(read),
            bound: None,
            frames: None,
            control: None,
            grace: None,
            idle_timer: Box::pin(sleep_until(now)),
            idle_armed: false,
            last_output: now,
        };
        let end = match transport {
            Ok(transport) => {
                connection.transport = transport;
                connection.run(&params).await
            }
            Err(error) => Err(error),
        };
        Box::pin(connection.finish(end)).await;
        ::metrics::gauge!(metrics::CONNECTIONS).decrement(1.0);
    }
    .instrument(span)
    .await;
}

/// How a connection ended without a server error.
enum End {
    /// The client sent a close frame.
    ClientClosed(Option<u16>),
    /// The socket ended without one.
    Dropped,
}

/// A session this connection serves.
enum Bound {
    /// In a shard of this process.
    Local {
        shard: Arc<Shard>,
        session: Arc<Session>,
    },
    /// In another process, reached over the link to it as connection `id`.
    Remote(Arc<LinkClient>),
}

struct Connection<S> {
    id: u64,
    context: ConnectionContext,
    writer: WebSocketWrite<WriteHalf<S>>,
    transport: Transport,
    /// Scratch buffer for frames being written.
    json: Vec<u8>,
    reader: MessageReader<ReadHalf<S>>,
    /// Fires when the client has been silent too long (4009); reset by each heartbeat.
    heartbeat: Pin<Box<Sleep>>,
    budget: CommandBudget,
    bound: Option<Bound>,
    frames: Option<mpsc::Receiver<OutFrame>>,
    control: Option<oneshot::Receiver<Control>>,
    /// When the server closes after having sent op 7.
    grace: Option<Instant>,
    /// Checks whether output has stopped for [`IDLE_RELEASE`], so that the connection can give
    /// back its write buffers and compression context. Timers live as long as the connection
    /// and are re-armed lazily: a timer made and dropped per loop turn cost two timer-wheel
    /// operations per delivered event.
    idle_timer: Pin<Box<Sleep>>,
    idle_armed: bool,
    last_output: Instant,
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn run(&mut self, params: &ConnectParams) -> Result<End> {
        let interval =
            u64::try_from(self.context.config.heartbeat_interval.as_millis()).unwrap_or(u64::MAX);
        self.send_now(&frame::hello(interval)).await?;
        if params.version.as_deref().is_some_and(|v| v != "10") {
            return Err(Error::InvalidApiVersion);
        }
        if params.encoding.as_deref().is_some_and(|e| e != "json") {
            return Err(Error::UnsupportedEncoding);
        }
        let mut watch = self.context.shutdown.clone();
        if *watch.borrow_and_update() {
            self.begin_reconnect().await?;
        }
        // One future for the connection's life: a `changed()` per loop turn registered and
        // removed a waiter on the shared watch for every delivered event.
        let shutdown = async move {
            let _ = watch.wait_for(|down| *down).await;
        };
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                control = next_control(&mut self.control) => match control {
                    Some(Control::Close(error)) => return Err(error),
                    None => self.control = None,
                },
                // Boxed, like the other rare paths below: an idle connection's task holds only
                // the select, not room for an Identify's or a resume's state.
                inbound = self.reader.next() => {
                    if let Some(end) = Box::pin(self.on_inbound(inbound)).await? {
                        return Ok(end);
                    }
                }
                frame = next_frame(&mut self.frames) => match frame {
                    Some(frame) => within(self.write_limit(), self.write_queued(frame)).await?,
                    // The session let go of this connection; its control message says why.
                    None => self.frames = None,
                },
                () = &mut self.heartbeat => return Err(Error::HeartbeatTimeout),
                () = &mut shutdown, if self.grace.is_none() => {
                    Box::pin(self.begin_reconnect()).await?;
                }
                () = sleep_until_or_pending(self.grace) => return Err(Error::Reconnect),
                () = &mut self.idle_timer, if self.idle_armed => self.on_idle_timer(),
            }
        }
    }

    /// Sends op 7 and closes after the grace period unless the client leaves first.
    async fn begin_reconnect(&mut self) -> Result<()> {
        self.send_now(frame::RECONNECT).await?;
        self.grace = Some(Instant::now() + self.context.config.reconnect_grace);
        Ok(())
    }

    async fn on_inbound(&mut self, inbound: Inbound) -> Result<Option<End>> {
        match inbound {
            Inbound::Message(payload) => self.on_payload(payload).await.map(|()| None),
            Inbound::TooLarge => Err(Error::PayloadTooLarge),
            Inbound::Malformed => Err(Error::Decode),
            Inbound::Ping(data) => {
                let limit = self.write_limit();
                within(limit, async {
                    self.writer
                        .write_frame(Frame::pong(Payload::Owned(data)))
                        .await?;
                    self.flush().await
                })
                .await?;
                Ok(None)
            }
            Inbound::Close(code) => Ok(Some(End::ClientClosed(code))),
            Inbound::Gone => Ok(Some(End::Dropped)),
        }
    }

    async fn on_payload(&mut self, mut payload: Vec<u8>) -> Result<()> {
        if payload.len() > MAX_CLIENT_PAYLOAD {
            return Err(Error::PayloadTooLarge);
        }
        let now = Instant::now();
        if !self.budget.spend(now) {
            return Err(Error::RateLimited);
        }
        // Decoding reuses the buffer; a payload that may be forwarded over a link is kept.
        let raw = (!matches!(self.bound, Some(Bound::Local { .. }))).then(|| payload.clone());
        let command: ClientFrame = json::from_slice(&mut payload).map_err(|_| Error::Decode)?;
        match command.op {
            op if op == OpCode::Heartbeat as i64 => {
                let deadline = now + self.context.config.heartbeat_timeout();
                self.heartbeat.as_mut().reset(deadline);
                match (&self.bound, command.d.as_u64()) {
                    (Some(Bound::Local { session, .. }), Some(seq)) => session.acknowledge(seq),
                    (Some(Bound::Remote(link)), Some(seq)) => {
                        link.send(ToShard::Ack { conn: self.id, seq })
                    }
                    _ => {}
                }
                self.send_now(frame::HEARTBEAT_ACK).await
            }
            op if op == OpCode::Identify as i64 => self.on_identify(command.d, raw).await,
            op if op == OpCode::Resume as i64 => self.on_resume(command.d, raw).await,
            op if op == OpCode::RequestGuildMembers as i64 => match &self.bound {
                Some(Bound::Local { shard, session }) => {
                    let request: RequestGuildMembers =
                        serde_json::from_value(command.d).map_err(|_| Error::Decode)?;
                    shard.request_guild_members(session, request).await
                }
                Some(Bound::Remote(link)) => {
                    // Checked here too, so a malformed request closes with the same code.
                    serde_json::from_value::<RequestGuildMembers>(command.d)
                        .map_err(|_| Error::Decode)?;
                    link.send(ToShard::Command {
                        conn: self.id,
                        payload: raw.unwrap_or_default(),
                    });
                    Ok(())
                }
                None => Err(Error::NotAuthenticated),
            },
            op if [
                OpCode::PresenceUpdate,
                OpCode::VoiceStateUpdate,
                OpCode::RequestSoundboardSounds,
                OpCode::RequestChannelInfo,
            ]
            .iter()
            .any(|known| *known as i64 == op) =>
            {
                // Accepted and ignored: closing would break libraries that send them.
                if self.bound.is_none() {
                    return Err(Error::NotAuthenticated);
                }
                Ok(())
            }
            op => Err(Error::UnknownOpcode(op)),
        }
    }

    async fn on_identify(&mut self, data: serde_json::Value, raw: Option<Vec<u8>>) -> Result<()> {
        if self.bound.is_some() {
            return Err(Error::AlreadyAuthenticated);
        }
        let (claims, identify) = authorize_identify_data(&self.context.tokens, data)?;
        let host = self
            .context
            .router
            .route_identify(claims.user_id)
            .ok_or(Error::NoLiveShard)?;
        let shard = match host {
            SessionHost::Local(shard) => shard,
            SessionHost::Remote(link) => return self.link_to(link, false, raw).await,
        };
        let link = self.new_link();
        let started = Instant::now();
        let (session, first) = shard.identify(claims, &identify, link).await?;
        ::metrics::histogram!(metrics::IDENTIFY_SECONDS).record(started.elapsed().as_secs_f64());
        debug!(guilds = first.len().saturating_sub(1), "identified");
        self.bound = Some(Bound::Local { shard, session });
        self.write_all(&first).await
    }

    /// Serves the session through the link to the process holding its slot: forwards the
    /// Identify or Resume and waits for the answer, then writes what it carries.
    async fn link_to(
        &mut self,
        link: Arc<LinkClient>,
        resume: bool,
        raw: Option<Vec<u8>>,
    ) -> Result<()> {
        let payload = raw.ok_or(Error::Decode)?;
        let lost = || Error::Cluster(format!("link to node {} lost", link.node()));
        let attachment = link
            .attach(self.id, self.context.config.outgoing_capacity)
            .ok_or_else(lost)?;
        self.frames = Some(attachment.frames);
        self.control = Some(attachment.control);
        let conn = self.id;
        link.send(if resume {
            ToShard::Resume { conn, payload }
        } else {
            ToShard::Identify { conn, payload }
        });
        let answer = match timeout(LINKED_OPEN_TIMEOUT, attachment.opened).await {
            Ok(answer) => answer.map_err(|_| lost())?,
            Err(_) => {
                link.detach(conn);
                // The shard drops the session if it comes up after all.
                link.send(ToShard::Release { conn, keep: false });
                return Err(Error::Cluster(format!(
                    "node {} did not answer in time",
                    link.node()
                )));
            }
        };
        match answer {
            Opened::Live(frames) => {
                self.bound = Some(Bound::Remote(link));
                self.write_all(&frames).await
            }
            Opened::Invalid => {
                link.detach(conn);
                self.frames = None;
                self.control = None;
                self.send_now(frame::INVALID_SESSION).await
            }
            Opened::Refused(code) => Err(Error::ClosedByServer(code)),
        }
    }

    async fn on_resume(&mut self, data: serde_json::Value, raw: Option<Vec<u8>>) -> Result<()> {
        if self.bound.is_some() {
            return Err(Error::AlreadyAuthenticated);
        }
        let (claims, resume, id) = authorize_resume_data(&self.context.tokens, data)?;
        let host = id.and_then(|id| self.context.router.route_resume(id));
        let resumed = match host {
            Some(SessionHost::Remote(link)) => return self.link_to(link, true, raw).await,
            Some(SessionHost::Local(shard)) => {
                let link = self.new_link();
                shard
                    .resume(claims, &resume, link)
                    .await?
                    .map(|(session, replay)| (shard, session, replay))
            }
            None => None,
        };
        match resumed {
            Some((shard, session, replay)) => {
                debug!(replayed = replay.len().saturating_sub(1), "resumed");
                self.bound = Some(Bound::Local { shard, session });
                self.write_all(&replay).await
            }
            None => {
                self.frames = None;
                self.control = None;
                self.send_now(frame::INVALID_SESSION).await
            }
        }
    }

    /// A fresh link for a session; replaces any previous receivers.
    fn new_link(&mut self) -> Link {
        let (frames, frames_rx) = mpsc::channel(self.context.config.outgoing_capacity.max(1));
        let (control, control_rx) = oneshot::channel();
        self.frames = Some(frames_rx);
        self.control = Some(control_rx);
        Link::local(self.id, frames, control)
    }

    /// Writes one queued frame and whatever else is already queued, then flushes once.
    async fn write_queued(&mut self, first: OutFrame) -> Result<()> {
        self.write_frame(&first).await?;
        for _ in 1..WRITE_BATCH {
            let Some(next) = self.frames.as_mut().and_then(|rx| rx.try_recv().ok()) else {
                break;
            };
            self.write_frame(&next).await?;
        }
        self.flush().await?;
        self.release_scratch();
        Ok(())
    }

    /// Writes READY's or a resume's burst. Each frame gets its own bound, so a slow but
    /// reading client may take as long as the burst needs.
    async fn write_all(&mut self, frames: &[OutFrame]) -> Result<()> {
        let limit = self.write_limit();
        for frame in frames {
            within(limit, self.write_frame(frame)).await?;
        }
        within(limit, self.flush()).await?;
        self.release_scratch();
        Ok(())
    }

    fn release_scratch(&mut self) {
        frame::release_excess(&mut self.json);
        self.transport.release_excess();
    }

    /// Sends one payload and flushes it.
    async fn send_now(&mut self, json: &[u8]) -> Result<()> {
        let limit = self.write_limit();
        within(limit, async {
            self.send(json).await?;
            self.flush().await
        })
        .await
    }

    /// How long one write may wait for the peer to read: a peer that reads nothing for a
    /// whole heartbeat timeout is as gone as one that stops heartbeating, and without a bound
    /// a peer that keeps its socket open but never reads would hold this task forever.
    fn write_limit(&self) -> Duration {
        self.context.config.heartbeat_timeout()
    }

    async fn write_frame(&mut self, frame: &OutFrame) -> Result<()> {
        frame.write_json(&mut self.json);
        send_payload(&mut self.writer, &mut self.transport, &self.json).await
    }

    async fn send(&mut self, json: &[u8]) -> Result<()> {
        send_payload(&mut self.writer, &mut self.transport, json).await
    }

    async fn flush(&mut self) -> Result<()> {
        self.last_output = Instant::now();
        if !self.idle_armed && (self.json.capacity() > 0 || self.transport.holds_idle_memory()) {
            self.idle_timer
                .as_mut()
                .reset(self.last_output + IDLE_RELEASE);
            self.idle_armed = true;
        }
        self.writer.flush().await.map_err(Error::from)
    }

    /// Most connections are idle most of the time: after [`IDLE_RELEASE`] without output they
    /// keep no write buffer and no deflate context (the next payload rebuilds what it needs).
    fn on_idle_timer(&mut self) {
        let quiet_since = self.last_output + IDLE_RELEASE;
        if Instant::now() < quiet_since {
            self.idle_timer.as_mut().reset(quiet_since);
            return;
        }
        self.idle_armed = false;
        self.json = Vec::new();
        self.transport.release_idle();
    }

    /// Sends the close frame (if any), waits briefly for the client's, and releases the session.
    async fn finish(mut self, end: Result<End>) {
        let keep = match &end {
            Ok(End::ClientClosed(code)) => {
                // Echo the client's code when it is one that may appear on the wire.
                let reply = match code {
                    Some(code @ (1000..=1003 | 1007..=1014 | 3000..=4999)) => {
                        Frame::close(*code, b"")
                    }
                    _ => Frame::close_raw(Payload::Owned(Vec::new())),
                };
                let _ = timeout(CLOSE_LINGER, async {
                    self.writer.write_frame(reply).await?;
                    self.flush().await
                })
                .await;
                let normal = matches!(code, Some(1000 | 1001));
                metrics::closed(if normal {
                    "client_normal"
                } else {
                    "client_other"
                });
                !normal
            }
            Ok(End::Dropped) => {
                metrics::closed("dropped");
                true
            }
            Err(error) => {
                if let Some(code) = error.close_code() {
                    debug!(code, %error, "closing");
                    metrics::closed(metrics::code_label(code));
                    let close = Frame::close(code, close_reason(code).as_bytes());
                    let sent = timeout(CLOSE_LINGER, async {
                        self.writer.write_frame(close).await?;
                        self.flush().await
                    })
                    .await;
                    if matches!(sent, Ok(Ok(()))) {
                        self.linger().await;
                    }
                } else {
                    debug!(%error, "socket failed");
                    metrics::closed("dropped");
                }
                error.keeps_session()
            }
        };
        match self.bound.take() {
            Some(Bound::Local { shard, session }) => shard.release(&session, self.id, keep).await,
            Some(Bound::Remote(link)) => {
                link.detach(self.id);
                link.send(ToShard::Release {
                    conn: self.id,
                    keep,
                });
            }
            None => {}
        }
    }

    /// Waits for the client's close frame (or the end of the socket) so that the server's
    /// close frame is not lost to a reset caused by unread client data.
    async fn linger(&mut self) {
        let deadline = Instant::now() + CLOSE_LINGER;
        while let Ok(inbound) = timeout(
            deadline.saturating_duration_since(Instant::now()),
            self.reader.next(),
        )
        .await
        {
            if matches!(inbound, Inbound::Close(_) | Inbound::Gone) {
                return;
            }
        }
    }
}

/// Encodes `json` through the connection's compression and writes it as one message.
async fn send_payload<W>(
    writer: &mut WebSocketWrite<W>,
    transport: &mut Transport,
    json: &[u8],
) -> Result<()>
where
    W: AsyncWrite + Unpin,
{
    let (binary, bytes) = transport.encode(json)?;
    let opcode = if binary {
        WsOpCode::Binary
    } else {
        WsOpCode::Text
    };
    writer
        .write_frame(Frame::new(true, opcode, None, Payload::Borrowed(bytes)))
        .await?;
    Ok(())
}

/// Runs a write, failing with [`Error::HeartbeatTimeout`] when it takes longer than `limit`.
async fn within(limit: Duration, write: impl Future<Output = Result<()>>) -> Result<()> {
    timeout(limit, write)
        .await
        .map_err(|_| Error::HeartbeatTimeout)?
}

async fn next_frame(rx: &mut Option<mpsc::Receiver<OutFrame>>) -> Option<OutFrame> {
    match rx {
        Some(rx) => rx.recv().await,
        None => pending().await,
    }
}

async fn next_control(rx: &mut Option<oneshot::Receiver<Control>>) -> Option<Control> {
    match rx {
        Some(rx) => rx.await.ok(),
        None => pending().await,
    }
}

async fn sleep_until_or_pending(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionId;
    use crate::task::AbortOnDrop;
    use concord_core::id::UserId;

    /// A gateway with no shards: enough for connections that never identify.
    struct NoShards;

    impl SessionRouter for NoShards {
        fn route_identify(&self, _: UserId) -> Option<SessionHost> {
            None
        }

        fn route_resume(&self, _: SessionId) -> Option<SessionHost> {
            None
        }
    }

    fn context() -> (ConnectionContext, watch::Sender<bool>) {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let context = ConnectionContext {
            router: Arc::new(NoShards),
            config: Arc::new(ShardConfig::default()),
            tokens: TokenKey::new(&[7u8; 32]),
            shutdown,
        };
        (context, shutdown_tx)
    }

    /// Heartbeat timeout, the close frame's bound, and a margin.
    fn give_up_by() -> Duration {
        ShardConfig::default().heartbeat_timeout() + CLOSE_LINGER * 2 + Duration::from_secs(1)
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_reads_cannot_hold_the_connection_task() {
        // Not even HELLO fits in what the peer leaves unread.
        let (peer, server) = tokio::io::duplex(16);
        let (context, _shutdown) = context();
        let task = tokio::spawn(serve(
            WebSocket::after_handshake(server, Role::Server),
            ConnectParams::default(),
            context,
        ));
        timeout(give_up_by(), task)
            .await
            .expect("a blocked HELLO ends the connection")
            .unwrap();
        drop(peer);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_heartbeats_but_stops_reading_cannot_hold_the_connection_task() {
        let (peer, server) = tokio::io::duplex(256);
        let (context, _shutdown) = context();
        let task = tokio::spawn(serve(
            WebSocket::after_handshake(server, Role::Server),
            ConnectParams::default(),
            context,
        ));
        let mut peer = WebSocket::after_handshake(peer, Role::Client);
        let hello = peer.read_frame().await.unwrap();
        assert_eq!(hello.opcode, WsOpCode::Text);
        // More ACKs than the unread space holds: the server blocks writing one of them.
        let _heartbeats = AbortOnDrop(tokio::spawn(async move {
            for _ in 0..20 {
                let beat = Frame::text(Payload::Borrowed(br#"{"op":1,"d":null}"#));
                if peer.write_frame(beat).await.is_err() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        }));
        timeout(give_up_by(), task)
            .await
            .expect("a blocked ACK ends the connection")
            .unwrap();
    }

    #[test]
    fn a_connection_task_stays_small() {
        // Every socket's task is allocated at this size for its whole life; the rare, deep
        // paths (Identify, resume, close) are boxed so that they do not count here.
        let (_peer, server) = tokio::io::duplex(16);
        let (context, _shutdown) = context();
        let task = serve(
            WebSocket::after_handshake(server, Role::Server),
            ConnectParams::default(),
            context,
        );
        let size = std::mem::size_of_val(&task);
        assert!(size <= 3 * 1024, "the connection future takes {size} bytes");
    }
}
