//! Op 6 Resume: hand a session over to a new connection and replay what it missed.

use std::sync::Arc;

use concord_core::gateway::payload::incoming::Resume;
use concord_core::gateway::EventKind;
use concord_core::token::TokenClaims;

use crate::error::{Error, Result};
use crate::frame::{EncodedEvent, OutFrame};
use crate::metrics;
use crate::session::{Link, Session, SessionId};
use crate::shard::Shard;

/// RESUMED's `d`: Discord sends a debug trace here; libraries only need an object.
const RESUMED_DATA: &[u8] = br#"{"_trace":[]}"#;

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
