//! The link's wire format: length-prefixed binary messages in both directions.
//!
//! Every message is `u32 length (LE) | u8 kind | fields`, where `length` counts the kind byte
//! and the fields. Integers are little-endian; `conn` is the router's connection number.
//!
//! Router → shard:
//! - `IDENTIFY conn payload` and `RESUME conn payload`: the client's op 2 / op 6, as it sent it;
//! - `ACK conn seq`: the client's heartbeat acknowledged `seq`;
//! - `COMMAND conn payload`: another client payload for the session (op 8);
//! - `RELEASE conn keep`: the client's connection ended; `keep` = the session stays resumable.
//!
//! Shard → router:
//! - `BODY ref tail`: an encoded event, sent once per link and named `ref` from then on;
//! - `FRAME conn seq ref`: one sequenced dispatch for a connection (about 21 bytes);
//! - `OPENED conn n (seq ref)*n`: the session is attached; the frames to write first;
//! - `INVALID conn`: the resume cannot be served (the client gets op 9);
//! - `REFUSED conn code` and `CLOSE conn code`: close the client with `code`.
//!
//! A fan-out to many sessions therefore crosses the link as one body plus one small frame per
//! session, and the router completes each frame with only its sequence number, as a shard of
//! its own process would.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::frame::{EncodedEvent, OutFrame};

/// Largest message accepted (a READY burst of a user in many guilds fits easily).
pub(crate) const MAX_MESSAGE: usize = 64 << 20;
/// Bodies each end remembers; a frame may only name one of the last `BODY_RING` bodies sent.
const BODY_RING: usize = 1024;

const BODY: u8 = 1;
const FRAME: u8 = 2;
const OPENED: u8 = 3;
const INVALID: u8 = 4;
const REFUSED: u8 = 5;
const CLOSE: u8 = 6;
const IDENTIFY: u8 = 10;
const RESUME: u8 = 11;
const ACK: u8 = 12;
const COMMAND: u8 = 13;
const RELEASE: u8 = 14;

/// A message from a router to a shard process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToShard {
    /// A client's Identify payload.
    Identify { conn: u64, payload: Vec<u8> },
    /// A client's Resume payload.
    Resume { conn: u64, payload: Vec<u8> },
    /// A heartbeat's sequence number.
    Ack { conn: u64, seq: u64 },
    /// Another client payload (op 8).
    Command { conn: u64, payload: Vec<u8> },
    /// The client's connection ended.
    Release { conn: u64, keep: bool },
}

/// A message from a shard process to a router.
#[derive(Debug, Clone)]
pub(crate) enum ToRouter {
    /// One sequenced dispatch.
    Frame { conn: u64, frame: OutFrame },
    /// The session is attached; these frames go out first.
    Opened { conn: u64, frames: Vec<OutFrame> },
    /// The resume cannot be served.
    Invalid { conn: u64 },
    /// The Identify or Resume failed with this close code.
    Refused { conn: u64, code: u16 },
    /// The session's connection must close with this code.
    Close { conn: u64, code: u16 },
}

impl ToRouter {
    /// The connection the message is for.
    pub(crate) fn conn(&self) -> u64 {
        match self {
            Self::Frame { conn, .. }
            | Self::Opened { conn, .. }
            | Self::Invalid { conn }
            | Self::Refused { conn, .. }
            | Self::Close { conn, .. } => *conn,
        }
    }
}

/// A message that does not parse: the link is broken and is dropped.
#[derive(Debug, thiserror::Error)]
#[error("malformed link message: {0}")]
pub(crate) struct WireError(&'static str);

/// Appends one message of `kind` whose fields `fill` writes.
fn put_message(out: &mut BytesMut, kind: u8, fill: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32_le(0);
    out.put_u8(kind);
    fill(out);
    let length = u32::try_from(out.len() - start - 4).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
}

impl ToShard {
    /// Appends the message to `out`.
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Identify { conn, payload } => put_message(out, IDENTIFY, |b| {
                b.put_u64_le(*conn);
                b.put_slice(payload);
            }),
            Self::Resume { conn, payload } => put_message(out, RESUME, |b| {
                b.put_u64_le(*conn);
                b.put_slice(payload);
            }),
            Self::Ack { conn, seq } => put_message(out, ACK, |b| {
                b.put_u64_le(*conn);
                b.put_u64_le(*seq);
            }),
            Self::Command { conn, payload } => put_message(out, COMMAND, |b| {
                b.put_u64_le(*conn);
                b.put_slice(payload);
            }),
            Self::Release { conn, keep } => put_message(out, RELEASE, |b| {
                b.put_u64_le(*conn);
                b.put_u8(u8::from(*keep));
            }),
        }
    }

    /// Parses one message (its kind byte and fields).
    pub(crate) fn decode(mut message: Bytes) -> Result<Self, WireError> {
        let kind = take_u8(&mut message)?;
        let conn = take_u64(&mut message)?;
        Ok(match kind {
            IDENTIFY => Self::Identify {
                conn,
                payload: message.to_vec(),
            },
            RESUME => Self::Resume {
                conn,
                payload: message.to_vec(),
            },
            ACK => Self::Ack {
                conn,
                seq: take_u64(&mut message)?,
            },
            COMMAND => Self::Command {
                conn,
                payload: message.to_vec(),
            },
            RELEASE => Self::Release {
                conn,
                keep: take_u8(&mut message)? != 0,
            },
            _ => return Err(WireError("unknown kind")),
        })
    }
}

