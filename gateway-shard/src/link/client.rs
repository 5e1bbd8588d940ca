//! The router's end of links: one [`LinkClient`] per shard process, shared by every client
//! connection whose session lives there, and the [`LinkPool`] that keeps them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use concord_core::topology::NodeId;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, Duration};
use tracing::{debug, warn};

use super::outbox::Outbox;
use super::wire::{BodyDecoder, MessageReader, ToRouter, ToShard};
use super::{LinkTickets, PREAMBLE};
use crate::error::Error;
use crate::frame::OutFrame;
use crate::metrics;
use crate::session::Control;

/// How long opening a link may take before its sessions are told to reconnect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Client payloads queued towards a shard process (heartbeat acks, op 8) before the link is
/// considered stuck. Identify, Resume and Release always get in.
const OUTBOX_LIMIT: usize = 65_536;

/// What a shard process answered to an Identify or Resume.
#[derive(Debug)]
pub(crate) enum Opened {
    /// The session is attached: write these frames, then the queued ones.
    Live(Vec<OutFrame>),
    /// The resume cannot be served: send op 9.
    Invalid,
    /// Close the client with this code.
    Refused(u16),
}

/// A connection's registration on a link.
pub(crate) struct Attachment {
    /// The session's frames, in sequence.
    pub(crate) frames: mpsc::Receiver<OutFrame>,
    /// Told once when the connection must close.
    pub(crate) control: oneshot::Receiver<Control>,
    /// The answer to the Identify or Resume.
    pub(crate) opened: oneshot::Receiver<Opened>,
}

struct Attached {
    frames: mpsc::Sender<OutFrame>,
    control: Option<oneshot::Sender<Control>>,
    opened: Option<oneshot::Sender<Opened>>,
}

impl Attached {
    fn close(&mut self, error: Error) {
        if let Some(control) = self.control.take() {
            let _ = control.send(Control::Close(error));
        }
    }
}

#[derive(Default)]
struct Connections {
    /// Set once the link is gone: nothing attaches any more.
    dead: bool,
    map: HashMap<u64, Attached>,
}

/// A multiplexed link from this router to one shard process.
pub struct LinkClient {
    node: NodeId,
    addr: String,
    outbox: Outbox<ToShard>,
    connections: Mutex<Connections>,
}

