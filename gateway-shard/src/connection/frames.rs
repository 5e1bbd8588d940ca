//! Client-to-server WebSocket frames (RFC 6455 §5.2) read with a buffer that holds only what is
//! in flight.
//!
//! fastwebsockets writes our frames, but its reader keeps a fixed 8 KiB buffer per socket for
//! the socket's whole life: a third of an idle session's heap (measured with heaptrack over
//! 2 000 sessions). Gateway clients send a heartbeat every ~40 s and nothing larger than 4 KiB,
//! so this reader starts empty, grows while a frame arrives and lets go once it has been taken.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes asked of the socket per read while nothing larger is known to be coming.
const READ_CHUNK: usize = 256;
/// Control frames carry at most this much (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Frame opcodes a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// One frame, unmasked.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    pub(crate) opcode: Opcode,
    pub(crate) payload: BytesMut,
}

/// Why no frame could be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The socket ended or failed.
    Closed,
    /// A frame announced more than the reader's limit; its payload was not read.
    TooLarge,
    /// A frame broke the protocol: reserved bits, no mask, unknown opcode, or a fragmented or
    /// oversized control frame.
    Protocol,
}

/// Reads masked client frames from `io`.
pub(crate) struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    max_payload: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader refusing frames whose payload exceeds `max_payload`.
    pub(crate) fn new(io: R, max_payload: usize) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            max_payload,
        }
    }

    /// Reads the next frame.
    pub(crate) async fn next(&mut self) -> Result<Frame, ReadError> {
        self.fill(2).await?;
        let (first, second) = (self.buf[0], self.buf[1]);
        if first & 0x70 != 0 || second & 0x80 == 0 {
            // No extension was negotiated, and RFC 6455 §5.1 requires clients to mask.
            return Err(ReadError::Protocol);
        }
        let fin = first & 0x80 != 0;
        let opcode = Opcode::from_bits(first & 0x0F).ok_or(ReadError::Protocol)?;
        let extra = match second & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header = 2 + extra + 4;
        self.fill(header).await?;
        let len = match extra {
            2 => u64::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
            8 => u64::from_be_bytes(self.buf[2..10].try_into().expect("8 bytes")),
            _ => u64::from(second & 0x7F),
        };
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if opcode.is_control() && (!fin || len > MAX_CONTROL_PAYLOAD) {
            return Err(ReadError::Protocol);
        }
        if len > self.max_payload {
            return Err(ReadError::TooLarge);
        }
        let mask: [u8; 4] = self.buf[header - 4..header].try_into().expect("4 bytes");
        self.fill(header + len).await?;
        self.buf.advance(header);
        let mut payload = self.buf.split_to(len);
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        if self.buf.is_empty() {
            // The payload shares the buffer's allocation; a fresh buffer lets that allocation
            // go with the payload instead of staying behind for the next read.
            self.buf = BytesMut::new();
        }
        Ok(Frame {
            fin,
            opcode,
            payload,
        })
    }

    /// Reads until at least `needed` bytes are buffered.
    async fn fill(&mut self, needed: usize) -> Result<(), ReadError> {
        while self.buf.len() < needed {
            self.buf.reserve((needed - self.buf.len()).max(READ_CHUNK));
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Err(ReadError::Closed),
                Ok(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A masked client frame.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut out = vec![first];
        match payload.len() {
            len @ 0..=125 => out.push(0x80 | len as u8),
            len @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    async fn read_all(
        bytes: Vec<u8>,
        max: usize,
    ) -> Vec<Result<(bool, Opcode, Vec<u8>), ReadError>> {
        let (mut peer, io) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            // Dribbled out in small pieces so frames straddle reads.
            for chunk in bytes.chunks(7) {
                if peer.write_all(chunk).await.is_err() {
                    return;
                }
            }
        });
        let mut reader = FrameReader::new(io, max);
        let mut out = Vec::new();
        loop {
            let frame = reader.next().await;
            let done = frame.is_err();
            out.push(frame.map(|f| (f.fin, f.opcode, f.payload.to_vec())));
            if done {
                break;
            }
        }
        // The writer may be blocked on bytes nobody will read once an error ended the reading.
        drop(reader);
        writer.await.unwrap();
        out
    }

    #[tokio::test]
    async fn reads_every_length_encoding_and_unmasks() {
        let mid = vec![b'm'; 300];
        let big = vec![b'b'; 70_000];
        let mut wire = masked(0x81, b"hello");
        wire.extend(masked(0x02, &mid));
        wire.extend(masked(0x80, &big));
        wire.extend(masked(0x89, b"ping"));
        let frames = read_all(wire, 100_000).await;
        assert_eq!(frames[0], Ok((true, Opcode::Text, b"hello".to_vec())));
        assert_eq!(frames[1], Ok((false, Opcode::Binary, mid)));
        assert_eq!(frames[2], Ok((true, Opcode::Continuation, big)));
        assert_eq!(frames[3], Ok((true, Opcode::Ping, b"ping".to_vec())));
        assert_eq!(frames[4], Err(ReadError::Closed));
    }

    #[tokio::test]
    async fn refuses_what_the_protocol_forbids() {
        let mut unmasked = masked(0x81, b"x");
        unmasked[1] &= 0x7F;
        let cases = [
            (masked(0xC1, b"x"), ReadError::Protocol),
            (unmasked, ReadError::Protocol),
            (masked(0x83, b"x"), ReadError::Protocol),
            (masked(0x09, b"x"), ReadError::Protocol),
            (masked(0x89, &[0; 126]), ReadError::Protocol),
            (masked(0x81, &[b'x'; 101]), ReadError::TooLarge),
        ];
        for (wire, expected) in cases {
            assert_eq!(read_all(wire, 100).await, vec![Err(expected)]);
        }
    }

    #[tokio::test]
    async fn a_large_frame_does_not_stay_in_memory() {
        let (mut peer, io) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(io, 1 << 16);
        peer.write_all(&masked(0x81, &[b'x'; 20_000]))
            .await
            .unwrap();
        let frame = reader.next().await.unwrap();
        assert_eq!(frame.payload.len(), 20_000);
        drop(frame);
        peer.write_all(&masked(0x81, b"{}")).await.unwrap();
        reader.next().await.unwrap();
        assert_eq!(reader.buf.capacity(), 0);
    }
}