/// The shard's end of the body exchange: which event bodies the router already holds.
#[derive(Debug)]
pub(crate) struct BodyEncoder {
    /// `ring[r % BODY_RING]` holds body `r` until a newer body takes the place. Holding the
    /// `Arc` also keeps its address from being reused while `index` maps it.
    ring: Vec<Option<Arc<EncodedEvent>>>,
    /// Body address → reference, for the bodies in `ring`.
    index: HashMap<usize, u32>,
    next: u32,
}

impl Default for BodyEncoder {
    fn default() -> Self {
        Self {
            ring: vec![None; BODY_RING],
            index: HashMap::with_capacity(BODY_RING),
            next: 0,
        }
    }
}

impl BodyEncoder {
    /// The reference of `event`, writing its BODY first when the router does not hold it.
    fn reference(&mut self, event: &Arc<EncodedEvent>, out: &mut BytesMut) -> u32 {
        let key = Arc::as_ptr(event) as usize;
        if let Some(&reference) = self.index.get(&key) {
            return reference;
        }
        let reference = self.next;
        // 2^32 is a multiple of the ring size, so wrapping keeps both ends' slots aligned.
        self.next = self.next.wrapping_add(1);
        let slot = reference as usize % BODY_RING;
        if let Some(old) = self.ring[slot].replace(event.clone()) {
            self.index.remove(&(Arc::as_ptr(&old) as usize));
        }
        self.index.insert(key, reference);
        put_message(out, BODY, |b| {
            b.put_u32_le(reference);
            b.put_slice(event.tail());
        });
        reference
    }

    /// Appends `message` (and any body it needs first) to `out`.
    pub(crate) fn encode(&mut self, message: &ToRouter, out: &mut BytesMut) {
        match message {
            ToRouter::Frame { conn, frame } => {
                let reference = self.reference(&frame.event, out);
                put_message(out, FRAME, |b| {
                    b.put_u64_le(*conn);
                    b.put_u64_le(frame.seq);
                    b.put_u32_le(reference);
                });
            }
            ToRouter::Opened { conn, frames } => {
                let references: Vec<u32> = frames
                    .iter()
                    .map(|frame| self.reference(&frame.event, out))
                    .collect();
                put_message(out, OPENED, |b| {
                    b.put_u64_le(*conn);
                    b.put_u32_le(u32::try_from(frames.len()).unwrap_or(u32::MAX));
                    for (frame, reference) in frames.iter().zip(references) {
                        b.put_u64_le(frame.seq);
                        b.put_u32_le(reference);
                    }
                });
            }
            ToRouter::Invalid { conn } => put_message(out, INVALID, |b| b.put_u64_le(*conn)),
            ToRouter::Refused { conn, code } => put_message(out, REFUSED, |b| {
                b.put_u64_le(*conn);
                b.put_u16_le(*code);
            }),
            ToRouter::Close { conn, code } => put_message(out, CLOSE, |b| {
                b.put_u64_le(*conn);
                b.put_u16_le(*code);
            }),
        }
    }
}

/// The router's end of the body exchange.
#[derive(Debug)]
pub(crate) struct BodyDecoder {
    ring: Vec<Option<Arc<EncodedEvent>>>,
}

impl Default for BodyDecoder {
    fn default() -> Self {
        Self {
            ring: vec![None; BODY_RING],
        }
    }
}

impl BodyDecoder {
    fn body(&self, reference: u32) -> Result<Arc<EncodedEvent>, WireError> {
        self.ring[reference as usize % BODY_RING]
            .clone()
            .ok_or(WireError("frame names an unknown body"))
    }