impl std::fmt::Debug for LinkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkClient")
            .field("node", &self.node)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LinkClient {
    /// Starts connecting to `addr` (node `node`) with `ticket`; messages sent meanwhile wait.
    fn connect(node: NodeId, addr: String, ticket: String) -> Arc<Self> {
        let client = Arc::new(Self {
            node,
            addr,
            outbox: Outbox::new(OUTBOX_LIMIT),
            connections: Mutex::new(Connections::default()),
        });
        tokio::spawn(client.clone().run(ticket));
        client
    }

    /// Node ordinal of the shard process.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Whether the link has failed (a new one is made on next use).
    pub fn is_dead(&self) -> bool {
        self.lock().dead
    }

    /// Sessions currently served over the link.
    pub fn attached(&self) -> usize {
        self.lock().map.len()
    }

    fn lock(&self) -> MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers connection `conn`, whose frames queue up to `capacity`; `None` when the link
    /// is gone.
    pub(crate) fn attach(&self, conn: u64, capacity: usize) -> Option<Attachment> {
        let (frames_tx, frames) = mpsc::channel(capacity.max(1));
        let (control_tx, control) = oneshot::channel();
        let (opened_tx, opened) = oneshot::channel();
        let mut connections = self.lock();
        if connections.dead {
            return None;
        }
        connections.map.insert(
            conn,
            Attached {
                frames: frames_tx,
                control: Some(control_tx),
                opened: Some(opened_tx),
            },
        );
        Some(Attachment {
            frames,
            control,
            opened,
        })
    }

    /// Forgets connection `conn` (its frames are no longer wanted).
    pub(crate) fn detach(&self, conn: u64) {
        self.lock().map.remove(&conn);
    }

    /// Queues a message for the shard process. Ordinary commands are dropped when the link is
    /// stuck; the session then misses an acknowledgement or a member request, never an event.
    pub(crate) fn send(&self, message: ToShard) {
        match message {
            ToShard::Ack { .. } | ToShard::Command { .. } => {
                let _ = self.outbox.try_push(message);
            }
            _ => {
                self.outbox.push(message);
            }
        }
    }

    async fn run(self: Arc<Self>, ticket: String) {
        let connected = timeout(CONNECT_TIMEOUT, async {
            let mut tcp = TcpStream::connect(&self.addr).await?;
            tcp.set_nodelay(true)?;
            let mut line = Vec::with_capacity(PREAMBLE.len() + ticket.len() + 1);
            line.extend_from_slice(PREAMBLE);
            line.extend_from_slice(ticket.as_bytes());
            line.push(b'\n');
            tcp.write_all(&line).await?;
            std::io::Result::Ok(tcp)
        })
        .await;
        let tcp = match connected {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(error)) => return self.fail(&format!("connect: {error}")),
            Err(_) => return self.fail("connect timed out"),
        };
        ::metrics::gauge!(metrics::LINKS).increment(1.0);
        let (read, write) = tcp.into_split();
        let why = tokio::select! {
            why = self.write_all(write) => why,
            why = self.read_all(read) => why,
        };
        ::metrics::gauge!(metrics::LINKS).decrement(1.0);
        self.fail(&why);
    }

    async fn write_all(&self, mut write: tokio::net::tcp::OwnedWriteHalf) -> String {
        match super::write_batches(&self.outbox, &mut write, ToShard::encode).await {
            Ok(()) => "closed".to_owned(),
            Err(error) => format!("write: {error}"),
        }
    }

    async fn read_all(&self, read: tokio::net::tcp::OwnedReadHalf) -> String {
        let mut reader = MessageReader::new(read);
        let mut bodies = BodyDecoder::default();
        loop {
            let message = match reader.next().await {
                Ok(Some(message)) => message,
                Ok(None) => return "closed by the shard process".to_owned(),
                Err(error) => return format!("read: {error}"),
            };
            match bodies.decode(message) {
                Ok(Some(message)) => self.dispatch(message),
                Ok(None) => {}
                Err(error) => return error.to_string(),
            }
        }
    }

    /// Hands one message to the connection it is for.
    fn dispatch(&self, message: ToRouter) {
        let conn = message.conn();
        let mut connections = self.lock();
        let Some(attached) = connections.map.get_mut(&conn) else {
            // The connection ended meanwhile; its Release is on the way.
            return;
        };
        match message {
            ToRouter::Frame { frame, .. } => match attached.frames.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // As a shard of this process would: the client resumes, and the frames it
                    // misses wait in the session's replay buffer.
                    attached.close(Error::SlowConsumer);
                    connections.map.remove(&conn);
                    drop(connections);
                    self.outbox.push(ToShard::Release { conn, keep: true });
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            },
            ToRouter::Opened { frames, .. } => {
                if let Some(opened) = attached.opened.take() {
                    let _ = opened.send(Opened::Live(frames));
                }
            }
            ToRouter::Invalid { .. } => {
                if let Some(opened) = attached.opened.take() {
                    let _ = opened.send(Opened::Invalid);
                }
            }
            ToRouter::Refused { code, .. } | ToRouter::Close { code, .. } => {
                match attached.opened.take() {
                    Some(opened) => {
                        let _ = opened.send(Opened::Refused(code));
                    }
                    None => attached.close(Error::ClosedByServer(code)),
                }
                connections.map.remove(&conn);
            }
        }
    }

    /// Marks the link dead and tells every connection on it to reconnect. Their sessions stay
    /// on the shard process for the resume window, so clients resume through any router.
    fn fail(&self, why: &str) {
        self.outbox.close();
        let attached = {
            let mut connections = self.lock();
            connections.dead = true;
            std::mem::take(&mut connections.map)
        };
        if attached.is_empty() {
            debug!(node = self.node, addr = %self.addr, why, "link closed");
        } else {
            warn!(node = self.node, addr = %self.addr, why, sessions = attached.len(), "link lost");
        }
        for (_, mut connection) in attached {
            // Dropping `opened` tells a connection still waiting for its answer.
            connection.close(Error::Cluster(format!("link to node {} lost", self.node)));
        }
    }
}

/// The links of one router, one per shard process, made on first use.
#[derive(Debug)]
pub struct LinkPool {
    tickets: Arc<LinkTickets>,
    links: Mutex<HashMap<(NodeId, String), Arc<LinkClient>>>,
}

impl LinkPool {
    /// A pool whose links present tickets from `tickets`.
    pub fn new(tickets: Arc<LinkTickets>) -> Self {
        Self {
            tickets,
            links: Mutex::new(HashMap::new()),
        }
    }

    /// The link to node `node` at `addr`, opening one when there is none or it failed.
    pub fn get(&self, node: NodeId, addr: &str) -> Arc<LinkClient> {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let key = (node, addr.to_owned());
        if let Some(link) = links.get(&key) {
            if !link.is_dead() {
                return link.clone();
            }
        }
        let link = LinkClient::connect(node, addr.to_owned(), self.tickets.issue(node));
        links.insert(key, link.clone());
        link
    }

    /// Closes idle links to processes for which `wanted` is false (they left the cluster or
    /// moved), and forgets failed ones.
    pub fn retain(&self, wanted: impl Fn(NodeId, &str) -> bool) {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        links.retain(|(node, addr), link| {
            if link.is_dead() {
                return false;
            }
            let keep = wanted(*node, addr) || link.attached() > 0;
            if !keep {
                link.outbox.close();
            }
            keep
        });
    }
}
