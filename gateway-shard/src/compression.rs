//! Transport compression: one streaming context per connection.
//!
//! Memory budget per connection (the contexts dominate a connection's footprint):
//! - `zlib-stream` (zlib-rs, memLevel 8): window `2·2^w` + chain `2·2^w` + a fixed 128 KiB hash
//!   head + a 64 KiB literal buffer, i.e. about `4·2^w + 192 KiB`: ~320 KiB at `w = 15`,
//!   ~196 KiB at `w = 9`.
//! - `zstd-stream` (level 1): the window, an input buffer of window + block, and per-block
//!   sequence/literal stores sized by the block (= the window, up to 128 KiB). Measured with
//!   `ZSTD_sizeof_CCtx`: ~96 KiB at `wlog = 10`, ~200 KiB at 14, ~305 KiB at 15 (the default),
//!   ~520 KiB at 16, ~950 KiB at 17.
//!
//! Plain connections hold no context. Each payload is flushed (zlib `Z_SYNC_FLUSH`, zstd
//! `ZSTD_e_flush`) so that one WebSocket message decodes to exactly one gateway payload.

use flate2::{Compress, Compression as Level, FlushCompress, Status};
use zstd::zstd_safe::{self, zstd_sys::ZSTD_EndDirective, CCtx, CParameter, InBuffer, OutBuffer};

use crate::config::{ShardConfig, ZLIB_WINDOW_BITS_RANGE, ZSTD_WINDOW_LOG_RANGE};
use crate::error::{Error, Result};
use crate::frame::release_excess;

/// zstd level: the cheapest, since every connection compresses every payload it is sent.
const ZSTD_LEVEL: i32 = 1;

/// What the client asked for with the `compress` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// TEXT frames of plain JSON.
    #[default]
    None,
    /// `zlib-stream`.
    ZlibStream,
    /// `zstd-stream`.
    ZstdStream,
}

impl Compression {
    /// Parses the `compress` query value; unknown values mean no compression.
    pub fn from_query(value: &str) -> Self {
        match value {
            "zlib-stream" => Self::ZlibStream,
            "zstd-stream" => Self::ZstdStream,
            _ => Self::None,
        }
    }
}

/// The encoder of one connection.
pub(crate) enum Transport {
    Plain,
    Zlib {
        context: Box<Compress>,
        out: Vec<u8>,
        #[cfg(test)]
        window_bits: u8,
    },
    Zstd {
        context: Box<CCtx<'static>>,
        out: Vec<u8>,
    },
}

impl Transport {
    /// Builds the context the client asked for, sized by the configured window.
    pub(crate) fn new(kind: Compression, config: &ShardConfig) -> Result<Self> {
        Ok(match kind {
            Compression::None => Self::Plain,
            Compression::ZlibStream => {
                let bits = config.zlib_window_bits.clamp(
                    *ZLIB_WINDOW_BITS_RANGE.start(),
                    *ZLIB_WINDOW_BITS_RANGE.end(),
                );
                Self::Zlib {
                    context: Box::new(Compress::new_with_window_bits(Level::fast(), true, bits)),
                    out: Vec::new(),
                    #[cfg(test)]
                    window_bits: bits,
                }
            }
            Compression::ZstdStream => {
                let log = config
                    .zstd_window_log
                    .clamp(*ZSTD_WINDOW_LOG_RANGE.start(), *ZSTD_WINDOW_LOG_RANGE.end());
                let mut context = CCtx::create();
                context
                    .set_parameter(CParameter::CompressionLevel(ZSTD_LEVEL))
                    .map_err(zstd_error)?;
                context
                    .set_parameter(CParameter::WindowLog(log))
                    .map_err(zstd_error)?;
                Self::Zstd {
                    context: Box::new(context),
                    out: Vec::new(),
                }
            }
        })
    }

    /// Encodes one payload; returns whether it goes in a BINARY message and its bytes.
    pub(crate) fn encode<'a>(&'a mut self, json: &'a [u8]) -> Result<(bool, &'a [u8])> {
        match self {
            Self::Plain => Ok((false, json)),
            Self::Zlib { context, out, .. } => {
                deflate_sync(context, json, out)?;
                Ok((true, out.as_slice()))
            }
            Self::Zstd { context, out } => {
                zstd_flush(context, json, out)?;
                Ok((true, out.as_slice()))
            }
        }
    }

    /// Shrinks the output buffer after a large payload (see [`release_excess`]).
    pub(crate) fn release_excess(&mut self) {
        match self {
            Self::Plain => {}
            Self::Zlib { out, .. } | Self::Zstd { out, .. } => release_excess(out),
        }
    }

    /// Output buffer capacity, for tests of the budget.
    #[cfg(test)]
    pub(crate) fn out_capacity(&self) -> usize {
        match self {
            Self::Plain => 0,
            Self::Zlib { out, .. } | Self::Zstd { out, .. } => out.capacity(),
        }
    }

    /// Bytes held by the compression context (0 for plain connections), for the budget above.
    #[cfg(test)]
    pub(crate) fn context_bytes(&self) -> usize {
        match self {
            Self::Plain => 0,
            // flate2 does not expose the allocation; this is zlib-rs's layout at memLevel 8.
            Self::Zlib { window_bits, .. } => (4usize << window_bits) + 192 * 1024,
            Self::Zstd { context, .. } => context.sizeof(),
        }
    }
}

