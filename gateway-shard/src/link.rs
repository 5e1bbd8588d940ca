//! Links: how a router serves sessions whose slot another process holds.
//!
//! The router terminates the client's WebSocket (HELLO, heartbeats, compression, the command
//! budget) and multiplexes every session it serves on one shard process over one TCP
//! connection to that process. The router opens it with `CONCORD-LINK/1 <ticket>\n`, where the
//! ticket is a short-lived HS256 JWT that only processes sharing the cluster secret can mint
//! ([`LinkTickets`]); after that line both ends speak the binary format of `wire`: the router
//! forwards Identify, Resume, heartbeat acknowledgements and op 8, and the shard sends each
//! event body once per link and then one small frame per session.

mod client;
mod outbox;
mod server;
mod ticket;
mod wire;

pub(crate) use client::Opened;
pub use client::{LinkClient, LinkPool};
pub use server::serve_links;
pub use ticket::LinkTickets;
pub(crate) use wire::ToShard;

/// First bytes a router sends on a link, before the ticket.
pub(crate) const PREAMBLE: &[u8] = b"CONCORD-LINK/1 ";
/// Longest preamble line accepted.
pub(crate) const MAX_PREAMBLE: usize = 2048;
/// Write buffer a link keeps between batches; a larger burst's buffer is given back.
const RETAINED_WRITE_BUFFER: usize = 256 * 1024;

/// Writes what `outbox` holds, a batch per wake-up, each message encoded by `encode`, until the
/// outbox is closed (`Ok`) or the socket fails.
async fn write_batches<T, W>(
    outbox: &outbox::Outbox<T>,
    write: &mut W,
    mut encode: impl FnMut(&T, &mut bytes::BytesMut),
) -> std::io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let mut batch = Vec::new();
    let mut buf = bytes::BytesMut::new();
    while outbox.take(&mut batch).await {
        for message in batch.drain(..) {
            encode(&message, &mut buf);
        }
        write.write_all(&buf).await?;
        buf.clear();
        // A burst's buffer is given back rather than kept for the link's life.
        if buf.capacity() > RETAINED_WRITE_BUFFER {
            buf = bytes::BytesMut::new();
        }
    }
    Ok(())
}
