//! The shard process's end of links: accept a router's link, check its ticket, and serve the
//! sessions of every client connection the router multiplexes over it.
//!
//! No task runs per session here: a session's frames go straight from the shard's fan-out into
//! the link's [`Outbox`], and the link's one reader task handles what the router forwards.
//! Identify, Resume and op 8 (which wait for storage) run on short-lived tasks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BytesMut;
use concord_core::gateway::payload::incoming::{ClientFrame, RequestGuildMembers};
use concord_core::gateway::OpCode;
use concord_core::json;
use concord_core::topology::NodeId;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Duration};
use tracing::{debug, field, info_span, Instrument};

use super::outbox::{Outbox, Refused};
use super::wire::{BodyEncoder, MessageReader, ToRouter, ToShard};
use super::{LinkTickets, MAX_PREAMBLE, PREAMBLE};
use crate::connection::{next_connection_id, ConnectionContext};
use crate::error::{Error, Result};
use crate::frame::OutFrame;
use crate::metrics;
use crate::op::{authorize_identify, authorize_resume};
use crate::routing::SessionHost;
use crate::session::{Link, RemoteSink, Session, SinkError};
use crate::shard::Shard;

/// How long a router has to present its ticket.
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames queued for a router before the sessions that add more are cut loose (they resume,
/// losing nothing: their frames stay in their replay buffers).
const OUTBOX_LIMIT: usize = 262_144;

/// Accepts links on `listener` until `shutdown` resolves. Each link whose ticket is valid for
/// `node` is served with `context` (whose router resolves only this process's slots); others
/// are dropped.
pub async fn serve_links(
    listener: TcpListener,
    node: NodeId,
    tickets: Arc<LinkTickets>,
    context: ConnectionContext,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                debug!(%error, "link accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let tickets = tickets.clone();
        let context = context.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            match timeout(PREAMBLE_TIMEOUT, read_preamble(tcp)).await {
                Ok(Some((tcp, ticket))) if tickets.verify(&ticket, node) => {
                    serve_link(tcp, context)
                        .instrument(info_span!("link", %peer))
                        .await;
                }
                _ => debug!(%peer, "link refused: bad preamble or ticket"),
            }
        });
    }
}

/// Reads `CONCORD-LINK/1 <ticket>\n`; the bytes after it stay in the returned stream.
async fn read_preamble(tcp: TcpStream) -> Option<(TcpStream, String)> {
    // Read byte-wise through a small buffer so that nothing past the newline is consumed.
    let mut reader = BufReader::with_capacity(1, tcp);
    let mut line = Vec::with_capacity(256);
    let mut limited = (&mut reader).take(MAX_PREAMBLE as u64);
    limited.read_until(b'\n', &mut line).await.ok()?;
    let ticket = line.strip_prefix(PREAMBLE)?.strip_suffix(b"\n")?;
    let ticket = String::from_utf8(ticket.to_vec()).ok()?;
    Some((reader.into_inner(), ticket))
}

/// A session served over the link.
struct Served {
    shard: Arc<Shard>,
    session: Arc<Session>,
    /// The session's link id in this process (router connection numbers are only unique per
    /// router).
    link_id: u64,
}

enum Entry {
    /// Identify or Resume still running; what the router sent meanwhile waits here.
    Opening(Vec<ToShard>),
    Open(Arc<Served>),
}

/// One router's link, as the sessions on it see it.
struct Peer {
    outbox: Outbox<ToRouter>,
    entries: Mutex<HashMap<u64, Entry>>,
    context: ConnectionContext,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").finish_non_exhaustive()
    }
}

impl RemoteSink for Peer {
    fn frame(&self, conn: u64, frame: OutFrame) -> std::result::Result<(), SinkError> {
        self.outbox
            .try_push(ToRouter::Frame { conn, frame })
            .map_err(|refused| match refused {
                Refused::Full => SinkError::Full,
                Refused::Closed => SinkError::Closed,
            })
    }

    fn opened(&self, conn: u64, frames: Vec<OutFrame>) {
        self.outbox.push(ToRouter::Opened { conn, frames });
    }

    fn close(&self, conn: u64, code: u16) {
        // The session let go of this connection; what the router sends for it from now on
        // (its Release) finds nothing.
        self.lock().remove(&conn);
        self.outbox.push(ToRouter::Close { conn, code });
    }
}