/// Deflates `input` into `out` (cleared first) and sync-flushes, so `out` ends in `00 00 FF FF`.
fn deflate_sync(context: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    let start = context.total_in();
    loop {
        let consumed = usize::try_from(context.total_in() - start).unwrap_or(input.len());
        out.reserve(input.len().saturating_sub(consumed) / 2 + 64);
        let status = context
            .compress_vec(&input[consumed..], out, FlushCompress::Sync)
            .map_err(|e| Error::Compression(e.to_string()))?;
        let consumed = usize::try_from(context.total_in() - start).unwrap_or(input.len());
        // The flush is complete once all input is in and deflate left output space unused.
        if consumed == input.len() && out.len() < out.capacity() {
            return Ok(());
        }
        if status == Status::StreamEnd {
            return Err(Error::Compression("deflate stream ended".to_owned()));
        }
    }
}

/// Compresses `input` into `out` (cleared first) and flushes the block without ending the frame.
fn zstd_flush(context: &mut CCtx<'static>, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    let mut source = InBuffer::around(input);
    loop {
        out.reserve(zstd_safe::CCtx::out_size().max(input.len() / 2 + 64));
        let pos = out.len();
        let mut sink = OutBuffer::around_pos(out, pos);
        let remaining = context
            .compress_stream2(&mut sink, &mut source, ZSTD_EndDirective::ZSTD_e_flush)
            .map_err(zstd_error)?;
        if remaining == 0 && source.pos() == input.len() {
            return Ok(());
        }
    }
}

fn zstd_error(code: usize) -> Error {
    Error::Compression(zstd_safe::get_error_name(code).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::RETAINED_SCRATCH;
    use flate2::{Decompress, FlushDecompress};

    fn payloads() -> Vec<Vec<u8>> {
        let mut all =
            vec![br#"{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}"#.to_vec()];
        for i in 0..50u32 {
            all.push(
                format!(
                    r#"{{"op":0,"s":{i},"t":"MESSAGE_CREATE","d":{{"content":"{}"}}}}"#,
                    "x".repeat(i as usize * 97)
                )
                .into_bytes(),
            );
        }
        all
    }

    #[test]
    fn zlib_stream_decodes_across_messages_and_ends_in_sync_marker() {
        for bits in [9u8, 15] {
            let config = ShardConfig {
                zlib_window_bits: bits,
                ..ShardConfig::default()
            };
            let mut transport = Transport::new(Compression::ZlibStream, &config).unwrap();
            let mut inflate = Decompress::new(true);
            for payload in payloads() {
                let (binary, bytes) = transport.encode(&payload).unwrap();
                assert!(binary);
                assert!(bytes.ends_with(&[0, 0, 0xFF, 0xFF]));
                let mut decoded = Vec::with_capacity(payload.len() + 64);
                inflate
                    .decompress_vec(bytes, &mut decoded, FlushDecompress::Sync)
                    .unwrap();
                assert_eq!(decoded, payload);
            }
        }
    }

    #[test]
    fn zstd_stream_decodes_across_messages_within_budget() {
        let config = ShardConfig::default();
        let mut transport = Transport::new(Compression::ZstdStream, &config).unwrap();
        let mut decoder = zstd::stream::raw::Decoder::new().unwrap();
        for payload in payloads() {
            let (binary, bytes) = transport.encode(&payload).unwrap();
            assert!(binary);
            let decoded = zstd_decode(&mut decoder, bytes);
            assert_eq!(decoded, payload);
        }
        let used = transport.context_bytes();
        assert!(
            used > 0 && used < 340 * 1024,
            "zstd context uses {used} bytes"
        );

        let small = ShardConfig {
            zstd_window_log: 12,
            ..ShardConfig::default()
        };
        let mut transport = Transport::new(Compression::ZstdStream, &small).unwrap();
        for payload in payloads() {
            transport.encode(&payload).unwrap();
        }
        assert!(
            transport.context_bytes() < used,
            "a smaller window must shrink the context"
        );
    }

    fn zstd_decode(decoder: &mut zstd::stream::raw::Decoder<'static>, input: &[u8]) -> Vec<u8> {
        use zstd::stream::raw::Operation;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut source = InBuffer::around(input);
        loop {
            let mut sink = OutBuffer::around(&mut buf[..]);
            decoder.run(&mut source, &mut sink).unwrap();
            let written = sink.pos();
            out.extend_from_slice(&buf[..written]);
            if source.pos() == input.len() && written < buf.len() {
                return out;
            }
        }
    }

    #[test]
    fn output_buffers_shrink_after_a_large_payload_and_the_stream_goes_on() {
        // Incompressible enough that the output is as large as the input.
        let big: Vec<u8> = (0..400_000u32)
            .map(|i| b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26)
            .collect();
        for kind in [Compression::ZlibStream, Compression::ZstdStream] {
            let mut transport = Transport::new(kind, &ShardConfig::default()).unwrap();
            transport.encode(&big).unwrap();
            assert!(transport.out_capacity() > RETAINED_SCRATCH);
            transport.release_excess();
            assert!(transport.out_capacity() <= RETAINED_SCRATCH, "{kind:?}");
        }
        let mut transport =
            Transport::new(Compression::ZlibStream, &ShardConfig::default()).unwrap();
        let mut inflate = Decompress::new(true);
        for payload in [big.clone(), b"{\"op\":11}".to_vec(), big] {
            let (_, bytes) = transport.encode(&payload).unwrap();
            let mut decoded = Vec::with_capacity(payload.len() + 64);
            inflate
                .decompress_vec(bytes, &mut decoded, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(decoded, payload);
            transport.release_excess();
        }
    }

    #[test]
    fn plain_is_text_and_unknown_values_mean_plain() {
        let mut transport = Transport::new(Compression::None, &ShardConfig::default()).unwrap();
        assert_eq!(transport.encode(b"{}").unwrap(), (false, &b"{}"[..]));
        assert_eq!(Compression::from_query("zlib"), Compression::None);
        assert_eq!(
            Compression::from_query("zstd-stream"),
            Compression::ZstdStream
        );
    }
}