    /// Parses one message; `None` for a BODY, which is only remembered.
    pub(crate) fn decode(&mut self, mut message: Bytes) -> Result<Option<ToRouter>, WireError> {
        let kind = take_u8(&mut message)?;
        if kind == BODY {
            let reference = take_u32(&mut message)?;
            // Copied out of the read buffer so a remembered body does not pin the whole chunk.
            let tail = Bytes::copy_from_slice(&message);
            self.ring[reference as usize % BODY_RING] = Some(EncodedEvent::from_tail(tail));
            return Ok(None);
        }
        let conn = take_u64(&mut message)?;
        let decoded = match kind {
            FRAME => {
                let seq = take_u64(&mut message)?;
                let event = self.body(take_u32(&mut message)?)?;
                ToRouter::Frame {
                    conn,
                    frame: OutFrame { seq, event },
                }
            }
            OPENED => {
                let count = take_u32(&mut message)? as usize;
                if count > message.remaining() / 12 {
                    return Err(WireError("frame count past the message"));
                }
                let mut frames = Vec::with_capacity(count);
                for _ in 0..count {
                    let seq = take_u64(&mut message)?;
                    let event = self.body(take_u32(&mut message)?)?;
                    frames.push(OutFrame { seq, event });
                }
                ToRouter::Opened { conn, frames }
            }
            INVALID => ToRouter::Invalid { conn },
            REFUSED => ToRouter::Refused {
                conn,
                code: take_u16(&mut message)?,
            },
            CLOSE => ToRouter::Close {
                conn,
                code: take_u16(&mut message)?,
            },
            _ => return Err(WireError("unknown kind")),
        };
        Ok(Some(decoded))
    }
}

fn take_u8(buf: &mut Bytes) -> Result<u8, WireError> {
    (buf.remaining() >= 1)
        .then(|| buf.get_u8())
        .ok_or(WireError("truncated"))
}

fn take_u16(buf: &mut Bytes) -> Result<u16, WireError> {
    (buf.remaining() >= 2)
        .then(|| buf.get_u16_le())
        .ok_or(WireError("truncated"))
}

fn take_u32(buf: &mut Bytes) -> Result<u32, WireError> {
    (buf.remaining() >= 4)
        .then(|| buf.get_u32_le())
        .ok_or(WireError("truncated"))
}

fn take_u64(buf: &mut Bytes) -> Result<u64, WireError> {
    (buf.remaining() >= 8)
        .then(|| buf.get_u64_le())
        .ok_or(WireError("truncated"))
}

/// Splits a byte stream into messages.
#[derive(Debug)]
pub(crate) struct MessageReader<R> {
    inner: R,
    buf: BytesMut,
}

/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

