//! Concord's account routes: registration, password login and logout. Discord has no public
//! equivalent; the shapes follow its client API (`{login, password}` → `{token, user_id}`).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use concord_core::bus::BusMessage;
use concord_core::id::{GenericMarker, UserId};
use concord_core::repo::{constraint, NewUser};
use concord_core::timestamp::Timestamp;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::error::{Error, FormErrors, Result, ResultExt};
use crate::events;
use crate::extract::{AppJson, AuthUser};
use crate::state::AppState;
use crate::validate::{self, code};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
}

/// Shortest accepted password.
const PASSWORD_MIN: usize = 8;
/// Longest accepted password; bounds the hashing work one request can cause.
const PASSWORD_MAX: usize = 256;

#[derive(Debug, Deserialize)]
struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LoginBody {
    login: String,
    password: String,
}

#[derive(Debug, Serialize)]
struct TokenResponse {
    token: String,
    user_id: UserId,
}

async fn register(
    State(state): State<AppState>,
    AppJson(body): AppJson<RegisterBody>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    let username = validate::normalize_name(&body.username);
    let email = body
        .email
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    let mut errors = FormErrors::new();
    validate::username(&mut errors, &["username"], &username);
    let password_len = body.password.chars().count();
    if password_len < PASSWORD_MIN {
        validate::length(
            &mut errors,
            &["password"],
            &body.password,
            PASSWORD_MIN,
            usize::MAX,
        );
    } else if password_len > PASSWORD_MAX {
        validate::length(&mut errors, &["password"], &body.password, 0, PASSWORD_MAX);
    }
    if let Some(email) = &email {
        if email.len() > 320
            || !email.contains('@')
            || email.starts_with('@')
            || email.ends_with('@')
        {
            errors.add(
                &["email"],
                "EMAIL_TYPE_INVALID_EMAIL",
                "Not a well formed email address.",
            );
        }
    }
    errors.finish()?;

    let password_hash = state.passwords.hash(body.password).await?;
    let id: UserId = state.ids.next();
    let user = NewUser {
        bot: false,
        discriminator: "0".to_owned(),
        email,
        id,
        password_hash: Some(password_hash),
        username,
    };
    state
        .store
        .insert_user(&user)
        .await
        .on_constraint(constraint::USER_USERNAME, username_taken)
        .on_constraint(constraint::USER_EMAIL, || {
            Error::field(
                &["email"],
                code::EMAIL_TAKEN,
                "Email is already registered.",
            )
        })?;
    let token = issue_token(&state, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenResponse { token, user_id: id }),
    ))
}

/// The 50035 answer for a username someone else holds.
pub(crate) fn username_taken() -> Error {
    Error::field(
        &["username"],
        code::USERNAME_TAKEN,
        "Username is unavailable. Try adding numbers, letters, underscores _ , or periods.",
    )
}

async fn login(
    State(state): State<AppState>,
    AppJson(body): AppJson<LoginBody>,
) -> Result<Json<TokenResponse>> {
    let credentials = state.store.credentials(body.login.trim()).await?;
    let (user_id, hash) = match credentials {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    let matches = state.passwords.verify(body.password, hash).await?;
    let Some(user_id) = user_id.filter(|_| matches) else {
        let mut errors = FormErrors::new();
        errors.add(
            &["login"],
            code::INVALID_LOGIN,
            "Login or password is invalid.",
        );
        errors.add(
            &["password"],
            code::INVALID_LOGIN,
            "Login or password is invalid.",
        );
        return Err(errors.into());
    };
    let token = issue_token(&state, user_id).await?;
    Ok(Json(TokenResponse { token, user_id }))
}

async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode> {
    let revoked = state.store.revoke_token(auth.token_id).await;
    // Evicted whatever the outcome: a failed call may still have committed.
    state.live_tokens.revoked(auth.token_id);
    revoked?;
    // The token's gateway sessions end too (4004), on whichever process holds them.
    let revoked = BusMessage::TokenRevoked {
        token_id: auth.token_id,
        user_id: auth.user_id,
    };
    events::to_user_slot(&state, auth.user_id, revoked).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Mints a token with a fresh token id and records it so it can be revoked.
pub(crate) async fn issue_token(state: &AppState, user_id: UserId) -> Result<String> {
    let token_id = state.ids.next::<GenericMarker>().get();
    state
        .store
        .insert_token(token_id, user_id, Timestamp::now())
        .await?;
    Ok(state.tokens.mint(user_id, token_id))
}
