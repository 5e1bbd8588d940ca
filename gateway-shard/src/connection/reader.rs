//! The read side of a socket: client messages, reassembled from frames.

use tokio::io::AsyncRead;

use concord_core::gateway::MAX_CLIENT_PAYLOAD;

use super::frames::{FrameReader, Opcode as OpCode, ReadError};

/// Largest single frame read before the socket is given up on. Frames between the protocol
/// limit and this are read in full and answered with 4002, so the close is delivered cleanly
/// instead of being lost to a reset caused by unread bytes.
const MAX_FRAME: usize = 64 * 1024;

/// What the reader reports.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A complete TEXT or BINARY message.
    Message(Vec<u8>),
    /// A message over [`MAX_CLIENT_PAYLOAD`] bytes.
    TooLarge,
    /// A message the transport could not decode (bad UTF-8 in TEXT, bad fragmentation).
    Malformed,
    /// A ping to answer.
    Ping(Vec<u8>),
    /// The client's close frame, with its code.
    Close(Option<u16>),
    /// The socket ended without a close frame.
    Gone,
}

/// Turns frames into client messages: reassembles fragments (so that the 4096-byte protocol
/// limit bounds the reassembly, not just each fragment) and sorts out control frames.
///
/// [`MessageReader::next`] is cancel-safe: the frame reader keeps partial frames in its buffer
/// and state changes only between awaits, so the connection task can `select!` on it directly
/// instead of running a reader task and a queue per socket.
pub(crate) struct MessageReader<R> {
    frames: FrameReader<R>,
    partial: Option<Vec<u8>>,
    oversized: bool,
    /// Whether the message being reassembled is TEXT, whose whole must be UTF-8.
    text: bool,
    /// Set once the socket ended or broke the protocol: nothing more will be read.
    done: bool,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    pub(crate) fn new(read: R) -> Self {
        Self {
            frames: FrameReader::new(read, MAX_FRAME),
            partial: None,
            oversized: false,
            text: false,
            done: false,
        }
    }

    /// The next thing to report; after a close, the socket's end or a fatal error, never
    /// returns.
    pub(crate) async fn next(&mut self) -> Inbound {
        if self.done {
            return std::future::pending().await;
        }
        loop {
            if let Some(report) = self.read_one().await {
                if matches!(
                    report,
                    Inbound::TooLarge | Inbound::Malformed | Inbound::Close(_) | Inbound::Gone
                ) {
                    self.done = true;
                }
                return report;
            }
        }
    }

    /// Reads one frame; `None` when it completed no report (a fragment, a pong).
    async fn read_one(&mut self) -> Option<Inbound> {
        let frame = match self.frames.next().await {
            Ok(frame) => frame,
            Err(ReadError::TooLarge) => return Some(Inbound::TooLarge),
            Err(ReadError::Protocol | ReadError::Closed) => return Some(Inbound::Gone),
        };
        match frame.opcode {
            OpCode::Text | OpCode::Binary if self.partial.is_some() || self.oversized => {
                Some(Inbound::Malformed)
            }
            OpCode::Text | OpCode::Binary if frame.fin => {
                Some(whole(frame.opcode, frame.payload.to_vec()))
            }
            OpCode::Text | OpCode::Binary => {
                self.oversized = frame.payload.len() > MAX_CLIENT_PAYLOAD;
                self.text = frame.opcode == OpCode::Text;
                self.partial = (!self.oversized).then(|| frame.payload.to_vec());
                None
            }
            OpCode::Continuation => {
                match &mut self.partial {
                    Some(buffer) if buffer.len() + frame.payload.len() <= MAX_CLIENT_PAYLOAD => {
                        buffer.extend_from_slice(&frame.payload);
                    }
                    Some(_) => {
                        self.partial = None;
                        self.oversized = true;
                    }
                    // A continuation without a start, unless we are skipping an oversized one.
                    None if !self.oversized => return Some(Inbound::Malformed),
                    None => {}
                }
                match (frame.fin, self.oversized) {
                    (false, _) => None,
                    (true, true) => {
                        self.oversized = false;
                        Some(Inbound::TooLarge)
                    }
                    (true, false) => {
                        let kind = kind(self.text);
                        self.partial.take().map(|p| whole(kind, p))
                    }
                }
            }
            OpCode::Close => {
                let code = (frame.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                Some(Inbound::Close(code))
            }
            OpCode::Ping => Some(Inbound::Ping(frame.payload.to_vec())),
            OpCode::Pong => None,
        }
    }
}

fn kind(text: bool) -> OpCode {
    if text {
        OpCode::Text
    } else {
        OpCode::Binary
    }
}

/// A complete message: too large, TEXT that is not UTF-8 (RFC 6455 §8.1), or one to hand on.
fn whole(opcode: OpCode, payload: Vec<u8>) -> Inbound {
    if payload.len() > MAX_CLIENT_PAYLOAD {
        Inbound::TooLarge
    } else if opcode == OpCode::Text && std::str::from_utf8(&payload).is_err() {
        Inbound::Malformed
    } else {
        Inbound::Message(payload)
    }
}