impl<R: AsyncRead + Unpin> MessageReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
        }
    }

    /// The next message (kind byte and fields); `None` at a clean end of stream.
    ///
    /// # Errors
    /// Socket errors, a stream cut inside a message, and messages over [`MAX_MESSAGE`].
    pub(crate) async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        loop {
            if self.buf.len() >= 4 {
                let length =
                    u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                        as usize;
                if length == 0 || length > MAX_MESSAGE {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "link message length out of range",
                    ));
                }
                if self.buf.len() >= 4 + length {
                    self.buf.advance(4);
                    return Ok(Some(self.buf.split_to(length).freeze()));
                }
                self.buf
                    .reserve((4 + length - self.buf.len()).max(READ_CHUNK));
            } else {
                self.buf.reserve(READ_CHUNK);
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::gateway::EventKind;

    async fn messages(bytes: BytesMut) -> Vec<Bytes> {
        let mut reader = MessageReader::new(&bytes[..]);
        let mut out = Vec::new();
        while let Some(message) = reader.next().await.unwrap() {
            out.push(message);
        }
        out
    }

    #[tokio::test]
    async fn router_messages_round_trip() {
        let sent = vec![
            ToShard::Identify {
                conn: 1,
                payload: br#"{"op":2}"#.to_vec(),
            },
            ToShard::Resume {
                conn: 2,
                payload: br#"{"op":6}"#.to_vec(),
            },
            ToShard::Ack { conn: 3, seq: 99 },
            ToShard::Command {
                conn: 4,
                payload: br#"{"op":8}"#.to_vec(),
            },
            ToShard::Release {
                conn: 5,
                keep: true,
            },
        ];
        let mut out = BytesMut::new();
        for message in &sent {
            message.encode(&mut out);
        }
        let received: Vec<_> = messages(out)
            .await
            .into_iter()
            .map(|m| ToShard::decode(m).unwrap())
            .collect();
        assert_eq!(received, sent);
    }

    #[tokio::test]
    async fn bodies_cross_once_and_frames_name_them() {
        let a = EncodedEvent::new(EventKind::MessageCreate, br#"{"id":"1"}"#);
        let b = EncodedEvent::new(EventKind::MessageCreate, br#"{"id":"2"}"#);
        let frame = |conn, seq, event: &Arc<EncodedEvent>| ToRouter::Frame {
            conn,
            frame: OutFrame {
                seq,
                event: event.clone(),
            },
        };
        let mut encoder = BodyEncoder::default();
        let mut out = BytesMut::new();
        encoder.encode(&frame(1, 5, &a), &mut out);
        encoder.encode(&frame(2, 7, &a), &mut out);
        encoder.encode(
            &ToRouter::Opened {
                conn: 3,
                frames: vec![
                    OutFrame {
                        seq: 1,
                        event: b.clone(),
                    },
                    OutFrame {
                        seq: 2,
                        event: a.clone(),
                    },
                ],
            },
            &mut out,
        );
        encoder.encode(
            &ToRouter::Close {
                conn: 1,
                code: 4000,
            },
            &mut out,
        );
        let raw = messages(out).await;
        assert_eq!(raw.len(), 6, "two bodies, two frames, OPENED, CLOSE");

        let mut decoder = BodyDecoder::default();
        let decoded: Vec<_> = raw
            .into_iter()
            .filter_map(|m| decoder.decode(m).unwrap())
            .collect();
        let json = |frame: &OutFrame| {
            let mut buf = Vec::new();
            frame.write_json(&mut buf);
            String::from_utf8(buf).unwrap()
        };
        match &decoded[..] {
            [ToRouter::Frame { conn: 1, frame: f1 }, ToRouter::Frame { conn: 2, frame: f2 }, ToRouter::Opened { conn: 3, frames }, ToRouter::Close {
                conn: 1,
                code: 4000,
            }] => {
                assert_eq!(
                    json(f1),
                    r#"{"op":0,"s":5,"t":"MESSAGE_CREATE","d":{"id":"1"}}"#
                );
                assert_eq!(
                    json(f2),
                    r#"{"op":0,"s":7,"t":"MESSAGE_CREATE","d":{"id":"1"}}"#
                );
                assert!(Arc::ptr_eq(&f1.event, &f2.event), "one body, decoded once");
                assert_eq!(frames.len(), 2);
                assert_eq!(
                    json(&frames[0]),
                    r#"{"op":0,"s":1,"t":"MESSAGE_CREATE","d":{"id":"2"}}"#
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_frame_never_names_a_body_that_was_replaced() {
        let mut encoder = BodyEncoder::default();
        let mut decoder = BodyDecoder::default();
        let first = EncodedEvent::new(EventKind::MessageCreate, b"0");
        // Fill the ring past its size, then use the first body again: it must be resent.
        let mut out = BytesMut::new();
        encoder.encode(
            &ToRouter::Frame {
                conn: 1,
                frame: OutFrame {
                    seq: 1,
                    event: first.clone(),
                },
            },
            &mut out,
        );
        for i in 0..BODY_RING {
            let event = EncodedEvent::new(EventKind::MessageCreate, i.to_string().as_bytes());
            encoder.encode(
                &ToRouter::Frame {
                    conn: 1,
                    frame: OutFrame {
                        seq: 2 + i as u64,
                        event,
                    },
                },
                &mut out,
            );
        }
        encoder.encode(
            &ToRouter::Frame {
                conn: 1,
                frame: OutFrame {
                    seq: 9999,
                    event: first.clone(),
                },
            },
            &mut out,
        );
        let mut last = None;
        for message in messages(out).await {
            if let Some(decoded) = decoder.decode(message).unwrap() {
                last = Some(decoded);
            }
        }
        let Some(ToRouter::Frame { frame, .. }) = last else {
            panic!("no frame")
        };
        let mut buf = Vec::new();
        frame.write_json(&mut buf);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            r#"{"op":0,"s":9999,"t":"MESSAGE_CREATE","d":0}"#
        );
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_panic() {
        let mut decoder = BodyDecoder::default();
        assert!(decoder.decode(Bytes::from_static(&[FRAME, 1, 2])).is_err());
        assert!(decoder
            .decode(Bytes::from_static(&[FRAME, 0, 0, 0, 0, 0, 0, 0, 0]))
            .is_err());
        assert!(ToShard::decode(Bytes::from_static(&[77, 0, 0, 0, 0, 0, 0, 0, 0])).is_err());
        let mut opened = vec![OPENED];
        opened.extend_from_slice(&1u64.to_le_bytes());
        opened.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decoder.decode(Bytes::from(opened)).is_err());
        let oversized = (MAX_MESSAGE as u32 + 1).to_le_bytes();
        let mut reader = MessageReader::new(&oversized[..]);
        assert!(reader.next().await.is_err());
        let cut = [9u8, 0, 0, 0, FRAME];
        let mut reader = MessageReader::new(&cut[..]);
        assert!(reader.next().await.is_err());
    }
}
