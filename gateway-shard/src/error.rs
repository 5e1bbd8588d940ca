//! The crate's error type and its one mapping to gateway close codes.

use concord_core::gateway::CloseCode;
use concord_core::repo::RepoError;

/// Result alias with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a connection ends or an operation fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client payload over 4096 bytes.
    #[error("payload too large")]
    PayloadTooLarge,
    /// A client payload that is not JSON, or not the shape its opcode needs.
    #[error("undecodable payload")]
    Decode,
    /// An opcode clients may not send.
    #[error("unknown opcode {0}")]
    UnknownOpcode(i64),
    /// A command other than heartbeat, identify or resume before identifying.
    #[error("not authenticated")]
    NotAuthenticated,
    /// A bad, forged or revoked token.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A second Identify (or a Resume) on an identified connection.
    #[error("already authenticated")]
    AlreadyAuthenticated,
    /// More client payloads than the command window allows.
    #[error("rate limited")]
    RateLimited,
    /// No heartbeat within the timeout.
    #[error("heartbeat timed out")]
    HeartbeatTimeout,
    /// A `shard` array with `id >= count` or `count == 0`.
    #[error("invalid shard")]
    InvalidShard,
    /// A `v` query parameter other than 10.
    #[error("invalid api version")]
    InvalidApiVersion,
    /// An `encoding` other than `json` (ETF is not served).
    #[error("unsupported encoding")]
    UnsupportedEncoding,
    /// Intent bits Discord does not define.
    #[error("invalid intents")]
    InvalidIntents,
    /// Privileged intents the application has not enabled.
    #[error("disallowed intents")]
    DisallowedIntents,
    /// The outgoing queue filled up; the client should resume.
    #[error("slow consumer")]
    SlowConsumer,
    /// Another connection resumed this session.
    #[error("session taken over by another connection")]
    SessionTakenOver,
    /// The gateway is shutting down or moving the session; the client should resume.
    #[error("reconnect requested")]
    Reconnect,
    /// No shard is live to host the session.
    #[error("no live shard")]
    NoLiveShard,
    /// The server closed the user's sessions (for example a token reset) with this code.
    #[error("sessions closed by the server with code {0}")]
    ClosedByServer(u16),
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] RepoError),
    /// The cluster (bus, topology or a link to another process) failed.
    #[error("cluster: {0}")]
    Cluster(String),
    /// Transport compression failure.
    #[error("compression: {0}")]
    Compression(String),
    /// The socket failed; nothing more can be sent on it.
    #[error("websocket: {0}")]
    WebSocket(#[from] fastwebsockets::WebSocketError),
    /// A configuration value is out of range.
    #[error("invalid gateway setting `{field}`: {why}")]
    Config {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

impl Error {
    /// The close code a connection ending with this error sends; `None` when the socket is
    /// unusable, so nothing can be sent.
    ///
    /// This is the only place errors become close codes.
    pub fn close_code(&self) -> Option<u16> {
        let code = match self {
            Self::PayloadTooLarge | Self::Decode => CloseCode::DecodeError,
            Self::UnknownOpcode(_) => CloseCode::UnknownOpcode,
            Self::NotAuthenticated => CloseCode::NotAuthenticated,
            Self::AuthenticationFailed => CloseCode::AuthenticationFailed,
            Self::AlreadyAuthenticated => CloseCode::AlreadyAuthenticated,
            Self::RateLimited => CloseCode::RateLimited,
            Self::HeartbeatTimeout => CloseCode::SessionTimedOut,
            Self::InvalidShard => CloseCode::InvalidShard,
            // ETF clients cannot be served at all, so the fatal version code stops their retries.
            Self::InvalidApiVersion | Self::UnsupportedEncoding => CloseCode::InvalidApiVersion,
            Self::InvalidIntents => CloseCode::InvalidIntents,
            Self::DisallowedIntents => CloseCode::DisallowedIntents,
            Self::SlowConsumer
            | Self::SessionTakenOver
            | Self::Reconnect
            | Self::NoLiveShard
            | Self::Store(_)
            | Self::Cluster(_)
            | Self::Compression(_)
            | Self::Config { .. } => CloseCode::UnknownError,
            Self::ClosedByServer(code) => return Some(*code),
            Self::WebSocket(_) => return None,
        };
        Some(code.code())
    }

    /// The close code to pass to a client whose socket is fine (over a link): the error's code,
    /// or 4000 (resumable) for an error that is a socket failure of the other end.
    pub(crate) fn link_close_code(&self) -> u16 {
        self.close_code().unwrap_or(CloseCode::UnknownError.code())
    }

    /// Whether the session stays resumable after its connection ends with this error.
    pub(crate) fn keeps_session(&self) -> bool {
        match self.close_code() {
            Some(code) => close_code_from_u16(code).is_none_or(CloseCode::reconnectable),
            None => true,
        }
    }
}

/// Every close code, to recover the typed code (and its reason) from a number.
const CLOSE_CODES: [CloseCode; 14] = [
    CloseCode::UnknownError,
    CloseCode::UnknownOpcode,
    CloseCode::DecodeError,
    CloseCode::NotAuthenticated,
    CloseCode::AuthenticationFailed,
    CloseCode::AlreadyAuthenticated,
    CloseCode::InvalidSeq,
    CloseCode::RateLimited,
    CloseCode::SessionTimedOut,
    CloseCode::InvalidShard,
    CloseCode::ShardingRequired,
    CloseCode::InvalidApiVersion,
    CloseCode::InvalidIntents,
    CloseCode::DisallowedIntents,
];

/// The typed close code for a number, when it is one of Discord's.
pub(crate) fn close_code_from_u16(code: u16) -> Option<CloseCode> {
    CLOSE_CODES.into_iter().find(|c| c.code() == code)
}

/// Reason text for a close code.
pub(crate) fn close_reason(code: u16) -> &'static str {
    close_code_from_u16(code).map_or("", CloseCode::reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_follow_the_protocol_table() {
        assert_eq!(Error::PayloadTooLarge.close_code(), Some(4002));
        assert_eq!(Error::Decode.close_code(), Some(4002));
        assert_eq!(Error::UnknownOpcode(5).close_code(), Some(4001));
        assert_eq!(Error::NotAuthenticated.close_code(), Some(4003));
        assert_eq!(Error::AuthenticationFailed.close_code(), Some(4004));
        assert_eq!(Error::AlreadyAuthenticated.close_code(), Some(4005));
        assert_eq!(Error::RateLimited.close_code(), Some(4008));
        assert_eq!(Error::HeartbeatTimeout.close_code(), Some(4009));
        assert_eq!(Error::InvalidShard.close_code(), Some(4010));
        assert_eq!(Error::InvalidApiVersion.close_code(), Some(4012));
        assert_eq!(Error::InvalidIntents.close_code(), Some(4013));
        assert_eq!(Error::DisallowedIntents.close_code(), Some(4014));
        assert_eq!(Error::SlowConsumer.close_code(), Some(4000));
        assert_eq!(Error::ClosedByServer(4004).close_code(), Some(4004));
    }

    #[test]
    fn only_fatal_codes_end_the_session() {
        assert!(Error::HeartbeatTimeout.keeps_session());
        assert!(Error::RateLimited.keeps_session());
        assert!(Error::SlowConsumer.keeps_session());
        assert!(!Error::AuthenticationFailed.keeps_session());
        assert!(!Error::ClosedByServer(4004).keeps_session());
        assert!(!Error::DisallowedIntents.keeps_session());
        assert_eq!(close_reason(4009), "Session timed out.");
    }
}
