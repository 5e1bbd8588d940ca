//! One gateway socket: TCP from a chosen source address, the WebSocket upgrade, and a reader
//! task that decodes messages into a channel, so the session task can `select!` on them
//! (fastwebsockets' `read_frame` may not be cancelled midway).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use fastwebsockets::{
    FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError, WebSocketWrite,
};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::header::{CONNECTION, HOST, UPGRADE, USER_AGENT};
use hyper::upgrade::Upgraded;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::WriteHalf;
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::decode::{Compress, Decoder};
use crate::stats::{Counter, Counters};
use crate::target::GatewayUrl;

/// Longest a TCP connect plus WebSocket upgrade may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest one write may take before the socket counts as stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Decoded messages buffered between the reader task and the session.
const INBOUND_QUEUE: usize = 64;
/// Largest message accepted (a big GUILD_CREATE fits).
const MAX_MESSAGE: usize = 64 << 20;

type Io = TokioIo<Upgraded>;

/// What the reader task hands the session.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A whole, decompressed gateway payload.
    Payload(Vec<u8>),
    /// A frame the protocol obliges us to send back (close echo, pong).
    Reply(OpCode, Vec<u8>),
    /// The server's close frame, with its code.
    Closed(Option<u16>),
    /// The socket failed or ended without a close frame.
    Failed(&'static str),
}

/// An open gateway socket.
pub(crate) struct Socket {
    writer: WebSocketWrite<WriteHalf<Io>>,
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    reader: JoinHandle<()>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Dropping both halves closes the TCP connection without a close frame.
        self.reader.abort();
    }
}

struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future);
    }
}

/// Where and how to open a socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dial<'a> {
    /// Local address to bind to.
    pub(crate) source: Option<IpAddr>,
    /// Transport compression to ask for.
    pub(crate) compress: Compress,
    /// `User-Agent` of the upgrade request (some servers refuse upgrades without one).
    pub(crate) user_agent: Option<&'a str>,
}

/// Opens a socket to `url` as `dial` says.
///
/// # Errors
/// A short kind (`connection_refused`, `too_many_open_files`, `http_404`, ...) for reports.
pub(crate) async fn open(
    url: &GatewayUrl,
    dial: Dial<'_>,
    counters: Arc<Counters>,
) -> Result<Socket, String> {
    match timeout(OPEN_TIMEOUT, open_inner(url, dial, counters)).await {
        Ok(result) => result,
        Err(_) => Err("open_timeout".to_owned()),
    }
}

async fn open_inner(
    url: &GatewayUrl,
    dial: Dial<'_>,
    counters: Arc<Counters>,
) -> Result<Socket, String> {
    let Dial {
        source,
        compress,
        user_agent,
    } = dial;
    let socket = if url.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| io_kind(&e))?;
    if let Some(source) = source {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("bind_{}", io_kind(&e)))?;
    }
    let stream = socket.connect(url.addr).await.map_err(|e| io_kind(&e))?;
    let _ = stream.set_nodelay(true);
    let mut request = Request::builder()
        .method("GET")
        .uri(format!(
            "{}?v=10&encoding=json{}",
            url.path,
            compress.query()
        ))
        .header(HOST, &url.authority)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13");
    if let Some(agent) = user_agent {
        request = request.header(USER_AGENT, agent);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|_| "bad_request".to_owned())?;
    let (mut ws, _) = fastwebsockets::handshake::client(&SpawnExecutor, request, stream)
        .await
        .map_err(|e| match e {
            WebSocketError::InvalidStatusCode(code) => format!("http_{code}"),
            WebSocketError::IoError(e) => io_kind(&e),
            _ => "handshake_failed".to_owned(),
        })?;
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    ws.set_max_message_size(MAX_MESSAGE);
    let decoder = Decoder::new(compress).map_err(|_| "decoder_init".to_owned())?;
    let (read, writer) = ws.split(tokio::io::split);
    let (tx, inbound) = mpsc::channel(INBOUND_QUEUE);
    let reader = tokio::spawn(read_loop(
        FragmentCollectorRead::new(read),
        decoder,
        tx,
        counters,
    ));
    Ok(Socket {
        writer,
        inbound,
        reader,
    })
}

impl Socket {
    /// Sends one text frame.
    pub(crate) async fn send_text(&mut self, json: Vec<u8>) -> Result<(), ()> {
        self.send(OpCode::Text, json).await
    }

    /// Sends a frame of any kind.
    pub(crate) async fn send(&mut self, opcode: OpCode, payload: Vec<u8>) -> Result<(), ()> {
        let frame = Frame::new(true, opcode, None, Payload::Owned(payload));
        match timeout(WRITE_TIMEOUT, async {
            self.writer.write_frame(frame).await?;
            self.writer.flush().await
        })
        .await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }

    /// Sends a close frame with `code` (errors ignored: the socket is going away).
    pub(crate) async fn close(mut self, code: u16) {
        let frame = Frame::close(code, b"");
        let _ = timeout(Duration::from_secs(1), async {
            self.writer.write_frame(frame).await?;
            self.writer.flush().await
        })
        .await;
    }
}

async fn read_loop(
    mut read: FragmentCollectorRead<tokio::io::ReadHalf<Io>>,
    mut decoder: Decoder,
    tx: mpsc::Sender<Inbound>,
    counters: Arc<Counters>,
) {
    let replies = tx.clone();
    let mut obligated = move |frame: Frame<'_>| {
        // Full queue: the reply is dropped, which only loses a pong or a close echo.
        let _ = replies.try_send(Inbound::Reply(frame.opcode, frame.payload.to_vec()));
        std::future::ready(Ok::<(), std::io::Error>(()))
    };
    loop {
        let frame = match read.read_frame(&mut obligated).await {
            Ok(frame) => frame,
            Err(error) => {
                let kind = match error {
                    WebSocketError::UnexpectedEOF => "eof",
                    WebSocketError::ConnectionClosed => "closed",
                    WebSocketError::IoError(ref e)
                        if e.kind() == std::io::ErrorKind::ConnectionReset =>
                    {
                        "reset"
                    }
                    WebSocketError::IoError(_) => "io_error",
                    _ => "protocol_error",
                };
                let _ = tx.send(Inbound::Failed(kind)).await;
                return;
            }
        };
        match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                counters.add(Counter::BytesIn, frame.payload.len() as u64);
                match decoder.push(frame.opcode == OpCode::Binary, &frame.payload) {
                    Ok(Some(json)) => {
                        if tx.send(Inbound::Payload(json)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(error) => {
                        let _ = tx.send(Inbound::Failed(error.kind())).await;
                        return;
                    }
                }
            }
            OpCode::Close => {
                let code = (frame.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                let _ = tx.send(Inbound::Closed(code)).await;
                return;
            }
            _ => {}
        }
    }
}

/// A short name for an I/O error, for failure tallies.
fn io_kind(error: &std::io::Error) -> String {
    // EMFILE / ENFILE: the open-file limit, worth naming as such.
    if matches!(error.raw_os_error(), Some(24 | 23)) {
        return "too_many_open_files".to_owned();
    }
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection_refused".to_owned(),
        std::io::ErrorKind::ConnectionReset => "connection_reset".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => "addr_not_available".to_owned(),
        std::io::ErrorKind::AddrInUse => "addr_in_use".to_owned(),
        std::io::ErrorKind::TimedOut => "timed_out".to_owned(),
        std::io::ErrorKind::UnexpectedEof => "eof".to_owned(),
        other => format!("io_{other:?}").to_lowercase(),
    }
}
