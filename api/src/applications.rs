//! Applications and their bots: creation (the only time the bot token is shown), token reset,
//! and the bot's view of its own application.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_core::bus::{BusMessage, CloseCodeWire};
use concord_core::error_code;
use concord_core::gateway::CloseCode;
use concord_core::id::{ApplicationId, UserId};
use concord_core::model::application::FLAGS_ALL_PRIVILEGED;
use concord_core::model::Application;
use concord_core::repo::{constraint, NewApplication, NewUser, RepoError};
use http::StatusCode;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::auth::issue_token;
use crate::error::{Error, FormErrors, Result};
use crate::events;
use crate::extract::{AppJson, AppPath, AuthUser};
use crate::state::AppState;
use crate::validate;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/applications", post(create_application))
        .route("/applications/@me", get(get_current_application))
        .route("/oauth2/applications/@me", get(get_current_application))
        .route(
            "/applications/{application_id}/bot/reset",
            post(reset_bot_token),
        )
}

/// Tries at a unique bot username before giving up.
const USERNAME_ATTEMPTS: usize = 8;

#[derive(Debug, Deserialize)]
struct CreateApplication {
    name: String,
}

#[derive(Debug, Deserialize)]
struct ApplicationPath {
    application_id: ApplicationId,
}

/// The creation response: the application plus its bot's token, shown only this once.
#[derive(Debug, Serialize)]
struct CreatedApplication {
    #[serde(flatten)]
    application: Application,
    token: String,
}

#[derive(Debug, Serialize)]
struct TokenResponse {
    token: String,
}

async fn create_application(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(body): AppJson<CreateApplication>,
) -> Result<(StatusCode, Json<CreatedApplication>)> {
    let name = validate::normalize_name(&body.name);
    let mut errors = FormErrors::new();
    validate::length(&mut errors, &["name"], &name, 2, 32);
    errors.finish()?;
    let owner = state
        .store
        .current_user(auth.user_id)
        .await?
        .ok_or(Error::from(error_code::UNAUTHORIZED))?;
    if owner.user.bot {
        return Err(error_code::BOTS_FORBIDDEN.into());
    }

    let id: ApplicationId = state.ids.next();
    let base = bot_username(&name);
    let mut attempt = 0;
    loop {
        let username = if attempt == 0 {
            base.clone()
        } else {
            with_suffix(&base)
        };
        let app = NewApplication {
            bot: NewUser {
                bot: true,
                discriminator: format!("{:04}", rand::thread_rng().gen_range(1..=9999)),
                email: None,
                id: id.cast(),
                password_hash: None,
                username,
            },
            flags: if state.config.privileged_intents_by_default {
                FLAGS_ALL_PRIVILEGED
            } else {
                0
            },
            name: name.clone(),
            owner_id: auth.user_id,
            verify_key: random_hex(32),
        };
        match state.store.create_application(&app).await {
            Ok(()) => break,
            Err(RepoError::Conflict(c))
                if c == constraint::USER_USERNAME && attempt + 1 < USERNAME_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let application = state
        .store
        .application(id)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_APPLICATION))?;
    let token = issue_token(&state, id.cast()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApplication { application, token }),
    ))
}

/// A username for the bot derived from the application name, under the username rules.
fn bot_username(name: &str) -> String {
    let mut username = name.to_owned();
    for forbidden in ["```", "@", "#", ":"] {
        username = username.replace(forbidden, "");
    }
    // "discord" is ASCII, so a byte-wise match always starts and ends on char boundaries.
    while let Some(at) = username
        .as_bytes()
        .windows(7)
        .position(|w| w.eq_ignore_ascii_case(b"discord"))
    {
        username.replace_range(at..at + 7, "");
    }
    let mut username = validate::normalize_name(&username);
    let lower = username.to_lowercase();
    if username.chars().count() < 2 || lower == "everyone" || lower == "here" {
        username = format!("{username}bot");
        if username.chars().count() < 2 {
            username = "bot".to_owned();
        }
    }
    username.chars().take(32).collect()
}

/// `base` with a random numeric suffix, still within 32 characters.
fn with_suffix(base: &str) -> String {
    let suffix = rand::thread_rng().gen_range(1000..=9999);
    let head: String = base.chars().take(27).collect();
    format!("{}_{suffix}", head.trim_end())
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.gen::<u8>()))
        .collect()
}

async fn get_current_application(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Application>> {
    let app = state.store.application(auth.user_id.cast()).await?;
    app.map(Json).ok_or(error_code::UNKNOWN_APPLICATION.into())
}

async fn reset_bot_token(
    State(state): State<AppState>,
    auth: AuthUser,
    AppPath(path): AppPath<ApplicationPath>,
) -> Result<Json<TokenResponse>> {
    let app = state
        .store
        .application(path.application_id)
        .await?
        .ok_or(Error::from(error_code::UNKNOWN_APPLICATION))?;
    if app.owner.id != auth.user_id {
        return Err(error_code::MISSING_PERMISSIONS.into());
    }
    let bot: UserId = app.id.cast();
    let revoked = state.store.revoke_user_tokens(bot).await;
    // Evicted whatever the outcome: a failed call may still have committed.
    state.live_tokens.user_revoked(bot);
    revoked?;
    let token = issue_token(&state, bot).await?;
    let close = BusMessage::CloseUserSessions {
        code: CloseCodeWire::from(CloseCode::AuthenticationFailed),
        user_id: bot,
    };
    events::to_user_slot(&state, bot, close).await;
    Ok(Json(TokenResponse { token }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_names_follow_username_rules() {
        for (name, expected) in [
            ("My Bot", "My Bot"),
            ("Discord Helper", "Helper"),
            ("a", "abot"),
            ("here", "herebot"),
            ("x@y#z:w", "xyzw"),
        ] {
            let got = bot_username(name);
            assert_eq!(got, expected);
            let mut errors = FormErrors::new();
            validate::username(&mut errors, &["u"], &got);
            assert!(errors.is_empty(), "{got}");
        }
        let long = with_suffix(&"y".repeat(32));
        assert_eq!(long.chars().count(), 32);
    }
}
