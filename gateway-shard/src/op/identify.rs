//! Op 2 Identify: validate, register the session, load its guilds, send READY and one
//! GUILD_CREATE per guild.

use std::sync::Arc;

use concord_core::gateway::payload::incoming::{ClientFrame, Identify};
use concord_core::gateway::payload::outgoing::{Ready, ReadyApplication, UnavailableGuild};
use concord_core::gateway::{EventKind, Intents, GATEWAY_VERSION};
use concord_core::json;
use concord_core::model::application::{
    FLAG_GATEWAY_GUILD_MEMBERS, FLAG_GATEWAY_MESSAGE_CONTENT, FLAG_GATEWAY_PRESENCE,
};
use concord_core::token::{self, TokenClaims, TokenKey};

use crate::error::{Error, Result};
use crate::frame::{EncodedEvent, OutFrame};
use crate::guild_create;
use crate::metrics;
use crate::session::{client_shard_wants, Link, Session, SessionId};
use crate::shard::Shard;

/// Range Discord allows for Identify `large_threshold`.
const LARGE_THRESHOLD_RANGE: (u32, u32) = (50, 250);

/// Rejects a `shard` array with `id >= count` or `count == 0` (close 4010).
pub(crate) fn check_shard(shard: Option<[u32; 2]>) -> Result<()> {
    match shard {
        Some([id, count]) if count == 0 || id >= count => Err(Error::InvalidShard),
        _ => Ok(()),
    }
}

/// Rejects intent bits Discord does not define (close 4013).
pub(crate) fn check_intents(intents: Intents) -> Result<()> {
    if Intents::all().contains(intents) {
        Ok(())
    } else {
        Err(Error::InvalidIntents)
    }
}

/// Rejects privileged intents the bot's application has not enabled (close 4014); human
/// accounts may use all of them.
fn check_privileged(intents: Intents, bot: bool, application_flags: u64) -> Result<()> {
    if !bot {
        return Ok(());
    }
    let enabled = [
        (Intents::GUILD_MEMBERS, FLAG_GATEWAY_GUILD_MEMBERS),
        (Intents::GUILD_PRESENCES, FLAG_GATEWAY_PRESENCE),
        (Intents::MESSAGE_CONTENT, FLAG_GATEWAY_MESSAGE_CONTENT),
    ];
    for (intent, flag) in enabled {
        if intents.contains(intent) && application_flags & flag == 0 {
            return Err(Error::DisallowedIntents);
        }
    }
    Ok(())
}

/// Checks a client's Identify payload (the whole frame, as sent) before it is routed: the
/// token's signature, `shard` and `intents`. Revocation and privileged intents are checked by
/// [`Shard::identify`], which reads storage.
///
/// # Errors
/// [`Error::Decode`] for a payload that is not an Identify (4002), then the checks' errors.
pub(crate) fn authorize(
    tokens: &TokenKey,
    mut payload: Vec<u8>,
) -> Result<(TokenClaims, Identify)> {
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
) -> Result<(TokenClaims, Identify)> {
    let identify: Identify = serde_json::from_value(data).map_err(|_| Error::Decode)?;
    let claims = verify_token(tokens, &identify.token)?;
    check_shard(identify.shard)?;
    check_intents(identify.intents)?;
    Ok((claims, identify))
}

/// Verifies a token from Identify or Resume (with or without a `Bot ` prefix).
pub(crate) fn verify_token(tokens: &TokenKey, raw: &str) -> Result<TokenClaims> {
    tokens
        .verify(token::strip_scheme(raw))
        .map_err(|_| Error::AuthenticationFailed)
}

