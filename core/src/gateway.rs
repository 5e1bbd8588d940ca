//! Gateway v10 protocol types: opcodes, close codes, intents, payloads and dispatch event kinds.

pub mod close_code;
pub mod event;
pub mod intents;
pub mod opcode;
pub mod payload;

pub use close_code::CloseCode;
pub use event::EventKind;
pub use intents::Intents;
pub use opcode::OpCode;

/// Largest client payload accepted, in bytes (close 4002 beyond).
pub const MAX_CLIENT_PAYLOAD: usize = 4096;
/// Client commands allowed per [`COMMAND_WINDOW_SECS`] (close 4008 beyond).
pub const COMMANDS_PER_WINDOW: u32 = 120;
/// Command rate window.
pub const COMMAND_WINDOW_SECS: u64 = 60;
/// Gateway API version served.
pub const GATEWAY_VERSION: u8 = 10;
