//! Transport compression: one streaming context per connection.
//!
//! Memory budget per connection (the contexts dominate a connection's footprint):
//! - `zlib-stream` (zlib-rs, memLevel 8, which flate2 does not let us lower): window `2·2^w` +
//!   chain `2·2^w` + a fixed 128 KiB hash head + a 64 KiB literal buffer, i.e. about
//!   `4·2^w + 192 KiB`: ~320 KiB at `w = 15`. So the context lives only while the connection is
//!   sending: after [`IDLE_RELEASE`] without output it is dropped, and the next payload starts a
//!   fresh raw-deflate context. That is legal mid-stream because every payload ends with a sync
//!   flush, which closes the last block on a byte boundary; the client's inflater keeps its
//!   window and simply sees blocks that no longer refer back into it.
//! - `zstd-stream` (level 1): the window, an input buffer of window + block, per-block
//!   sequence/literal stores sized by the block (= the window, up to 128 KiB), and a hash table
//!   of `4·2^hashLog` bytes, with `hashLog = wlog - 2`. Measured with `ZSTD_sizeof_CCtx` after
//!   200 MESSAGE_CREATEs: ~40 KiB at `wlog = 11` (the default, 15.0× smaller output), ~54 KiB
//!   at 12 (15.8×), ~245 KiB at 15 (16.4×). A zstd stream is one frame, so its context cannot
//!   be dropped and restarted the way deflate's can.
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
/// How far below the window log the zstd hash table is sized (see the budget above).
const ZSTD_HASH_BELOW_WINDOW: u32 = 2;
/// zstd's smallest hash log.
const ZSTD_MIN_HASH_LOG: u32 = 6;

/// Output silence after which a connection gives back its compression memory.
pub(crate) const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(1);

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
        /// `None` while idle; see the budget above.
        context: Option<Box<Compress>>,
        window_bits: u8,
        out: Vec<u8>,
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
                    context: Some(Box::new(Compress::new_with_window_bits(
                        Level::fast(),
                        true,
                        bits,
                    ))),
                    window_bits: bits,
                    out: Vec::new(),
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
                let hash_log = log
                    .saturating_sub(ZSTD_HASH_BELOW_WINDOW)
                    .max(ZSTD_MIN_HASH_LOG);
                context
                    .set_parameter(CParameter::HashLog(hash_log))
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
            Self::Zlib {
                context,
                window_bits,
                out,
            } => {
                // Raw deflate: the stream's zlib header went out with its first payload.
                let context = context.get_or_insert_with(|| {
                    Box::new(Compress::new_with_window_bits(
                        Level::fast(),
                        false,
                        *window_bits,
                    ))
                });
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

    /// Whether [`Self::release_idle`] would give anything back.
    pub(crate) fn holds_idle_memory(&self) -> bool {
        match self {
            Self::Plain => false,
            Self::Zlib { context, out, .. } => context.is_some() || out.capacity() > 0,
            Self::Zstd { out, .. } => out.capacity() > 0,
        }
    }

    /// Gives back what an idle connection does not need: the output buffer and, for deflate,
    /// the whole context (see the budget above).
    pub(crate) fn release_idle(&mut self) {
        match self {
            Self::Plain => {}
            Self::Zlib { context, out, .. } => {
                *context = None;
                *out = Vec::new();
            }
            Self::Zstd { out, .. } => *out = Vec::new(),
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
            Self::Zlib { context: None, .. } => 0,
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
        // Gateway JSON compresses well; the loop grows the buffer for what does not.
        out.reserve(input.len() / 2 + 128);
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
            used > 0 && used <= 48 * 1024,
            "the default zstd context uses {used} bytes"
        );

        let wide = ShardConfig {
            zstd_window_log: 15,
            ..ShardConfig::default()
        };
        let mut transport = Transport::new(Compression::ZstdStream, &wide).unwrap();
        for payload in payloads() {
            transport.encode(&payload).unwrap();
        }
        assert!(
            transport.context_bytes() > used,
            "a wider window must grow the context"
        );
    }

    #[test]
    fn streams_survive_releasing_idle_memory_between_payloads() {
        for kind in [Compression::ZlibStream, Compression::ZstdStream] {
            let mut transport = Transport::new(kind, &ShardConfig::default()).unwrap();
            let mut inflate = Decompress::new(true);
            let mut unzstd = zstd::stream::raw::Decoder::new().unwrap();
            for (i, payload) in payloads().into_iter().enumerate() {
                if i % 3 == 1 {
                    assert!(transport.holds_idle_memory());
                    transport.release_idle();
                    assert!(!transport.holds_idle_memory(), "{kind:?}");
                    if kind == Compression::ZlibStream {
                        assert_eq!(transport.context_bytes(), 0);
                    }
                }
                let (_, bytes) = transport.encode(&payload).unwrap();
                let decoded = if kind == Compression::ZlibStream {
                    let mut decoded = Vec::with_capacity(payload.len() + 64);
                    inflate
                        .decompress_vec(bytes, &mut decoded, FlushDecompress::Sync)
                        .unwrap();
                    decoded
                } else {
                    zstd_decode(&mut unzstd, bytes)
                };
                assert_eq!(decoded, payload, "{kind:?} payload {i}");
            }
        }
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
