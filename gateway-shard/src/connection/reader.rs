//! The read side of a socket: a task that reassembles client messages and hands them to the
//! connection task, so the connection's `select!` never cancels a half-read frame.

use tokio::io::AsyncRead;
use tokio::sync::mpsc;

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

/// Reads until the socket ends or the connection task goes away.
///
/// Fragments are reassembled here rather than by `FragmentCollector` so that the 4096-byte
/// protocol limit bounds the reassembly buffer, not just each fragment.
pub(crate) async fn read_loop<R>(read: R, tx: mpsc::Sender<Inbound>)
where
    R: AsyncRead + Unpin,
{
    let mut ws = FrameReader::new(read, MAX_FRAME);
    let mut partial: Option<Vec<u8>> = None;
    let mut oversized = false;
    // Whether the message being reassembled is TEXT, whose whole must be UTF-8.
    let mut text = false;
    loop {
        let frame = match ws.next().await {
            Ok(frame) => frame,
            Err(ReadError::TooLarge) => {
                let _ = tx.send(Inbound::TooLarge).await;
                return;
            }
            Err(ReadError::Protocol | ReadError::Closed) => {
                let _ = tx.send(Inbound::Gone).await;
                return;
            }
        };
        let report = match frame.opcode {
            OpCode::Text | OpCode::Binary if partial.is_some() || oversized => {
                Some(Inbound::Malformed)
            }
            OpCode::Text | OpCode::Binary if frame.fin => {
                Some(whole(frame.opcode, frame.payload.to_vec()))
            }
            OpCode::Text | OpCode::Binary => {
                oversized = frame.payload.len() > MAX_CLIENT_PAYLOAD;
                text = frame.opcode == OpCode::Text;
                partial = (!oversized).then(|| frame.payload.to_vec());
                None
            }
            OpCode::Continuation => {
                match &mut partial {
                    Some(buffer) if buffer.len() + frame.payload.len() <= MAX_CLIENT_PAYLOAD => {
                        buffer.extend_from_slice(&frame.payload);
                    }
                    Some(_) => {
                        partial = None;
                        oversized = true;
                    }
                    // A continuation without a start, unless we are skipping an oversized one.
                    None if !oversized => {
                        let _ = tx.send(Inbound::Malformed).await;
                        return;
                    }
                    None => {}
                }
                match (frame.fin, oversized) {
                    (false, _) => None,
                    (true, true) => {
                        oversized = false;
                        Some(Inbound::TooLarge)
                    }
                    (true, false) => partial.take().map(|p| whole(kind(text), p)),
                }
            }
            OpCode::Close => {
                let code = (frame.payload.len() >= 2)
                    .then(|| u16::from_be_bytes([frame.payload[0], frame.payload[1]]));
                let _ = tx.send(Inbound::Close(code)).await;
                return;
            }
            OpCode::Ping => Some(Inbound::Ping(frame.payload.to_vec())),
            OpCode::Pong => None,
        };
        if let Some(report) = report {
            if tx.send(report).await.is_err() {
                return;
            }
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
