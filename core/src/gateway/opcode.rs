//! Gateway opcodes.

use serde_repr::{Deserialize_repr, Serialize_repr};

/// Gateway opcode; see Discord Docs/Opcodes and Status Codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize_repr, Deserialize_repr)]
#[repr(u8)]
pub enum OpCode {
    /// Server → client event.
    Dispatch = 0,
    /// Keep-alive, both directions.
    Heartbeat = 1,
    /// Start a session.
    Identify = 2,
    /// Update own presence.
    PresenceUpdate = 3,
    /// Voice state update (accepted and ignored: no voice yet).
    VoiceStateUpdate = 4,
    /// Resume a session.
    Resume = 6,
    /// Reconnect and resume.
    Reconnect = 7,
    /// Ask for member chunks.
    RequestGuildMembers = 8,
    /// Session invalid; `d` says whether it may be resumed.
    InvalidSession = 9,
    /// First frame with the heartbeat interval.
    Hello = 10,
    /// Answer to a heartbeat.
    HeartbeatAck = 11,
    /// Request soundboard sounds (accepted and ignored).
    RequestSoundboardSounds = 31,
    /// Request channel info (accepted and ignored).
    RequestChannelInfo = 43,
}
