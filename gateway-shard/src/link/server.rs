//! The shard process's end of session links: accept, check the ticket, serve the session.

use std::sync::Arc;

use fastwebsockets::{Role, WebSocket};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Duration};
use tracing::debug;

use super::{LinkTickets, MAX_PREAMBLE, PREAMBLE};
use crate::connection::{serve, ConnectParams, ConnectionContext};

/// How long a router has to present its ticket.
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts session links on `listener` until `shutdown` resolves. Each link whose ticket is valid
/// for `node` runs the ordinary connection task with `context` (whose router resolves only this
/// process's slots); others are dropped.
pub async fn serve_links(
    listener: TcpListener,
    node: concord_core::topology::NodeId,
    tickets: Arc<LinkTickets>,
    context: ConnectionContext,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                debug!(%error, "link accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let tickets = tickets.clone();
        let context = context.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            match timeout(PREAMBLE_TIMEOUT, read_preamble(tcp)).await {
                Ok(Some((tcp, ticket))) if tickets.verify(&ticket, node) => {
                    let ws = WebSocket::after_handshake(tcp, Role::Server);
                    let params = ConnectParams {
                        linked: true,
                        ..ConnectParams::default()
                    };
                    serve(ws, params, context).await;
                }
                _ => debug!(%peer, "link refused: bad preamble or ticket"),
            }
        });
    }
}

/// Reads `CONCORD-LINK/1 <ticket>\n`; the bytes after it stay in the returned stream.
async fn read_preamble(tcp: TcpStream) -> Option<(TcpStream, String)> {
    // Read byte-wise through a small buffer so that nothing past the newline is consumed.
    let mut reader = BufReader::with_capacity(1, tcp);
    let mut line = Vec::with_capacity(256);
    let mut limited = (&mut reader).take(MAX_PREAMBLE as u64);
    limited.read_until(b'\n', &mut line).await.ok()?;
    let ticket = line.strip_prefix(PREAMBLE)?.strip_suffix(b"\n")?;
    let ticket = String::from_utf8(ticket.to_vec()).ok()?;
    Some((reader.into_inner(), ticket))
}
