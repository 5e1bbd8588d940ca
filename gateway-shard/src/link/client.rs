//! The router's end of a session link.

use fastwebsockets::{
    after_handshake_split, FragmentCollectorRead, Frame, OpCode, Payload, Role, WebSocketWrite,
};
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout, Duration};

use super::PREAMBLE;
use crate::error::{Error, Result};
use crate::routing::RemoteHost;
use crate::task::AbortOnDrop;

/// How long opening a link may take before the client is told to reconnect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Payloads from the shard buffered ahead of the client's socket.
const INBOUND_CAPACITY: usize = 256;

/// What the shard sent on a link.
#[derive(Debug)]
pub enum LinkInbound {
    /// A gateway payload (JSON), to be written to the client as it is.
    Payload(Vec<u8>),
    /// The shard closed the link, with this close code if it gave one.
    Closed(Option<u16>),
}

/// An open link: write the client's payloads, read the shard's.
pub(crate) struct RemoteLink {
    writer: WebSocketWrite<WriteHalf<TcpStream>>,
    inbound: mpsc::Receiver<LinkInbound>,
    _reader: AbortOnDrop,
}

impl RemoteLink {
    /// Connects to `host`, presents its ticket and sends `first` (the Identify or Resume).
    ///
    /// # Errors
    /// [`Error::Cluster`] when the shard process cannot be reached in time.
    pub(crate) async fn open(host: &RemoteHost, first: &[u8]) -> Result<Self> {
        let connect = async {
            let mut tcp = TcpStream::connect(&host.addr).await?;
            tcp.set_nodelay(true)?;
            let mut line = Vec::with_capacity(PREAMBLE.len() + host.ticket.len() + 1);
            line.extend_from_slice(PREAMBLE);
            line.extend_from_slice(host.ticket.as_bytes());
            line.push(b'\n');
            tcp.write_all(&line).await?;
            std::io::Result::Ok(tcp)
        };
        let tcp = timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| Error::Cluster(format!("link to node {} timed out", host.node)))?
            .map_err(|e| Error::Cluster(format!("link to node {}: {e}", host.node)))?;
        let (read, write) = tokio::io::split(tcp);
        let (read, writer) = after_handshake_split(read, write, Role::Client);
        let (tx, inbound) = mpsc::channel(INBOUND_CAPACITY);
        let reader = tokio::spawn(async move {
            let mut read = FragmentCollectorRead::new(read);
            // Pongs and close echoes are not needed on a link: each side closes by dropping.
            let mut ignore = |_: Frame<'_>| async { Ok::<(), std::io::Error>(()) };
            loop {
                let message = match read.read_frame(&mut ignore).await {
                    Ok(frame) => match frame.opcode {
                        OpCode::Text | OpCode::Binary => {
                            LinkInbound::Payload(frame.payload.to_vec())
                        }
                        OpCode::Close => {
                            let code = (frame.payload.len() >= 2)
                                .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                            let _ = tx.send(LinkInbound::Closed(code)).await;
                            return;
                        }
                        _ => continue,
                    },
                    Err(_) => {
                        let _ = tx.send(LinkInbound::Closed(None)).await;
                        return;
                    }
                };
                if tx.send(message).await.is_err() {
                    return;
                }
            }
        });
        let mut link = Self {
            writer,
            inbound,
            _reader: AbortOnDrop(reader),
        };
        link.send(first).await?;
        Ok(link)
    }

    /// Forwards one client payload.
    pub(crate) async fn send(&mut self, payload: &[u8]) -> Result<()> {
        self.writer
            .write_frame(Frame::text(Payload::Borrowed(payload)))
            .await
            .map_err(|e| Error::Cluster(format!("link write: {e}")))
    }

    /// Tells the shard the client closed with `code`.
    pub(crate) async fn close(&mut self, code: u16) {
        let _ = self.writer.write_frame(Frame::close(code, b"")).await;
    }

    /// Next message from the shard.
    pub(crate) async fn next(&mut self) -> LinkInbound {
        self.inbound
            .recv()
            .await
            .unwrap_or(LinkInbound::Closed(None))
    }

    /// A message from the shard that is already waiting.
    pub(crate) fn try_next(&mut self) -> Option<LinkInbound> {
        self.inbound.try_recv().ok()
    }
}
