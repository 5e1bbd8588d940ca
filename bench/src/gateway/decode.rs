//! Transport decompression: one inflate or zstd context per connection, as Discord clients do.

use flate2::{Decompress, FlushDecompress, Status};
use serde::{Deserialize, Serialize};
use zstd::stream::raw::{Decoder as ZstdDecoder, InBuffer, Operation, OutBuffer};

/// End of every complete `zlib-stream` message (a sync flush).
const ZLIB_SUFFIX: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The `compress` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Compress {
    /// Plain JSON text frames.
    #[default]
    None,
    /// One zlib stream per connection, each message ending in a sync flush.
    ZlibStream,
    /// One zstd stream per connection, each message flushed.
    ZstdStream,
}

impl Compress {
    /// What to append to the gateway URL's query.
    pub fn query(self) -> &'static str {
        match self {
            Self::None => "",
            Self::ZlibStream => "&compress=zlib-stream",
            Self::ZstdStream => "&compress=zstd-stream",
        }
    }
}

/// Why a message did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    Zlib,
    Zstd,
}

impl DecodeError {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Zlib => "zlib_error",
            Self::Zstd => "zstd_error",
        }
    }
}

/// The decompression state of one connection.
pub(crate) enum Decoder {
    Plain,
    Zlib {
        inflate: Box<Decompress>,
        /// Bytes of a message split over several WebSocket messages.
        pending: Vec<u8>,
    },
    Zstd(Box<ZstdDecoder<'static>>),
}

impl Decoder {
    pub(crate) fn new(compress: Compress) -> std::io::Result<Self> {
        Ok(match compress {
            Compress::None => Self::Plain,
            Compress::ZlibStream => Self::Zlib {
                inflate: Box::new(Decompress::new(true)),
                pending: Vec::new(),
            },
            Compress::ZstdStream => Self::Zstd(Box::new(ZstdDecoder::new()?)),
        })
    }

    /// Feeds one WebSocket message; returns a whole JSON payload once one is complete.
    pub(crate) fn push(
        &mut self,
        binary: bool,
        data: &[u8],
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        if !binary {
            return Ok(Some(data.to_vec()));
        }
        match self {
            Self::Plain => Ok(Some(data.to_vec())),
            Self::Zlib { inflate, pending } => {
                let whole = if pending.is_empty() && data.ends_with(&ZLIB_SUFFIX) {
                    inflate_all(inflate, data)?
                } else {
                    pending.extend_from_slice(data);
                    if !pending.ends_with(&ZLIB_SUFFIX) {
                        return Ok(None);
                    }
                    let input = std::mem::take(pending);
                    inflate_all(inflate, &input)?
                };
                Ok(Some(whole))
            }
            Self::Zstd(decoder) => {
                let mut out = Vec::with_capacity(data.len() * 4 + 256);
                let mut input = InBuffer::around(data);
                loop {
                    if out.len() == out.capacity() {
                        out.reserve(out.capacity());
                    }
                    let pos = out.len();
                    let mut output = OutBuffer::around_pos(&mut out, pos);
                    decoder
                        .run(&mut input, &mut output)
                        .map_err(|_| DecodeError::Zstd)?;
                    let written = output.pos();
                    // Done once the input is used up and the decoder had room to spare.
                    if input.pos() == data.len() && written < out.capacity() {
                        return Ok(Some(out));
                    }
                }
            }
        }
    }
}

fn inflate_all(inflate: &mut Decompress, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(input.len() * 4 + 256);
    let start = inflate.total_in();
    let consumed = |inflate: &Decompress| usize::try_from(inflate.total_in() - start).unwrap_or(0);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        }
        let (used, produced) = (consumed(inflate), out.len());
        let status = inflate
            .decompress_vec(&input[used..], &mut out, FlushDecompress::Sync)
            .map_err(|_| DecodeError::Zlib)?;
        // Done once the input is used up and the inflater had room to spare.
        if status == Status::StreamEnd
            || (consumed(inflate) == input.len() && out.len() < out.capacity())
        {
            return Ok(out);
        }
        if consumed(inflate) == used && out.len() == produced {
            return Err(DecodeError::Zlib);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress as Deflate, Compression, FlushCompress};

    fn deflate_sync(ctx: &mut Deflate, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 1024);
        ctx.compress_vec(data, &mut out, FlushCompress::Sync)
            .unwrap();
        out
    }

    #[test]
    fn zlib_stream_keeps_one_context_and_joins_split_messages() {
        let mut ctx = Deflate::new(Compression::fast(), true);
        let mut decoder = Decoder::new(Compress::ZlibStream).unwrap();
        let first = br#"{"op":10,"d":{"heartbeat_interval":41250}}"#;
        let big: Vec<u8> = format!(r#"{{"op":0,"d":"{}"}}"#, "x".repeat(100_000)).into_bytes();
        let a = deflate_sync(&mut ctx, first);
        assert_eq!(decoder.push(true, &a).unwrap().unwrap(), first);
        let b = deflate_sync(&mut ctx, &big);
        let (head, tail) = b.split_at(b.len() / 2);
        assert_eq!(decoder.push(true, head).unwrap(), None);
        assert_eq!(decoder.push(true, tail).unwrap().unwrap(), big);
        // Later messages reuse the window built by earlier ones.
        let c = deflate_sync(&mut ctx, first);
        assert_eq!(decoder.push(true, &c).unwrap().unwrap(), first);
    }

    #[test]
    fn zstd_stream_decodes_flushed_messages() {
        use zstd::stream::raw::{Encoder, Operation as _};
        let mut encoder = Encoder::new(1).unwrap();
        let mut decoder = Decoder::new(Compress::ZstdStream).unwrap();
        for payload in [
            br#"{"op":11}"#.to_vec(),
            format!(r#"{{"op":0,"d":"{}"}}"#, "y".repeat(300_000)).into_bytes(),
        ] {
            let mut out = vec![0u8; payload.len() + 1024];
            let mut input = InBuffer::around(&payload);
            let mut output = OutBuffer::around(&mut out[..]);
            encoder.run(&mut input, &mut output).unwrap();
            encoder.flush(&mut output).unwrap();
            let n = output.pos();
            assert_eq!(decoder.push(true, &out[..n]).unwrap().unwrap(), payload);
        }
    }

    #[test]
    fn text_frames_pass_through() {
        let mut decoder = Decoder::new(Compress::ZstdStream).unwrap();
        assert_eq!(decoder.push(false, b"{}").unwrap().unwrap(), b"{}");
        assert_eq!(
            Decoder::new(Compress::ZlibStream)
                .unwrap()
                .push(true, b"garbage\x00\x00\xff\xff"),
            Err(DecodeError::Zlib)
        );
    }
}