impl Peer {
    fn new(context: ConnectionContext) -> Arc<Self> {
        Arc::new(Self {
            outbox: Outbox::new(OUTBOX_LIMIT),
            entries: Mutex::new(HashMap::new()),
            context,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn handle(self: &Arc<Self>, message: ToShard) {
        let conn = match &message {
            ToShard::Identify { conn, .. }
            | ToShard::Resume { conn, .. }
            | ToShard::Ack { conn, .. }
            | ToShard::Command { conn, .. }
            | ToShard::Release { conn, .. } => *conn,
        };
        let resume = matches!(message, ToShard::Resume { .. });
        match message {
            ToShard::Identify { payload, .. } | ToShard::Resume { payload, .. } => {
                let mut entries = self.lock();
                if entries.contains_key(&conn) {
                    drop(entries);
                    self.refuse(conn, &Error::AlreadyAuthenticated);
                    return;
                }
                entries.insert(conn, Entry::Opening(Vec::new()));
                drop(entries);
                let peer = self.clone();
                let span = info_span!(
                    "gateway_session",
                    conn,
                    shard = field::Empty,
                    session = field::Empty,
                    user = field::Empty
                );
                tokio::spawn(peer.open(conn, resume, payload).instrument(span));
            }
            other => {
                let served = match self.lock().get_mut(&conn) {
                    Some(Entry::Opening(waiting)) => {
                        waiting.push(other);
                        return;
                    }
                    Some(Entry::Open(served)) => served.clone(),
                    None => return,
                };
                self.apply(conn, &served, other);
            }
        }
    }

    /// Runs an Identify or Resume for `conn` and attaches the session to this link.
    async fn open(self: Arc<Self>, conn: u64, resume: bool, payload: Vec<u8>) {
        let link_id = next_connection_id();
        let opened = if resume {
            self.resume(conn, link_id, payload).await
        } else {
            let started = tokio::time::Instant::now();
            let opened = self.identify(conn, link_id, payload).await;
            ::metrics::histogram!(metrics::IDENTIFY_SECONDS)
                .record(started.elapsed().as_secs_f64());
            opened
        };
        let served = match opened {
            Ok(Some(served)) => Arc::new(served),
            Ok(None) => {
                self.lock().remove(&conn);
                self.outbox.push(ToRouter::Invalid { conn });
                return;
            }
            Err(error) => {
                self.lock().remove(&conn);
                self.refuse(conn, &error);
                return;
            }
        };
        let waiting = {
            let mut entries = self.lock();
            match entries.get_mut(&conn) {
                Some(entry @ Entry::Opening(_)) => {
                    let Entry::Opening(waiting) =
                        std::mem::replace(entry, Entry::Open(served.clone()))
                    else {
                        unreachable!("matched above")
                    };
                    waiting
                }
                // Closed by the shard already (a takeover or a revocation as it went live).
                _ => return,
            }
        };
        for message in waiting {
            self.apply(conn, &served, message);
        }
    }

    async fn identify(
        self: &Arc<Self>,
        conn: u64,
        link_id: u64,
        payload: Vec<u8>,
    ) -> Result<Option<Served>> {
        let (claims, identify) = authorize_identify(&self.context.tokens, payload)?;
        let Some(SessionHost::Local(shard)) = self.context.router.route_identify(claims.user_id)
        else {
            return Err(Error::NoLiveShard);
        };
        let link = Link::remote(link_id, self.sink(), conn);
        let (session, _) = shard.identify(claims, &identify, link).await?;
        Ok(Some(Served {
            shard,
            session,
            link_id,
        }))
    }

    async fn resume(
        self: &Arc<Self>,
        conn: u64,
        link_id: u64,
        payload: Vec<u8>,
    ) -> Result<Option<Served>> {
        let (claims, resume, id) = authorize_resume(&self.context.tokens, payload)?;
        let Some(SessionHost::Local(shard)) =
            id.and_then(|id| self.context.router.route_resume(id))
        else {
            return Ok(None);
        };
        let link = Link::remote(link_id, self.sink(), conn);
        Ok(shard
            .resume(claims, &resume, link)
            .await?
            .map(|(session, _)| Served {
                shard,
                session,
                link_id,
            }))
    }

    /// This link as the sessions on it hold it. The cycle (link → entry → session → link)
    /// is broken when the session lets go of the link or the link ends (`release_all`).
    fn sink(self: &Arc<Self>) -> Arc<dyn RemoteSink> {
        self.clone()
    }

    fn refuse(&self, conn: u64, error: &Error) {
        let code = error.link_close_code();
        debug!(conn, code, %error, "linked identify or resume refused");
        self.outbox.push(ToRouter::Refused { conn, code });
    }

    /// Applies a message for an attached session.
    fn apply(self: &Arc<Self>, conn: u64, served: &Arc<Served>, message: ToShard) {
        match message {
            ToShard::Ack { seq, .. } => served.session.acknowledge(seq),
            ToShard::Command { payload, .. } => {
                let peer = self.clone();
                let served = served.clone();
                tokio::spawn(async move {
                    if let Err(error) = command(&served, payload).await {
                        let keep = error.keeps_session();
                        peer.refuse_live(conn, &served, &error, keep).await;
                    }
                });
            }
            ToShard::Release { keep, .. } => {
                let mut entries = self.lock();
                if matches!(
                    entries.get(&conn),
                    Some(Entry::Open(current)) if Arc::ptr_eq(current, served)
                ) {
                    entries.remove(&conn);
                }
                drop(entries);
                let served = served.clone();
                tokio::spawn(async move {
                    served
                        .shard
                        .release(&served.session, served.link_id, keep)
                        .await;
                });
            }
            ToShard::Identify { .. } | ToShard::Resume { .. } => {
                let peer = self.clone();
                let served = served.clone();
                tokio::spawn(async move {
                    peer.refuse_live(conn, &served, &Error::AlreadyAuthenticated, false)
                        .await;
                });
            }
        }
    }

    /// Ends an attached session's connection with `error`, as its own connection task would.
    async fn refuse_live(&self, conn: u64, served: &Served, error: &Error, keep: bool) {
        let code = error.link_close_code();
        self.lock().remove(&conn);
        self.outbox.push(ToRouter::Close { conn, code });
        served
            .shard
            .release(&served.session, served.link_id, keep)
            .await;
    }

    /// The link is gone: every session on it keeps its resume window.
    async fn release_all(&self) {
        let entries: Vec<_> = self.lock().drain().collect();
        for (_, entry) in entries {
            if let Entry::Open(served) = entry {
                served
                    .shard
                    .release(&served.session, served.link_id, true)
                    .await;
            }
        }
    }
}

/// A forwarded client command for an attached session (only op 8 reaches the shard; the
/// router answers the rest itself).
async fn command(served: &Served, mut payload: Vec<u8>) -> Result<()> {
    let frame: ClientFrame = json::from_slice(&mut payload).map_err(|_| Error::Decode)?;
    if frame.op != OpCode::RequestGuildMembers as i64 {
        return Err(Error::UnknownOpcode(frame.op));
    }
    let request: RequestGuildMembers =
        serde_json::from_value(frame.d).map_err(|_| Error::Decode)?;
    served
        .shard
        .request_guild_members(&served.session, request)
        .await
}

async fn serve_link(tcp: TcpStream, context: ConnectionContext) {
    ::metrics::gauge!(metrics::LINKS).increment(1.0);
    let peer = Peer::new(context);
    let (read, write) = tcp.into_split();
    let writer = {
        let peer = peer.clone();
        async move {
            let mut write = write;
            let mut bodies = BodyEncoder::default();
            let encode = |message: &ToRouter, buf: &mut BytesMut| bodies.encode(message, buf);
            // A failed write ends the link like a failed read: the router reconnects.
            let _ = super::write_batches(&peer.outbox, &mut write, encode).await;
        }
    };
    let reader = {
        let peer = peer.clone();
        async move {
            let mut reader = MessageReader::new(read);
            loop {
                match reader.next().await {
                    Ok(Some(message)) => match ToShard::decode(message) {
                        Ok(message) => peer.handle(message),
                        Err(error) => {
                            debug!(%error, "link dropped");
                            return;
                        }
                    },
                    Ok(None) => return,
                    Err(error) => {
                        debug!(%error, "link read failed");
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    peer.outbox.close();
    peer.release_all().await;
    ::metrics::gauge!(metrics::LINKS).decrement(1.0);
}
