//! Gateway close codes with Discord's meanings.

/// Close code sent by the server; see Discord Docs/Opcodes and Status Codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CloseCode {
    /// Catch-all; reconnectable.
    UnknownError = 4000,
    /// Unknown opcode or bad payload for an op.
    UnknownOpcode = 4001,
    /// Unparsable or oversized payload.
    DecodeError = 4002,
    /// Payload before Identify.
    NotAuthenticated = 4003,
    /// Bad token (fatal).
    AuthenticationFailed = 4004,
    /// Second Identify.
    AlreadyAuthenticated = 4005,
    /// Bad sequence on Resume.
    InvalidSeq = 4007,
    /// Over the command rate.
    RateLimited = 4008,
    /// Session timed out (missed heartbeats).
    SessionTimedOut = 4009,
    /// Bad shard array (fatal).
    InvalidShard = 4010,
    /// Too many guilds for one session (fatal).
    ShardingRequired = 4011,
    /// Bad `v` (fatal).
    InvalidApiVersion = 4012,
    /// Undefined intent bits (fatal).
    InvalidIntents = 4013,
    /// Privileged intent not enabled (fatal).
    DisallowedIntents = 4014,
}

impl CloseCode {
    /// Numeric code.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// Reason text sent in the close frame.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::UnknownError => "Unknown error.",
            Self::UnknownOpcode => "Unknown opcode.",
            Self::DecodeError => "Error while decoding payload.",
            Self::NotAuthenticated => "Not authenticated.",
            Self::AuthenticationFailed => "Authentication failed.",
            Self::AlreadyAuthenticated => "Already authenticated.",
            Self::InvalidSeq => "Invalid seq.",
            Self::RateLimited => "Rate limited.",
            Self::SessionTimedOut => "Session timed out.",
            Self::InvalidShard => "Invalid shard.",
            Self::ShardingRequired => "Sharding required.",
            Self::InvalidApiVersion => "Invalid API version.",
            Self::InvalidIntents => "Invalid intent(s).",
            Self::DisallowedIntents => "Disallowed intent(s).",
        }
    }

    /// Whether a client may reconnect after it.
    pub const fn reconnectable(self) -> bool {
        !matches!(
            self,
            Self::AuthenticationFailed
                | Self::InvalidShard
                | Self::ShardingRequired
                | Self::InvalidApiVersion
                | Self::InvalidIntents
                | Self::DisallowedIntents
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_fatality() {
        assert_eq!(CloseCode::AuthenticationFailed.code(), 4004);
        assert_eq!(CloseCode::DisallowedIntents.code(), 4014);
        assert!(!CloseCode::AuthenticationFailed.reconnectable());
        assert!(CloseCode::SessionTimedOut.reconnectable());
    }
}