impl Shard {
    /// Starts a session for a verified token: checks revocation and privileged intents,
    /// registers the session with its guilds, loads every GUILD_CREATE, then sequences READY,
    /// the GUILD_CREATEs and whatever arrived meanwhile, attaching `link`.
    ///
    /// Returns the session and the frames the connection must write before anything queued.
    pub(crate) async fn identify(
        &self,
        claims: TokenClaims,
        identify: &Identify,
        link: Link,
    ) -> Result<(Arc<Session>, Vec<OutFrame>)> {
        let store = &*self.store;
        if !store.token_is_live(claims.token_id, claims.user_id).await? {
            return Err(Error::AuthenticationFailed);
        }
        let user = store
            .current_user(claims.user_id)
            .await?
            .ok_or(Error::AuthenticationFailed)?;
        let application = if user.user.bot {
            let flags = store
                .application(claims.user_id.cast())
                .await?
                .map_or(0, |app| app.flags);
            ReadyApplication {
                flags,
                id: claims.user_id.cast(),
            }
        } else {
            ReadyApplication {
                flags: 0,
                id: claims.user_id.cast(),
            }
        };
        check_privileged(identify.intents, user.user.bot, application.flags)?;
        if user.user.bot {
            let max_concurrency = self.config().max_concurrency.max(1);
            let bucket = identify.shard.map_or(0, |[id, _]| id) % max_concurrency;
            let waited = self
                .config()
                .identify_queue
                .wait_turn(claims.user_id.get(), bucket)
                .await;
            if !waited.is_zero() {
                ::metrics::histogram!(metrics::IDENTIFY_WAIT_SECONDS).record(waited.as_secs_f64());
            }
        }

        let (low, high) = LARGE_THRESHOLD_RANGE;
        let large_threshold = identify
            .large_threshold
            .unwrap_or(self.config().large_threshold)
            .clamp(low, high);
        let session = Arc::new(
            Session::new(
                SessionId::generate(self.id()),
                claims.user_id,
                identify.intents,
                identify.shard,
                large_threshold,
                self.config().replay_capacity,
            )
            .with_token(claims.token_id),
        );
        let span = tracing::Span::current();
        span.record("shard", self.id());
        span.record("session", tracing::field::display(session.id));
        span.record("user", tracing::field::display(claims.user_id));
        // In the table before the guild list is read: a join committed after the read is then
        // announced by a GuildJoined that finds this session, instead of being lost between
        // the read and the registration.
        self.register(&session).await;

        let result = async {
            let guild_ids: Vec<_> = store
                .user_guild_ids(claims.user_id)
                .await?
                .into_iter()
                .filter(|guild| client_shard_wants(identify.shard, Some(*guild)))
                .collect();
            let guild_ids = self.subscribe_new(&session, &guild_ids).await;
            self.load_and_go_live(&session, &guild_ids, user, application, identify, link)
                .await
        }
        .await;
        match result {
            Ok(frames) => Ok((session, frames)),
            Err(error) => {
                let (guilds, _) = session.close(None);
                self.forget(session.id, guilds).await;
                Err(error)
            }
        }
    }

    async fn load_and_go_live(
        &self,
        session: &Arc<Session>,
        guild_ids: &[concord_core::id::GuildId],
        user: concord_core::model::CurrentUser,
        application: ReadyApplication,
        identify: &Identify,
        link: Link,
    ) -> Result<Vec<OutFrame>> {
        let all_members = identify.intents.contains(Intents::GUILD_PRESENCES);
        let mut creates = Vec::with_capacity(guild_ids.len());
        for guild in guild_ids {
            match guild_create::load(
                &*self.store,
                *guild,
                session.user_id,
                all_members,
                session.large_threshold,
            )
            .await?
            {
                Some(view) => {
                    let event = EncodedEvent::encode(EventKind::GuildCreate, &view.create);
                    creates.push((*guild, view.roles, event));
                }
                // Deleted or left between listing and loading: not part of this session.
                None => self.unsubscribe(session, *guild).await,
            }
        }
        let ready = Ready {
            _trace: Vec::new(),
            application,
            guilds: creates
                .iter()
                .map(|(id, _, _)| UnavailableGuild {
                    id: *id,
                    unavailable: true,
                })
                .collect(),
            private_channels: Vec::new(),
            relationships: Vec::new(),
            resume_gateway_url: self.config().resume_gateway_url.clone(),
            session_id: session.id.to_string(),
            session_type: "normal",
            shard: identify.shard,
            user,
            user_settings: serde_json::Value::Object(serde_json::Map::new()),
            v: GATEWAY_VERSION,
        };
        let guild_count = creates.len() as u64;
        let frames = session.go_live(
            EncodedEvent::encode(EventKind::Ready, &ready),
            creates,
            link,
        )?;
        metrics::dispatched(EventKind::Ready, 1);
        metrics::dispatched(EventKind::GuildCreate, guild_count);
        Ok(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_arrays() {
        assert!(check_shard(None).is_ok());
        assert!(check_shard(Some([0, 1])).is_ok());
        assert!(check_shard(Some([3, 4])).is_ok());
        assert!(matches!(
            check_shard(Some([1, 1])),
            Err(Error::InvalidShard)
        ));
        assert!(matches!(
            check_shard(Some([0, 0])),
            Err(Error::InvalidShard)
        ));
    }

    #[test]
    fn intents() {
        assert!(check_intents(Intents::all()).is_ok());
        assert!(matches!(
            check_intents(Intents::from_bits_retain(1 << 17)),
            Err(Error::InvalidIntents)
        ));
        let members = Intents::GUILDS | Intents::GUILD_MEMBERS;
        assert!(
            check_privileged(members, false, 0).is_ok(),
            "humans may use every intent"
        );
        assert!(matches!(
            check_privileged(members, true, 0),
            Err(Error::DisallowedIntents)
        ));
        assert!(check_privileged(members, true, FLAG_GATEWAY_GUILD_MEMBERS).is_ok());
        assert!(matches!(
            check_privileged(Intents::MESSAGE_CONTENT, true, FLAG_GATEWAY_GUILD_MEMBERS),
            Err(Error::DisallowedIntents)
        ));
    }
}
