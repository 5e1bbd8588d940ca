//! Op 6 Resume: hand a session over to a new connection and replay what it missed.

use std::sync::Arc;

use concord_core::gateway::payload::incoming::{ClientFrame, Resume};
use concord_core::gateway::EventKind;
use concord_core::json;
use concord_core::token::{TokenClaims, TokenKey};

use crate::error::{Error, Result};
use crate::frame::{EncodedEvent, OutFrame};
use crate::metrics;
use crate::session::{Link, Session, SessionId};
use crate::shard::Shard;

/// RESUMED's `d`: Discord sends a debug trace here; libraries only need an object.
const RESUMED_DATA: &[u8] = br#"{"_trace":[]}"#;

/// Checks a client's Resume payload (the whole frame, as sent) before it is routed: its shape
/// and the token's signature. Returns the session id too, when it is one of ours.
///
/// # Errors
/// [`Error::Decode`] for a payload that is not a Resume (4002); [`Error::AuthenticationFailed`].
pub(crate) fn authorize(
    tokens: &TokenKey,
    mut payload: Vec<u8>,
) -> Result<(TokenClaims, Resume, Option<SessionId>)> {
    let frame: ClientFrame = json::from_slice(&mut payload).map_err(|_| Error::Decode)?;
    authorize_data(tokens, frame.d)
}

/// [`authorize`] for an already parsed frame's `d`.
///
/// # Errors
/// As [`authorize`].
pub(crate) fn authorize_data(
    tokens: &TokenKey,
    data: serde_json::Value,
) -> Result<(TokenClaims, Resume, Option<SessionId>)> {
    let resume: Resume = serde_json::from_value(data).map_err(|_| Error::Decode)?;
    let claims = super::identify::verify_token(tokens, &resume.token)?;
    let id = SessionId::parse(&resume.session_id);
    Ok((claims, resume, id))
}

impl Shard {
    /// Resumes `resume.session_id` for a verified token onto `link`. Returns the session and
    /// the frames to write first (every dispatch after `seq`, then RESUMED), or `None` when
    /// the session is unknown, belongs to another user, or `seq` is outside its buffer.
    ///
    /// # Errors
    /// [`Error::AuthenticationFailed`] for a revoked token; storage failures.
    pub(crate) async fn resume(
        &self,
        claims: TokenClaims,
        resume: &Resume,
        link: Link,
    ) -> Result<Option<(Arc<Session>, Vec<OutFrame>)>> {
        if !self
            .store
            .token_is_live(claims.token_id, claims.user_id)
            .await?
        {
            return Err(Error::AuthenticationFailed);
        }
        let Some(session) = SessionId::parse(&resume.session_id).and_then(|id| self.session(id))
        else {
            return Ok(None);
        };
        if session.user_id != claims.user_id {
            return Ok(None);
        }
        let resumed = EncodedEvent::new(EventKind::Resumed, RESUMED_DATA);
        let Some(frames) = session.resume(resume.seq.unwrap_or(0), resumed, link) else {
            return Ok(None);
        };
        let span = tracing::Span::current();
        span.record("shard", self.id());
        span.record("session", tracing::field::display(session.id));
        span.record("user", tracing::field::display(session.user_id));
        metrics::dispatched(EventKind::Resumed, 1);
        Ok(Some((session, frames)))
    }
}
