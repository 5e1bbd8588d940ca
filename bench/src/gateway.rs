//! The bench's gateway client: sockets, transport decompression, payloads, and the session
//! state machine (Identify, heartbeats, Resume, re-Identify).
//!
//! - `socket`: TCP (bound to a source address) + WebSocket upgrade, a reader task per socket;
//! - `decode`: `zlib-stream` / `zstd-stream` / plain;
//! - `payload`: the few gateway payloads the bench reads and writes;
//! - `session`: one session's life;
//! - `shared`: what a worker's sessions share, and what each hands back.

mod decode;
mod payload;
mod session;
mod shared;
mod socket;

pub use decode::Compress;
pub use payload::{parse_content, DEFAULT_INTENTS};
pub use session::run_session;
pub use shared::{
    drop_selected, Control, LastRecipient, Outcome, SessionRecord, Settings, Shared, WorkerStats,
};
